'use strict';
// A node killed with SIGKILL (docs/CLUSTER.md §9.4): the two surviving nodes
// race to reap it; within adapter.redis.node_timeout_ms every observer gets
// member_removed for each of its presence members, the HTTP API on every
// survivor stops listing its channels, and each member_removed and
// channel_vacated webhook is sent exactly once. Prints the time from the
// kill to the last member_removed.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../integration/lib/harness');
const cl = require('./lib/cluster');

const NODE_TIMEOUT_MS = 3000;
const HOLD_MS = 500;
const MEMBERS = 20;
const PLAIN = 10;

let cluster;
let hooks;
before(async () => {
  cluster = await cl.startCluster({
    nodes: 3,
    webhookEvents: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'],
    env: {
      HERALD_ADAPTER_REDIS_NODE_TIMEOUT_MS: String(NODE_TIMEOUT_MS),
      HERALD_WEBHOOKS_VACATE_DELAY_MS: String(HOLD_MS),
    },
  });
  hooks = cluster.hooks;
});
after(async () => {
  if (hooks) hooks.assertClean();
  if (cluster) await cluster.stop();
});

test(`kill -9 of B with ${MEMBERS} presence members and ${PLAIN} plain channels: reaped within node_timeout_ms, each event once`,
  cl.withLogs(() => cluster, async () => {
    const [A, B, C] = cluster.nodes;
    const tag = h.uniq('k');
    const pres = `presence-${tag}`;
    const plain = Array.from({ length: PLAIN }, (_, i) => `${tag}-plain-${i}`);
    const users = Array.from({ length: MEMBERS }, (_, i) => `${tag}-u${i}`);
    const obsA = await cl.presenceClient(A, pres, 'obs-a');
    const obsC = await cl.presenceClient(C, pres, 'obs-c');
    const onB = await Promise.all(users.map((u) => cl.presenceClient(B, pres, u, { i: u })));
    for (const [i, ch] of plain.entries()) await onB[i].subscribeOk(ch);
    for (const obs of [obsA, obsC]) {
      await h.eventually(() => users.every((u) => obs.count((m) => m.event === 'pusher_internal:member_added' && JSON.parse(m.data).user_id === u) === 1));
    }
    const all = { [pres]: {}, ...Object.fromEntries(plain.map((c) => [c, {}])) };
    await cl.eventuallySame([A, B, C], '/channels', {}, { channels: all }, { timeout: h.T(5000) });
    await hooks.waitCount((e) => e.name === 'channel_occupied' && (e.channel === pres || plain.includes(e.channel)), PLAIN + 1);

    const t0 = Date.now();
    await cluster.kill(B);
    const removedAt = {};
    const removedFrom = (obs) => users.filter((u) => obs.count((m) => m.event === 'pusher_internal:member_removed' &&
      JSON.parse(m.data).user_id === u) > 0);
    const limit = NODE_TIMEOUT_MS + h.T(1500);
    await Promise.all([['A', obsA], ['C', obsC]].map(async ([name, obs]) => {
      await h.eventually(() => removedFrom(obs).length === MEMBERS, { timeout: limit, interval: 20 });
      removedAt[name] = Date.now() - t0;
    }));
    let channelsGone = 0;
    await h.eventually(async () => {
      await cl.eventuallySame([A, C], '/channels', {}, { channels: { [pres]: {} } }, { timeout: 0 });
      channelsGone = Date.now() - t0;
      return true;
    }, { timeout: limit, interval: 20 });
    const lastRemoved = Math.max(removedAt.A, removedAt.C);
    console.log(`timing: kill -9 -> last member_removed: ${lastRemoved} ms (A ${removedAt.A} ms, C ${removedAt.C} ms); ` +
      `-> GET /channels without B's channels: ${channelsGone} ms; node_timeout_ms ${NODE_TIMEOUT_MS}`);
    assert.ok(lastRemoved <= NODE_TIMEOUT_MS + h.T(1000), `member_removed ${lastRemoved} ms after the kill`);
    assert.ok(channelsGone <= NODE_TIMEOUT_MS + h.T(1000), `B's channels listed until ${channelsGone} ms after the kill`);
    await cl.eventuallySame([A, C], `/channels/${pres}/users`, {}, { users: [{ id: 'obs-a' }, { id: 'obs-c' }] },
      { normalize: (j) => ({ users: [...j.users].sort((x, y) => (x.id < y.id ? -1 : 1)) }) });
    await cl.eventuallySame([A, C], `/channels/${pres}`, { info: 'user_count,subscription_count' },
      { occupied: true, user_count: 2, subscription_count: 2 });

    // webhooks: one member_removed per user, one channel_vacated per plain channel, none for the presence channel
    await hooks.waitCount((e) => e.name === 'member_removed' && users.includes(e.user_id), MEMBERS, HOLD_MS + h.T(5000));
    await hooks.waitCount((e) => e.name === 'channel_vacated' && plain.includes(e.channel), PLAIN, HOLD_MS + h.T(5000));
    await h.sleep(HOLD_MS + h.T(1000)); // anything a second reaper would add is due by now
    for (const u of users) {
      assert.equal(hooks.find({ name: 'member_removed', channel: pres, user_id: u }).length, 1, `member_removed webhooks of ${u}`);
    }
    for (const ch of plain) assert.equal(hooks.find({ name: 'channel_vacated', channel: ch }).length, 1, `channel_vacated webhooks of ${ch}`);
    assert.equal(hooks.find({ name: 'channel_vacated', channel: pres }).length, 0, 'the observers keep the presence channel');
    // the client frames too: each observer saw each removal once
    for (const obs of [obsA, obsC]) {
      await cl.marker(obs === obsA ? C : A, pres, [obs]);
      for (const u of users) {
        assert.equal(obs.count((m) => m.event === 'pusher_internal:member_removed' && JSON.parse(m.data).user_id === u), 1,
          `member_removed frames of ${u} at ${obs.server.name}`);
      }
    }
  }));

