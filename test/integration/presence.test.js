'use strict';
// Presence channels: membership snapshot, member_added/member_removed,
// dedup by user_id, channel_data validation, presence limits, pusher-js members.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const SMALL = {
  id: 'small-id', key: 'small-key', secret: 'small-secret',
  max_presence_members_per_channel: 2,
  max_presence_member_size_in_kb: 1,
};

let server;
let sdk;
before(async () => {
  server = await h.startServer({ extraApps: [SMALL] });
  sdk = h.makeSdk(server);
});
after(async () => { if (server) await server.stop(); });

async function join(channel, userId, userInfo, opts = {}) {
  const c = await h.connectRaw(server, opts);
  const m = await c.subscribeOk(channel, { userId, userInfo });
  assert.equal(typeof m.data, 'string', 'presence subscription_succeeded data must be a string');
  c.presence = JSON.parse(m.data).presence;
  return c;
}

// The brief says AuthError/401 for channel_data that is not JSON or has no
// user_id; herald's code answers InvalidChannelData/400. Accept either pair.
function assertBadChannelData(m) {
  const pair = `${m.data.type}/${m.data.status}`;
  assert.ok(pair === 'AuthError/401' || pair === 'InvalidChannelData/400', `got ${pair}`);
  assert.equal(typeof m.data.error, 'string');
}

const subError = (channel) => {
  const p = (m) => m.event === 'pusher:subscription_error' && m.channel === channel;
  p.description = `pusher:subscription_error on ${channel}`;
  return p;
};

test('first member: exact presence snapshot including self', async () => {
  const ch = h.uniq('presence-solo');
  const c = await h.connectRaw(server);
  const cd = JSON.stringify({ user_id: 'alice', user_info: { name: 'Alice' } });
  c.subscribe(ch, { auth: h.presenceAuth(c.socketId, ch, cd), channel_data: cd });
  const m = await c.waitFor('pusher_internal:subscription_succeeded');
  assert.deepEqual(Object.keys(m).sort(), ['channel', 'data', 'event']);
  assert.equal(m.channel, ch);
  assert.deepEqual(JSON.parse(m.data), { presence: { ids: ['alice'], hash: { alice: { name: 'Alice' } }, count: 1 } });
  await c.expectNone('pusher_internal:member_added', 200);
  c.close();
});

test('second member: snapshot has both, first gets member_added, joiner does not', async () => {
  const ch = h.uniq('presence-pair');
  const a = await join(ch, 'u-a', { name: 'A' });
  const b = await join(ch, 'u-b', { name: 'B', tags: ['x'] });
  assert.equal(b.presence.count, 2);
  assert.deepEqual([...b.presence.ids].sort(), ['u-a', 'u-b']);
  assert.deepEqual(b.presence.hash, { 'u-a': { name: 'A' }, 'u-b': { name: 'B', tags: ['x'] } });
  const added = await a.waitFor('pusher_internal:member_added');
  assert.equal(added.channel, ch);
  assert.equal(typeof added.data, 'string');
  assert.deepEqual(JSON.parse(added.data), { user_id: 'u-b', user_info: { name: 'B', tags: ['x'] } });
  await b.expectNone('pusher_internal:member_added', 300);
  a.close();
  b.close();
});

test('integer user_id keeps its JSON type in member_added; hash keys are strings', async () => {
  const ch = h.uniq('presence-int');
  const a = await join(ch, 'first', null);
  const b = await join(ch, 42, { name: 'Answer' });
  const added = JSON.parse((await a.waitFor('pusher_internal:member_added')).data);
  assert.strictEqual(added.user_id, 42);
  assert.deepEqual(added.user_info, { name: 'Answer' });
  assert.deepEqual(b.presence.hash['42'], { name: 'Answer' });
  assert.ok(b.presence.ids.map(String).includes('42'));
  assert.equal(b.presence.count, 2);
  b.close();
  const removed = JSON.parse((await a.waitFor('pusher_internal:member_removed')).data);
  assert.deepEqual(removed, { user_id: 42 });
  a.close();
});

test('member without user_info appears with null in hash', async () => {
  const ch = h.uniq('presence-noinfo');
  const c = await join(ch, 'plain-user', undefined);
  assert.deepEqual(c.presence, { ids: ['plain-user'], hash: { 'plain-user': null }, count: 1 });
  c.close();
});

test('same user on two sockets: no second member_added, snapshot deduplicated', async () => {
  const ch = h.uniq('presence-dup');
  const watcher = await join(ch, 'watcher', {});
  const s1 = await join(ch, 'dup-user', { n: 1 });
  await watcher.waitFor('pusher_internal:member_added');
  const s2 = await join(ch, 'dup-user', { n: 1 });
  assert.equal(s2.presence.count, 2);
  assert.deepEqual([...s2.presence.ids].sort(), ['dup-user', 'watcher']);
  await watcher.expectNone('pusher_internal:member_added', 300);
  await s1.expectNone('pusher_internal:member_added', 0);
  [watcher, s1, s2].forEach((c) => c.close());
});

