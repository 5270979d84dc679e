'use strict';
// Connection handshake and connect-time errors.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const LIMITED = { id: 'limited-id', key: 'limited-key', secret: 'limited-secret', max_connections: 2 };
const DISABLED = { id: 'disabled-id', key: 'disabled-key', secret: 'disabled-secret', enabled: false };
const ORIGINS = { id: 'origin-id', key: 'origin-key', secret: 'origin-secret', allowed_origins: ['https://good.example', 'http://also-good.example:8080'] };
const STAR = { id: 'star-id', key: 'star-key', secret: 'star-secret', allowed_origins: ['*'] };

let server;
before(async () => {
  server = await h.startServer({ activity_timeout: 77, extraApps: [LIMITED, DISABLED, ORIGINS, STAR] });
});
after(async () => { if (server) await server.stop(); });

/** Connect to LIMITED, retrying while a slot freed by an earlier test is still being released. */
function connectLimited() {
  return h.eventually(async () => {
    const x = await h.connectRaw(server, { key: LIMITED.key, established: false });
    const first = await x.next();
    if (first.event === 'pusher:connection_established') {
      x.established = JSON.parse(first.data);
      x.socketId = x.established.socket_id;
      return x;
    }
    await x.waitClose().catch(() => {});
    return false;
  });
}

test('handshake: first frame is pusher:connection_established with a string data payload', async () => {
  const c = await h.connectRaw(server, { established: false });
  const m = await c.next();
  assert.deepEqual(Object.keys(m).sort(), ['data', 'event']);
  assert.equal(m.event, 'pusher:connection_established');
  assert.equal(typeof m.data, 'string');
  const data = JSON.parse(m.data);
  assert.equal(typeof data.socket_id, 'string');
  assert.match(data.socket_id, h.SOCKET_ID_RE);
  assert.equal(data.activity_timeout, 77);
  c.close();
});

test('handshake: socket_ids are unique across connections', async () => {
  const clients = await Promise.all(Array.from({ length: 8 }, () => h.connectRaw(server)));
  const ids = clients.map((c) => c.socketId);
  for (const id of ids) assert.match(id, h.SOCKET_ID_RE);
  assert.equal(new Set(ids).size, ids.length, `duplicate socket ids: ${ids}`);
  clients.forEach((c) => c.close());
});

test('handshake: nothing else is sent unprompted after connection_established', async () => {
  const c = await h.connectRaw(server);
  await c.expectSilence(300);
  c.close();
});

test('unknown app key: pusher:error 4001 then close 4001', async () => {
  const c = await h.connectRaw(server, { key: 'no-such-key', established: false });
  const { error } = await c.expectErrorAndClose(4001);
  assert.deepEqual(Object.keys(error.data).sort(), ['code', 'message']);
  assert.equal(c.all()[0].event, 'pusher:error', 'the error is the first frame');
});

test('disabled app: pusher:error 4003 then close 4003', async () => {
  const c = await h.connectRaw(server, { key: DISABLED.key, established: false });
  await c.expectErrorAndClose(4003);
});

test('over max_connections: pusher:error 4004 then close 4004, existing connections unaffected', async () => {
  const a = await connectLimited();
  const b = await connectLimited();
  const c = await h.connectRaw(server, { key: LIMITED.key, established: false });
  await c.expectErrorAndClose(4004);
  await a.roundTrip();
  await b.roundTrip();
  a.close();
  b.close();
  await a.waitClose();
  await b.waitClose();
});

test('max_connections frees a slot when a connection closes', async () => {
  const a = await connectLimited();
  const b = await connectLimited();
  a.close();
  await a.waitClose();
  // the server may take a moment to release the slot
  const c = await connectLimited();
  await c.roundTrip();
  b.close();
  c.close();
  await Promise.all([b.waitClose(), c.waitClose()]);
});

test('max_connections does not count other apps', async () => {
  const a = await connectLimited();
  const b = await connectLimited();
  const others = await Promise.all([h.connectRaw(server), h.connectRaw(server), h.connectRaw(server)]);
  for (const o of others) await o.roundTrip();
  [a, b, ...others].forEach((x) => x.close());
  await Promise.all([a.waitClose(), b.waitClose()]);
});

test('wrong path: pusher:error 4005 then close 4005', async () => {
  const c = await h.connectRaw(server, { path: `/apps/${h.APP.key}`, established: false });
  await c.expectErrorAndClose(4005);
});

test('wrong path with extra segment: close 4005', async () => {
  const c = await h.connectRaw(server, { path: `/app/${h.APP.key}/extra`, established: false });
  await c.expectErrorAndClose(4005);
});