test('SIGSTOP of a node past node_timeout_ms: reaped; after SIGCONT it comes back under a new incarnation and every node agrees again',
  cl.withLogs(() => cluster, async () => {
    const [A, , C] = cluster.nodes;
    const D = await cluster.addNode();
    const tag = h.uniq('p');
    const pres = `presence-${tag}`;
    const plainCh = `${tag}-plain`;
    const users = Array.from({ length: 5 }, (_, i) => `${tag}-d${i}`);
    const obs = await cl.presenceClient(A, pres, 'obs');
    const onD = await Promise.all(users.map((u) => cl.presenceClient(D, pres, u)));
    await onD[0].subscribeOk(plainCh);
    const prefix = onD[0].socketId.split('.')[0];
    const count = (event, u) => obs.count((m) => m.event === `pusher_internal:${event}` && JSON.parse(m.data).user_id === u);
    await h.eventually(() => users.every((u) => count('member_added', u) === 1));
    const lostBefore = await cl.metric(D, 'herald_adapter_resyncs_total', { reason: 'lease_lost' }, { absentIsZero: true });

    const t0 = Date.now();
    D.proc.kill('SIGSTOP');
    try {
      await h.eventually(() => users.every((u) => count('member_removed', u) === 1), { timeout: NODE_TIMEOUT_MS + h.T(1500), interval: 20 });
      await cl.eventuallySame([A, C], '/channels', { filter_by_prefix: tag }, { channels: {} }, { timeout: h.T(2000) });
      console.log(`timing: SIGSTOP -> the stopped node's members removed: ${Date.now() - t0} ms`);
    } finally {
      D.proc.kill('SIGCONT');
    }
    const t1 = Date.now();
    // back: its clients never noticed, and the cluster sees them again
    await cl.waitReady(D, h.T(5000));
    await h.eventually(() => users.every((u) => count('member_added', u) === 2), { timeout: h.T(3000), interval: 20 });
    const truth = { users: ['obs', ...users].sort().map((id) => ({ id })) };
    const nodes = [A, C, D];
    await cl.eventuallySame(nodes, `/channels/${pres}/users`, {}, truth,
      { timeout: h.T(3000), normalize: (j) => ({ users: [...j.users].sort((x, y) => (x.id < y.id ? -1 : 1)) }) });
    await cl.eventuallySame(nodes, `/channels/${pres}`, { info: 'user_count,subscription_count' },
      { occupied: true, user_count: 6, subscription_count: 6 }, { timeout: h.T(3000) });
    await cl.eventuallySame(nodes, '/channels', { filter_by_prefix: tag }, { channels: { [plainCh]: {} } }, { timeout: h.T(3000) });
    console.log(`timing: SIGCONT -> every node agrees on the truth: ${Date.now() - t1} ms`);
    for (const c of onD) await c.roundTrip(); // still connected
    const again = await h.connectRaw(D);
    assert.equal(again.socketId.split('.')[0], prefix, 'the node keeps its socket-id prefix');
    again.close();
    assert.equal((await cl.metric(D, 'herald_adapter_resyncs_total', { reason: 'lease_lost' })) - lostBefore, 1,
      'one resync after the lease was lost');
    // webhooks of each user alternate, whatever the hold made of the flap: added first, added last
    await h.sleep(HOLD_MS + h.T(1000));
    for (const u of users) {
      const seq = hooks.find((e) => e.channel === pres && e.user_id === u).map((e) => e.name);
      assert.ok(seq.length % 2 === 1 && seq.every((n, i) => n === (i % 2 ? 'member_removed' : 'member_added')),
        `member webhooks of ${u} alternate, starting and ending with member_added: ${seq.join(', ')}`);
    }
    onD.forEach((c) => c.close());
    obs.close();
  }));
