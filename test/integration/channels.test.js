'use strict';
// Subscribing and unsubscribing: public, private, private-encrypted; channel
// names; event delivery; subscription_count; app isolation.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const COUNT_APP = { id: 'count-id', key: 'count-key', secret: 'count-secret', enable_subscription_count: true };
const OTHER_APP = { id: 'other-id', key: 'other-key', secret: 'other-secret' };

let server;
let sdk;
before(async () => {
  server = await h.startServer({ extraApps: [COUNT_APP, OTHER_APP] });
  sdk = h.makeSdk(server);
});
after(async () => { if (server) await server.stop(); });

const subError = (channel) => {
  const p = (m) => m.event === 'pusher:subscription_error' && m.channel === channel;
  p.description = `pusher:subscription_error on ${channel}`;
  return p;
};

function assertAuthError(m, channel) {
  assert.equal(m.event, 'pusher:subscription_error');
  assert.equal(m.channel, channel);
  assert.equal(typeof m.data, 'object');
  assert.equal(m.data.type, 'AuthError');
  assert.equal(m.data.status, 401);
  assert.equal(typeof m.data.error, 'string');
  assert.ok(m.data.error.length > 0);
}

function assertInvalidChannel(m, channel) {
  assert.equal(m.event, 'pusher:subscription_error');
  assert.equal(m.channel, channel);
  assert.equal(m.data.type, 'InvalidChannel');
  assert.equal(m.data.status, 400);
  assert.equal(typeof m.data.error, 'string');
}

test('public channel with auth "": exact subscription_succeeded frame', async () => {
  const c = await h.connectRaw(server);
  const ch = h.uniq('public');
  c.subscribe(ch, { auth: '' });
  const m = await c.waitFor('pusher_internal:subscription_succeeded');
  assert.deepEqual(m, { event: 'pusher_internal:subscription_succeeded', channel: ch, data: '{}' });
  c.close();
});

test('public channel without an auth field subscribes', async () => {
  const c = await h.connectRaw(server);
  const ch = h.uniq('public-noauth');
  c.send({ event: 'pusher:subscribe', data: { channel: ch } });
  const m = await c.waitFor('pusher_internal:subscription_succeeded');
  assert.deepEqual(m, { event: 'pusher_internal:subscription_succeeded', channel: ch, data: '{}' });
  c.close();
});

test('private channel with a valid signature subscribes', async () => {
  const c = await h.connectRaw(server);
  const ch = h.uniq('private-ok');
  c.subscribe(ch, { auth: h.privateAuth(c.socketId, ch) });
  const m = await c.waitFor('pusher_internal:subscription_succeeded');
  assert.deepEqual(m, { event: 'pusher_internal:subscription_succeeded', channel: ch, data: '{}' });
  c.close();
});

test('private channel without auth: subscription_error AuthError 401, socket stays open', async () => {
  const c = await h.connectRaw(server);
  const ch = h.uniq('private-noauth');
  c.send({ event: 'pusher:subscribe', data: { channel: ch } });
  assertAuthError(await c.waitFor(subError(ch)), ch);
  await c.roundTrip();
  assert.equal(c.count('pusher_internal:subscription_succeeded'), 0);
  c.close();
});

test('private channel with empty auth: AuthError 401', async () => {
  const c = await h.connectRaw(server);
  const ch = h.uniq('private-empty');
  c.subscribe(ch, { auth: '' });
  assertAuthError(await c.waitFor(subError(ch)), ch);
  await c.roundTrip();
  c.close();
});

test('private channel signed with the right secret but the wrong key prefix: AuthError 401', async () => {
  const c = await h.connectRaw(server);
  const ch = h.uniq('private-wrongkey');
  const good = h.privateAuth(c.socketId, ch);
  c.subscribe(ch, { auth: `not-the-key:${good.split(':')[1]}` });
  assertAuthError(await c.waitFor(subError(ch)), ch);
  await c.roundTrip();
  c.close();
});

test('private channel with a signature for another socket_id: AuthError 401', async () => {
  const c = await h.connectRaw(server);
  const ch = h.uniq('private-wrongsig');
  c.subscribe(ch, { auth: h.privateAuth('1234.5678', ch) });
  assertAuthError(await c.waitFor(subError(ch)), ch);
  c.subscribe(ch, { auth: h.privateAuth(c.socketId, `${ch}-other`) });
  assertAuthError(await c.waitFor(subError(ch)), ch);
  c.subscribe(ch, { auth: h.privateAuth(c.socketId, ch, { key: h.APP.key, secret: 'wrong-secret' }) });
  assertAuthError(await c.waitFor(subError(ch)), ch);
  // and a correct one still works afterwards
  await c.subscribeOk(ch);
  c.close();
});

