'use strict';
// Invalid UTF-8 never reaches a WebSocket text frame (a browser would fail
// the connection with 1007). HTTP API: a signed publish whose name, data,
// channel or socket_id is not valid UTF-8 (raw bytes, or a \u escape of a
// lone surrogate) is refused with 400 {"error": ...}, and nothing is
// delivered or cached; valid multibyte text arrives intact. WebSocket: lws
// refuses invalid text frames (1007), and escaped lone surrogates in client
// events, presence channel_data and signin user_data are refused.
//
// Bodies are built and signed by hand (h.signedRequest with a Buffer): an
// SDK would have to encode a JS string, which can't hold invalid bytes.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

let server;
before(async () => { server = await h.startServer({}); });
after(async () => { if (server) await server.stop(); });

const BAD_BYTES = {
  'lone continuation byte': [0x80],
  'byte 0xFF': [0xff],
  'overlong "/"': [0xc0, 0xaf],
  'overlong U+07FF': [0xe0, 0x9f, 0xbf],
  'encoded surrogate U+D800': [0xed, 0xa0, 0x80],
  'surrogate pair as CESU-8': [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80],
  'above U+10FFFF': [0xf4, 0x90, 0x80, 0x80],
  'truncated 3-byte sequence': [0xe2, 0x82],
  'truncated 4-byte sequence': [0xf0, 0x9f, 0x98],
};

/** JSON text with raw bytes spliced in where the marker string "\u0000BAD" is. */
function withBytes(obj, bytes) {
  const [head, tail] = JSON.stringify(obj).split('\\u0000BAD');
  assert.ok(tail !== undefined, 'marker missing');
  return Buffer.concat([Buffer.from(head), Buffer.from(bytes), Buffer.from(tail)]);
}
const MARK = '\u0000BAD';

function publish(body, path = `/apps/${h.APP.id}/events`) {
  return h.signedRequest(server, { method: 'POST', path, body });
}

function assertRefused(r, message, what = '') {
  assert.equal(r.status, 400, `${what}: expected 400, got ${r.status}: ${r.text}`);
  assert.ok(r.json && typeof r.json.error === 'string', `error body must be {"error": ...}: ${r.text}`);
  if (message instanceof RegExp) assert.match(r.json.error, message);
  else if (message) assert.equal(r.json.error, message);
}

/** A raw subscriber; after the test step, proves it got nothing and is still healthy. */
async function subscriber(ch) {
  const c = await h.connectRaw(server);
  await c.subscribeOk(ch);
  return c;
}
async function assertNothingDelivered(c, event) {
  await c.expectNone(event, 300);
  await c.roundTrip(); // still open and served
  c.close();
}

// ---- valid text arrives intact

test('a publish with multibyte UTF-8 (emoji, CJK, astral, combining) is delivered intact', async () => {
  const ch = h.uniq('utf8-ok');
  const c = await subscriber(ch);
  const name = 'évènement-😀';
  const data = 'héllo 中文 日本語 😀 𝄞 e\u0301 \uffff \u{10ffff}';
  const r = await publish({ name, channel: ch, data });
  assert.equal(r.status, 200, r.text);
  const m = await c.waitFor(name);
  assert.deepEqual(m, { event: name, channel: ch, data });
  c.close();
});

test('an escaped surrogate pair (\\ud83d\\ude00) is decoded and delivered as the emoji', async () => {
  const ch = h.uniq('utf8-pair');
  const c = await subscriber(ch);
  const body = `{"name":"pair","channel":"${ch}","data":"smile \\ud83d\\ude00"}`;
  const r = await publish(body);
  assert.equal(r.status, 200, r.text);
  assert.equal((await c.waitFor('pair')).data, 'smile 😀');
  // and the frame's bytes were UTF-8 (the ws client decoded them without U+FFFD)
  assert.ok(!c.messages.some((e) => typeof e.raw === 'string' && e.raw.includes('\ufffd')));
  c.close();
});

// ---- HTTP API refusals

