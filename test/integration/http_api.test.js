'use strict';
// HTTP API: events, batch_events, channels, channel info, users,
// terminate_connections, auth errors, status codes, keep-alive, health routes.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const h = require('./lib/harness');

const DISABLED = { id: 'disabled-id', key: 'disabled-key', secret: 'disabled-secret', enabled: false };

let server;
let sdk;
let APPID;
before(async () => {
  server = await h.startServer({ max_http_body_kb: 64, extraApps: [DISABLED] });
  sdk = h.makeSdk(server);
  APPID = h.APP.id;
});
after(async () => { if (server) await server.stop(); });

function assertJsonError(r, status) {
  assert.equal(r.status, status, `expected HTTP ${status}, got ${r.status}: ${r.text}`);
  assert.ok(r.json && typeof r.json === 'object', `error body must be JSON: ${r.text}`);
  assert.equal(typeof r.json.error, 'string', `error body must be {"error": "..."}: ${r.text}`);
  assert.ok(r.json.error.length > 0);
}

async function subscribed(ch, opts = {}) {
  const c = await h.connectRaw(server);
  await c.subscribeOk(ch, opts);
  return c;
}

// ---- POST /events

test('POST /events via the SDK: 200 {} and the event is delivered', async () => {
  const ch = h.uniq('api-basic');
  const c = await subscribed(ch);
  const r = await h.sdkJson(sdk.trigger(ch, 'api-ev', { a: 1 }));
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, {});
  assert.deepEqual(await c.waitFor('api-ev'), { event: 'api-ev', channel: ch, data: '{"a":1}' });
  c.close();
});

test('POST /events responds with Content-Type application/json', async () => {
  const r = await h.apiTrigger(server, { name: 'ct', channels: [h.uniq('ct')], data: 'x' });
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^application\/json/);
  assert.deepEqual(r.json, {});
});

test('POST /events to several channels delivers to each', async () => {
  const ch1 = h.uniq('multi-1');
  const ch2 = h.uniq('multi-2');
  const c = await subscribed(ch1);
  await c.subscribeOk(ch2);
  await sdk.trigger([ch1, ch2], 'multi', 'm');
  const got = [await c.waitFor('multi'), await c.waitFor('multi')].map((m) => m.channel).sort();
  assert.deepEqual(got, [ch1, ch2].sort());
  c.close();
});

test('POST /events accepts a single "channel" instead of "channels"', async () => {
  const ch = h.uniq('single');
  const c = await subscribed(ch);
  const r = await h.apiTrigger(server, { name: 'solo', channel: ch, data: 'd' });
  assert.equal(r.status, 200);
  assert.deepEqual(await c.waitFor('solo'), { event: 'solo', channel: ch, data: 'd' });
  c.close();
});

test('POST /events with info: subscription_count for channels, user_count for presence', async () => {
  const pub = h.uniq('info-pub');
  const pres = h.uniq('presence-info');
  const a = await subscribed(pub);
  const b = await subscribed(pub);
  const p1 = await subscribed(pres, { userId: 'x1' });
  const p2 = await subscribed(pres, { userId: 'x1' });
  const p3 = await subscribed(pres, { userId: 'x2' });
  const r = await h.sdkJson(sdk.trigger([pub, pres], 'counted', 'c', { info: 'user_count,subscription_count' }));
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.channels[pub], { subscription_count: 2 });
  assert.equal(r.json.channels[pres].user_count, 2);
  if ('subscription_count' in r.json.channels[pres]) assert.equal(r.json.channels[pres].subscription_count, 3);
  [a, b, p1, p2, p3].forEach((c) => c.close());
});

test('POST /events with info on an empty channel reports zero counts', async () => {
  const ch = h.uniq('info-empty');
  const r = await h.sdkJson(sdk.trigger(ch, 'nobody', 'x', { info: 'subscription_count' }));
  assert.equal(r.status, 200);
  assert.ok(r.json.channels, JSON.stringify(r.json));
  const entry = r.json.channels[ch];
  assert.ok(entry === undefined || entry.subscription_count === 0 || Object.keys(entry).length === 0, JSON.stringify(r.json));
});