test('private-encrypted channel: valid signature subscribes, bad signature is AuthError', async () => {
  const c = await h.connectRaw(server);
  const ch = h.uniq('private-encrypted-x');
  c.subscribe(ch, { auth: h.privateAuth(c.socketId, ch, { key: h.APP.key, secret: 'nope' }) });
  assertAuthError(await c.waitFor(subError(ch)), ch);
  c.subscribe(ch, { auth: h.privateAuth(c.socketId, ch) });
  const m = await c.waitFor('pusher_internal:subscription_succeeded');
  assert.deepEqual(m, { event: 'pusher_internal:subscription_succeeded', channel: ch, data: '{}' });
  c.close();
});

test('subscribing twice: pusher:error "Existing subscription to channel", one delivery per event', async () => {
  const c = await h.connectRaw(server);
  const ch = h.uniq('twice');
  await c.subscribeOk(ch);
  c.subscribe(ch, { auth: '' });
  const err = await c.waitFor('pusher:error');
  assert.deepEqual(err, { event: 'pusher:error', data: { code: null, message: `Existing subscription to channel ${ch}` } });
  await sdk.trigger(ch, 'once-only', { n: 1 });
  await c.waitFor('once-only', { channel: ch });
  await c.expectNone('once-only', 300);
  c.close();
});

test('invalid channel name characters: subscription_error InvalidChannel 400, socket stays open', async () => {
  const c = await h.connectRaw(server);
  for (const ch of ['bad channel', 'bad!chan', 'chän', 'a/b', 'x:y']) {
    c.subscribe(ch, { auth: '' });
    assertInvalidChannel(await c.waitFor(subError(ch)), ch);
  }
  await c.roundTrip();
  c.close();
});

test('channel name of 200 chars is accepted, 201 chars is InvalidChannel', async () => {
  const c = await h.connectRaw(server);
  const base = h.uniq('len');
  const ok = base + 'x'.repeat(200 - base.length);
  const tooLong = `${ok}y`;
  assert.equal(ok.length, 200);
  await c.subscribeOk(ok);
  c.subscribe(tooLong, { auth: '' });
  assertInvalidChannel(await c.waitFor(subError(tooLong)), tooLong);
  await c.roundTrip();
  c.close();
});

test('"#"-prefixed names other than #server-to-user- are InvalidChannel', async () => {
  const c = await h.connectRaw(server);
  for (const ch of ['#private-x', '#server-to-users-1', '#foo']) {
    c.subscribe(ch, { auth: '' });
    assertInvalidChannel(await c.waitFor(subError(ch)), ch);
  }
  await c.roundTrip();
  c.close();
});

test('prefixes are anchored: "xprivate-foo" is a public channel', async () => {
  const c = await h.connectRaw(server);
  const ch = `x${h.uniq('private-foo')}`;
  const m = await c.subscribeOk(ch);
  assert.equal(m.data, '{}');
  c.close();
});

test('HTTP-published event reaches every subscriber with the exact frame and data unchanged', async () => {
  const ch = h.uniq('fanout');
  const clients = await Promise.all([h.connectRaw(server), h.connectRaw(server), h.connectRaw(server)]);
  for (const c of clients) await c.subscribeOk(ch);
  const data = '{"msg":"héllo \\"world\\"","n":[1,2,3]}';
  await sdk.trigger(ch, 'my-event', data);
  for (const c of clients) {
    const m = await c.waitFor('my-event');
    assert.deepEqual(m, { event: 'my-event', channel: ch, data });
  }
  clients.forEach((c) => c.close());
});

test('events are not delivered to sockets not subscribed to the channel', async () => {
  const ch = h.uniq('targeted');
  const other = h.uniq('other');
  const a = await h.connectRaw(server);
  const b = await h.connectRaw(server);
  await a.subscribeOk(ch);
  await b.subscribeOk(other);
  await sdk.trigger(ch, 'for-a', 'x');
  await a.waitFor('for-a');
  await b.expectNone('for-a', 300);
  a.close();
  b.close();
});