test('member_removed only when the user\'s last socket unsubscribes', async () => {
  const ch = h.uniq('presence-last');
  const watcher = await join(ch, 'watcher', {});
  const s1 = await join(ch, 'leaver', {});
  const s2 = await join(ch, 'leaver', {});
  await watcher.waitFor('pusher_internal:member_added');
  s1.unsubscribe(ch);
  await s1.roundTrip();
  await watcher.expectNone('pusher_internal:member_removed', 300);
  s2.unsubscribe(ch);
  const removed = await watcher.waitFor('pusher_internal:member_removed');
  assert.equal(removed.channel, ch);
  assert.deepEqual(JSON.parse(removed.data), { user_id: 'leaver' });
  await s2.expectNone('pusher_internal:member_removed', 200);
  [watcher, s1, s2].forEach((c) => c.close());
});

test('member_removed on disconnect (close frame and abrupt drop)', async () => {
  const ch = h.uniq('presence-dc');
  const watcher = await join(ch, 'watcher', {});
  const polite = await join(ch, 'polite', {});
  const rude = await join(ch, 'rude', {});
  polite.close();
  const r1 = await watcher.waitFor((m) => m.event === 'pusher_internal:member_removed' && JSON.parse(m.data).user_id === 'polite');
  assert.equal(r1.channel, ch);
  rude.terminate();
  await watcher.waitFor((m) => m.event === 'pusher_internal:member_removed' && JSON.parse(m.data).user_id === 'rude');
  watcher.close();
});

test('the first socket\'s user_info wins while the user stays', async () => {
  const ch = h.uniq('presence-firstwins');
  const s1 = await join(ch, 'same', { v: 'first' });
  const s2 = await join(ch, 'same', { v: 'second' });
  assert.deepEqual(s2.presence.hash.same, { v: 'first' });
  const observer = await join(ch, 'observer', null);
  assert.deepEqual(observer.presence.hash, { same: { v: 'first' }, observer: null });
  assert.equal(observer.presence.count, 2);
  [s1, s2, observer].forEach((c) => c.close());
});

test('channel_data signature covers the exact string (no re-serialisation)', async () => {
  const ch = h.uniq('presence-exact');
  const c = await h.connectRaw(server);
  const cd = '{ "user_info" : {"b":1,  "a":[1, 2]}, "user_id":"spacey" }';
  c.subscribe(ch, { auth: h.presenceAuth(c.socketId, ch, cd), channel_data: cd });
  const m = await c.waitFor('pusher_internal:subscription_succeeded');
  assert.deepEqual(JSON.parse(m.data).presence, { ids: ['spacey'], hash: { spacey: { b: 1, a: [1, 2] } }, count: 1 });
  c.close();
});

test('presence: channel_data signed differently from what is sent is AuthError 401', async () => {
  const ch = h.uniq('presence-tamper');
  const c = await h.connectRaw(server);
  const signed = JSON.stringify({ user_id: 'honest' });
  const sent = JSON.stringify({ user_id: 'admin' });
  c.subscribe(ch, { auth: h.presenceAuth(c.socketId, ch, signed), channel_data: sent });
  const m = await c.waitFor(subError(ch));
  assert.equal(m.data.type, 'AuthError');
  assert.equal(m.data.status, 401);
  await c.roundTrip();
  c.close();
});

test('presence: private-style auth without channel_data is InvalidChannelData 400', async () => {
  const ch = h.uniq('presence-nodata');
  const c = await h.connectRaw(server);
  c.subscribe(ch, { auth: h.privateAuth(c.socketId, ch) });
  const m = await c.waitFor(subError(ch));
  assert.equal(m.data.type, 'InvalidChannelData');
  assert.equal(m.data.status, 400);
  await c.roundTrip();
  c.close();
});

test('presence: channel_data that is not JSON (correctly signed) is rejected (AuthError 401 or InvalidChannelData 400)', async () => {
  const ch = h.uniq('presence-notjson');
  const c = await h.connectRaw(server);
  const cd = '{"user_id": "x",';
  c.subscribe(ch, { auth: h.presenceAuth(c.socketId, ch, cd), channel_data: cd });
  const m = await c.waitFor(subError(ch));
  assertBadChannelData(m);
  await c.roundTrip();
  c.close();
});

test('presence: channel_data without user_id (correctly signed) is rejected (AuthError 401 or InvalidChannelData 400)', async () => {
  const ch = h.uniq('presence-noid');
  const c = await h.connectRaw(server);
  const cd = JSON.stringify({ user_info: { name: 'nobody' } });
  c.subscribe(ch, { auth: h.presenceAuth(c.socketId, ch, cd), channel_data: cd });
  const m = await c.waitFor(subError(ch));
  assertBadChannelData(m);
  await c.roundTrip();
  c.close();
});