test('POST /events with socket_id excludes exactly that connection', async () => {
  const ch = h.uniq('exclude');
  const me = await subscribed(ch);
  const other = await subscribed(ch);
  const r = await h.sdkJson(sdk.trigger(ch, 'not-for-me', 'x', { socket_id: me.socketId }));
  assert.equal(r.status, 200);
  await other.waitFor('not-for-me');
  await me.expectNone('not-for-me', 300);
  me.close();
  other.close();
});

test('POST /events socket_id exclusion applies across all listed channels', async () => {
  const ch1 = h.uniq('ex-1');
  const ch2 = h.uniq('ex-2');
  const me = await subscribed(ch1);
  await me.subscribeOk(ch2);
  const watcher = await subscribed(ch2);
  await sdk.trigger([ch1, ch2], 'skip', 'x', { socket_id: me.socketId });
  await watcher.waitFor('skip');
  await me.expectNone('skip', 300);
  me.close();
  watcher.close();
});

test('POST /events to #server-to-user- over raw HTTP is accepted', async () => {
  const uid = h.uniq('raw-user');
  const c = await h.connectRaw(server);
  await c.signin({ id: uid });
  const r = await h.apiTrigger(server, { name: 'direct', channels: [`#server-to-user-${uid}`], data: 'hi' });
  assert.equal(r.status, 200);
  assert.deepEqual(await c.waitFor('direct'), { event: 'direct', channel: `#server-to-user-${uid}`, data: 'hi' });
  c.close();
});

test('POST /events errors: body not JSON -> 400', async () => {
  assertJsonError(await h.apiTrigger(server, '{"name": "x", '), 400);
});

test('POST /events errors: missing name -> 400', async () => {
  assertJsonError(await h.apiTrigger(server, { channels: [h.uniq('noname')], data: 'x' }), 400);
});

test('POST /events errors: data not a string -> 400', async () => {
  assertJsonError(await h.apiTrigger(server, { name: 'x', channels: [h.uniq('objdata')], data: { a: 1 } }), 400);
});

test('POST /events errors: missing data -> 400', async () => {
  assertJsonError(await h.apiTrigger(server, { name: 'x', channels: [h.uniq('nodata')] }), 400);
});

test('POST /events errors: no channels -> 400', async () => {
  assertJsonError(await h.apiTrigger(server, { name: 'x', data: 'x' }), 400);
  assertJsonError(await h.apiTrigger(server, { name: 'x', data: 'x', channels: [] }), 400);
});

test('POST /events errors: more than 100 channels -> 400, nothing delivered', async () => {
  const channels = Array.from({ length: 101 }, () => h.uniq('many'));
  const c = await subscribed(channels[0]);
  assertJsonError(await h.apiTrigger(server, { name: 'flood', channels, data: 'x' }), 400);
  await c.expectNone('flood', 300);
  c.close();
});

test('POST /events with exactly 100 channels -> 200', async () => {
  const channels = Array.from({ length: 100 }, () => h.uniq('hundred'));
  const r = await h.apiTrigger(server, { name: 'ok', channels, data: 'x' });
  assert.equal(r.status, 200);
});

test('POST /events errors: invalid channel name -> 400, nothing delivered to the valid one', async () => {
  const ok = h.uniq('valid');
  const c = await subscribed(ok);
  assertJsonError(await h.apiTrigger(server, { name: 'x', channels: [ok, 'bad channel!'], data: 'x' }), 400);
  assertJsonError(await h.apiTrigger(server, { name: 'x', channels: ['#nope'], data: 'x' }), 400);
  await c.expectNone('x', 300);
  c.close();
});

test('POST /events errors: event name over 200 chars -> 400', async () => {
  assertJsonError(await h.apiTrigger(server, { name: 'e'.repeat(201), channels: [h.uniq('longname')], data: 'x' }), 400);
  const r = await h.apiTrigger(server, { name: 'e'.repeat(200), channels: [h.uniq('longname-ok')], data: 'x' });
  assert.equal(r.status, 200);
});

test('POST /events errors: malformed socket_id -> 400', async () => {
  assertJsonError(await h.apiTrigger(server, { name: 'x', channels: [h.uniq('badsock')], data: 'x', socket_id: 'abc' }), 400);
});

