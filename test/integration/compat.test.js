'use strict';
// Compatibility and set-up details users trip on: GET / as a health check,
// numeric ids in pusher:signin (Laravel sends {"id":1}), CORS for the HTTP
// API, and a mistyped HERALD_* variable stopping start-up like a mistyped key.

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');

const h = require('./lib/harness');

describe('compatibility', () => {
  let server;
  before(async () => {
    server = await h.startServer({ cors: { origins: ['https://app.example'] } });
  });
  after(async () => { await server.stop(); });

  test('GET / answers like /up', async () => {
    const r = await h.httpRequest(server, { path: '/' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { ok: true });
  });

  test('a numeric signin id is accepted, reaches #server-to-user-1 and is a number in presence', async () => {
    const c = await h.connectRaw(server);
    const ok = await c.signin({ id: 1, user_info: { name: 'one' } });
    assert.equal(JSON.parse(ok.data.user_data).id, 1);
    const sdk = h.makeSdk(server);
    const got = c.waitFor(h.ev('note'));
    await h.sdkJson(sdk.sendToUser('1', 'note', { hi: 1 }));
    assert.deepEqual(JSON.parse((await got).data), { hi: 1 });
    // presence without channel_data: the member is the signed-in user, its id kept a number
    const channel = h.uniq('presence-num');
    const watcher = await h.connectRaw(server);
    await watcher.subscribeOk(channel, { userId: 'watcher' });
    c.send({ event: 'pusher:subscribe', data: { channel, auth: h.privateAuth(c.socketId, channel) } });
    const added = await watcher.waitFor(h.ev('pusher_internal:member_added', channel));
    assert.equal(JSON.parse(added.data).user_id, 1);
    assert.deepEqual(JSON.parse(added.data).user_info, { name: 'one' });
  });

  test('fractional or huge numeric ids are refused with 4009', async () => {
    for (const id of [1.5, 2 ** 60]) {
      const c = await h.connectRaw(server);
      const userData = JSON.stringify({ id });
      c.send({ event: 'pusher:signin', data: { auth: h.userAuth(c.socketId, userData), user_data: userData } });
      await c.expectErrorAndClose(4009);
    }
  });

  test('CORS: an allowed origin gets the header and a preflight answer; others do not', async () => {
    const pre = await h.httpRequest(server, {
      method: 'OPTIONS', path: '/apps/app-id/events',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example');
    assert.match(pre.headers['access-control-allow-methods'], /POST/);
    assert.equal(pre.headers['access-control-allow-headers'], 'content-type');
    const r = await h.signedRequest(server, { method: 'GET', path: '/apps/app-id/channels', headers: { origin: 'https://app.example' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], 'https://app.example');
    const bad = await h.httpRequest(server, { method: 'OPTIONS', path: '/apps/app-id/events', headers: { origin: 'https://evil.example' } });
    assert.equal(bad.status, 403);
    assert.equal(bad.headers['access-control-allow-origin'], undefined);
    const other = await h.signedRequest(server, { method: 'GET', path: '/apps/app-id/channels', headers: { origin: 'https://evil.example' } });
    assert.equal(other.status, 200);
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  });
});

test('without cors.origins no CORS header is sent and OPTIONS is not a route', async () => {
  const server = await h.startServer({});
  try {
    const r = await h.httpRequest(server, { method: 'OPTIONS', path: '/apps/app-id/events', headers: { origin: 'https://app.example' } });
    assert.equal(r.status, 405);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
  } finally {
    await server.stop();
  }
});

test('a mistyped HERALD_ variable stops start-up and names the likely key', async () => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HERALD_')));
  env.HERALD_PROT = '7000';
  const out = await new Promise((resolve) => {
    const p = spawn(h.HERALD_BIN, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', (code) => resolve({ code, err }));
  });
  assert.equal(out.code, 1);
  assert.match(out.err, /HERALD_PROT: no such herald setting \(did you mean HERALD_PORT\?\)/);
});
