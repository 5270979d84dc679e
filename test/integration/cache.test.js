'use strict';
// Cache channels: last event replay, pusher:cache_miss, info=cache.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

let server;
let sdk;
before(async () => {
  server = await h.startServer({});
  sdk = h.makeSdk(server);
});
after(async () => { if (server) await server.stop(); });

/** Subscribe and return the frame that follows subscription_succeeded. */
async function subscribeAndFollowing(c, ch, opts) {
  await c.subscribeOk(ch, opts);
  const all = c.all();
  const idx = all.findIndex((m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === ch);
  const following = await h.eventually(() => c.all()[idx + 1]);
  // consume it
  await c.waitFor((m) => m === following);
  return following;
}

test('cache- channel with nothing cached: pusher:cache_miss right after subscription_succeeded', async () => {
  const ch = h.uniq('cache-empty');
  const c = await h.connectRaw(server);
  const m = await subscribeAndFollowing(c, ch);
  assert.deepEqual(m, { event: 'pusher:cache_miss', channel: ch });
  c.close();
});

test('cache- channel: a new subscriber gets the last HTTP event right after subscription_succeeded', async () => {
  const ch = h.uniq('cache-hit');
  await sdk.trigger(ch, 'price', { v: 1 });
  const c = await h.connectRaw(server);
  const m = await subscribeAndFollowing(c, ch);
  assert.deepEqual(m, { event: 'price', channel: ch, data: '{"v":1}' });
  await c.expectNone('pusher:cache_miss', 200);
  c.close();
});

test('cache- channel: only the most recent event is replayed', async () => {
  const ch = h.uniq('cache-latest');
  await sdk.trigger(ch, 'price', { v: 1 });
  await sdk.trigger(ch, 'price', { v: 2 });
  await sdk.trigger(ch, 'other', 'third');
  const c = await h.connectRaw(server);
  const m = await subscribeAndFollowing(c, ch);
  assert.deepEqual(m, { event: 'other', channel: ch, data: 'third' });
  await c.expectNone((x) => x.channel === ch && x.event !== 'pusher_internal:subscription_succeeded', 200);
  c.close();
});

test('cache- channel: the event published while subscribed is delivered once, then replayed to newcomers', async () => {
  const ch = h.uniq('cache-live');
  const a = await h.connectRaw(server);
  await a.subscribeOk(ch);
  await a.waitFor('pusher:cache_miss');
  await sdk.trigger(ch, 'live', 'now');
  assert.deepEqual(await a.waitFor('live'), { event: 'live', channel: ch, data: 'now' });
  const b = await h.connectRaw(server);
  assert.deepEqual(await subscribeAndFollowing(b, ch), { event: 'live', channel: ch, data: 'now' });
  await a.expectNone('live', 200);
  a.close();
  b.close();
});

test('cache is per channel', async () => {
  const chA = h.uniq('cache-a');
  const chB = h.uniq('cache-b');
  await sdk.trigger(chA, 'only-a', 'a');
  const c = await h.connectRaw(server);
  assert.deepEqual(await subscribeAndFollowing(c, chB), { event: 'pusher:cache_miss', channel: chB });
  assert.deepEqual(await subscribeAndFollowing(c, chA), { event: 'only-a', channel: chA, data: 'a' });
  c.close();
});

test('private-cache- channel replays the cached event after auth', async () => {
  const ch = h.uniq('private-cache-x');
  await sdk.trigger(ch, 'secret-cached', { s: 1 });
  const c = await h.connectRaw(server);
  assert.deepEqual(await subscribeAndFollowing(c, ch), { event: 'secret-cached', channel: ch, data: '{"s":1}' });
  c.close();
});

test('private-cache- with bad auth gets subscription_error and no cached event', async () => {
  const ch = h.uniq('private-cache-bad');
  await sdk.trigger(ch, 'secret-cached', 'x');
  const c = await h.connectRaw(server);
  c.subscribe(ch, { auth: h.privateAuth('9.9', ch) });
  const m = await c.waitFor('pusher:subscription_error');
  assert.equal(m.data.type, 'AuthError');
  await c.expectNone('secret-cached', 300);
  await c.expectNone('pusher:cache_miss', 0);
  c.close();
});

test('presence-cache- channel: cache_miss, then cached event, after the presence snapshot', async () => {
  const ch = h.uniq('presence-cache-x');
  const a = await h.connectRaw(server);
  const first = await subscribeAndFollowing(a, ch, { userId: 'pc-1' });
  assert.deepEqual(first, { event: 'pusher:cache_miss', channel: ch });
  await sdk.trigger(ch, 'roster', { r: 1 });
  await a.waitFor('roster');
  const b = await h.connectRaw(server);
  assert.deepEqual(await subscribeAndFollowing(b, ch, { userId: 'pc-2' }), { event: 'roster', channel: ch, data: '{"r":1}' });
  a.close();
  b.close();
});

test('private-encrypted-cache- channel replays the ciphertext payload verbatim', async () => {
  const ch = h.uniq('private-encrypted-cache-x');
  const payload = JSON.stringify({ nonce: 'bm9uY2U=', ciphertext: 'Y2lwaGVy' });
  await h.apiTrigger(server, { name: 'sealed', channels: [ch], data: payload });
  const c = await h.connectRaw(server);
  assert.deepEqual(await subscribeAndFollowing(c, ch), { event: 'sealed', channel: ch, data: payload });
  c.close();
});

test('non-cache channels never get pusher:cache_miss', async () => {
  const c = await h.connectRaw(server);
  await c.subscribeOk(h.uniq('plain'));
  await c.subscribeOk(h.uniq('private-plain'));
  await c.subscribeOk(h.uniq('xcache-not-a-cache-channel'));
  await c.expectNone('pusher:cache_miss', 300);
  c.close();
});

test('client events are not cached', async () => {
  const ch = h.uniq('private-cache-client');
  const a = await h.connectRaw(server);
  const b = await h.connectRaw(server);
  await a.subscribeOk(ch);
  await b.subscribeOk(ch);
  a.send({ event: 'client-chat', channel: ch, data: { m: 1 } });
  await b.waitFor('client-chat');
  const c = await h.connectRaw(server);
  assert.deepEqual(await subscribeAndFollowing(c, ch), { event: 'pusher:cache_miss', channel: ch });
  [a, b, c].forEach((x) => x.close());
});

test('GET channel info=cache returns {data, ttl} for a cached channel', async () => {
  const ch = h.uniq('cache-info');
  await sdk.trigger(ch, 'stored', 'payload-1');
  const r = await h.sdkJson(sdk.get({ path: `/channels/${ch}`, params: { info: 'cache' } }));
  assert.equal(r.status, 200);
  assert.equal(r.json.occupied, false);
  assert.ok(r.json.cache && typeof r.json.cache === 'object', JSON.stringify(r.json));
  assert.equal(r.json.cache.data, 'payload-1');
  assert.equal(typeof r.json.cache.ttl, 'number');
  assert.ok(r.json.cache.ttl > 0 && r.json.cache.ttl <= 1800, `ttl ${r.json.cache.ttl}`);
});

test('GET channel info=cache returns cache null when nothing is cached', async () => {
  const ch = h.uniq('cache-info-empty');
  const c = await h.connectRaw(server);
  await c.subscribeOk(ch);
  const r = await h.sdkJson(sdk.get({ path: `/channels/${ch}`, params: { info: 'cache' } }));
  assert.equal(r.status, 200);
  assert.equal(r.json.occupied, true);
  assert.ok('cache' in r.json, JSON.stringify(r.json));
  assert.equal(r.json.cache, null);
  c.close();
});

test('pusher-js: cache_miss and cached events are emitted on the channel', async () => {
  const ch = h.uniq('cache-js');
  const p = h.makePusherClient(server);
  await h.pusherConnected(p);
  const ch1 = p.subscribe(ch);
  await h.once(ch1, 'pusher:cache_miss');
  await sdk.trigger(ch, 'quote', { q: 'hi' });
  const p2 = h.makePusherClient(server);
  await h.pusherConnected(p2);
  const ch2 = p2.subscribe(ch);
  const { data } = await h.once(ch2, 'quote');
  assert.deepEqual(data, { q: 'hi' });
  p.disconnect();
  p2.disconnect();
});