test('POST /events errors: data over 10 KB -> 413; exactly 10 KB -> 200', async () => {
  const ch = h.uniq('big');
  assertJsonError(await h.apiTrigger(server, { name: 'big', channels: [ch], data: 'x'.repeat(10 * 1024 + 1) }), 413);
  const r = await h.apiTrigger(server, { name: 'big', channels: [ch], data: 'x'.repeat(10 * 1024) });
  assert.equal(r.status, 200, r.text);
});

test('POST /events errors: body larger than max_http_body_kb -> 413', async () => {
  const body = JSON.stringify({ name: 'huge', channels: [h.uniq('huge')], data: 'y'.repeat(100 * 1024) });
  const r = await h.apiTrigger(server, body);
  assert.equal(r.status, 413, r.text);
});

// ---- auth

test('auth: bad signature -> 401', async () => {
  const r = await h.apiTrigger(server, { name: 'x', channels: ['a'], data: 'x' }, { signature: 'f'.repeat(64) });
  assertJsonError(r, 401);
});

test('auth: signed with the wrong secret -> 401; the SDK surfaces the status', async () => {
  const bad = h.makeSdk(server, { app: { ...h.APP, secret: 'wrong' } });
  const e = await h.sdkError(bad.trigger(h.uniq('wrongsecret'), 'x', 'y'));
  assert.equal(e.status, 401);
  assert.equal(typeof e.json.error, 'string');
});

test('auth: timestamp more than 600 s old -> 401', async () => {
  const r = await h.apiTrigger(server, { name: 'x', channels: ['a'], data: 'x' }, { timestamp: Math.floor(Date.now() / 1000) - 700 });
  assertJsonError(r, 401);
});

test('auth: timestamp more than 600 s in the future -> 401', async () => {
  const r = await h.apiTrigger(server, { name: 'x', channels: ['a'], data: 'x' }, { timestamp: Math.floor(Date.now() / 1000) + 700 });
  assertJsonError(r, 401);
});

test('auth: unknown auth_key -> 401', async () => {
  const r = await h.apiTrigger(server, { name: 'x', channels: ['a'], data: 'x' }, { app: { id: APPID, key: 'who', secret: h.APP.secret } });
  assertJsonError(r, 401);
});

test('auth: body_md5 not matching the body -> 401', async () => {
  const r = await h.apiTrigger(server, { name: 'x', channels: ['a'], data: 'x' }, { bodyMd5: '0'.repeat(32) });
  assertJsonError(r, 401);
});

test('auth: missing auth parameters -> 401', async () => {
  const r = await h.httpRequest(server, { method: 'GET', path: `/apps/${APPID}/channels` });
  assertJsonError(r, 401);
});

test('auth: query parameters are signed unescaped and sorted', async () => {
  const ch = h.uniq('presence-sorted');
  const c = await subscribed(ch, { userId: 'sorted' });
  // hand-signed with extra params in an order that only sorting makes canonical
  const r = await h.signedRequest(server, {
    method: 'GET', path: `/apps/${APPID}/channels`, params: { info: 'user_count', filter_by_prefix: 'presence-' },
  });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.channels[ch], { user_count: 1 });
  c.close();
});

test('unknown app id -> 404', async () => {
  const r = await h.signedRequest(server, { method: 'GET', path: '/apps/no-such-app/channels' });
  assertJsonError(r, 404);
});

test('unknown route -> 404', async () => {
  const r = await h.signedRequest(server, { method: 'GET', path: `/apps/${APPID}/nonsense` });
  assert.equal(r.status, 404);
  const r2 = await h.httpRequest(server, { path: '/definitely/not/here' });
  assert.equal(r2.status, 404);
});

test('disabled app -> 403', async () => {
  const r = await h.apiTrigger(server, { name: 'x', channels: ['a'], data: 'x' }, { app: DISABLED });
  assertJsonError(r, 403);
});

// ---- batch_events

