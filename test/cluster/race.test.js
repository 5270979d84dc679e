'use strict';
// Crossings decided once for the whole cluster (docs/CLUSTER.md §9.3, §9.8):
// one user joining a presence channel on two nodes at the same instant, two
// sockets occupying a channel from two nodes, one user signing in on two
// nodes, twenty connections racing for ten seats of max_connections; each
// crossing gives exactly one client event and one webhook. And a leave
// followed by a rejoin on another node within webhooks.vacate_delay_ms
// gives no webhook at all.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../integration/lib/harness');
const cl = require('./lib/cluster');

const HOLD_MS = 600; // webhooks.vacate_delay_ms
const QUOTA = { id: 'quota-id', key: 'quota-key', secret: 'quota-secret', max_connections: 10 };
const ROUNDS = 100;

let cluster;
let A;
let B;
let C;
let hooks;
before(async () => {
  cluster = await cl.startCluster({
    nodes: 3,
    apps: [h.APP, QUOTA],
    webhookEvents: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'],
    env: { HERALD_WEBHOOKS_VACATE_DELAY_MS: String(HOLD_MS) },
  });
  [A, B, C] = cluster.nodes;
  hooks = cluster.hooks;
});
after(async () => {
  if (hooks) hooks.assertClean();
  if (cluster) await cluster.stop();
});
const ctest = (name, fn) => test(name, cl.withLogs(() => cluster, fn));

const memberFrame = (event, channel, userId) => {
  const p = (m) => m.event === `pusher_internal:${event}` && m.channel === channel && JSON.parse(m.data).user_id === userId;
  p.description = `${event} of ${userId} on ${channel}`;
  return p;
};

/** The subscribe frame of a raw client for channel (presence: as userId). */
function subscribeFrame(c, channel, userId) {
  if (!channel.startsWith('presence-')) return { event: 'pusher:subscribe', data: { channel, auth: '' } };
  const cd = JSON.stringify({ user_id: userId });
  return { event: 'pusher:subscribe', data: { channel, auth: h.presenceAuth(c.socketId, channel, cd), channel_data: cd } };
}

/** Wait until the webhooks have settled: nothing of the hold can still be due. */
const settle = () => h.sleep(HOLD_MS + h.T(1000));

/** Per channel, how many webhook events match. */
function perChannel(events, channels) {
  const n = new Map(channels.map((c) => [c, 0]));
  for (const e of events) if (n.has(e.channel)) n.set(e.channel, n.get(e.channel) + 1);
  return [...n.entries()].filter(([, k]) => k !== 1);
}

ctest(`presence race, ${ROUNDS} rounds: a user joining on A and B at once is added once; leaving on both at once is removed once`, async () => {
  const U = h.uniq('racer');
  const tag = h.uniq('r');
  const channels = Array.from({ length: ROUNDS }, (_, i) => `presence-${tag}-${i}`);
  const [sa, sb, obs] = await Promise.all([h.connectRaw(A), h.connectRaw(B), h.connectRaw(C)]);
  for (const ch of channels) obs.send(subscribeFrame(obs, ch, 'obs'));
  for (const ch of channels) await obs.waitFor(h.ev('pusher_internal:subscription_succeeded', ch));
  const t0 = Date.now();
  for (const ch of channels) {
    // same tick: both frames leave before either node can answer
    sa.send(subscribeFrame(sa, ch, U));
    sb.send(subscribeFrame(sb, ch, U));
    await Promise.all([sa, sb].map((c) => c.waitFor(h.ev('pusher_internal:subscription_succeeded', ch))));
    await obs.waitFor(memberFrame('member_added', ch, U));
    sa.unsubscribe(ch);
    sb.unsubscribe(ch);
    await obs.waitFor(memberFrame('member_removed', ch, U));
  }
  const elapsed = Date.now() - t0;
  // both leaves of the last round have run once its subscription count is
  // the observer alone; a marker through A then follows every earlier frame
  const last = channels[ROUNDS - 1];
  await h.eventually(async () => {
    const r = await cl.apiGet(B, `/channels/${last}`, { info: 'subscription_count' });
    return r.json && r.json.subscription_count === 1;
  });
  await cl.marker(A, last, [obs]);
  for (const ch of channels) {
    assert.equal(obs.count(memberFrame('member_added', ch, U)), 1, `${ch}: member_added frames`);
    assert.equal(obs.count(memberFrame('member_removed', ch, U)), 1, `${ch}: member_removed frames`);
  }
  const mine = (name) => (e) => e.name === name && e.user_id === U;
  await hooks.waitCount(mine('member_added'), ROUNDS, h.T(5000));
  await hooks.waitCount(mine('member_removed'), ROUNDS, HOLD_MS + h.T(5000));
  await settle();
  assert.deepEqual(perChannel(hooks.find(mine('member_added')), channels), [], 'one member_added webhook per round');
  assert.deepEqual(perChannel(hooks.find(mine('member_removed')), channels), [], 'one member_removed webhook per round');
  console.log(`timing: presence race: ${ROUNDS} rounds in ${elapsed} ms`);
  [sa, sb, obs].forEach((c) => c.close());
});

