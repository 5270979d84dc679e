'use strict';
// Presence, the HTTP API and users across three nodes (docs/CLUSTER.md §9.2,
// §9.7): one member per user whichever nodes its sockets are on, the first
// user_info kept, the member limit enforced cluster-wide, the same snapshot
// and the same HTTP API answers from every node; terminate_connections,
// sendToUser and watchlist events reaching sockets on other nodes.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../integration/lib/harness');
const cl = require('./lib/cluster');

const LIMIT = { id: 'limit-id', key: 'limit-key', secret: 'limit-secret', max_presence_members_per_channel: 2 };
const API = { id: 'api-id', key: 'api-key', secret: 'api-secret' };

let cluster;
let A;
let B;
let C;
before(async () => {
  cluster = await cl.startCluster({ nodes: 3, apps: [h.APP, LIMIT, API] });
  [A, B, C] = cluster.nodes;
});
after(async () => { if (cluster) await cluster.stop(); });
const ctest = (name, fn) => test(name, cl.withLogs(() => cluster, fn));

const isMember = (event, channel, userId) => {
  const p = (m) => m.event === `pusher_internal:${event}` && m.channel === channel && JSON.parse(m.data).user_id === userId;
  p.description = `${event} of ${userId} on ${channel}`;
  return p;
};
const subError = (channel) => {
  const p = (m) => m.event === 'pusher:subscription_error' && m.channel === channel;
  p.description = `subscription_error on ${channel}`;
  return p;
};
/** The presence part of a subscription_succeeded frame, ids sorted (as strings, keeping their JSON type). */
function snapshot(m) {
  const p = JSON.parse(m.data).presence;
  return { count: p.count, ids: [...p.ids].sort((x, y) => (String(x) < String(y) ? -1 : 1)), hash: p.hash };
}
/** Cluster-wide subscription_count of channel, read through node. */
async function subscriptionCount(node, channel, app) {
  const r = await cl.apiGet(node, `/channels/${channel}`, { info: 'subscription_count' }, app);
  assert.equal(r.status, 200, r.text);
  return r.json.subscription_count || 0;
}

// ---------------------------------------------------------------- presence

ctest('same user on A and B: one member_added at C with the first user_info; member_removed only after both left', async () => {
  const ch = h.uniq('presence-two-nodes');
  const obs = await cl.presenceClient(C, ch, 'obs');
  const a = await cl.presenceClient(A, ch, 'U', { from: 'A' });
  const added = await obs.waitFor(isMember('member_added', ch, 'U'));
  assert.deepEqual(JSON.parse(added.data), { user_id: 'U', user_info: { from: 'A' } });
  const b = await h.connectRaw(B);
  const snapB = snapshot(await b.subscribeOk(ch, { userId: 'U', userInfo: { from: 'B' } }));
  assert.deepEqual(snapB, { count: 2, ids: ['U', 'obs'], hash: { U: { from: 'A' }, obs: null } },
    'the snapshot on B keeps the first user_info of U');
  // b's join has run (its snapshot came from it): a marker through A reaches
  // obs after any second member_added
  await cl.marker(A, ch, [obs]);
  assert.equal(obs.count(isMember('member_added', ch, 'U')), 1, 'one member_added for U');

  a.close();
  await h.eventually(async () => (await subscriptionCount(B, ch)) === 2);
  await cl.marker(A, ch, [obs]);
  assert.equal(obs.count(isMember('member_removed', ch, 'U')), 0, 'U still has a socket on B');
  await cl.eventuallySame([A, B, C], `/channels/${ch}/users`, {}, { users: [{ id: 'U' }, { id: 'obs' }] },
    { normalize: (j) => ({ users: [...j.users].sort((x, y) => (x.id < y.id ? -1 : 1)) }) });

  b.close();
  const removed = await obs.waitFor(isMember('member_removed', ch, 'U'));
  assert.deepEqual(JSON.parse(removed.data), { user_id: 'U' });
  await h.eventually(async () => (await subscriptionCount(A, ch)) === 1);
  await cl.marker(A, ch, [obs]);
  assert.equal(obs.count(isMember('member_removed', ch, 'U')), 1, 'one member_removed for U');
  obs.close();
});

