'use strict';
// Graceful shutdown of one node (docs/CLUSTER.md §7.5, §9.9): on SIGTERM, B
// leaves the cluster before closing its clients, so an observer on A sees
// B's members removed at once, even one whose client never reads again (its
// socket only goes at limits.close_timeout_ms); B's clients reconnect to A
// and rejoin within webhooks.vacate_delay_ms, which cancels every held
// webhook: no member_removed and no second member_added is sent. B exits
// with status 0.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const h = require('../integration/lib/harness');
const cl = require('./lib/cluster');

const HOLD_MS = h.T(1500); // webhooks.vacate_delay_ms: the clients must be back well within it, even under load
const MEMBERS = 5;

let cluster;
let hooks;
before(async () => {
  cluster = await cl.startCluster({
    nodes: 2,
    webhookEvents: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'],
    env: { HERALD_WEBHOOKS_VACATE_DELAY_MS: String(HOLD_MS) },
  });
  hooks = cluster.hooks;
});
after(async () => {
  if (hooks) hooks.assertClean();
  if (cluster) await cluster.stop();
});

/**
 * A presence member on a raw TCP WebSocket that stops reading once
 * subscribed: it never answers herald's close frame, so herald can only drop
 * it at limits.close_timeout_ms. Resolves with the socket.
 */
function stalledMember(node, channel, userId) {
  return new Promise((resolve, reject) => {
    const s = net.connect(node.port, '127.0.0.1', () => s.write(`GET /app/${h.APP.key}?protocol=7 HTTP/1.1\r\nHost: a\r\n` +
      'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'));
    let text = '';
    let sent = false;
    s.on('error', () => {});
    s.on('data', (chunk) => {
      text += chunk.toString('latin1');
      const id = /socket_id\\":\\"(\d+\.\d+)/.exec(text);
      if (!sent && id) {
        sent = true;
        const cd = JSON.stringify({ user_id: userId });
        s.write(h.maskedFrame({ event: 'pusher:subscribe', data: { channel, auth: h.presenceAuth(id[1], channel, cd), channel_data: cd } }));
      }
      if (sent && text.includes('subscription_succeeded')) { s.removeAllListeners('data'); s.pause(); resolve(s); }
    });
    setTimeout(() => reject(new Error(`stalled member: no subscription_succeeded; got ${text.slice(-300)}`)), h.T(5000)).unref();
  });
}

const removedFrame = (ch, u) => (m) => m.event === 'pusher_internal:member_removed' && m.channel === ch && JSON.parse(m.data).user_id === u;

test('SIGTERM of B: its members (a stalled one too) are removed for an observer on A within 1 s; rejoining on A within the hold sends no webhook',
  cl.withLogs(() => cluster, async () => {
    const [A, B] = cluster.nodes;
    const ch = h.uniq('presence-bye');
    const users = Array.from({ length: MEMBERS }, (_, i) => h.uniq(`m${i}`));
    const obs = await cl.presenceClient(A, ch, 'observer');
    const onB = await Promise.all(users.map((u) => cl.presenceClient(B, ch, u)));
    const stalled = await stalledMember(B, ch, 'stalled');
    await hooks.waitCount((e) => e.name === 'member_added' && (users.includes(e.user_id) || e.user_id === 'stalled'), MEMBERS + 1);

    const closedAt = new Map();
    for (const [i, c] of onB.entries()) c.ws.on('close', () => closedAt.set(users[i], Date.now()));
    const t0 = Date.now();
    B.proc.kill('SIGTERM');
    await h.eventually(() => [...users, 'stalled'].every((u) => obs.count(removedFrame(ch, u)) === 1), { timeout: h.T(3000), interval: 10 });
    const removedMs = Date.now() - t0;
    for (const c of onB) assert.equal((await c.waitClose(h.T(5000))).code, 4200, 'B closes its clients with 4200');
    const firstClose = Math.min(...closedAt.values()) - t0;
    console.log(`timing: SIGTERM -> every member_removed at the observer: ${removedMs} ms; first client close: ${firstClose} ms`);
    assert.ok(removedMs <= h.T(1000), `members of B removed ${removedMs} ms after SIGTERM (want <= ${h.T(1000)})`);

    // the clients come back on A within the hold
    const back = await Promise.all(users.map((u) => cl.presenceClient(A, ch, u)));
    const rejoinedMs = Date.now() - t0;
    assert.ok(rejoinedMs < HOLD_MS, `rejoined after ${rejoinedMs} ms, within the ${HOLD_MS} ms hold`);
    const exit = await B.exitPromise;
    assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, 'B exits with status 0');
    await cl.eventuallySame([A], `/channels/${ch}`, { info: 'user_count' }, { occupied: true, user_count: MEMBERS + 1 });
    await cl.eventuallySame([A], `/channels/${ch}/users`, {}, { users: ['observer', ...users].sort().map((id) => ({ id })) },
      { normalize: (j) => ({ users: [...j.users].sort((x, y) => (x.id < y.id ? -1 : 1)) }) });
    await h.sleep(Math.max(0, t0 + HOLD_MS + h.T(1000) - Date.now())); // every hold of the shutdown is due by now
    assert.deepEqual(hooks.find((e) => e.name === 'member_removed' && e.channel === ch && e.user_id !== 'stalled'), [],
      'no member_removed webhook for the members that came back');
    assert.equal(hooks.find({ name: 'member_removed', channel: ch, user_id: 'stalled' }).length, 1,
      'one member_removed webhook for the one that did not');
    stalled.destroy();
    for (const u of users) {
      assert.equal(hooks.find({ name: 'member_added', channel: ch, user_id: u }).length, 1, `one member_added webhook for ${u}`);
    }
    assert.equal(hooks.find({ name: 'channel_vacated', channel: ch }).length, 0, 'no channel_vacated');
    back.forEach((c) => c.close());
    obs.close();
  }));