ctest(`occupancy race, ${ROUNDS} rounds: two sockets on A and B occupy a channel at once: one channel_occupied, one channel_vacated`, async () => {
  const tag = h.uniq('occ');
  const channels = Array.from({ length: ROUNDS }, (_, i) => `${tag}-${i}`);
  const [sa, sb] = await Promise.all([h.connectRaw(A), h.connectRaw(B)]);
  for (const ch of channels) {
    sa.send(subscribeFrame(sa, ch));
    sb.send(subscribeFrame(sb, ch));
    await Promise.all([sa, sb].map((c) => c.waitFor(h.ev('pusher_internal:subscription_succeeded', ch))));
    sa.unsubscribe(ch);
    sb.unsubscribe(ch);
  }
  const inTag = (name) => (e) => e.name === name && e.channel.startsWith(`${tag}-`);
  await hooks.waitCount(inTag('channel_occupied'), ROUNDS, h.T(5000));
  await hooks.waitCount(inTag('channel_vacated'), ROUNDS, HOLD_MS + h.T(5000));
  await settle();
  assert.deepEqual(perChannel(hooks.find(inTag('channel_occupied')), channels), [], 'one channel_occupied per channel');
  assert.deepEqual(perChannel(hooks.find(inTag('channel_vacated')), channels), [], 'one channel_vacated per channel');
  await cl.eventuallySame([A, B, C], '/channels', { filter_by_prefix: tag }, { channels: {} });
  [sa, sb].forEach((c) => c.close());
});

const WATCH = 'pusher_internal:watchlist_events';
ctest('watchlist race, 20 rounds: a user signing in on A and B at once is online once; leaving both at once is offline once', async () => {
  const ids = Array.from({ length: 20 }, () => h.uniq('wl'));
  const watcher = await h.connectRaw(C);
  await watcher.signin({ id: h.uniq('watcher'), watchlist: ids });
  await h.sleep(h.T(200)); // the initial state (nobody online) is not counted
  const base = watcher.all().length;
  for (const id of ids) {
    const [a, b] = await Promise.all([h.connectRaw(A), h.connectRaw(B)]);
    await Promise.all([a.signin({ id }), b.signin({ id })]);
    a.close();
    b.close();
    await Promise.all([a.waitClose(), b.waitClose()]);
  }
  const seen = () => { // per user, the watchlist events in arrival order
    const seq = new Map(ids.map((id) => [id, []]));
    for (const m of watcher.all().slice(base).filter((x) => x.event === WATCH)) {
      for (const e of JSON.parse(m.data).events) for (const id of e.user_ids) if (seq.has(id)) seq.get(id).push(e.name);
    }
    return seq;
  };
  await h.eventually(() => [...seen().values()].every((q) => q.includes('offline')), { timeout: h.T(5000) });
  await h.sleep(h.T(300)); // a duplicate would come right behind
  const wrong = [...seen().entries()].filter(([, q]) => q.join() !== 'online,offline').map(([id, q]) => `${id}: ${q.join(', ')}`);
  assert.deepEqual(wrong, [], 'each user: online once, then offline once');
  watcher.close();
});