ctest('max_presence_members_per_channel = 2 refuses a third user on every node, admits more sockets of a member', async () => {
  const ch = h.uniq('presence-limit');
  const u1 = await cl.presenceClient(A, ch, 'u1', undefined, { app: LIMIT });
  const u2 = await cl.presenceClient(B, ch, 'u2', undefined, { app: LIMIT });
  for (const node of [C, A, B]) {
    const c = await h.connectRaw(node, { key: LIMIT.key });
    const cd = JSON.stringify({ user_id: 'u3' });
    c.subscribe(ch, { auth: h.presenceAuth(c.socketId, ch, cd, LIMIT), channel_data: cd });
    const m = await c.waitFor(subError(ch));
    assert.equal(m.data.type, 'LimitReached', `third user on ${node.name}: ${JSON.stringify(m)}`);
    assert.equal(m.data.status, 4100);
    await c.roundTrip(); // the socket stays open
    c.close();
  }
  // a member's second socket is not a new member
  const u1again = await cl.presenceClient(C, ch, 'u1', undefined, { app: LIMIT });
  await cl.eventuallySame([A, B, C], `/channels/${ch}`, { info: 'user_count,subscription_count' },
    { occupied: true, user_count: 2, subscription_count: 3 }, { app: LIMIT });
  // room again once u2 left
  u2.close();
  await h.eventually(async () => (await subscriptionCount(C, ch, LIMIT)) === 2);
  const u3 = await cl.presenceClient(C, ch, 'u3', undefined, { app: LIMIT });
  // one seat left, two new users race for it from two nodes: exactly one gets it
  u3.close();
  await h.eventually(async () => (await subscriptionCount(C, ch, LIMIT)) === 2);
  const [r4, r5] = await Promise.all([h.connectRaw(A, { key: LIMIT.key }), h.connectRaw(B, { key: LIMIT.key })]);
  const cd4 = JSON.stringify({ user_id: 'u4' });
  const cd5 = JSON.stringify({ user_id: 'u5' });
  r4.subscribe(ch, { auth: h.presenceAuth(r4.socketId, ch, cd4, LIMIT), channel_data: cd4 });
  r5.subscribe(ch, { auth: h.presenceAuth(r5.socketId, ch, cd5, LIMIT), channel_data: cd5 });
  const outcome = (m) => (m.event === 'pusher_internal:subscription_succeeded' || m.event === 'pusher:subscription_error') && m.channel === ch;
  const [o4, o5] = await Promise.all([r4.waitFor(outcome), r5.waitFor(outcome)]);
  const won = [o4, o5].filter((m) => m.event === 'pusher_internal:subscription_succeeded').length;
  assert.equal(won, 1, `exactly one of two simultaneous new users gets the last seat: ${JSON.stringify([o4, o5])}`);
  await cl.eventuallySame([A, B, C], `/channels/${ch}`, { info: 'user_count' }, { occupied: true, user_count: 2 }, { app: LIMIT });
  [u1, u1again, r4, r5].forEach((c) => c.close());
});

ctest('the subscription_succeeded snapshot is the same from every node', async () => {
  const ch = h.uniq('presence-snap');
  const members = [
    await cl.presenceClient(A, ch, 'ann', { name: 'Ann', n: 1 }),
    await cl.presenceClient(B, ch, 'bob', { name: 'Bob', tags: ['x', 'y'] }),
    await cl.presenceClient(C, ch, 42, { name: 'numeric' }),
    await cl.presenceClient(B, ch, 'ann', { name: 'second socket, not kept' }),
  ];
  const snaps = [];
  for (const node of [A, B, C]) { // same user on each node: the member set stays the same
    const c = await h.connectRaw(node);
    snaps.push(snapshot(await c.subscribeOk(ch, { userId: 'viewer' })));
    members.push(c);
  }
  const want = {
    count: 4,
    ids: ['42', 'ann', 'bob', 'viewer'],
    hash: { ann: { name: 'Ann', n: 1 }, bob: { name: 'Bob', tags: ['x', 'y'] }, 42: { name: 'numeric' }, viewer: null },
  };
  assert.deepEqual({ ...snaps[0], ids: snaps[0].ids.map(String) }, want, 'snapshot on A');
  assert.deepEqual(snaps[1], snaps[0], 'snapshot on B equals the one on A');
  assert.deepEqual(snaps[2], snaps[0], 'snapshot on C equals the one on A');
  members.forEach((c) => c.close());
});