test('/events: invalid UTF-8 in data -> 400 "Invalid UTF-8 in data", nothing delivered', async () => {
  const ch = h.uniq('utf8-data');
  const c = await subscriber(ch);
  for (const [what, bytes] of Object.entries(BAD_BYTES)) {
    const r = await publish(withBytes({ name: 'bad-data', channel: ch, data: `x${MARK}y` }, bytes));
    assertRefused(r, 'Invalid UTF-8 in data', what);
  }
  await assertNothingDelivered(c, 'bad-data');
});

test('/events: invalid UTF-8 in the event name -> 400 "Invalid UTF-8 in name"', async () => {
  const ch = h.uniq('utf8-name');
  const c = await subscriber(ch);
  const r = await publish(withBytes({ name: `ev${MARK}`, channel: ch, data: 'd' }, BAD_BYTES['byte 0xFF']));
  assertRefused(r, 'Invalid UTF-8 in name');
  const r2 = await publish(withBytes({ name: `ev${MARK}`, channel: ch, data: 'd' }, BAD_BYTES['encoded surrogate U+D800']));
  assertRefused(r2, 'Invalid UTF-8 in name');
  await c.expectNone((m) => m.channel === ch && m.event.startsWith('ev'), 300);
  await c.roundTrip();
  c.close();
});

test('/events: invalid UTF-8 in a channel name -> 400 naming channel / channels; no channel gets the event', async () => {
  const good = h.uniq('utf8-chan');
  const c = await subscriber(good);
  const one = await publish(withBytes({ name: 'bad-chan', channel: `x${MARK}`, data: 'd' }, BAD_BYTES['overlong "/"']));
  assertRefused(one, 'Invalid UTF-8 in channel');
  // a valid channel listed first is not published to either: the request is refused whole
  const many = await publish(withBytes({ name: 'bad-chan', channels: [good, `x${MARK}`], data: 'd' }, [0xc3]));
  assertRefused(many, 'Invalid UTF-8 in channels');
  await assertNothingDelivered(c, 'bad-chan');
});

test('/events: invalid UTF-8 in socket_id -> 400 "Invalid UTF-8 in socket_id"', async () => {
  const ch = h.uniq('utf8-sid');
  const c = await subscriber(ch);
  const r = await publish(withBytes({ name: 'bad-sid', channel: ch, data: 'd', socket_id: `1.${MARK}` }, [0xff]));
  assertRefused(r, 'Invalid UTF-8 in socket_id');
  await assertNothingDelivered(c, 'bad-sid');
});

test('/events: an escaped lone surrogate (\\ud800, \\udc00, \\ud800\\u0041) -> 400, nothing delivered', async () => {
  const ch = h.uniq('utf8-esc');
  const c = await subscriber(ch);
  const bodies = [
    `{"name":"esc","channel":"${ch}","data":"a\\ud800b"}`,
    `{"name":"esc","channel":"${ch}","data":"\\udc00"}`,
    `{"name":"esc","channel":"${ch}","data":"\\ud800\\u0041"}`,
    `{"name":"esc\\udfff","channel":"${ch}","data":"x"}`,
    `{"name":"esc","channel":"${ch}","data":"x","socket_id":"1.\\ud800"}`,
  ];
  for (const body of bodies) assertRefused(await publish(body), /JSON|UTF-8/, body);
  await assertNothingDelivered(c, (m) => m.channel === ch && m.event.startsWith('esc'));
});

test('/batch_events: one invalid item -> 400 naming the item and field; no item is delivered', async () => {
  const ch0 = h.uniq('utf8-batch0');
  const ch1 = h.uniq('utf8-batch1');
  const c = await subscriber(ch0);
  await c.subscribeOk(ch1);
  const path = `/apps/${h.APP.id}/batch_events`;
  const body = withBytes({
    batch: [
      { name: 'b-ok', channel: ch0, data: 'fine 😀' },
      { name: 'b-bad', channel: ch1, data: `x${MARK}` },
    ],
  }, BAD_BYTES['encoded surrogate U+D800']);
  assertRefused(await publish(body, path), 'batch[1]: Invalid UTF-8 in data');
  const badName = withBytes({ batch: [{ name: `n${MARK}`, channel: ch0, data: 'd' }] }, [0xfe]);
  assertRefused(await publish(badName, path), 'batch[0]: Invalid UTF-8 in name');
  const escaped = `{"batch":[{"name":"b-ok","channel":"${ch0}","data":"ok"},` +
    `{"name":"b-bad","channel":"${ch1}","data":"\\ud800"}]}`;
  assertRefused(await publish(escaped, path), /JSON|UTF-8/);
  await c.expectNone((m) => m.event === 'b-ok' || m.event === 'b-bad', 300);
  // a valid batch with multibyte text still goes through
  const ok = await publish({ batch: [{ name: 'b-ok', channel: ch0, data: '中文 😀' }] }, path);
  assert.equal(ok.status, 200, ok.text);
  assert.equal((await c.waitFor('b-ok')).data, '中文 😀');
  c.close();
});

