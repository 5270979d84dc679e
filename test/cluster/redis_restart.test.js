'use strict';
// redis-server stopped, then started again empty (docs/CLUSTER.md §7.2,
// §7.4, §9.6). While it is away each node keeps serving its own clients:
// a publish reaches the node's local subscribers, /ready says 503 and why,
// cluster reads answer 503 with a JSON error; members leave and others join.
// Once Redis is back, every node re-asserts what it holds: within 10 s the
// HTTP API answers are identical on all nodes and equal the truth, and every
// observer's pusher-js member list equals the truth (no ghost, none missing).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../integration/lib/harness');
const cl = require('./lib/cluster');

let cluster;
before(async () => {
  cluster = await cl.startCluster({
    nodes: 3,
    env: {
      HERALD_ADAPTER_REDIS_RECONNECT_MAX_MS: '300', // reconnect quickly once redis is back
      HERALD_ADAPTER_REDIS_OP_TIMEOUT_MS: '5000',   // answers later than this count as unavailable (joins are then answered locally)
    },
  });
});
after(async () => { if (cluster) await cluster.stop(); });

/** pusher-js client on node, joined to channel as userId; resolves with {client, channel}. */
async function observer(node, channel, userId) {
  const client = h.makePusherClient(node, { presence: { user_id: userId, user_info: { on: node.name } } });
  await h.pusherConnected(client);
  return { client, channel: await h.pusherSubscribe(client, channel), node };
}
const memberIds = (o) => { const ids = []; o.channel.members.each((m) => ids.push(String(m.id))); return ids.sort(); };
const sortUsers = (j) => ({ users: [...j.users].sort((x, y) => (x.id < y.id ? -1 : 1)) });

test('redis-server stopped and restarted empty: local service goes on, then every node converges on the truth within 10 s',
  cl.withLogs(() => cluster, async () => {
    const nodes = cluster.nodes;
    const [A, B, C] = nodes;
    const P = h.uniq('presence-outage');
    const X = h.uniq('plain-outage');
    const observers = [await observer(A, P, 'obs-a'), await observer(B, P, 'obs-b'), await observer(C, P, 'obs-c')];
    const u1 = await cl.presenceClient(A, P, 'u1');
    const u2 = await cl.presenceClient(A, P, 'u2');
    const u3 = await cl.presenceClient(B, P, 'u3');
    const u4 = await cl.presenceClient(B, P, 'u4');
    const xa = await cl.subscribedClient(A, X);
    const xb = await cl.subscribedClient(B, X);
    const before = ['obs-a', 'obs-b', 'obs-c', 'u1', 'u2', 'u3', 'u4'];
    for (const o of observers) await h.eventually(() => { assert.deepEqual(memberIds(o), before); return true; });

    // ---- Redis goes away
    await cluster.redis.stop();
    for (const node of nodes) {
      await h.eventually(async () => {
        const r = await cl.ready(node);
        assert.equal(r.status, 503, `${node.name} /ready while redis is down: ${r.status} ${r.text}`);
        assert.match(r.text, /redis/i, `${node.name} /ready says why`);
        return true;
      }, { timeout: h.T(5000) });
    }
    const down = await cl.apiGet(A, '/channels');
    assert.equal(down.status, 503, `GET /channels while redis is down: ${down.status} ${down.text}`);
    assert.equal(typeof (down.json && down.json.error), 'string', `a JSON error: ${down.text}`);
    const droppedBefore = await cl.metric(A, 'herald_adapter_dropped_total', { reason: 'redis_down' }, { absentIsZero: true });
    const pub = await h.apiTrigger(A, { name: 'while-down', channel: X, data: 'local' });
    assert.equal(pub.status, 200, `a publish while redis is down is accepted: ${pub.text}`);
    assert.deepEqual(await xa.waitFor('while-down'), { event: 'while-down', channel: X, data: 'local' });
    assert.ok((await cl.metric(A, 'herald_adapter_dropped_total', { reason: 'redis_down' })) > droppedBefore,
      'the remote part of the publish is counted as dropped (redis_down)');
    // membership changes while away
    u1.close();
    u3.unsubscribe(P);
    xb.close();
    const xc = await cl.subscribedClient(C, X); // non-presence: completed locally at once
    const u5 = await h.connectRaw(C);
    const joined = u5.subscribeOk(P, { userId: 'u5' }); // presence: waits for the cluster
    await u3.roundTrip(); // B has handled the unsubscribe
    await Promise.all([u1.waitClose(), xb.waitClose()]);

    // ---- Redis comes back, empty
    await cluster.redis.start();
    const t1 = Date.now();
    await joined;
    const users = ['obs-a', 'obs-b', 'obs-c', 'u2', 'u4', 'u5'];
    const within = h.T(10000);
    for (const node of nodes) await cl.waitReady(node, within);
    await cl.eventuallySame(nodes, '/channels', {}, { channels: { [P]: {}, [X]: {} } }, { timeout: within });
    await cl.eventuallySame(nodes, '/channels', { filter_by_prefix: 'presence-', info: 'user_count,subscription_count' },
      { channels: { [P]: { user_count: 6, subscription_count: 6 } } }, { timeout: within });
    await cl.eventuallySame(nodes, `/channels/${P}`, { info: 'user_count,subscription_count' },
      { occupied: true, user_count: 6, subscription_count: 6 }, { timeout: within });
    await cl.eventuallySame(nodes, `/channels/${X}`, { info: 'subscription_count' }, { occupied: true, subscription_count: 2 },
      { timeout: within });
    await cl.eventuallySame(nodes, `/channels/${P}/users`, {}, { users: users.map((id) => ({ id })) },
      { timeout: within, normalize: sortUsers });
    for (const o of observers) {
      await h.eventually(() => { assert.deepEqual(memberIds(o), users, `pusher-js members on ${o.node.name}`); return true; },
        { timeout: Math.max(0, t1 + within - Date.now()) });
    }
    console.log(`timing: redis restart -> every node and observer agree on the truth: ${Date.now() - t1} ms`);
    // and the cluster works again across nodes
    const r = await h.apiTrigger(C, { name: 'after', channel: X, data: 'remote' });
    assert.equal(r.status, 200);
    await xa.waitFor('after', { timeout: h.T(3000) });
    [u2, u3, u4, u5, xa, xc].forEach((c) => c.close());
    for (const o of observers) o.client.disconnect();
  }));
