'use strict';
// Garbage on the socket and on the HTTP port: the offending connection stays
// usable (except where a close is specified), other clients are unaffected,
// and the server keeps running.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const h = require('./lib/harness');

let server;
let sdk;
let bystander; // subscribed the whole time; must keep receiving events
let bystanderChannel;
before(async () => {
  server = await h.startServer({});
  sdk = h.makeSdk(server);
  bystanderChannel = h.uniq('bystander');
  bystander = await h.connectRaw(server);
  await bystander.subscribeOk(bystanderChannel);
});
after(async () => { if (server) await server.stop(); });

const nullError = (m) => m.event === 'pusher:error' && m.data && m.data.code === null && typeof m.data.message === 'string';
nullError.description = 'pusher:error with code null';

/** Consume whatever arrived so far; everything must be pusher:error with code null. */
async function drainNullErrors(c, ms = 200) {
  await h.sleep(h.T(ms));
  for (const m of c.pending()) {
    assert.ok(nullError(m), `only pusher:error code null is acceptable, got ${JSON.stringify(m)}`);
    await c.waitFor(nullError);
  }
}

/** The socket is still fully functional: ping round trip and a fresh subscription. */
async function stillWorks(c) {
  assert.equal(c.closeInfo, null, `socket was closed: ${JSON.stringify(c.closeInfo)}`);
  await c.roundTrip();
  await c.subscribeOk(h.uniq('still-works'));
}

async function bystanderOk() {
  await sdk.trigger(bystanderChannel, 'heartbeat', 'x');
  await bystander.waitFor('heartbeat');
}

test('malformed JSON: pusher:error code null, socket keeps working', async () => {
  const c = await h.connectRaw(server);
  c.sendRaw('{"event": "pusher:subscribe", "data": {');
  await c.waitFor(nullError);
  c.sendRaw('not json at all');
  await c.waitFor(nullError);
  await stillWorks(c);
  await bystanderOk();
  c.close();
});

test('JSON that is not an object (array, number, string, null) does not break the socket', async () => {
  const c = await h.connectRaw(server);
  for (const frame of ['[]', '[1,2,3]', '42', '"pusher:ping"', 'null', 'true']) c.sendRaw(frame);
  await drainNullErrors(c);
  await stillWorks(c);
  c.close();
});

test('unknown pusher:* event: pusher:error code null, socket keeps working', async () => {
  const c = await h.connectRaw(server);
  c.send({ event: 'pusher:does_not_exist', data: {} });
  await c.waitFor(nullError);
  await stillWorks(c);
  c.close();
});

test('message without an event field does not break the socket', async () => {
  const c = await h.connectRaw(server);
  c.send({ data: { channel: 'x' } });
  c.send({ event: 123, data: {} });
  c.send({ event: null });
  await drainNullErrors(c);
  await stillWorks(c);
  c.close();
});

const subscribeFailure = (m) => nullError(m) || m.event === 'pusher:subscription_error';
subscribeFailure.description = 'pusher:error code null or pusher:subscription_error';

test('subscribe with missing data: error reply, socket keeps working', async () => {
  const c = await h.connectRaw(server);
  c.send({ event: 'pusher:subscribe' });
  await c.waitFor(subscribeFailure);
  await stillWorks(c);
  c.close();
});

test('subscribe with null data: error reply, socket keeps working', async () => {
  const c = await h.connectRaw(server);
  c.send({ event: 'pusher:subscribe', data: null });
  await c.waitFor(subscribeFailure);
  await stillWorks(c);
  c.close();
});

test('subscribe without a channel, or with a null or non-string channel: error reply each time', async () => {
  const c = await h.connectRaw(server);
  for (const data of [{ auth: '' }, { channel: null }, { channel: 12 }, { channel: { a: 1 } }, { channel: ['x'] }]) {
    c.send({ event: 'pusher:subscribe', data });
    await c.waitFor(subscribeFailure);
  }
  assert.equal(c.count('pusher_internal:subscription_succeeded'), 0);
  await stillWorks(c);
  c.close();
});