// ---------------------------------------------------------------- HTTP API

ctest('GET /channels, /channels/{c}, /channels/{c}/users: the same body on every node, equal to the truth', async () => {
  const pfx = `api${process.pid}-`;
  const pub1 = `${pfx}pub-1`;
  const pub2 = `${pfx}pub-2`;
  const priv = `private-${pfx}x`;
  const pres = `presence-${pfx}p`;
  const cache = `cache-${pfx}c`;
  const pcache = `presence-cache-${pfx}pc`;
  const gone = `${pfx}gone`;
  const app = { app: API };
  const clients = [
    await cl.subscribedClient(A, pub1, app), await cl.subscribedClient(A, pub1, app), await cl.subscribedClient(B, pub1, app),
    await cl.subscribedClient(C, pub2, app),
    await cl.subscribedClient(A, priv, app), await cl.subscribedClient(C, priv, app),
    await cl.subscribedClient(A, pres, { ...app, userId: 'u1', userInfo: { k: 1 } }),
    await cl.subscribedClient(B, pres, { ...app, userId: 'u1' }),
    await cl.subscribedClient(C, pres, { ...app, userId: 'u2' }),
    await cl.subscribedClient(B, pres, { ...app, userId: 'u3' }),
    await cl.subscribedClient(B, cache, app),
    await cl.subscribedClient(A, pcache, { ...app, userId: 'u1' }),
    await cl.subscribedClient(C, pcache, { ...app, userId: 'u9', userInfo: { z: true } }),
  ];
  const leaver = await cl.subscribedClient(C, gone, app);
  const pub = await h.apiTrigger(A, { name: 'cached-ev', channel: cache, data: 'the cached data' }, app);
  assert.equal(pub.status, 200, pub.text);
  await clients[10].waitFor('cached-ev', { channel: cache });
  const pubP = await h.apiTrigger(B, { name: 'cached-ev', channel: pcache, data: 'presence cached' }, app);
  assert.equal(pubP.status, 200, pubP.text);
  await clients[12].waitFor('cached-ev', { channel: pcache });
  leaver.close();

  const nodes = [A, B, C];
  const opt = { app: API };
  await cl.eventuallySame(nodes, '/channels', {},
    { channels: { [pub1]: {}, [pub2]: {}, [priv]: {}, [pres]: {}, [cache]: {}, [pcache]: {} } }, opt);
  await cl.eventuallySame(nodes, '/channels', { filter_by_prefix: 'presence-', info: 'user_count,subscription_count' },
    { channels: { [pres]: { user_count: 3, subscription_count: 4 }, [pcache]: { user_count: 2, subscription_count: 2 } } }, opt);
  await cl.eventuallySame(nodes, '/channels', { filter_by_prefix: pfx, info: 'subscription_count' },
    { channels: { [pub1]: { subscription_count: 3 }, [pub2]: { subscription_count: 1 } } }, opt);
  await cl.eventuallySame(nodes, `/channels/${pub1}`, { info: 'subscription_count,cache' },
    { occupied: true, subscription_count: 3 }, opt);
  await cl.eventuallySame(nodes, `/channels/${pres}`, { info: 'user_count,subscription_count' },
    { occupied: true, user_count: 3, subscription_count: 4 }, opt);
  await cl.eventuallySame(nodes, `/channels/${pres}/users`, {}, { users: [{ id: 'u1' }, { id: 'u2' }, { id: 'u3' }] },
    { ...opt, normalize: (j) => ({ users: [...j.users].sort((x, y) => (x.id < y.id ? -1 : 1)) }) });
  await cl.eventuallySame(nodes, `/channels/${gone}`, { info: 'subscription_count' }, { occupied: false, subscription_count: 0 }, opt);
  await cl.eventuallySame(nodes, `/channels/presence-${pfx}nobody/users`, {}, { users: [] }, opt);
  // cache channels: the same event from every node; only its ttl (seconds left) may tick between the reads
  const cached = [
    [cache, 'subscription_count,cache', { occupied: true, subscription_count: 1, cache: { data: 'the cached data' } }],
    [pcache, 'user_count,subscription_count,cache',
      { occupied: true, user_count: 2, subscription_count: 2, cache: { data: 'presence cached' } }],
  ];
  for (const [ch, info, want] of cached) {
    const answers = await Promise.all(nodes.map((nd) => cl.apiGet(nd, `/channels/${ch}`, { info }, API)));
    for (const [i, r] of answers.entries()) {
      assert.equal(r.status, 200, r.text);
      const { ttl, ...rest } = r.json.cache || {};
      assert.deepEqual({ ...r.json, cache: rest }, want, `${ch} on ${nodes[i].name}: ${r.text}`);
      assert.ok(ttl >= 1700 && ttl <= 1800, `ttl ${ttl} s left of 1800`);
      assert.equal(r.text.replace(/"ttl":\d+/, ''), answers[0].text.replace(/"ttl":\d+/, ''), `${ch}: node ${nodes[i].name} vs A`);
    }
  }
  clients.forEach((c) => c.close());
});

