'use strict';
// Configured per-app limits (lowered so they are cheap to hit) and max_message_size_kb.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const LIM = {
  id: 'lim-id', key: 'lim-key', secret: 'lim-secret',
  max_channel_name_length: 50,
  max_event_name_length: 20,
  max_event_channels_at_once: 3,
  max_event_payload_in_kb: 1,
  max_event_batch_size: 2,
  max_client_events_per_second: 3,
};

// separate app so connection counting does not interfere with the other tests
const CONN = { id: 'conn-id', key: 'conn-key', secret: 'conn-secret', max_connections: 3 };

let server;
before(async () => {
  server = await h.startServer({ max_message_size_kb: 4, max_subscriptions_per_connection: 3, apps: [LIM, CONN] });
});
after(async () => { if (server) await server.stop(); });

function assertStatus(r, status) {
  assert.equal(r.status, status, `expected HTTP ${status}, got ${r.status}: ${r.text}`);
  if (status >= 400) assert.equal(typeof (r.json && r.json.error), 'string', `body: ${r.text}`);
}

const trigger = (body) => h.apiTrigger(server, body, { app: LIM });

test('max_connections=3: the 4th connection gets 4004', async () => {
  const cs = [await h.connectRaw(server, { key: CONN.key }), await h.connectRaw(server, { key: CONN.key }), await h.connectRaw(server, { key: CONN.key })];
  const extra = await h.connectRaw(server, { key: CONN.key, established: false });
  await extra.expectErrorAndClose(4004);
  for (const c of cs) c.close();
  await Promise.all(cs.map((c) => c.waitClose()));
});

test('max_channel_name_length=50: subscribe with 51 chars is InvalidChannel, 50 is fine', async () => {
  const c = await h.connectRaw(server, { key: LIM.key });
  const base = h.uniq('n');
  const ok = base + 'x'.repeat(50 - base.length);
  await c.subscribeOk(ok);
  const long = `${ok}y`;
  c.subscribe(long, { auth: '' });
  const m = await c.waitFor('pusher:subscription_error');
  assert.equal(m.channel, long);
  assert.equal(m.data.type, 'InvalidChannel');
  assert.equal(m.data.status, 400);
  c.close();
});

test('max_channel_name_length=50: HTTP trigger to a 51-char channel -> 400', async () => {
  assertStatus(await trigger({ name: 'e', channels: ['c'.repeat(51)], data: 'x' }), 400);
  assertStatus(await trigger({ name: 'e', channels: ['c'.repeat(50)], data: 'x' }), 200);
});

test('max_event_name_length=20: HTTP trigger with a 21-char name -> 400, 20 is fine', async () => {
  assertStatus(await trigger({ name: 'n'.repeat(21), channels: [h.uniq('en')], data: 'x' }), 400);
  assertStatus(await trigger({ name: 'n'.repeat(20), channels: [h.uniq('en')], data: 'x' }), 200);
});

test('max_event_channels_at_once=3: 4 channels -> 400, 3 is fine', async () => {
  const four = [h.uniq('a'), h.uniq('b'), h.uniq('c'), h.uniq('d')];
  assertStatus(await trigger({ name: 'e', channels: four, data: 'x' }), 400);
  assertStatus(await trigger({ name: 'e', channels: four.slice(0, 3), data: 'x' }), 200);
});

test('max_event_payload_in_kb=1: 1025 bytes of data -> 413, 1024 is fine', async () => {
  assertStatus(await trigger({ name: 'e', channels: [h.uniq('p')], data: 'x'.repeat(1025) }), 413);
  assertStatus(await trigger({ name: 'e', channels: [h.uniq('p')], data: 'x'.repeat(1024) }), 200);
});

test('max_event_payload_in_kb applies to each batch item too', async () => {
  const r = await h.signedRequest(server, {
    app: LIM, method: 'POST', path: `/apps/${LIM.id}/batch_events`,
    body: { batch: [{ channel: h.uniq('bp'), name: 'e', data: 'x'.repeat(2000) }] },
  });
  assertStatus(r, 413);
});

test('max_event_batch_size=2: 3 items -> 400, 2 is fine', async () => {
  const ch = h.uniq('batch');
  const c = await h.connectRaw(server, { key: LIM.key });
  await c.subscribeOk(ch);
  const item = (n) => ({ channel: ch, name: n, data: 'x' });
  const r3 = await h.signedRequest(server, { app: LIM, method: 'POST', path: `/apps/${LIM.id}/batch_events`, body: { batch: [item('a'), item('b'), item('c')] } });
  assertStatus(r3, 400);
  await c.expectSilence(200);
  const r2 = await h.signedRequest(server, { app: LIM, method: 'POST', path: `/apps/${LIM.id}/batch_events`, body: { batch: [item('a'), item('b')] } });
  assertStatus(r2, 200);
  await c.waitFor('a');
  await c.waitFor('b');
  c.close();
});

test('max_client_events_per_second=3: the 4th event in a second gets 4301', async () => {
  const ch = h.uniq('private-rl');
  const a = await h.connectRaw(server, { key: LIM.key });
  const b = await h.connectRaw(server, { key: LIM.key });
  await a.subscribeOk(ch);
  await b.subscribeOk(ch);
  for (let i = 0; i < 4; i++) a.send({ event: 'client-x', channel: ch, data: { i } });
  const err = await a.waitFor('pusher:error');
  assert.equal(err.data.code, 4301);
  for (let i = 0; i < 3; i++) await b.waitFor('client-x');
  await b.expectNone('client-x', 200);
  await a.roundTrip();
  a.close();
  b.close();
});

test('max_message_size_kb=4: a 3 KB message is processed', async () => {
  const c = await h.connectRaw(server, { key: LIM.key });
  c.send({ event: 'pusher:ping', data: { pad: 'p'.repeat(3000) } });
  await c.waitFor('pusher:pong');
  c.close();
});

test('max_message_size_kb=4: an 8 KB message closes the socket with 1009', async () => {
  const c = await h.connectRaw(server, { key: LIM.key });
  const other = await h.connectRaw(server, { key: LIM.key });
  c.send({ event: 'pusher:ping', data: { pad: 'p'.repeat(8 * 1024) } });
  const info = await c.waitClose();
  assert.equal(info.code, 1009);
  await other.roundTrip();
  other.close();
});

test('max_subscriptions_per_connection=3: the 4th subscribe is LimitReached, the socket and its 3 channels keep working', async () => {
  const c = await h.connectRaw(server, { key: LIM.key });
  const names = [h.uniq('s1'), h.uniq('s2'), h.uniq('s3'), h.uniq('s4')];
  for (const n of names.slice(0, 3)) await c.subscribeOk(n);
  c.subscribe(names[3]);
  const err = await c.waitFor((m) => m.event === 'pusher:subscription_error' && m.channel === names[3]);
  assert.equal(err.data.type, 'LimitReached');
  // after an unsubscribe there is room again
  c.unsubscribe(names[0]);
  await c.subscribeOk(names[3]);
  await h.apiTrigger(server, { name: 'ev', channels: [names[3]], data: 'x' }, { app: LIM });
  await c.waitFor((m) => m.event === 'ev' && m.channel === names[3]);
  assert.equal(c.closeInfo, null);
  c.close();
});
