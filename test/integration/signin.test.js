'use strict';
// User sign-in, #server-to-user- channels, sendToUser, terminateUserConnections,
// watchlist events, user_authentication_timeout.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const AUTHREQ = {
  id: 'authreq-id', key: 'authreq-key', secret: 'authreq-secret',
  enable_user_authentication: true, user_authentication_timeout: 1,
};

let server;
let sdk;
before(async () => {
  server = await h.startServer({ extraApps: [AUTHREQ] });
  sdk = h.makeSdk(server);
});
after(async () => { if (server) await server.stop(); });

async function signedIn(user, opts) {
  const c = await h.connectRaw(server, opts);
  await c.signin(user);
  return c;
}

const errorCode = (code) => {
  const p = (m) => m.event === 'pusher:error' && m.data && m.data.code === code;
  p.description = `pusher:error code ${code}`;
  return p;
};

/** Collect watchlist online/offline sets from pusher_internal:watchlist_events frames. */
function watchlistEvents(m) {
  assert.equal(m.event, 'pusher_internal:watchlist_events');
  assert.equal(m.channel, undefined);
  assert.equal(typeof m.data, 'string');
  const data = JSON.parse(m.data);
  assert.ok(Array.isArray(data.events), `events must be an array: ${m.data}`);
  const out = {};
  for (const e of data.events) {
    assert.ok(e.name === 'online' || e.name === 'offline', `bad watchlist event name ${e.name}`);
    assert.ok(Array.isArray(e.user_ids));
    out[e.name] = (out[e.name] || []).concat(e.user_ids);
  }
  return out;
}
const WATCH = 'pusher_internal:watchlist_events';

test('signin: signin_success echoes user_data byte for byte', async () => {
  const c = await h.connectRaw(server);
  const userData = '{ "id" : "sig-1", "user_info": {"name":"Zoë", "n": 1.50} }';
  c.send({ event: 'pusher:signin', data: { auth: h.userAuth(c.socketId, userData), user_data: userData } });
  const m = await c.waitFor('pusher:signin_success');
  assert.deepEqual(m, { event: 'pusher:signin_success', data: { user_data: userData } });
  await c.roundTrip();
  c.close();
});

test('signin: bad signature -> pusher:error 4009 then close 4009', async () => {
  const c = await h.connectRaw(server);
  const userData = JSON.stringify({ id: 'sig-bad' });
  c.send({ event: 'pusher:signin', data: { auth: h.userAuth('1.2', userData), user_data: userData } });
  await c.expectErrorAndClose(4009);
  assert.equal(c.count('pusher:signin_success'), 0);
});

test('signin: wrong key prefix -> 4009', async () => {
  const c = await h.connectRaw(server);
  const userData = JSON.stringify({ id: 'sig-wrongkey' });
  const sig = h.userAuth(c.socketId, userData).split(':')[1];
  c.send({ event: 'pusher:signin', data: { auth: `other-key:${sig}`, user_data: userData } });
  await c.expectErrorAndClose(4009);
});

test('signin: user_data without id (correctly signed) -> 4009 then close 4009', async () => {
  const c = await h.connectRaw(server);
  const userData = JSON.stringify({ user_info: { name: 'anon' } });
  c.send({ event: 'pusher:signin', data: { auth: h.userAuth(c.socketId, userData), user_data: userData } });
  await c.expectErrorAndClose(4009);
});

test('signin: empty id -> 4009', async () => {
  const c = await h.connectRaw(server);
  const userData = JSON.stringify({ id: '' });
  c.send({ event: 'pusher:signin', data: { auth: h.userAuth(c.socketId, userData), user_data: userData } });
  await c.expectErrorAndClose(4009);
});

test('#server-to-user-<id>: allowed when signed in as <id>', async () => {
  const id = h.uniq('s2u');
  const c = await signedIn({ id });
  c.subscribe(`#server-to-user-${id}`, { auth: '' });
  const m = await c.waitFor('pusher_internal:subscription_succeeded');
  assert.deepEqual(m, { event: 'pusher_internal:subscription_succeeded', channel: `#server-to-user-${id}`, data: '{}' });
  c.close();
});

test('#server-to-user-<other>: AuthError 401 when signed in as someone else', async () => {
  const c = await signedIn({ id: h.uniq('me') });
  const ch = `#server-to-user-${h.uniq('someone-else')}`;
  c.subscribe(ch, { auth: '' });
  const m = await c.waitFor('pusher:subscription_error');
  assert.equal(m.channel, ch);
  assert.equal(m.data.type, 'AuthError');
  assert.equal(m.data.status, 401);
  await c.roundTrip();
  c.close();
});