test('subscribe with a non-string auth or channel_data does not crash', async () => {
  const c = await h.connectRaw(server);
  const ch = h.uniq('private-weird');
  c.subscribe(ch, { auth: 12345 });
  await c.waitFor(subscribeFailure);
  const pch = h.uniq('presence-weird');
  c.subscribe(pch, { auth: h.privateAuth(c.socketId, pch), channel_data: { user_id: 'obj' } });
  await c.waitFor(subscribeFailure);
  await stillWorks(c);
  c.close();
});

test('unsubscribe with garbage data does not break the socket', async () => {
  const c = await h.connectRaw(server);
  c.send({ event: 'pusher:unsubscribe' });
  c.send({ event: 'pusher:unsubscribe', data: null });
  c.send({ event: 'pusher:unsubscribe', data: { channel: 7 } });
  await drainNullErrors(c);
  await stillWorks(c);
  c.close();
});

test('signin with garbage data: error (4009 close allowed), server unaffected', async () => {
  const c = await h.connectRaw(server);
  c.send({ event: 'pusher:signin', data: { auth: 42, user_data: { id: 'x' } } });
  const m = await c.waitFor('pusher:error');
  assert.ok(m.data.code === null || m.data.code === 4009, JSON.stringify(m));
  if (m.data.code === 4009) assert.equal((await c.waitClose()).code, 4009);
  else await stillWorks(c);
  await bystanderOk();
});

test('client event with missing or bad channel does not break the socket', async () => {
  const c = await h.connectRaw(server);
  c.send({ event: 'client-nochannel', data: {} });
  c.send({ event: 'client-badchannel', channel: 42, data: {} });
  c.send({ event: 'client-nulls', channel: null, data: null });
  await drainNullErrors(c);
  await stillWorks(c);
  c.close();
});

test('data given as a JSON string is tolerated on subscribe (decoded, or rejected without closing)', async () => {
  const c = await h.connectRaw(server);
  const ch = h.uniq('stringdata');
  c.send({ event: 'pusher:subscribe', data: JSON.stringify({ channel: ch, auth: '' }) });
  const m = await c.waitFor((x) => subscribeFailure(x) || (x.event === 'pusher_internal:subscription_succeeded' && x.channel === ch));
  assert.ok(m.event === 'pusher_internal:subscription_succeeded' || subscribeFailure(m));
  await stillWorks(c);
  c.close();
});

test('binary frame: pusher:error code null "Binary frames are not supported", socket keeps working', async () => {
  const c = await h.connectRaw(server);
  c.sendRaw(Buffer.from(JSON.stringify({ event: 'pusher:ping', data: {} })), { binary: true });
  const m = await c.waitFor('pusher:error');
  assert.deepEqual(m, { event: 'pusher:error', data: { code: null, message: 'Binary frames are not supported' } });
  await c.expectNone('pusher:pong', 100);
  await stillWorks(c);
  c.close();
});

test('fragmented text message is reassembled', async () => {
  const c = await h.connectRaw(server);
  const ch = h.uniq('fragmented');
  const text = JSON.stringify({ event: 'pusher:subscribe', data: { channel: ch, auth: '' } });
  const mid = Math.floor(text.length / 2);
  c.ws.send(text.slice(0, mid), { fin: false });
  c.ws.send(text.slice(mid), { fin: true });
  const m = await c.waitFor('pusher_internal:subscription_succeeded');
  assert.equal(m.channel, ch);
  c.close();
});

test('deeply nested JSON is rejected without crashing', async () => {
  const c = await h.connectRaw(server);
  c.sendRaw('['.repeat(50000) + ']'.repeat(50000));
  c.sendRaw(`{"event":"pusher:ping","data":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`);
  // the second frame may be parsed (pong) or refused (pusher:error code null)
  await h.sleep(h.T(300));
  for (const m of c.pending()) {
    assert.ok(nullError(m) || m.event === 'pusher:pong', JSON.stringify(m).slice(0, 200));
    await c.next();
  }
  await stillWorks(c);
  await bystanderOk();
  c.close();
});