test('batch_events via the SDK: 200 {} and every event delivered', async () => {
  const ch1 = h.uniq('batch-1');
  const ch2 = h.uniq('batch-2');
  const c = await subscribed(ch1);
  await c.subscribeOk(ch2);
  const r = await h.sdkJson(sdk.triggerBatch([
    { channel: ch1, name: 'b1', data: { n: 1 } },
    { channel: ch2, name: 'b2', data: 'two' },
  ]));
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, {});
  assert.deepEqual(await c.waitFor('b1'), { event: 'b1', channel: ch1, data: '{"n":1}' });
  assert.deepEqual(await c.waitFor('b2'), { event: 'b2', channel: ch2, data: 'two' });
  c.close();
});

test('batch_events: per-item socket_id exclusion', async () => {
  const ch = h.uniq('batch-ex');
  const me = await subscribed(ch);
  const other = await subscribed(ch);
  await sdk.triggerBatch([
    { channel: ch, name: 'skip-me', data: 'x', socket_id: me.socketId },
    { channel: ch, name: 'for-all', data: 'y' },
  ]);
  await other.waitFor('skip-me');
  await other.waitFor('for-all');
  await me.waitFor('for-all');
  await me.expectNone('skip-me', 200);
  me.close();
  other.close();
});

test('batch_events: more than 10 items -> 400 and nothing delivered', async () => {
  const ch = h.uniq('batch-big');
  const c = await subscribed(ch);
  const batch = Array.from({ length: 11 }, (_, i) => ({ channel: ch, name: `n${i}`, data: 'x' }));
  const r = await h.signedRequest(server, { method: 'POST', path: `/apps/${APPID}/batch_events`, body: { batch } });
  assertJsonError(r, 400);
  await c.expectSilence(300);
  c.close();
});

test('batch_events: one invalid item -> 400 and none of the valid items delivered', async () => {
  const ch = h.uniq('batch-atomic');
  const c = await subscribed(ch);
  const batch = [
    { channel: ch, name: 'valid', data: 'x' },
    { channel: 'bad channel!', name: 'invalid', data: 'x' },
  ];
  const r = await h.signedRequest(server, { method: 'POST', path: `/apps/${APPID}/batch_events`, body: { batch } });
  assertJsonError(r, 400);
  const r2 = await h.signedRequest(server, {
    method: 'POST', path: `/apps/${APPID}/batch_events`,
    body: { batch: [{ channel: ch, name: 'valid2', data: 'x' }, { channel: ch, name: 'objdata', data: { a: 1 } }] },
  });
  assertJsonError(r2, 400);
  await c.expectSilence(300);
  c.close();
});

test('batch_events with info: {"batch":[...]} index-aligned', async () => {
  const ch = h.uniq('batch-info');
  const c = await subscribed(ch);
  const r = await h.signedRequest(server, {
    method: 'POST', path: `/apps/${APPID}/batch_events`,
    body: { batch: [
      { channel: ch, name: 'i1', data: 'x', info: 'subscription_count' },
      { channel: ch, name: 'i2', data: 'y' },
    ] },
  });
  assert.equal(r.status, 200, r.text);
  assert.ok(Array.isArray(r.json.batch), r.text);
  assert.equal(r.json.batch.length, 2);
  assert.deepEqual(r.json.batch[0], { subscription_count: 1 });
  assert.deepEqual(r.json.batch[1], {});
  c.close();
});

test('batch_events: body without a batch array -> 400', async () => {
  const r = await h.signedRequest(server, { method: 'POST', path: `/apps/${APPID}/batch_events`, body: { events: [] } });
  assertJsonError(r, 400);
});

// ---- GET /channels

test('GET /channels lists occupied channels only, each {}', async () => {
  const occupied = h.uniq('listed');
  const c = await subscribed(occupied);
  await sdk.trigger(h.uniq('never-occupied'), 'x', 'y');
  const r = await h.sdkJson(sdk.get({ path: '/channels' }));
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.channels[occupied], {});
  for (const name of Object.keys(r.json.channels)) assert.ok(!name.includes('never-occupied'), name);
  c.close();
});