test('#server-to-user-<id>: AuthError 401 when not signed in', async () => {
  const c = await h.connectRaw(server);
  const ch = `#server-to-user-${h.uniq('nobody')}`;
  c.subscribe(ch, { auth: '' });
  const m = await c.waitFor('pusher:subscription_error');
  assert.equal(m.channel, ch);
  assert.equal(m.data.type, 'AuthError');
  assert.equal(m.data.status, 401);
  c.close();
});

test('sendToUser reaches every socket signed in as the user, subscribed or not, and nobody else', async () => {
  const id = h.uniq('target');
  const a = await signedIn({ id });
  const b = await signedIn({ id });
  a.subscribe(`#server-to-user-${id}`, { auth: '' });
  await a.waitFor('pusher_internal:subscription_succeeded');
  const bystander = await signedIn({ id: h.uniq('bystander') });
  const anon = await h.connectRaw(server);
  const res = await h.sdkJson(sdk.sendToUser(id, 'private-note', { hello: id }));
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, {});
  const expected = { event: 'private-note', channel: `#server-to-user-${id}`, data: JSON.stringify({ hello: id }) };
  assert.deepEqual(await a.waitFor('private-note'), expected);
  assert.deepEqual(await b.waitFor('private-note'), expected);
  await a.expectNone('private-note', 200); // exactly once even though subscribed
  await bystander.expectNone('private-note', 0);
  await anon.expectNone('private-note', 0);
  [a, b, bystander, anon].forEach((c) => c.close());
});

test('sendToUser to a user with no connections is accepted (200 {})', async () => {
  const res = await h.sdkJson(sdk.sendToUser(h.uniq('offline'), 'ev', 'x'));
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, {});
});

test('pusher-js: signin() then user.bind receives sendToUser events', async () => {
  const id = h.uniq('js-user');
  const p = h.makePusherClient(server, { user: { id, user_info: { name: 'JS' } } });
  await h.pusherConnected(p);
  p.signin();
  await p.user.signinDonePromise;
  assert.equal(p.user.user_data.id, id);
  // pusher-js subscribes to #server-to-user-<id> after signin; wait until it is confirmed
  await h.eventually(() => p.user.serverToUserChannel && p.user.serverToUserChannel.subscribed);
  const got = h.once(p.user, 'notice');
  await sdk.sendToUser(id, 'notice', { level: 'info' });
  assert.deepEqual((await got).data, { level: 'info' });
  p.disconnect();
});

test('terminateUserConnections closes every socket of that user with 4009; others unaffected', async () => {
  const id = h.uniq('doomed');
  const a = await signedIn({ id });
  const b = await signedIn({ id });
  const survivor = await signedIn({ id: h.uniq('survivor') });
  const anon = await h.connectRaw(server);
  const res = await h.sdkJson(sdk.terminateUserConnections(id));
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, {});
  await a.expectErrorAndClose(4009);
  await b.expectErrorAndClose(4009);
  await survivor.roundTrip();
  await anon.roundTrip();
  survivor.close();
  anon.close();
});

test('terminateUserConnections does not close presence members of that user_id that did not sign in', async () => {
  const id = h.uniq('presence-only');
  const ch = h.uniq('presence-term');
  const c = await h.connectRaw(server);
  await c.subscribeOk(ch, { userId: id });
  const res = await h.sdkJson(sdk.terminateUserConnections(id));
  assert.equal(res.status, 200);
  await c.expectNone('pusher:error', 300);
  await c.roundTrip();
  c.close();
});

test('terminated user can connect and sign in again', async () => {
  const id = h.uniq('phoenix');
  const a = await signedIn({ id });
  await sdk.terminateUserConnections(id);
  await a.expectErrorAndClose(4009);
  const again = await signedIn({ id });
  await again.roundTrip();
  again.close();
});

test('pusher-js: terminateUserConnections disconnects a signed-in pusher-js client (refused, no reconnect)', async () => {
  const id = h.uniq('js-doomed');
  const p = h.makePusherClient(server, { user: { id } });
  await h.pusherConnected(p);
  p.signin();
  await p.user.signinDonePromise;
  const errP = h.once(p.connection, 'error');
  await sdk.terminateUserConnections(id);
  const { data: err } = await errP;
  assert.match(JSON.stringify(err), /4009/);
  await h.eventually(() => p.connection.state === 'disconnected');
  p.disconnect();
});

// ---- watchlist

test('watchlist: initial state lists watched users already online', async () => {
  const on1 = h.uniq('w-on1');
  const on2 = h.uniq('w-on2');
  const off = h.uniq('w-off');
  const u1 = await signedIn({ id: on1 });
  const u2 = await signedIn({ id: on2 });
  const c = await h.connectRaw(server);
  await c.signin({ id: h.uniq('watcher'), watchlist: [on1, on2, off] });
  const w = watchlistEvents(await c.waitFor(WATCH));
  assert.deepEqual([...w.online].sort(), [on1, on2].sort());
  assert.ok(!w.offline || !w.offline.includes(on1));
  [u1, u2, c].forEach((x) => x.close());
});

