'use strict';
// Fan-out across three nodes sharing one Redis (docs/CLUSTER.md §9.1, §9.10):
// exactly-once delivery of HTTP publishes and client events to every node,
// socket_id exclusion of one remote socket, per-publisher order, no traffic
// to a node that serves no subscriber of the channel, and socket ids that
// never collide across nodes.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const h = require('../integration/lib/harness');
const cl = require('./lib/cluster');

let cluster;
let A;
let B;
let C;
before(async () => {
  cluster = await cl.startCluster({ nodes: 3 });
  [A, B, C] = cluster.nodes;
});
after(async () => { if (cluster) await cluster.stop(); });
const ctest = (name, fn) => test(name, cl.withLogs(() => cluster, fn));

/** Data of the events named `name` on channel that c received, in arrival order. */
const received = (c, name, channel) => c.all().filter((m) => m.event === name && m.channel === channel).map((m) => m.data);
const numbers = (n) => Array.from({ length: n }, (_, i) => String(i));

ctest('HTTP publish on A: 300 numbered events reach a subscriber on each node exactly once, in order', async () => {
  const ch = h.uniq('fan');
  const subs = [await cl.subscribedClient(A, ch), await cl.subscribedClient(B, ch), await cl.subscribedClient(C, ch)];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 }); // one publisher: one connection, one request at a time
  try {
    for (let i = 0; i < 300; i++) {
      const r = await h.apiTrigger(A, { name: 'n', channel: ch, data: String(i) }, { agent });
      assert.equal(r.status, 200, r.text);
    }
  } finally { agent.destroy(); }
  for (const c of subs) await h.eventually(() => received(c, 'n', ch).length >= 300, { timeout: h.T(5000) });
  // B and C: anything A published is in before A's own later marker
  await cl.marker(A, ch, [subs[1], subs[2]]);
  // A's subscriber gets A's publishes locally: an echo through Redis would
  // show up as a repeated number inside the sequence
  await cl.marker(B, ch, [subs[0], subs[2]]);
  for (const [i, c] of subs.entries()) {
    assert.deepEqual(received(c, 'n', ch), numbers(300), `subscriber on ${'ABC'[i]}: every number once, in order`);
  }
});

ctest('client events: 300 from one socket on B reach A and C exactly once, in order; never the sender', async () => {
  const ch = h.uniq('private-chat');
  const [sa, sb, sc] = [await cl.subscribedClient(A, ch), await cl.subscribedClient(B, ch), await cl.subscribedClient(C, ch)];
  for (let i = 0; i < 300; i++) sb.send({ event: 'client-n', channel: ch, data: { i } });
  for (const c of [sa, sc]) await h.eventually(() => received(c, 'client-n', ch).length >= 300, { timeout: h.T(5000) });
  // sa saw them all, so Redis executed every PUBLISH of B: a marker through
  // A (for sb, sc) and through C (for sa) comes after any duplicate
  await cl.marker(A, ch, [sb, sc]);
  await cl.marker(C, ch, [sa]);
  const want = Array.from({ length: 300 }, (_, i) => ({ i }));
  assert.deepEqual(received(sa, 'client-n', ch), want, 'A: each client event once, in order');
  assert.deepEqual(received(sc, 'client-n', ch), want, 'C: each client event once, in order');
  assert.equal(received(sb, 'client-n', ch).length, 0, 'the sender does not get its own client events');
});

ctest('socket_id exclusion of a subscriber on B excludes only that socket', async () => {
  const ch = h.uniq('excl');
  const sa = await cl.subscribedClient(A, ch);
  const sb = await cl.subscribedClient(B, ch);
  const sb2 = await cl.subscribedClient(B, ch);
  const sc = await cl.subscribedClient(C, ch);
  const r = await h.apiTrigger(A, { name: 'not-for-sb', channel: ch, data: 'x', socket_id: sb.socketId });
  assert.equal(r.status, 200, r.text);
  for (const c of [sa, sb2, sc]) await c.waitFor('not-for-sb', { channel: ch });
  await cl.marker(A, ch, [sb, sb2, sc]);
  assert.equal(sb.count('not-for-sb', ch), 0, 'the excluded socket on B got the event');
  for (const c of [sa, sb2, sc]) assert.equal(c.count('not-for-sb', ch), 1, `${c.socketId}: exactly once`);
});

ctest('a node with no subscriber of a channel receives none of its messages from Redis', async () => {
  const ch = h.uniq('ab-only');
  await cl.subscribedClient(A, ch);
  const sb = await cl.subscribedClient(B, ch);
  const family = 'herald_adapter_publishes_total';
  const before = { B: await cl.metric(B, family, { dir: 'in' }), C: await cl.metric(C, family, { dir: 'in' }) };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < 50; i++) {
      const r = await h.apiTrigger(A, { name: 'n', channel: ch, data: String(i) }, { agent });
      assert.equal(r.status, 200, r.text);
    }
  } finally { agent.destroy(); }
  await h.eventually(() => received(sb, 'n', ch).length >= 50, { timeout: h.T(5000) });
  await cl.marker(A, ch, [sb]);
  const afterB = await cl.metric(B, family, { dir: 'in' });
  const afterC = await cl.metric(C, family, { dir: 'in' });
  assert.ok(afterB - before.B >= 51, `B serves the channel: ${afterB - before.B} messages in, want >= 51`);
  assert.equal(afterC - before.C, 0, 'C has no subscriber of the channel: no message of it may reach C');
});

ctest('socket ids from three nodes: all distinct, ^\\d+\\.\\d+$, one 15-digit prefix per node', async () => {
  const perNode = 30;
  const byNode = [];
  for (const node of [A, B, C]) {
    const clients = await Promise.all(Array.from({ length: perNode }, () => h.connectRaw(node)));
    byNode.push(clients.map((c) => c.socketId));
    clients.forEach((c) => c.close());
  }
  const all = byNode.flat();
  for (const id of all) assert.match(id, /^\d+\.\d+$/);
  assert.equal(new Set(all).size, all.length, 'no socket id is handed out twice');
  const prefixes = byNode.map((ids) => new Set(ids.map((id) => id.split('.')[0])));
  for (const [i, p] of prefixes.entries()) {
    assert.equal(p.size, 1, `node ${'ABC'[i]}: one prefix for all its sockets (${[...p]})`);
    assert.match([...p][0], /^[1-9]\d{14}$/, 'the node number has 15 digits');
  }
  assert.equal(new Set(prefixes.map((p) => [...p][0])).size, 3, 'each node has its own prefix');
});