ctest('max_connections = 10, 20 simultaneous connections over A and B: exactly 10 are established', async () => {
  const tries = Array.from({ length: 20 }, (_, i) => h.connectRaw(i % 2 ? B : A, { key: QUOTA.key, established: false }));
  const clients = await Promise.all(tries);
  const first = await Promise.all(clients.map((c) => c.next({ timeout: h.T(5000) })));
  const ok = first.filter((m) => m.event === 'pusher:connection_established').length;
  const refused = first.filter((m) => m.event === 'pusher:error' && m.data && m.data.code === 4004).length;
  assert.equal(ok, 10, `established: ${first.map((m) => m.event).join(', ')}`);
  assert.equal(refused, 10, 'the others are refused with 4004');
  clients.forEach((c) => c.close());
  // the seats come back: after every close, ten can connect again
  await h.eventually(async () => {
    const again = await Promise.all(Array.from({ length: 10 }, (_, i) => h.connectRaw(i % 2 ? B : A, { key: QUOTA.key, established: false })));
    const got = await Promise.all(again.map((c) => c.next({ timeout: h.T(3000) })));
    again.forEach((c) => c.close());
    await Promise.all(again.map((c) => c.waitClose().catch(() => {})));
    return got.every((m) => m.event === 'pusher:connection_established');
  }, { timeout: h.T(8000), interval: 200 });
});

ctest(`leave on A and rejoin on B within ${HOLD_MS} ms: no channel_vacated, no second channel_occupied; then exactly one channel_vacated after the hold`, async () => {
  const ch = h.uniq('hold');
  const a = await cl.subscribedClient(A, ch);
  await hooks.waitCount({ name: 'channel_occupied', channel: ch }, 1);
  a.close();
  await a.waitClose();
  const b = await cl.subscribedClient(B, ch);
  await settle();
  assert.equal(hooks.find({ name: 'channel_vacated', channel: ch }).length, 0, 'the rejoin on B cancelled the vacate');
  assert.equal(hooks.find({ name: 'channel_occupied', channel: ch }).length, 1, 'the channel never looked vacated: no second occupied');
  b.close();
  const left = Date.now();
  const [vacated] = await hooks.waitCount({ name: 'channel_vacated', channel: ch }, 1, HOLD_MS + h.T(5000));
  assert.ok(vacated.at - left >= HOLD_MS - 50, `channel_vacated ${vacated.at - left} ms after the leave, hold ${HOLD_MS}`);
  await settle();
  assert.equal(hooks.find({ name: 'channel_vacated', channel: ch }).length, 1, 'one channel_vacated');
});

ctest(`presence: leave on A and rejoin on B within ${HOLD_MS} ms: no member_removed, no second member_added; then exactly one member_removed`, async () => {
  const ch = h.uniq('presence-hold');
  const U = h.uniq('u');
  const a = await cl.presenceClient(A, ch, U);
  await hooks.waitCount({ name: 'member_added', channel: ch, user_id: U }, 1);
  a.close();
  await a.waitClose();
  const b = await cl.presenceClient(B, ch, U);
  await settle();
  assert.equal(hooks.find({ name: 'member_removed', channel: ch }).length, 0, 'the rejoin on B cancelled the member_removed');
  assert.equal(hooks.find({ name: 'member_added', channel: ch }).length, 1, 'one member_added');
  assert.equal(hooks.find({ name: 'channel_vacated', channel: ch }).length, 0);
  b.close();
  const left = Date.now();
  const [removed] = await hooks.waitCount({ name: 'member_removed', channel: ch, user_id: U }, 1, HOLD_MS + h.T(5000));
  assert.ok(removed.at - left >= HOLD_MS - 50, `member_removed ${removed.at - left} ms after the leave, hold ${HOLD_MS}`);
  await hooks.waitCount({ name: 'channel_vacated', channel: ch }, 1, h.T(3000));
  await settle();
  assert.equal(hooks.find({ name: 'member_removed', channel: ch }).length, 1, 'one member_removed');
  assert.equal(hooks.find({ name: 'channel_vacated', channel: ch }).length, 1, 'one channel_vacated');
});