test('unsubscribe: no reply, and no more events for that channel', async () => {
  const ch = h.uniq('unsub');
  const a = await h.connectRaw(server);
  const b = await h.connectRaw(server);
  await a.subscribeOk(ch);
  await b.subscribeOk(ch);
  a.unsubscribe(ch);
  await a.roundTrip(); // ordering barrier: the unsubscribe has been processed
  await sdk.trigger(ch, 'after-unsub', 'x');
  await b.waitFor('after-unsub');
  await a.expectSilence(300);
  a.close();
  b.close();
});

test('unsubscribing a channel never subscribed: nothing happens', async () => {
  const c = await h.connectRaw(server);
  c.unsubscribe(h.uniq('never'));
  c.unsubscribe('private-never-subscribed');
  await c.expectSilence(300);
  await c.roundTrip();
  c.close();
});

test('re-subscribing after unsubscribe works', async () => {
  const c = await h.connectRaw(server);
  const ch = h.uniq('resub');
  await c.subscribeOk(ch);
  c.unsubscribe(ch);
  await c.subscribeOk(ch);
  await sdk.trigger(ch, 'again', 'x');
  await c.waitFor('again');
  await c.expectNone('again', 200);
  c.close();
});

test('disconnecting removes the subscription (channel becomes unoccupied)', async () => {
  const ch = h.uniq('vacate');
  const c = await h.connectRaw(server);
  await c.subscribeOk(ch);
  const before1 = await h.sdkJson(sdk.get({ path: `/channels/${ch}` }));
  assert.equal(before1.json.occupied, true);
  c.terminate();
  await h.eventually(async () => {
    const r = await h.sdkJson(sdk.get({ path: `/channels/${ch}` }));
    return r.json.occupied === false;
  });
});

test('apps are isolated: same channel name on another app gets nothing', async () => {
  const ch = h.uniq('iso');
  const mine = await h.connectRaw(server);
  const theirs = await h.connectRaw(server, { key: OTHER_APP.key });
  await mine.subscribeOk(ch);
  await theirs.subscribeOk(ch);
  await sdk.trigger(ch, 'app1-only', 'x');
  await mine.waitFor('app1-only');
  await theirs.expectNone('app1-only', 300);
  const otherSdk = h.makeSdk(server, { app: OTHER_APP });
  await otherSdk.trigger(ch, 'app2-only', 'y');
  await theirs.waitFor('app2-only');
  await mine.expectNone('app2-only', 200);
  mine.close();
  theirs.close();
});

test('private channel auth signed with another app\'s secret is rejected', async () => {
  const c = await h.connectRaw(server);
  const ch = h.uniq('private-xapp');
  c.subscribe(ch, { auth: h.privateAuth(c.socketId, ch, OTHER_APP) });
  assertAuthError(await c.waitFor(subError(ch)), ch);
  c.close();
});

// ---- subscription_count

test('subscription_count: sent to all subscribers on subscribe and unsubscribe', async () => {
  const ch = h.uniq('counted');
  const a = await h.connectRaw(server, { key: COUNT_APP.key });
  const b = await h.connectRaw(server, { key: COUNT_APP.key });
  await a.subscribeOk(ch);
  assert.deepEqual(await a.waitFor('pusher_internal:subscription_count'),
    { event: 'pusher_internal:subscription_count', channel: ch, data: '{"subscription_count":1}' });
  await b.subscribeOk(ch);
  for (const c of [a, b]) {
    const m = await c.waitFor('pusher_internal:subscription_count');
    assert.deepEqual(m, { event: 'pusher_internal:subscription_count', channel: ch, data: '{"subscription_count":2}' });
  }
  b.unsubscribe(ch);
  const m = await a.waitFor('pusher_internal:subscription_count');
  assert.equal(m.channel, ch);
  assert.deepEqual(JSON.parse(m.data), { subscription_count: 1 });
  a.close();
  b.close();
});

test('subscription_count: a disconnect counts as an unsubscribe', async () => {
  const ch = h.uniq('counted-dc');
  const a = await h.connectRaw(server, { key: COUNT_APP.key });
  const b = await h.connectRaw(server, { key: COUNT_APP.key });
  await a.subscribeOk(ch);
  await a.waitFor('pusher_internal:subscription_count');
  await b.subscribeOk(ch);
  await a.waitFor('pusher_internal:subscription_count');
  b.terminate();
  const m = await a.waitFor('pusher_internal:subscription_count');
  assert.deepEqual(JSON.parse(m.data), { subscription_count: 1 });
  a.close();
});

