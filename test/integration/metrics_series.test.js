'use strict';
// The operator series of docs/METRICS.md move by exactly what real traffic
// does: inbound messages by kind and their bytes, frames queued to clients
// (fan-out vs direct) and their bytes, connections closed by close code,
// HTTP API requests by route and status with their duration histogram and
// bytes, channels by type and presence members counted from the registry,
// and the capacity / high-water gauges of the queues. Each test scrapes
// /metrics before and after its traffic and checks the differences; the
// tests of this file run one after the other on one server, so nothing else
// moves the node-wide counters meanwhile.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');

const h = require('./lib/harness');

const CENSUS_APP = Object.freeze({ id: 'census-app', key: 'census-key', secret: 'census-secret' });
const WEBHOOK_QUEUE_SIZE = 77;
const HTTP_BUFFERS_MB = 16;

let server;
let metricsPort;
let receiver;

// ---------------------------------------------------------------- /metrics

/** GET /metrics -> [{name, labels: {...}, value}]. */
function scrape() {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: metricsPort, path: '/metrics', agent: false, timeout: h.T(5000) }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        const rows = [];
        for (const line of text.split('\n')) {
          const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
          if (!m) continue;
          const labels = {};
          for (const l of (m[2] || '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
          rows.push({ name: m[1], labels, value: Number(m[3]) });
        }
        resolve(rows);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET /metrics timed out${server.deathNote()}`)));
    req.on('error', reject);
  });
}

/** Sum of the samples of name whose labels include match (e.g. summed over io_thread). */
function val(rows, name, match = {}) {
  let sum = 0;
  let seen = false;
  for (const r of rows) {
    if (r.name !== name) continue;
    if (!Object.entries(match).every(([k, v]) => r.labels[k] === String(v))) continue;
    sum += r.value;
    seen = true;
  }
  assert.ok(seen, `no sample ${name}${JSON.stringify(match)} in /metrics`);
  return sum;
}

const delta = (a, b, name, match) => val(b, name, match) - val(a, name, match);

/** Frames a raw client received after index from: {count, bytes}. */
function received(c, from) {
  const frames = c.messages.slice(from);
  return { count: frames.length, bytes: frames.reduce((n, e) => n + Buffer.byteLength(e.raw), 0) };
}

/** Count the payload bytes of everything c sends from now on. */
function countSent(c) {
  const counter = { bytes: 0 };
  const send = c.ws.send.bind(c.ws);
  c.ws.send = (data, ...rest) => {
    counter.bytes += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    return send(data, ...rest);
  };
  return counter;
}

/** One raw HTTP exchange answered with Connection: close: the bytes the server sent. */
function rawExchange(request) {
  return new Promise((resolve, reject) => {
    const s = net.connect(server.port, '127.0.0.1', () => s.write(request));
    const chunks = [];
    s.on('data', (d) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
    setTimeout(() => s.destroy(), h.T(3000)).unref();
  });
}

/** A signed raw request line + query for the HTTP API. */
function signedTarget(method, pathName, body, app = h.APP) {
  const params = { auth_key: app.key, auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: '1.0' };
  if (body !== undefined) params.body_md5 = require('node:crypto').createHash('md5').update(body).digest('hex');
  const sig = h.hmac(app.secret, `${method}\n${pathName}\n${h.canonicalParams(params)}`);
  const qs = Object.entries({ ...params, auth_signature: sig }).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  return `${pathName}?${qs}`;
}

// ---------------------------------------------------------------- server

before(async () => {
  receiver = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('ok')); });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  metricsPort = await h.getFreePort();
  server = await h.startServer({
    io_threads: 2,
    metrics: { enabled: true, host: '127.0.0.1', port: metricsPort },
    limits: { http_buffers_mb: HTTP_BUFFERS_MB },
    webhooks: { queue_size: WEBHOOK_QUEUE_SIZE },
    app: { webhooks: [{ url: `http://127.0.0.1:${receiver.address().port}/hook`, event_types: ['channel_occupied'] }] },
    extraApps: [CENSUS_APP],
  });
});

after(async () => {
  if (server) await server.stop();
  if (receiver) await new Promise((resolve) => receiver.close(resolve));
});