test('GET /channels?filter_by_prefix narrows the list', async () => {
  const pfx = `pfx${process.pid}x-`;
  const a = await subscribed(`${pfx}${h.uniq('a')}`);
  const b = await subscribed(h.uniq('nopfx'));
  const r = await h.sdkJson(sdk.get({ path: '/channels', params: { filter_by_prefix: pfx } }));
  assert.equal(r.status, 200);
  const names = Object.keys(r.json.channels);
  assert.equal(names.length, 1);
  assert.ok(names[0].startsWith(pfx));
  a.close();
  b.close();
});

test('GET /channels?filter_by_prefix=presence-&info=user_count gives user_count per channel', async () => {
  const ch = h.uniq('presence-listed');
  const cs = [await subscribed(ch, { userId: 'a' }), await subscribed(ch, { userId: 'a' }), await subscribed(ch, { userId: 'b' })];
  const r = await h.sdkJson(sdk.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } }));
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.channels[ch], { user_count: 2 });
  for (const name of Object.keys(r.json.channels)) assert.ok(name.startsWith('presence-'));
  cs.forEach((c) => c.close());
});

test('GET /channels?info=user_count without a presence- prefix -> 400', async () => {
  const e = await h.sdkError(sdk.get({ path: '/channels', params: { info: 'user_count' } }));
  assert.equal(e.status, 400);
  const e2 = await h.sdkError(sdk.get({ path: '/channels', params: { info: 'user_count', filter_by_prefix: 'private-' } }));
  assert.equal(e2.status, 400);
});

test('GET /channels after the last subscriber leaves no longer lists the channel', async () => {
  const ch = h.uniq('gone');
  const c = await subscribed(ch);
  c.close();
  await h.eventually(async () => {
    const r = await h.sdkJson(sdk.get({ path: '/channels' }));
    return !(ch in r.json.channels);
  });
});

// ---- GET /channels/{c}

test('GET /channels/{c}: occupied with subscription_count', async () => {
  const ch = h.uniq('chinfo');
  const a = await subscribed(ch);
  const b = await subscribed(ch);
  const r = await h.sdkJson(sdk.get({ path: `/channels/${ch}`, params: { info: 'subscription_count' } }));
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { occupied: true, subscription_count: 2 });
  const plain = await h.sdkJson(sdk.get({ path: `/channels/${ch}` }));
  assert.deepEqual(plain.json, { occupied: true });
  a.close();
  b.close();
});

test('GET /channels/{c}: unoccupied -> {"occupied":false}', async () => {
  const ch = h.uniq('empty');
  const r = await h.sdkJson(sdk.get({ path: `/channels/${ch}` }));
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { occupied: false });
  const r2 = await h.sdkJson(sdk.get({ path: `/channels/${ch}`, params: { info: 'subscription_count' } }));
  assert.equal(r2.json.occupied, false);
  if ('subscription_count' in r2.json) assert.equal(r2.json.subscription_count, 0);
});

test('GET /channels/{presence}: user_count counts distinct users', async () => {
  const ch = h.uniq('presence-chinfo');
  const cs = [await subscribed(ch, { userId: 1 }), await subscribed(ch, { userId: 1 }), await subscribed(ch, { userId: 2 })];
  const r = await h.sdkJson(sdk.get({ path: `/channels/${ch}`, params: { info: 'user_count' } }));
  assert.equal(r.status, 200);
  assert.equal(r.json.occupied, true);
  assert.equal(r.json.user_count, 2);
  cs.forEach((c) => c.close());
});

test('GET /channels/{non-presence}?info=user_count -> 400', async () => {
  const e = await h.sdkError(sdk.get({ path: `/channels/${h.uniq('notpresence')}`, params: { info: 'user_count' } }));
  assert.equal(e.status, 400);
});

test('GET /channels/{invalid name} -> 400', async () => {
  const r = await h.signedRequest(server, { method: 'GET', path: `/apps/${APPID}/channels/${'x'.repeat(201)}` });
  assertJsonError(r, 400);
  const r2 = await h.signedRequest(server, { method: 'GET', path: `/apps/${APPID}/channels/bad!name` });
  assertJsonError(r2, 400);
});