test('presence: rejected subscriber is not a member (no member_added, not in /users)', async () => {
  const ch = h.uniq('presence-reject');
  const watcher = await join(ch, 'watcher', {});
  const c = await h.connectRaw(server);
  const cd = JSON.stringify({ user_id: 'intruder' });
  c.subscribe(ch, { auth: h.presenceAuth('1.1', ch, cd), channel_data: cd });
  await c.waitFor(subError(ch));
  await watcher.expectNone('pusher_internal:member_added', 200);
  const r = await h.sdkJson(sdk.get({ path: `/channels/${ch}/users` }));
  assert.deepEqual(r.json, { users: [{ id: 'watcher' }] });
  watcher.close();
  c.close();
});

test('HTTP users endpoint lists unique user ids; user_count counts users not sockets', async () => {
  const ch = h.uniq('presence-users');
  const clients = [
    await join(ch, 'p1', {}), await join(ch, 'p1', {}), await join(ch, 'p2', {}), await join(ch, 7, {}),
  ];
  const users = await h.sdkJson(sdk.get({ path: `/channels/${ch}/users` }));
  assert.equal(users.status, 200);
  assert.deepEqual(users.json.users.map((u) => u.id).sort(), ['7', 'p1', 'p2']);
  for (const u of users.json.users) assert.deepEqual(Object.keys(u), ['id']);
  const info = await h.sdkJson(sdk.get({ path: `/channels/${ch}`, params: { info: 'user_count' } }));
  assert.equal(info.json.occupied, true);
  assert.equal(info.json.user_count, 3);
  clients.forEach((c) => c.close());
});

test('over max_presence_members_per_channel: subscription_error LimitReached 4100, socket open', async () => {
  const ch = h.uniq('presence-full');
  const a = await join(ch, 'm1', {}, { key: SMALL.key });
  const b = await join(ch, 'm2', {}, { key: SMALL.key });
  await a.waitFor('pusher_internal:member_added');
  const c = await h.connectRaw(server, { key: SMALL.key });
  const cd = JSON.stringify({ user_id: 'm3' });
  c.subscribe(ch, { auth: h.presenceAuth(c.socketId, ch, cd, SMALL), channel_data: cd });
  const m = await c.waitFor(subError(ch));
  assert.equal(m.data.type, 'LimitReached');
  assert.equal(m.data.status, 4100);
  assert.equal(typeof m.data.error, 'string');
  await a.expectNone('pusher_internal:member_added', 200);
  await c.roundTrip();
  // after someone leaves there is room again
  b.close();
  await a.waitFor('pusher_internal:member_removed');
  await c.subscribeOk(ch, { userId: 'm3', app: SMALL });
  [a, c].forEach((x) => x.close());
});

test('user_info bigger than max_presence_member_size_in_kb: subscription_error LimitReached', async () => {
  const ch = h.uniq('presence-fat');
  const c = await h.connectRaw(server, { key: SMALL.key });
  const cd = JSON.stringify({ user_id: 'fat', user_info: { blob: 'x'.repeat(2048) } });
  c.subscribe(ch, { auth: h.presenceAuth(c.socketId, ch, cd, SMALL), channel_data: cd });
  const m = await c.waitFor(subError(ch));
  assert.equal(m.data.type, 'LimitReached');
  await c.roundTrip();
  const ok = JSON.stringify({ user_id: 'thin', user_info: { blob: 'x'.repeat(100) } });
  c.subscribe(ch, { auth: h.presenceAuth(c.socketId, ch, ok, SMALL), channel_data: ok });
  await c.waitFor('pusher_internal:subscription_succeeded');
  c.close();
});

test('HTTP-published event on a presence channel reaches members with the exact frame', async () => {
  const ch = h.uniq('presence-http');
  const a = await join(ch, 'ha', {});
  const b = await join(ch, 'hb', {});
  await sdk.trigger(ch, 'announce', { x: 1 });
  for (const c of [a, b]) {
    assert.deepEqual(await c.waitFor('announce'), { event: 'announce', channel: ch, data: '{"x":1}' });
  }
  a.close();
  b.close();
});

test('pusher-js: members snapshot, me, member_added and member_removed', async () => {
  const ch = h.uniq('presence-js');
  const p1 = h.makePusherClient(server, { presence: { user_id: 'js-1', user_info: { name: 'One' } } });
  const p2 = h.makePusherClient(server, { presence: { user_id: 'js-2', user_info: { name: 'Two' } } });
  await Promise.all([h.pusherConnected(p1), h.pusherConnected(p2)]);
  const c1 = await h.pusherSubscribe(p1, ch);
  assert.equal(c1.members.count, 1);
  assert.equal(c1.members.me.id, 'js-1');
  assert.deepEqual(c1.members.me.info, { name: 'One' });
  const added = h.once(c1, 'pusher:member_added');
  const c2 = await h.pusherSubscribe(p2, ch);
  const { data: member } = await added;
  assert.equal(member.id, 'js-2');
  assert.deepEqual(member.info, { name: 'Two' });
  assert.equal(c2.members.count, 2);
  assert.deepEqual(c2.members.get('js-1').info, { name: 'One' });
  const removed = h.once(c1, 'pusher:member_removed');
  p2.disconnect();
  assert.equal((await removed).data.id, 'js-2');
  assert.equal(c1.members.count, 1);
  p1.disconnect();
});