// ---------------------------------------------------------------- tests

test('inbound messages are counted by kind with their payload bytes; every answer is a direct frame', async () => {
  const c = await h.connectRaw(server);
  const priv = h.uniq('private-kind');
  const pub = h.uniq('kind');
  const from = c.messages.length;
  const sent = countSent(c);
  const a = await scrape();

  await c.subscribeOk(pub);                                   // subscribe
  await c.subscribeOk(priv);                                  // subscribe
  await c.roundTrip();                                        // ping
  c.send({ event: 'pusher:pong', data: {} });                 // pong (no answer)
  await c.signin({ id: h.uniq('kind-user') });                // signin
  c.send({ event: 'client-x', channel: priv, data: { n: 1 } }); // client_event (no other subscriber)
  c.unsubscribe(pub);                                         // unsubscribe (no answer)
  c.send({ event: 'hello', data: {} });                       // other: unknown event
  c.sendRaw('not json');                                      // other: not JSON
  c.sendRaw(Buffer.from([1, 2, 3]), { binary: true });        // other: binary
  for (let i = 0; i < 3; i++) await c.waitFor('pusher:error');
  await c.roundTrip();                                        // ping: everything before it is handled

  const b = await scrape();
  const kinds = { subscribe: 2, unsubscribe: 1, signin: 1, ping: 2, pong: 1, client_event: 1, other: 3 };
  for (const [kind, n] of Object.entries(kinds)) {
    assert.equal(delta(a, b, 'herald_messages_received_by_kind_total', { kind }), n, `kind ${kind}`);
  }
  assert.equal(delta(a, b, 'herald_messages_received_total'), 11);
  assert.equal(delta(a, b, 'herald_bytes_received_total'), sent.bytes);
  const got = received(c, from);
  assert.equal(got.count, 8, 'two subscription_succeeded, two pongs, signin_success, three errors');
  assert.equal(delta(a, b, 'herald_frames_queued_total', { kind: 'direct' }), got.count);
  assert.equal(delta(a, b, 'herald_bytes_queued_total', { kind: 'direct' }), got.bytes);
  assert.equal(delta(a, b, 'herald_frames_queued_total', { kind: 'channel' }), 0);
  c.close();
  await c.waitClose();
});

test('fan-out frames are counted per recipient reached, without the excluded socket_id', async () => {
  const sdk = h.makeSdk(server);
  const ch = h.uniq('fan');
  const priv = h.uniq('private-fan');
  const x = await h.connectRaw(server);
  const y = await h.connectRaw(server);
  const z = await h.connectRaw(server);
  await x.subscribeOk(ch);
  await y.subscribeOk(ch);
  await x.subscribeOk(priv);
  await z.subscribeOk(priv);
  const from = [x, y, z].map((c) => c.messages.length);
  const a = await scrape();

  assert.equal((await sdk.trigger(ch, 'e1', { n: 1 })).status, 200);       // x and y
  assert.equal((await sdk.trigger(ch, 'e2', { n: 2 }, { socket_id: x.socketId })).status, 200); // y only
  x.send({ event: 'client-hi', channel: priv, data: { n: 3 } });           // z only (never echoed)
  await x.waitFor('e1');
  await y.waitFor('e1');
  await y.waitFor('e2');
  await z.waitFor('client-hi');
  await x.roundTrip(); // a direct frame after them: x got nothing else meanwhile

  const b = await scrape();
  const got = [x, y, z].map((c, i) => received(c, from[i]));
  const pong = received(x, x.messages.length - 1);
  assert.equal(got[0].count + got[1].count + got[2].count, 5, 'e1 twice, e2, client-hi, and the pong');
  assert.equal(delta(a, b, 'herald_frames_queued_total', { kind: 'channel' }), 4);
  assert.equal(delta(a, b, 'herald_bytes_queued_total', { kind: 'channel' }),
    got[0].bytes + got[1].bytes + got[2].bytes - pong.bytes);
  assert.equal(delta(a, b, 'herald_frames_queued_total', { kind: 'direct' }), 1);
  assert.ok(val(b, 'herald_inbox_high_water') >= 1, 'the publishes went through an inbox');
  for (const c of [x, y, z]) c.close();
  await Promise.all([x, y, z].map((c) => c.waitClose()));
});