test('signature over the path exactly as sent (percent-encoded channel) is accepted', async () => {
  const ch = `${h.uniq('enc')}@x`; // '@' is a valid channel character
  const c = await subscribed(ch);
  const raw = `/apps/${APPID}/channels/${encodeURIComponent(ch)}`;
  assert.ok(raw.includes('%40'));
  const r = await h.signedRequest(server, { method: 'GET', path: raw, params: { info: 'subscription_count' } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { occupied: true, subscription_count: 1 });
  c.close();
});

test('signature over the percent-decoded path is accepted too', async () => {
  const ch = `${h.uniq('dec')}@y`;
  const raw = `/apps/${APPID}/channels/${encodeURIComponent(ch)}`;
  const decoded = `/apps/${APPID}/channels/${ch}`;
  // sign the decoded form, send the encoded form
  const a = server.app(0);
  const params = { auth_key: a.key, auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: '1.0' };
  const sig = h.hmac(a.secret, `GET\n${decoded}\n${h.canonicalParams(params)}`);
  const qs = new URLSearchParams({ ...params, auth_signature: sig }).toString();
  const r = await h.httpRequest(server, { method: 'GET', path: `${raw}?${qs}` });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { occupied: false });
});

// ---- users

test('GET /channels/{presence}/users: {"users":[{"id":...}]} unique', async () => {
  const ch = h.uniq('presence-userlist');
  const cs = [await subscribed(ch, { userId: 'ua' }), await subscribed(ch, { userId: 'ua' }), await subscribed(ch, { userId: 'ub' })];
  const r = await h.sdkJson(sdk.get({ path: `/channels/${ch}/users` }));
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.users.sort((x, y) => (x.id < y.id ? -1 : 1)), [{ id: 'ua' }, { id: 'ub' }]);
  cs.forEach((c) => c.close());
});

test('GET /channels/{non-presence}/users -> 400', async () => {
  const e = await h.sdkError(sdk.get({ path: `/channels/${h.uniq('private-users')}/users` }));
  assert.equal(e.status, 400);
});

test('GET /channels/{empty presence}/users -> {"users":[]}', async () => {
  const r = await h.sdkJson(sdk.get({ path: `/channels/${h.uniq('presence-nobody')}/users` }));
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { users: [] });
});

// ---- terminate

test('POST /users/{id}/terminate_connections for a user with no connections -> 200 {}', async () => {
  const r = await h.sdkJson(sdk.terminateUserConnections(h.uniq('ghost')));
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, {});
});

test('terminate_connections hand-signed with body {} -> 200 {}', async () => {
  const r = await h.signedRequest(server, { method: 'POST', path: `/apps/${APPID}/users/${h.uniq('hand')}/terminate_connections`, body: '{}' });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, {});
});

// ---- transport

test('keep-alive: several requests on one HTTP/1.1 connection', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const results = [];
    for (let i = 0; i < 4; i++) {
      results.push(await h.signedRequest(server, {
        method: i % 2 ? 'GET' : 'POST',
        path: i % 2 ? `/apps/${APPID}/channels` : `/apps/${APPID}/events`,
        body: i % 2 ? undefined : { name: 'ka', channels: [h.uniq('ka')], data: String(i) },
        agent,
      }));
    }
    for (const r of results) assert.equal(r.status, 200, r.text);
    assert.deepEqual(results.map((r) => r.reusedSocket), [false, true, true, true]);
    // error responses keep the connection usable too
    const bad = await h.apiTrigger(server, { name: 'x' }, { agent });
    assert.equal(bad.status, 400);
    const after400 = await h.signedRequest(server, { method: 'GET', path: `/apps/${APPID}/channels`, agent });
    assert.equal(after400.status, 200);
    assert.equal(after400.reusedSocket, true);
  } finally {
    agent.destroy();
  }
});

test('GET /up -> 200, GET /up/{app_id} -> 200, unknown app -> 404, GET /ready -> 200', async () => {
  assert.equal((await h.httpRequest(server, { path: '/up' })).status, 200);
  assert.equal((await h.httpRequest(server, { path: `/up/${APPID}` })).status, 200);
  assert.equal((await h.httpRequest(server, { path: '/up/no-such-app' })).status, 404);
  assert.equal((await h.httpRequest(server, { path: '/ready' })).status, 200);
});