test('protocol param not an integer: close 4007', async () => {
  const c = await h.connectRaw(server, { query: 'protocol=abc&client=js&version=8.6.0', established: false });
  await c.expectErrorAndClose(4007);
});

test('protocol below 5: close 4007', async () => {
  const c = await h.connectRaw(server, { query: 'protocol=4&client=js&version=8.6.0', established: false });
  await c.expectErrorAndClose(4007);
});

test('protocol above 7: close 4007', async () => {
  const c = await h.connectRaw(server, { query: 'protocol=8&client=js&version=8.6.0', established: false });
  await c.expectErrorAndClose(4007);
});

test('protocols 5, 6 and 7 are accepted', async () => {
  for (const p of [5, 6, 7]) {
    const c = await h.connectRaw(server, { query: `protocol=${p}&client=js&version=8.6.0` });
    assert.match(c.socketId, h.SOCKET_ID_RE);
    await c.roundTrip();
    c.close();
  }
});

test('missing protocol param is accepted as protocol 7', async () => {
  const c = await h.connectRaw(server, { query: 'client=js&version=8.6.0' });
  assert.match(c.socketId, h.SOCKET_ID_RE);
  await c.roundTrip();
  c.close();
});

test('no query string at all is accepted', async () => {
  const c = await h.connectRaw(server, { query: '' });
  assert.match(c.socketId, h.SOCKET_ID_RE);
  c.close();
});

test('unknown query params are ignored', async () => {
  const c = await h.connectRaw(server, { query: 'protocol=7&client=platform-library&version=1.2.3&flash=false&foo=bar&x=' });
  assert.match(c.socketId, h.SOCKET_ID_RE);
  await c.roundTrip();
  c.close();
});

test('allowed_origins: a listed origin connects', async () => {
  const c = await h.connectRaw(server, { key: ORIGINS.key, origin: 'https://good.example' });
  assert.match(c.socketId, h.SOCKET_ID_RE);
  const d = await h.connectRaw(server, { key: ORIGINS.key, origin: 'http://also-good.example:8080' });
  assert.match(d.socketId, h.SOCKET_ID_RE);
  c.close();
  d.close();
});

test('allowed_origins: an unlisted origin gets pusher:error 4009 "Origin not allowed" then close 4009', async () => {
  const c = await h.connectRaw(server, { key: ORIGINS.key, origin: 'https://evil.example', established: false });
  const { error } = await c.expectErrorAndClose(4009);
  assert.match(error.data.message, /Origin not allowed/);
});

test('allowed_origins: ["*"] accepts any origin; an empty list accepts any origin', async () => {
  const c = await h.connectRaw(server, { key: STAR.key, origin: 'https://anything.example' });
  assert.match(c.socketId, h.SOCKET_ID_RE);
  const d = await h.connectRaw(server, { origin: 'https://anything.example' });
  assert.match(d.socketId, h.SOCKET_ID_RE);
  c.close();
  d.close();
});

test('client close is clean and the server keeps serving', async () => {
  const c = await h.connectRaw(server);
  c.close(1000);
  const info = await c.waitClose();
  assert.equal(info.code, 1000);
  const d = await h.connectRaw(server);
  await d.roundTrip();
  d.close();
});

test('abrupt TCP drops (no close frame) do not disturb the server', async () => {
  const many = await Promise.all(Array.from({ length: 20 }, () => h.connectRaw(server)));
  many.forEach((c) => c.terminate());
  const d = await h.connectRaw(server);
  await d.roundTrip();
  d.close();
});

test('pusher-js connects: state connected, socket_id is the server-issued id', async () => {
  const p = h.makePusherClient(server);
  const socketId = await h.pusherConnected(p);
  assert.match(socketId, h.SOCKET_ID_RE);
  assert.equal(p.connection.state, 'connected');
  p.disconnect();
});

test('pusher-js with an unknown key gets error code 4001 and does not reconnect', async () => {
  const p = h.makePusherClient(server, { app: { ...h.APP, key: 'no-such-key' } });
  const { data: err } = await h.once(p.connection, 'error');
  // pusher-js wraps it: {type:'WebSocketError', error:{type:'PusherError', data:{code, message}}}
  const inner = err.error || err;
  assert.equal(inner.type, 'PusherError', JSON.stringify(err));
  assert.equal(inner.data.code, 4001);
  await h.eventually(() => p.connection.state === 'disconnected' || p.connection.state === 'failed');
  p.disconnect();
});
