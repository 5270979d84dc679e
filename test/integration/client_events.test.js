'use strict';
// Client events (client-*): relay rules, errors, rate limit, pusher-js channel.trigger.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const NOCLIENT = { id: 'noclient-id', key: 'noclient-key', secret: 'noclient-secret', enable_client_messages: false };

let server;
before(async () => {
  server = await h.startServer({ app: { max_client_events_per_second: 5 }, extraApps: [NOCLIENT] });
});
after(async () => { if (server) await server.stop(); });

async function group(channel, n, opts = {}) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const c = await h.connectRaw(server, opts);
    await c.subscribeOk(channel, channel.startsWith('presence-') ? { userId: `user-${i}`, userInfo: { i } } : {});
    out.push(c);
  }
  return out;
}

const errorEv = (m) => m.event === 'pusher:error';
errorEv.description = 'pusher:error';

test('private channel: relayed to every other subscriber, never the sender; object data stays an object', async () => {
  const ch = h.uniq('private-relay');
  const [sender, r1, r2] = await group(ch, 3);
  const data = { text: 'hi', nested: { a: [1, 2, { b: null }] }, ok: true };
  sender.send({ event: 'client-typing', channel: ch, data });
  for (const r of [r1, r2]) {
    const m = await r.waitFor('client-typing');
    assert.deepEqual(m, { event: 'client-typing', channel: ch, data });
  }
  await sender.expectSilence(300);
  [sender, r1, r2].forEach((c) => c.close());
});

test('string data is relayed unchanged', async () => {
  const ch = h.uniq('private-strdata');
  const [sender, r] = await group(ch, 2);
  const data = '{"already":"a string", "spaces" : 1}';
  sender.send({ event: 'client-str', channel: ch, data });
  assert.deepEqual(await r.waitFor('client-str'), { event: 'client-str', channel: ch, data });
  sender.close();
  r.close();
});

test('private channel relay has no user_id, even if the client sends one', async () => {
  const ch = h.uniq('private-nouid');
  const [sender, r] = await group(ch, 2);
  sender.send({ event: 'client-sneaky', channel: ch, data: { x: 1 }, user_id: 'root' });
  const m = await r.waitFor('client-sneaky');
  assert.deepEqual(m, { event: 'client-sneaky', channel: ch, data: { x: 1 } });
  sender.close();
  r.close();
});

test('presence channel relay adds the sender\'s user_id (from the subscription, not the client)', async () => {
  const ch = h.uniq('presence-relay');
  const [sender, r] = await group(ch, 2);
  sender.send({ event: 'client-wave', channel: ch, data: { hand: 'left' }, user_id: 'forged' });
  const m = await r.waitFor('client-wave');
  assert.deepEqual(m, { event: 'client-wave', channel: ch, data: { hand: 'left' }, user_id: 'user-0' });
  await sender.expectNone('client-wave', 200);
  sender.close();
  r.close();
});

test('client event reaches only that channel\'s subscribers', async () => {
  const ch = h.uniq('private-scope');
  const otherCh = h.uniq('private-scope-other');
  const [sender, r] = await group(ch, 2);
  const [outsider] = await group(otherCh, 1);
  sender.send({ event: 'client-scoped', channel: ch, data: {} });
  await r.waitFor('client-scoped');
  await outsider.expectNone('client-scoped', 300);
  [sender, r, outsider].forEach((c) => c.close());
});

test('app without client messages: pusher:error code null with the dashboard message, not relayed', async () => {
  const ch = h.uniq('private-disabled');
  const [sender, r] = await group(ch, 2, { key: NOCLIENT.key });
  sender.send({ event: 'client-nope', channel: ch, data: {} });
  const err = await sender.waitFor(errorEv);
  assert.deepEqual(err, {
    event: 'pusher:error',
    data: { code: null, message: 'To send client events, you must enable this feature in the Settings page of your dashboard.' },
  });
  await r.expectNone('client-nope', 300);
  await sender.roundTrip();
  sender.close();
  r.close();
});

test('public channel: pusher:error "Client event rejected - only supported on private and presence channels"', async () => {
  const ch = h.uniq('public-client');
  const [sender, r] = await group(ch, 2);
  sender.send({ event: 'client-public', channel: ch, data: {} });
  const err = await sender.waitFor(errorEv);
  assert.deepEqual(err, {
    event: 'pusher:error',
    data: { code: null, message: 'Client event rejected - only supported on private and presence channels' },
  });
  await r.expectNone('client-public', 300);
  await sender.roundTrip();
  sender.close();
  r.close();
});