test('a refused publish to a cache channel leaves the cache empty (nothing counted as published)', async () => {
  const ch = h.uniq('cache-utf8');
  const r = await publish(withBytes({ name: 'cached', channel: ch, data: `x${MARK}` }, [0xff]));
  assertRefused(r, 'Invalid UTF-8 in data');
  const info = await h.signedRequest(server, { path: `/apps/${h.APP.id}/channels/${ch}`, params: { info: 'cache' } });
  assert.equal(info.status, 200, info.text);
  assert.equal(info.json.cache, null, info.text);
  // a new subscriber gets a cache miss, not the refused event
  const c = await h.connectRaw(server);
  await c.subscribeOk(ch);
  await c.waitFor('pusher:cache_miss');
  c.close();
});

// ---- WebSocket side

test('WebSocket: a text frame that is not UTF-8 is refused by the server (close 1007)', async () => {
  const c = await h.connectRaw(server);
  c.sendRaw(Buffer.from([0x7b, 0xed, 0xa0, 0x80, 0x7d]), { binary: false });
  const info = await c.waitClose();
  assert.equal(info.code, 1007);
});

test('WebSocket: a client event with an escaped lone surrogate is refused and not relayed', async () => {
  const ch = h.uniq('private-utf8');
  const sender = await h.connectRaw(server);
  await sender.subscribeOk(ch);
  const receiver = await h.connectRaw(server);
  await receiver.subscribeOk(ch);
  sender.sendRaw(`{"event":"client-esc","channel":"${ch}","data":{"t":"\\ud800"}}`);
  const err = await sender.waitFor('pusher:error');
  assert.match(err.data.message, /Invalid message format/);
  await receiver.expectNone('client-esc', 300);
  await sender.roundTrip();
  // the escaped pair is fine and arrives as the emoji
  sender.sendRaw(`{"event":"client-ok","channel":"${ch}","data":{"t":"\\ud83d\\ude00"}}`);
  assert.deepEqual((await receiver.waitFor('client-ok')).data, { t: '😀' });
  sender.close();
  receiver.close();
});

test('WebSocket: presence channel_data with an escaped lone surrogate is refused; members see nothing', async () => {
  const ch = h.uniq('presence-utf8');
  const member = await h.connectRaw(server);
  await member.subscribeOk(ch, { userId: 'm1' });
  const c = await h.connectRaw(server);
  const channelData = '{"user_id":"u2","user_info":{"name":"\\ud800"}}'; // the escape, as text
  c.subscribe(ch, { auth: h.presenceAuth(c.socketId, ch, channelData), channel_data: channelData });
  const m = await c.waitFor((x) => x.event === 'pusher:subscription_error' || x.event === 'pusher_internal:subscription_succeeded');
  assert.equal(m.event, 'pusher:subscription_error', JSON.stringify(m));
  await member.expectNone('pusher_internal:member_added', 300);
  member.close();
  c.close();
});

test('WebSocket: signin user_data with an escaped lone surrogate is refused', async () => {
  const c = await h.connectRaw(server);
  const userData = '{"id":"u-esc","user_info":{"n":"\\udc00"}}';
  c.send({ event: 'pusher:signin', data: { auth: h.userAuth(c.socketId, userData), user_data: userData } });
  const m = await c.waitFor((x) => x.event === 'pusher:signin_success' || x.event === 'pusher:error');
  assert.equal(m.event, 'pusher:error', JSON.stringify(m));
  c.close();
});