/** The close code a raw handshake's unmasked frame gets from lws: 1002. */
function unmaskedFrameClose() {
  return new Promise((resolve, reject) => {
    const s = net.connect(server.port, '127.0.0.1', () => s.write('GET /app/app-key?protocol=7 HTTP/1.1\r\nHost: a\r\n' +
      'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'));
    let buf = Buffer.alloc(0);
    let off = -1; // the next server frame, once the 101 head is in
    let sentBad = false;
    s.on('error', () => { /* the close shows it */ });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (off < 0) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        off = end + 4;
      }
      // walk the server's frames (unmasked; herald's are short)
      while (buf.length >= off + 2) {
        let len = buf[off + 1] & 0x7f;
        let hdr = 2;
        if (len === 126) {
          if (buf.length < off + 4) return;
          len = buf.readUInt16BE(off + 2);
          hdr = 4;
        }
        if (buf.length < off + hdr + len) return;
        const opcode = buf[off] & 0x0f;
        if (opcode === 8) { // the close frame: we never answer it, herald counts what it sent
          resolve(len >= 2 ? buf.readUInt16BE(off + hdr) : null);
          s.destroy();
          return;
        }
        off += hdr + len;
        if (!sentBad) { // after connection_established: a frame without a mask
          sentBad = true;
          const payload = Buffer.from('{"event":"pusher:ping","data":{}}');
          s.write(Buffer.concat([Buffer.from([0x81, payload.length]), payload]));
        }
      }
    });
    setTimeout(() => { s.destroy(); reject(new Error('no close frame after an unmasked frame')); }, h.T(3000)).unref();
  });
}

test('closed connections are counted by close code: the client\'s, herald\'s, lws\', or 1006 when dropped', async () => {
  const sdk = h.makeSdk(server);
  const a = await scrape();

  const normal = await h.connectRaw(server);
  normal.close(1000);
  const custom = await h.connectRaw(server);
  custom.close(4321); // a code herald does not know: "other"
  const noCode = await h.connectRaw(server);
  noCode.ws.close(); // a close frame without a code: 1005
  const dropped = await h.connectRaw(server);
  dropped.terminate(); // no close frame at all: 1006
  const badKey = await h.connectRaw(server, { key: 'no-such-key', established: false });
  assert.equal((await badKey.waitClose()).code, 4001);
  const user = h.uniq('closer');
  const signedIn = await h.connectRaw(server);
  await signedIn.signin({ id: user });
  assert.equal((await sdk.terminateUserConnections(user)).status, 200);
  assert.equal((await signedIn.waitClose()).code, 4009);
  assert.equal(await unmaskedFrameClose(), 1002);
  const pjs = h.makePusherClient(server);
  await h.pusherConnected(pjs);
  pjs.disconnect(); // pusher-js closes with 1000

  const want = { 1000: 2, other: 1, 1005: 1, 1006: 1, 4001: 1, 4009: 1, 1002: 1 };
  const total = Object.values(want).reduce((s, n) => s + n, 0);
  const b = await h.eventually(async () => {
    const rows = await scrape();
    return delta(a, rows, 'herald_connections_closed_total') === total ? rows : false;
  }, { timeout: h.T(5000) });
  for (const [code, n] of Object.entries(want)) {
    assert.equal(delta(a, b, 'herald_connections_closed_total', { code }), n, `code ${code}`);
  }
  // the 4001 was refused at the handshake: closed, but never opened
  assert.equal(delta(a, b, 'herald_connections_opened_total'), total - 1);
});