test('watchlist: online when a watched user signs in, offline when their last socket leaves', async () => {
  const target = h.uniq('w-target');
  const c = await h.connectRaw(server);
  await c.signin({ id: h.uniq('watcher'), watchlist: [target] });
  // initial state (nobody online): either no frame, or no "online" ids
  await h.sleep(150);
  for (const m of c.pending().filter((x) => x.event === WATCH)) {
    await c.waitFor(WATCH);
    const w = watchlistEvents(m);
    assert.ok(!w.online || w.online.length === 0, `nobody is online yet: ${m.data}`);
  }
  const t1 = await signedIn({ id: target });
  assert.deepEqual(watchlistEvents(await c.waitFor(WATCH)), { online: [target] });
  const t2 = await signedIn({ id: target });
  await c.expectNone(WATCH, 300); // second socket of an online user: no event
  t1.close();
  await c.expectNone(WATCH, 300); // still one socket left
  t2.close();
  assert.deepEqual(watchlistEvents(await c.waitFor(WATCH)), { offline: [target] });
  c.close();
});

test('watchlist: only watched users produce events', async () => {
  const c = await h.connectRaw(server);
  await c.signin({ id: h.uniq('watcher'), watchlist: [h.uniq('someone')] });
  await h.sleep(150);
  const pendingWatch = c.pending().filter((x) => x.event === WATCH).length;
  const stranger = await signedIn({ id: h.uniq('stranger') });
  stranger.close();
  await h.sleep(300);
  const later = c.pending().filter((x) => x.event === WATCH);
  for (const m of later) {
    const w = watchlistEvents(m);
    assert.ok(!w.online || w.online.length === 0, `unexpected online: ${m.data}`);
    assert.ok(!w.offline || w.offline.length === 0, `unexpected offline: ${m.data}`);
  }
  assert.ok(later.length <= pendingWatch, 'no new watchlist frames for unwatched users');
  c.close();
});

test('watchlist: more than 100 ids -> pusher:error 4302 and signin still succeeds', async () => {
  const c = await h.connectRaw(server);
  const ids = Array.from({ length: 105 }, (_, i) => `wl-${i}-${process.pid}`);
  const userData = JSON.stringify({ id: h.uniq('greedy'), watchlist: ids });
  c.send({ event: 'pusher:signin', data: { auth: h.userAuth(c.socketId, userData), user_data: userData } });
  const success = await c.waitFor('pusher:signin_success');
  assert.deepEqual(success.data, { user_data: userData });
  const err = await c.waitFor(errorCode(4302));
  assert.equal(typeof err.data.message, 'string');
  await c.roundTrip();
  assert.equal(c.closeInfo, null);
  // the first 100 are watched: user wl-0 coming online is reported
  const first = await signedIn({ id: ids[0] });
  await c.waitFor((m) => m.event === WATCH && (watchlistEvents(m).online || []).includes(ids[0]));
  first.close();
  c.close();
});

test('pusher-js: watchlist online/offline events via user.watchlist.bind', async () => {
  const target = h.uniq('js-watched');
  const p = h.makePusherClient(server, { user: { id: h.uniq('js-watcher'), watchlist: [target] } });
  await h.pusherConnected(p);
  p.signin();
  await p.user.signinDonePromise;
  await h.sleep(100);
  const online = h.once(p.user.watchlist, 'online');
  const t = await signedIn({ id: target });
  assert.deepEqual((await online).data, { name: 'online', user_ids: [target] });
  const offline = h.once(p.user.watchlist, 'offline');
  t.close();
  assert.deepEqual((await offline).data, { name: 'offline', user_ids: [target] });
  p.disconnect();
});

// ---- user_authentication_timeout

test('enable_user_authentication: a connection that does not sign in is closed 4009 after the timeout', async () => {
  const t0 = Date.now();
  const c = await h.connectRaw(server, { key: AUTHREQ.key });
  const info = await c.waitClose(h.T(4000));
  assert.equal(info.code, 4009);
  assert.ok(Date.now() - t0 >= 800, `closed too early (${Date.now() - t0} ms)`);
});

test('enable_user_authentication: a signed-in connection stays open past the timeout', async () => {
  const c = await h.connectRaw(server, { key: AUTHREQ.key });
  await c.signin({ id: h.uniq('authed') });
  await h.sleep(h.T(1800));
  assert.equal(c.closeInfo, null);
  await c.roundTrip();
  c.close();
});