test('invalid UTF-8 in a text frame: error or close 1007, never a crash', async () => {
  const c = await h.connectRaw(server);
  // ws sends a Buffer as a text frame with binary:false and does not validate it
  c.ws.send(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), { binary: false });
  await h.sleep(300);
  if (c.closeInfo) {
    assert.ok([1007, 1002].includes(c.closeInfo.code), `close code ${c.closeInfo.code}`);
  } else {
    await c.roundTrip();
  }
  await bystanderOk();
  c.close();
});

test('a message larger than max_message_size_kb (default 100 KB) closes the socket with 1009', async () => {
  const c = await h.connectRaw(server);
  c.send({ event: 'pusher:ping', data: { pad: 'z'.repeat(150 * 1024) } });
  const info = await c.waitClose();
  assert.equal(info.code, 1009);
  await bystanderOk();
});

test('a burst of garbage from many sockets leaves other clients unaffected', async () => {
  const garbage = await Promise.all(Array.from({ length: 10 }, () => h.connectRaw(server)));
  for (const g of garbage) {
    for (let i = 0; i < 20; i++) g.sendRaw(i % 2 ? '{{{{' : JSON.stringify({ event: 'pusher:subscribe', data: { channel: '!!!' } }));
  }
  await bystanderOk();
  for (const g of garbage) await g.roundTrip();
  garbage.forEach((g) => g.terminate());
  await bystanderOk();
});

test('HTTP port: non-HTTP bytes do not crash the server', async () => {
  await new Promise((resolve) => {
    const s = net.connect(server.port, '127.0.0.1', () => {
      s.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x00, 0x00]));
      s.write('GARBAGE GARBAGE\r\n\r\n\x00\x01\x02');
      setTimeout(() => { s.destroy(); resolve(); }, 200);
    });
    s.on('error', () => resolve());
  });
  assert.equal((await h.httpRequest(server, { path: '/up' })).status, 200);
  await bystanderOk();
});

test('HTTP API: malformed query strings and percent-encoding are rejected, not crashed on', async () => {
  for (const p of [
    `/apps/${h.APP.id}/channels?auth_key=%ZZ&auth_signature=%`,
    `/apps/${h.APP.id}/channels?&&&=&==`,
    `/apps/${h.APP.id}/channels/%ff%fe?auth_key=app-key`,
    `/apps/%00/events`,
  ]) {
    const r = await h.httpRequest(server, { method: 'GET', path: p });
    assert.ok(r.status >= 400 && r.status < 500, `${p} -> ${r.status}`);
  }
  assert.equal((await h.httpRequest(server, { path: '/up' })).status, 200);
});

test('HTTP API: a body shorter than Content-Length, then the client hangs up, does not hurt', async () => {
  await new Promise((resolve) => {
    const s = net.connect(server.port, '127.0.0.1', () => {
      s.write(`POST /apps/${h.APP.id}/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name":`);
      setTimeout(() => { s.destroy(); resolve(); }, 100);
    });
    s.on('error', () => resolve());
  });
  assert.equal((await h.httpRequest(server, { path: '/up' })).status, 200);
  await bystanderOk();
});

test('WebSocket upgrade with a bad Sec-WebSocket-Version does not crash the server', async () => {
  const res = await new Promise((resolve) => {
    const s = net.connect(server.port, '127.0.0.1', () => {
      s.write(`GET /app/${h.APP.key}?protocol=7 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 99\r\n\r\n');
    });
    let buf = '';
    s.on('data', (d) => { buf += d.toString(); });
    s.on('close', () => resolve(buf));
    s.on('error', () => resolve(buf));
    setTimeout(() => { s.destroy(); }, 500);
  });
  // RFC 6455 §4.4: 426 with the version the server speaks.
  assert.match(res, /^HTTP\/1\.[01] 426/, `unexpected answer: ${res.slice(0, 100)}`);
  assert.match(res, /sec-websocket-version: 13/i);
  assert.equal((await h.httpRequest(server, { path: '/up' })).status, 200);
});