test('sender not subscribed: pusher:error code null mentioning the subscription, not relayed', async () => {
  const ch = h.uniq('private-notsub');
  const [r] = await group(ch, 1);
  const sender = await h.connectRaw(server);
  sender.send({ event: 'client-ghost', channel: ch, data: {} });
  const err = await sender.waitFor(errorEv);
  assert.equal(err.data.code, null);
  assert.match(err.data.message, /not subscribed|subscri/i);
  await r.expectNone('client-ghost', 300);
  await sender.roundTrip();
  sender.close();
  r.close();
});

test('after unsubscribing, the sender can no longer send client events there', async () => {
  const ch = h.uniq('private-unsubbed');
  const [sender, r] = await group(ch, 2);
  sender.unsubscribe(ch);
  sender.send({ event: 'client-late', channel: ch, data: {} });
  const err = await sender.waitFor(errorEv);
  assert.equal(err.data.code, null);
  await r.expectNone('client-late', 300);
  sender.close();
  r.close();
});

test('non client- event names on a channel are not relayed', async () => {
  const ch = h.uniq('private-nonclient');
  const [sender, r] = await group(ch, 2);
  sender.send({ event: 'server-ish', channel: ch, data: {} });
  sender.send({ event: 'pusher_internal:member_added', channel: ch, data: '{"user_id":"fake"}' });
  await r.expectSilence(300);
  await sender.roundTrip();
  sender.close();
  r.close();
});

test('over max_client_events_per_second: pusher:error 4301, socket stays open, next window works', async () => {
  const ch = h.uniq('private-rate');
  const [sender, r] = await group(ch, 2);
  for (let i = 0; i < 8; i++) sender.send({ event: 'client-burst', channel: ch, data: { i } });
  const err = await sender.waitFor(errorEv);
  assert.equal(err.data.code, 4301);
  assert.equal(typeof err.data.message, 'string');
  // the first 5 went through
  for (let i = 0; i < 5; i++) assert.deepEqual((await r.waitFor('client-burst')).data, { i });
  await r.expectNone('client-burst', 200);
  assert.equal(sender.closeInfo, null);
  await sender.roundTrip();
  await h.sleep(1100);
  sender.send({ event: 'client-after', channel: ch, data: { ok: true } });
  assert.deepEqual((await r.waitFor('client-after')).data, { ok: true });
  sender.close();
  r.close();
});

test('client events are rate limited per connection, not per channel or app', async () => {
  const ch = h.uniq('private-rate2');
  const [a, b, r] = await group(ch, 3);
  for (let i = 0; i < 5; i++) a.send({ event: 'client-a', channel: ch, data: { i } });
  for (let i = 0; i < 5; i++) b.send({ event: 'client-b', channel: ch, data: { i } });
  for (let i = 0; i < 5; i++) await r.waitFor('client-a');
  for (let i = 0; i < 5; i++) await r.waitFor('client-b');
  await a.expectNone(errorEv, 200);
  await b.expectNone(errorEv, 0);
  [a, b, r].forEach((c) => c.close());
});

test('pusher-js: channel.trigger on a private channel reaches another pusher-js client', async () => {
  const ch = h.uniq('private-js-client');
  const p1 = h.makePusherClient(server);
  const p2 = h.makePusherClient(server);
  await Promise.all([h.pusherConnected(p1), h.pusherConnected(p2)]);
  const c1 = await h.pusherSubscribe(p1, ch);
  const c2 = await h.pusherSubscribe(p2, ch);
  let echoed = false;
  c1.bind('client-ping', () => { echoed = true; });
  const got = h.once(c2, 'client-ping');
  assert.equal(c1.trigger('client-ping', { from: 'p1' }), true);
  const { data, metadata } = await got;
  assert.deepEqual(data, { from: 'p1' });
  assert.equal(metadata.user_id, undefined);
  await h.sleep(200);
  assert.equal(echoed, false, 'sender must not get its own client event');
  p1.disconnect();
  p2.disconnect();
});

test('pusher-js: presence client event metadata carries the sender user_id', async () => {
  const ch = h.uniq('presence-js-client');
  const p1 = h.makePusherClient(server, { presence: { user_id: 'sender-1', user_info: {} } });
  const p2 = h.makePusherClient(server, { presence: { user_id: 'receiver-2', user_info: {} } });
  await Promise.all([h.pusherConnected(p1), h.pusherConnected(p2)]);
  const c1 = await h.pusherSubscribe(p1, ch);
  const c2 = await h.pusherSubscribe(p2, ch);
  const got = h.once(c2, 'client-hello');
  c1.trigger('client-hello', { msg: 'yo' });
  const { data, metadata } = await got;
  assert.deepEqual(data, { msg: 'yo' });
  assert.equal(metadata.user_id, 'sender-1');
  p1.disconnect();
  p2.disconnect();
});