test('subscription_count: not sent on presence channels', async () => {
  const ch = h.uniq('presence-counted');
  const a = await h.connectRaw(server, { key: COUNT_APP.key });
  await a.subscribeOk(ch, { userId: 'u1' });
  const b = await h.connectRaw(server, { key: COUNT_APP.key });
  await b.subscribeOk(ch, { userId: 'u2' });
  await a.waitFor('pusher_internal:member_added');
  await a.expectNone('pusher_internal:subscription_count', 300);
  await b.expectNone('pusher_internal:subscription_count', 0);
  a.close();
  b.close();
});

test('subscription_count: not sent when the app does not enable it', async () => {
  const ch = h.uniq('uncounted');
  const a = await h.connectRaw(server);
  await a.subscribeOk(ch);
  const b = await h.connectRaw(server);
  await b.subscribeOk(ch);
  await a.expectNone('pusher_internal:subscription_count', 300);
  await b.expectNone('pusher_internal:subscription_count', 0);
  a.close();
  b.close();
});

test('pusher-js: subscription_count is re-emitted as pusher:subscription_count', async () => {
  const ch = h.uniq('counted-js');
  const p = h.makePusherClient(server, { app: COUNT_APP });
  await h.pusherConnected(p);
  const channel = p.subscribe(ch);
  const { data } = await h.once(channel, 'pusher:subscription_count');
  assert.deepEqual(data, { subscription_count: 1 });
  const other = await h.connectRaw(server, { key: COUNT_APP.key });
  const second = h.once(channel, 'pusher:subscription_count');
  await other.subscribeOk(ch);
  assert.deepEqual((await second).data, { subscription_count: 2 });
  assert.equal(channel.subscriptionCount, 2);
  other.close();
  p.disconnect();
});

// ---- pusher-js

test('pusher-js: public subscribe + bind receives an SDK-triggered event (object data)', async () => {
  const ch = h.uniq('js-public');
  const p = h.makePusherClient(server);
  await h.pusherConnected(p);
  const channel = await h.pusherSubscribe(p, ch);
  const got = h.once(channel, 'greet');
  await sdk.trigger(ch, 'greet', { hello: 'world', n: 42 });
  assert.deepEqual((await got).data, { hello: 'world', n: 42 });
  p.disconnect();
});

test('pusher-js: private channel authorized by the customHandler', async () => {
  const ch = h.uniq('private-js');
  const p = h.makePusherClient(server);
  await h.pusherConnected(p);
  const channel = await h.pusherSubscribe(p, ch);
  assert.equal(channel.subscribed, true);
  const got = h.once(channel, 'secret-news');
  await sdk.trigger(ch, 'secret-news', { a: 1 });
  assert.deepEqual((await got).data, { a: 1 });
  p.disconnect();
});

test('pusher-js: bad private auth surfaces pusher:subscription_error {type:"AuthError", status:401}', async () => {
  const ch = h.uniq('private-js-bad');
  const p = h.makePusherClient(server, { authSecret: 'not-the-secret' });
  await h.pusherConnected(p);
  const channel = p.subscribe(ch);
  const { data } = await h.once(channel, 'pusher:subscription_error');
  assert.equal(data.type, 'AuthError');
  assert.equal(data.status, 401);
  assert.equal(typeof data.error, 'string');
  assert.equal(p.connection.state, 'connected');
  p.disconnect();
});

test('pusher-js: private-encrypted channel decrypts an SDK-encrypted event end to end', async () => {
  const ch = h.uniq('private-encrypted-js');
  const p = h.makePusherClient(server);
  await h.pusherConnected(p);
  const channel = await h.pusherSubscribe(p, ch);
  const got = h.once(channel, 'sealed');
  await sdk.trigger(ch, 'sealed', { top: 'secret' });
  assert.deepEqual((await got).data, { top: 'secret' });
  p.disconnect();
});

test('pusher-js: unsubscribe stops delivery', async () => {
  const ch = h.uniq('js-unsub');
  const p = h.makePusherClient(server);
  await h.pusherConnected(p);
  const channel = await h.pusherSubscribe(p, ch);
  let count = 0;
  channel.bind('tick', () => { count += 1; });
  p.unsubscribe(ch);
  const watcher = await h.connectRaw(server);
  await watcher.subscribeOk(ch);
  await h.eventually(async () => {
    const r = await h.sdkJson(sdk.get({ path: `/channels/${ch}`, params: { info: 'subscription_count' } }));
    return r.json.subscription_count === 1;
  });
  await sdk.trigger(ch, 'tick', {});
  await watcher.waitFor('tick');
  await h.sleep(200);
  assert.equal(count, 0);
  watcher.close();
  p.disconnect();
});