test('HTTP API requests are counted by route and status, with a duration histogram per route', async () => {
  const sdk = h.makeSdk(server);
  const bad = h.makeSdk(server, { app: { ...h.APP, secret: 'wrong-secret' } });
  const ch = h.uniq('routes');
  const presence = h.uniq('presence-routes');
  const a = await scrape();

  assert.equal((await sdk.trigger(ch, 'e', { n: 1 })).status, 200);
  assert.equal((await sdk.trigger(ch, 'e', { n: 2 })).status, 200);
  assert.equal((await h.sdkError(bad.trigger(ch, 'e', { n: 3 }))).status, 401); // refused from its head
  assert.equal((await sdk.triggerBatch([{ channel: ch, name: 'e', data: '{}' }])).status, 200);
  assert.equal((await sdk.get({ path: '/channels' })).status, 200);
  assert.equal((await sdk.get({ path: `/channels/${ch}` })).status, 200);
  assert.equal((await sdk.get({ path: `/channels/${presence}/users` })).status, 200);
  assert.equal((await sdk.terminateUserConnections(h.uniq('nobody'))).status, 200);
  assert.equal((await h.httpRequest(server, { path: '/up' })).status, 200);
  assert.equal((await h.httpRequest(server, { path: `/up/${h.APP.id}` })).status, 200);
  assert.equal((await h.httpRequest(server, { path: '/ready' })).status, 200);
  assert.equal((await h.httpRequest(server, { path: '/no/such/route' })).status, 404);
  assert.equal((await h.httpRequest(server, { path: `/apps/${h.APP.id}/events` })).status, 405);

  const b = await scrape();
  const want = {
    'events/200': 2, 'events/401': 1, 'events/405': 1, 'batch_events/200': 1, 'channels/200': 1, 'channel/200': 1,
    'channel_users/200': 1, 'terminate/200': 1, 'up/200': 2, 'ready/200': 1, 'other/404': 1,
  };
  for (const r of b.filter((x) => x.name === 'herald_http_requests_by_route_total')) {
    const key = `${r.labels.route}/${r.labels.status}`;
    assert.equal(delta(a, b, r.name, r.labels), want[key] || 0, key);
  }
  const perRoute = {};
  for (const [key, n] of Object.entries(want)) perRoute[key.split('/')[0]] = (perRoute[key.split('/')[0]] || 0) + n;
  const H = 'herald_http_request_duration_seconds';
  for (const route of ['events', 'batch_events', 'channels', 'channel', 'channel_users', 'terminate', 'up', 'ready', 'other']) {
    const n = perRoute[route] || 0;
    assert.equal(delta(a, b, `${H}_count`, { route }), n, `${route}: _count`);
    assert.equal(delta(a, b, `${H}_bucket`, { route, le: '+Inf' }), n, `${route}: +Inf bucket`);
    assert.ok(delta(a, b, `${H}_bucket`, { route, le: '1' }) <= n);
    if (n) assert.ok(delta(a, b, `${H}_sum`, { route }) > 0, `${route}: _sum grows`);
    const buckets = b.filter((x) => x.name === `${H}_bucket` && x.labels.route === route).map((x) => x.value);
    assert.deepEqual(buckets, [...buckets].sort((p, q) => p - q), `${route}: buckets are cumulative`);
  }
});