// ---------------------------------------------------------------- users

ctest('terminate_connections through A closes the user\'s sockets on B and C, nobody else\'s', async () => {
  const U = h.uniq('term');
  const onB = await h.connectRaw(B);
  await onB.signin({ id: U });
  const onC = await h.connectRaw(C);
  await onC.signin({ id: U });
  const other = await h.connectRaw(B);
  await other.signin({ id: h.uniq('bystander') });
  const r = await h.signedRequest(A, { method: 'POST', path: `/apps/${h.APP.id}/users/${U}/terminate_connections`, body: {} });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, {});
  for (const c of [onB, onC]) await c.expectErrorAndClose(4009, h.T(5000));
  await other.roundTrip();
  assert.equal(other.closeInfo, null, 'another user on B stays connected');
  other.close();
});

ctest('sendToUser through A reaches the user\'s sockets on A and C, and nobody else', async () => {
  const U = h.uniq('dm');
  const onC = await h.connectRaw(C);
  await onC.signin({ id: U });
  const onA = await h.connectRaw(A);
  await onA.signin({ id: U });
  const other = await h.connectRaw(C);
  await other.signin({ id: h.uniq('other') });
  const sdk = h.makeSdk(A);
  const res = await h.sdkJson(sdk.sendToUser(U, 'note', { to: U }));
  assert.equal(res.status, 200);
  const want = { event: 'note', channel: `#server-to-user-${U}`, data: JSON.stringify({ to: U }) };
  assert.deepEqual(await onC.waitFor('note'), want);
  assert.deepEqual(await onA.waitFor('note'), want);
  await other.expectNone('note', 300);
  [onA, onC, other].forEach((c) => c.close());
});

const WATCH = 'pusher_internal:watchlist_events';
function watchEvents(m) {
  const out = {};
  for (const e of JSON.parse(m.data).events) out[e.name] = (out[e.name] || []).concat(e.user_ids);
  return out;
}

ctest('watchlist across nodes: online when the user signs in anywhere, offline when their last socket anywhere leaves', async () => {
  const T = h.uniq('watched');
  const watcher = await h.connectRaw(A);
  await watcher.signin({ id: h.uniq('watcher'), watchlist: [T] });
  await h.sleep(h.T(150)); // an initial state frame, if any, says nobody is online
  for (const m of watcher.pending().filter((x) => x.event === WATCH)) {
    await watcher.waitFor(WATCH);
    assert.ok(!(watchEvents(m).online || []).length, `nobody is online yet: ${m.data}`);
  }
  const t1 = await h.connectRaw(B);
  await t1.signin({ id: T });
  assert.deepEqual(watchEvents(await watcher.waitFor(WATCH)), { online: [T] });
  const t2 = await h.connectRaw(C);
  await t2.signin({ id: T });
  await watcher.expectNone(WATCH, 300); // already online
  t1.close();
  await watcher.expectNone(WATCH, 300); // still online on C
  t2.close();
  assert.deepEqual(watchEvents(await watcher.waitFor(WATCH, { timeout: h.T(5000) })), { offline: [T] });
  // a watcher signing in later on another node gets the cluster's state
  const t3 = await h.connectRaw(B);
  await t3.signin({ id: T });
  await watcher.waitFor(WATCH);
  const late = await h.connectRaw(C);
  await late.signin({ id: h.uniq('late-watcher'), watchlist: [T] });
  assert.deepEqual(watchEvents(await late.waitFor(WATCH)).online, [T]);
  [watcher, t3, late].forEach((c) => c.close());
});