test('HTTP API bytes in and out are the requests\' and answers\' exact sizes', async () => {
  // a GET without a body
  let a = await scrape();
  let req = 'GET /up HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';
  let res = await rawExchange(req);
  assert.match(res.toString(), /^HTTP\/1\.1 200 /);
  let b = await scrape();
  assert.equal(delta(a, b, 'herald_http_bytes_received_total'), Buffer.byteLength(req));
  assert.equal(delta(a, b, 'herald_http_bytes_sent_total'), res.length);

  // a signed POST: head and body
  const body = JSON.stringify({ name: 'bytes', channels: [h.uniq('bytes')], data: '{"n":1}' });
  const target = signedTarget('POST', `/apps/${h.APP.id}/events`, body);
  a = await scrape();
  req = `POST ${target} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`;
  res = await rawExchange(req);
  assert.match(res.toString(), /^HTTP\/1\.1 200 /);
  b = await scrape();
  assert.equal(delta(a, b, 'herald_http_bytes_received_total'), Buffer.byteLength(req));
  assert.equal(delta(a, b, 'herald_http_bytes_sent_total'), res.length);
  assert.equal(delta(a, b, 'herald_http_requests_by_route_total', { route: 'events', status: '200' }), 1);

  // refused from its head (bad signature): its body is never read, only the head counts
  a = await scrape();
  const head = `POST /apps/${h.APP.id}/events?auth_key=app-key&auth_timestamp=1&auth_version=1.0&auth_signature=00 HTTP/1.1\r\n` +
    `Host: a\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
  res = await rawExchange(head + body);
  assert.match(res.toString(), /^HTTP\/1\.1 401 /);
  b = await scrape();
  assert.equal(delta(a, b, 'herald_http_bytes_received_total'), Buffer.byteLength(head));
  assert.equal(delta(a, b, 'herald_http_bytes_sent_total'), res.length);
  assert.equal(delta(a, b, 'herald_http_requests_by_route_total', { route: 'events', status: '401' }), 1);
});

test('channels by type and presence members are counted from the registry', async () => {
  const census = () => scrape().then((rows) => {
    const types = {};
    for (const t of ['public', 'private', 'encrypted', 'presence', 'cache', 'internal']) {
      types[t] = val(rows, 'herald_channels_by_type', { app: CENSUS_APP.id, type: t });
    }
    return { types, members: val(rows, 'herald_presence_members', { app: CENSUS_APP.id }), total: val(rows, 'herald_channels', { app: CENSUS_APP.id }) };
  });
  const empty = await census();
  assert.deepEqual(empty, { types: { public: 0, private: 0, encrypted: 0, presence: 0, cache: 0, internal: 0 }, members: 0, total: 0 });

  const opts = { key: CENSUS_APP.key, app: CENSUS_APP };
  const c1 = await h.connectRaw(server, opts);
  const c2 = await h.connectRaw(server, opts);
  const c3 = await h.connectRaw(server, opts);
  await c1.subscribeOk('news');
  await c2.subscribeOk('news');
  await c1.subscribeOk('private-a');
  await c1.subscribeOk('private-encrypted-b');
  await c1.subscribeOk('presence-c', { userId: '1' });
  await c2.subscribeOk('presence-c', { userId: '1' }); // the same user on a second socket
  await c3.subscribeOk('presence-c', { userId: '2' });
  await c1.subscribeOk('presence-cache-d', { userId: '1' });
  await c1.subscribeOk('cache-e');
  await c1.subscribeOk('private-cache-f');
  await c3.signin({ id: 'u3', watchlist: ['u4'] }); // #server-to-user-u3 and #watch-u4

  const full = await census();
  assert.deepEqual(full.types, { public: 1, private: 1, encrypted: 1, presence: 1, cache: 3, internal: 2 });
  assert.equal(full.members, 3, 'users 1 and 2 in presence-c, user 1 in presence-cache-d');
  assert.equal(full.total, 9, 'the types add up to herald_channels');

  c3.close();
  await c3.waitClose();
  await h.eventually(async () => {
    const n = await census();
    return n.members === 2 && n.types.internal === 0;
  });
  c1.close();
  c2.close();
  await Promise.all([c1.waitClose(), c2.waitClose()]);
  await h.eventually(async () => {
    const n = await census();
    assert.deepEqual(n, empty);
    return true;
  });
});

test('queue gauges: webhook queue capacity and high water, HTTP buffer budget, inbox depth', async () => {
  const a = await scrape();
  const ch = h.uniq('hook');
  const c = await h.connectRaw(server);
  await c.subscribeOk(ch); // channel_occupied: one webhook event queued
  const labels = { app: h.APP.id };
  const b = await h.eventually(async () => {
    const rows = await scrape();
    return delta(a, rows, 'herald_webhook_events_sent_total', labels) >= 1 ? rows : false;
  }, { timeout: h.T(10000) });
  assert.equal(val(b, 'herald_webhook_queue_capacity', labels), WEBHOOK_QUEUE_SIZE);
  assert.ok(val(b, 'herald_webhook_queue_high_water', labels) >= 1);
  assert.ok(val(b, 'herald_webhook_queue_high_water', labels) <= WEBHOOK_QUEUE_SIZE);
  assert.equal(val(b, 'herald_http_buffers_capacity_bytes'), HTTP_BUFFERS_MB * 1024 * 1024);
  assert.ok(val(b, 'herald_http_buffers_bytes') >= 0);
  assert.equal(val(b, 'herald_inbox_depth'), 0, 'nothing waits in an idle server\'s inboxes');
  c.close();
  await c.waitClose();
});
