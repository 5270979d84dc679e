'use strict';
// Webhooks (PUSHER_PROTOCOL.md §10, issue 5): exact payloads per event type,
// filters and custom headers, batching, the vacate delay, retries, the
// circuit breaker, shutdown flush, and a 2000-socket churn whose webhooks
// must alternate per channel and per member.
//
// Every request reaches a real HTTP receiver on 127.0.0.1 that checks the
// method, Content-Type (exactly application/json), X-Pusher-Key, the
// signature (hex HMAC-SHA256 of the raw body with the app secret) and that
// the body is exactly what JSON.stringify gives; each test ends by asserting
// that no request broke those rules. The receiver can be told to answer a
// status, to stall, to go down and to come back on the same port.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const h = require('./lib/harness');

const ALL_EVENTS = ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed', 'client_event',
  'cache_miss', 'subscription_count'];

// ---------------------------------------------------------------- receiver

class Receiver {
  constructor({ key = h.APP.key, secret = h.APP.secret } = {}) {
    this.key = key;
    this.secret = secret;
    this.requests = []; // {raw, json, headers, status, at}
    this.problems = [];
    this.plan = []; // answers for the next requests: a status or 'stall'
    this.status = 200; // answer once the plan is used up
    this.server = null;
    this.port = 0;
    this.sockets = new Set();
    this.stalled = [];
    this.connections = 0; // TCP connections accepted (keep-alive reuse shows here)
  }

  get url() {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  async start(port = this.port) {
    const server = http.createServer((req, res) => this._onRequest(req, res));
    server.on('connection', (s) => {
      this.connections += 1;
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    this.server = server;
    this.port = server.address().port;
    return this;
  }

  /** Go away: refuse connections (port closed), cut the open ones. */
  async down() {
    if (!this.server) return;
    const s = this.server;
    this.server = null;
    for (const r of this.stalled.splice(0)) r.destroy();
    for (const sock of this.sockets) sock.destroy();
    await new Promise((resolve) => s.close(resolve));
  }

  /** Come back on the same port. */
  up() {
    return this.start(this.port);
  }

  releaseStalled(status = 200) {
    for (const r of this.stalled.splice(0)) {
      try { r.writeHead(status); r.end(); } catch { /* socket gone */ }
    }
  }

  _onRequest(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const entry = { raw: Buffer.concat(chunks).toString('utf8'), headers: req.headers, method: req.method, at: Date.now() };
      this._check(entry);
      const action = this.plan.length ? this.plan.shift() : this.status;
      entry.status = action;
      this.requests.push(entry);
      if (action === 'stall') {
        this.stalled.push(res);
        return;
      }
      res.writeHead(action, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  }

  _check(e) {
    const bad = (what) => this.problems.push(`${what}; body ${e.raw.slice(0, 300)}`);
    if (e.method !== 'POST') bad(`method ${e.method}`);
    if (e.headers['content-type'] !== 'application/json') bad(`content-type ${JSON.stringify(e.headers['content-type'])}`);
    if (e.headers['x-pusher-key'] !== this.key) bad(`x-pusher-key ${e.headers['x-pusher-key']}`);
    if (e.headers['x-pusher-signature'] !== h.hmac(this.secret, e.raw)) bad(`x-pusher-signature ${e.headers['x-pusher-signature']}`);
    let j;
    try { j = JSON.parse(e.raw); } catch { bad('body is not JSON'); return; }
    if (JSON.stringify(j) !== e.raw) bad('body is not the JSON.stringify form');
    if (Object.keys(j).join(',') !== 'time_ms,events') bad(`top-level keys ${Object.keys(j)}`);
    if (!Number.isInteger(j.time_ms) || Math.abs(j.time_ms - Date.now()) > 60000) bad(`time_ms ${j.time_ms}`);
    if (!Array.isArray(j.events) || !j.events.length) bad('events is not a non-empty array');
    e.json = j;
  }

  /** Events of the requests answered 2xx, in arrival order. */
  delivered() {
    return this.requests.filter((r) => typeof r.status === 'number' && r.status < 300 && r.json)
      .flatMap((r) => r.json.events);
  }

  /** Every event received (also in failed requests). */
  received() {
    return this.requests.filter((r) => r.json).flatMap((r) => r.json.events);
  }

  on(channel) {
    return this.delivered().filter((e) => e.channel === channel);
  }

  assertClean() {
    assert.deepEqual(this.problems, [], 'every webhook request must be well-formed and signed');
  }
}

const receivers = [];
const servers = [];
async function receiver(opts) {
  const r = await new Receiver(opts).start(0);
  receivers.push(r);
  return r;
}
async function server(overrides) {
  const s = await h.startServer(overrides);
  servers.push(s);
  return s;
}
/** Stop a server inside its test, so a bad exit (code, sanitizer report) fails that test. */
async function stop(s) {
  servers.splice(servers.indexOf(s), 1);
  await s.stop();
}
after(async () => {
  // only servers whose test failed before stopping them are left here
  for (const s of servers.splice(0)) {
    try { await s.stop(); } catch (e) { console.error(e.message); }
  }
  for (const r of receivers) await r.down();
});

function metricsText(port) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

/** Sum of the samples of metric `name` whose labels contain every string of `labels`. */
function metric(text, name, ...labels) {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!labels.every((l) => line.includes(l))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    found = true;
  }
  return found ? sum : undefined;
}

/** Wait until f() returns an array of at least n items, and return it. */
function atLeast(f, n, timeout = h.T(5000)) {
  return h.eventually(() => {
    const v = f();
    return v.length >= n ? v : false;
  }, { timeout });
}

const webhook = (r, event_types, extra = {}) => ({ url: r.url, event_types, ...extra });

// ---------------------------------------------------------------- payloads

test('each event type arrives with its exact payload; filters and custom headers apply', async (t) => {
  const all = await receiver();
  const filtered = await receiver();
  const srv = await server({
    webhooks: { batching: { enabled: true, duration: 50 }, vacate_delay_ms: 300 },
    app: {
      webhooks: [
        webhook(all, ALL_EVENTS),
        webhook(filtered, ['member_added', 'member_removed'], {
          filter: { channel_prefix: 'presence-', channel_suffix: '-vip' },
          headers: { 'X-Herald-Test': 'yes' },
        }),
      ],
    },
  });
  const wait = (ch, n) => atLeast(() => all.on(ch), n);
  const json = (e) => JSON.stringify(e);

  await t.test('channel_occupied and subscription_count', async () => {
    const ch = h.uniq('public');
    const c = await h.connectRaw(srv);
    await c.subscribeOk(ch);
    const evs = await wait(ch, 2);
    assert.equal(json(evs[0]), json({ name: 'channel_occupied', channel: ch }));
    assert.equal(json(evs[1]), json({ name: 'subscription_count', channel: ch, subscription_count: 1 }));
    const d = await h.connectRaw(srv);
    await d.subscribeOk(ch);
    const more = await wait(ch, 3);
    assert.equal(json(more[2]), json({ name: 'subscription_count', channel: ch, subscription_count: 2 }));
    c.close();
    d.close();
    await wait(ch, 4);
  });

  await t.test('channel_vacated, after the delay', async () => {
    const ch = h.uniq('public');
    const c = await h.connectRaw(srv);
    await c.subscribeOk(ch);
    await wait(ch, 2);
    const left = Date.now();
    c.unsubscribe(ch);
    const evs = await wait(ch, 3);
    assert.equal(json(evs[2]), json({ name: 'channel_vacated', channel: ch }));
    const req = all.requests.find((r) => r.json && r.json.events.some((e) => e.name === 'channel_vacated' && e.channel === ch));
    assert.ok(req.at - left >= 250, `vacated after ${req.at - left} ms, expected the 300 ms delay`);
    c.close();
  });

  await t.test('member_added / member_removed with a numeric user_id (sent as a string)', async () => {
    const ch = h.uniq('presence-room');
    const a = await h.connectRaw(srv);
    await a.subscribeOk(ch, { userId: 42, userInfo: { name: 'A' } });
    const b = await h.connectRaw(srv);
    await b.subscribeOk(ch, { userId: 'bob' });
    const evs = await wait(ch, 3);
    assert.deepEqual(evs.map(json), [
      json({ name: 'channel_occupied', channel: ch }),
      json({ name: 'member_added', channel: ch, user_id: '42' }),
      json({ name: 'member_added', channel: ch, user_id: 'bob' }),
    ]);
    a.close();
    const gone = await wait(ch, 4);
    assert.equal(json(gone[3]), json({ name: 'member_removed', channel: ch, user_id: '42' }));
    b.close();
    const end = await wait(ch, 6);
    assert.deepEqual(end.slice(4).map(json), [
      json({ name: 'member_removed', channel: ch, user_id: 'bob' }),
      json({ name: 'channel_vacated', channel: ch }),
    ]);
  });

  await t.test('client_event on a private channel: channel, event, data as sent, socket_id, no user_id', async () => {
    const ch = h.uniq('private-chat');
    const a = await h.connectRaw(srv);
    const b = await h.connectRaw(srv);
    await a.subscribeOk(ch);
    await b.subscribeOk(ch);
    const data = { text: 'hé "quoted"\n', n: 3, list: [1, true, null], nested: { k: 'v' } };
    a.send({ event: 'client-typing', channel: ch, data });
    await b.waitFor('client-typing');
    const evs = await atLeast(() => all.on(ch).filter((e) => e.name === 'client_event'), 1);
    assert.equal(json(evs[0]), json({ name: 'client_event', channel: ch, event: 'client-typing', data, socket_id: a.socketId }));
    a.send({ event: 'client-plain', channel: ch, data: 'a string' });
    const two = await atLeast(() => all.on(ch).filter((e) => e.name === 'client_event'), 2);
    assert.equal(json(two[1]), json({ name: 'client_event', channel: ch, event: 'client-plain', data: 'a string', socket_id: a.socketId }));
    a.close();
    b.close();
  });

  await t.test('client_event on a presence channel carries the sender user_id', async () => {
    const ch = h.uniq('presence-chat');
    const a = await h.connectRaw(srv);
    const b = await h.connectRaw(srv);
    await a.subscribeOk(ch, { userId: 7 });
    await b.subscribeOk(ch, { userId: 8 });
    a.send({ event: 'client-hi', channel: ch, data: { x: 1 } });
    const evs = await atLeast(() => all.on(ch).filter((e) => e.name === 'client_event'), 1);
    assert.equal(json(evs[0]), json({ name: 'client_event', channel: ch, event: 'client-hi', data: { x: 1 }, socket_id: a.socketId, user_id: '7' }));
    a.close();
    b.close();
  });

  await t.test('cache_miss, once while the cache stays empty', async () => {
    const ch = h.uniq('cache-prices');
    const c = await h.connectRaw(srv);
    await c.subscribeOk(ch);
    const evs = await atLeast(() => all.on(ch).filter((e) => e.name === 'cache_miss'), 1);
    assert.equal(json(evs[0]), json({ name: 'cache_miss', channel: ch }));
    const d = await h.connectRaw(srv);
    await d.subscribeOk(ch); // a second miss on the still-empty cache
    await d.waitFor((m) => m.event === 'pusher:cache_miss');
    await h.sleep(300);
    assert.equal(all.on(ch).filter((e) => e.name === 'cache_miss').length, 1);
    c.close();
    d.close();
  });

  await t.test('filtered endpoint: only member events of presence-*-vip channels, with its custom header', async () => {
    const vip = h.uniq('presence-lounge').concat('-vip');
    const plain = h.uniq('presence-lounge');
    const c = await h.connectRaw(srv);
    await c.subscribeOk(plain, { userId: 'u1' });
    await c.subscribeOk(vip, { userId: 'u1' });
    await wait(vip, 2);
    c.close();
    await wait(vip, 4);
    const got = await atLeast(() => filtered.delivered(), 2);
    assert.deepEqual(got.map(json), [
      json({ name: 'member_added', channel: vip, user_id: 'u1' }),
      json({ name: 'member_removed', channel: vip, user_id: 'u1' }),
    ]);
    for (const r of filtered.requests) assert.equal(r.headers['x-herald-test'], 'yes');
    for (const r of all.requests) assert.equal(r.headers['x-herald-test'], undefined);
  });

  await stop(srv);
  all.assertClean();
  filtered.assertClean();
});

// ---------------------------------------------------------------- batching

test('batching: many occupancy changes inside the window arrive in few requests, in order', async () => {
  const r = await receiver();
  const srv = await server({
    webhooks: { batching: { enabled: true, duration: 400 }, max_batch_size: 10, vacate_delay_ms: 0 },
    app: { webhooks: [webhook(r, ['channel_occupied'])] },
  });
  const c = await h.connectRaw(srv);
  const names = Array.from({ length: 25 }, (_, i) => `batch-${i}-${h.uniq('c')}`);
  for (const ch of names) c.subscribe(ch, { auth: '' });
  const evs = await atLeast(() => r.delivered(), 25);
  assert.deepEqual(evs.map((e) => e.channel), names, 'events in the order they happened');
  assert.ok(r.requests.length >= 3 && r.requests.length <= 6, `25 events in ${r.requests.length} requests (max 10 each)`);
  for (const q of r.requests) assert.ok(q.json.events.length <= 10, `batch of ${q.json.events.length}`);
  await stop(srv);
  r.assertClean();
});

test('batching disabled: one event per request, over a kept-alive connection', async () => {
  const r = await receiver();
  const srv = await server({
    webhooks: { batching: { enabled: false, duration: 50 } },
    app: { webhooks: [webhook(r, ['channel_occupied'])] },
  });
  const c = await h.connectRaw(srv);
  for (let i = 0; i < 5; i++) c.subscribe(h.uniq('solo'), { auth: '' });
  await atLeast(() => r.delivered(), 5);
  for (const q of r.requests) assert.equal(q.json.events.length, 1);
  assert.ok(r.connections <= 2, `${r.requests.length} requests over ${r.connections} connections`);
  await stop(srv);
  r.assertClean();
});

// ---------------------------------------------------------------- delay

test('vacate delay: leave and rejoin within it sends nothing; leave for good sends exactly one', async () => {
  const DELAY = h.T(700); // the rejoin below must fit in it, also on a loaded sanitizer build
  const r = await receiver();
  const srv = await server({
    webhooks: { batching: { enabled: true, duration: 20 }, vacate_delay_ms: DELAY },
    app: { webhooks: [webhook(r, ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'])] },
  });
  const pub = h.uniq('flaky');
  const pres = h.uniq('presence-flaky');
  let c = await h.connectRaw(srv);
  await c.subscribeOk(pub);
  await c.subscribeOk(pres, { userId: 'u' });
  await atLeast(() => r.delivered(), 3);

  // drop the connection and come back (another socket) within the delay
  c.close();
  await c.waitClose();
  c = await h.connectRaw(srv);
  await c.subscribeOk(pub);
  await c.subscribeOk(pres, { userId: 'u' });
  await h.sleep(DELAY + h.T(500));
  assert.deepEqual(r.delivered().map((e) => `${e.name} ${e.channel}`), [
    `channel_occupied ${pub}`, `channel_occupied ${pres}`, `member_added ${pres}`,
  ]);

  // unsubscribe and resubscribe on the same socket within the delay
  c.unsubscribe(pub);
  await h.sleep(100);
  await c.subscribeOk(pub);
  await h.sleep(DELAY + h.T(500));
  assert.equal(r.delivered().length, 3, 'still nothing new');

  // leave for good
  const left = Date.now();
  c.close();
  const evs = await atLeast(() => r.delivered(), 6);
  assert.ok(Date.now() - left >= DELAY - 50, 'not before the delay');
  await h.sleep(DELAY + h.T(300));
  assert.deepEqual(r.delivered().slice(3).map((e) => `${e.name} ${e.channel}`).sort(), [
    `channel_vacated ${pres}`, `channel_vacated ${pub}`, `member_removed ${pres}`,
  ].sort());
  assert.equal(evs.length, 6);
  assert.equal(r.delivered().length, 6, 'exactly one vacated per channel');
  await stop(srv);
  r.assertClean();
});

// ---------------------------------------------------------------- retries

test('retries, rejection, stall and the circuit breaker', async (t) => {
  const r500 = await receiver();
  const r400 = await receiver();
  const rStall = await receiver();
  const rDown = await receiver();
  const metricsPort = await h.getFreePort();
  const types = ['channel_occupied', 'channel_vacated'];
  const srv = await server({
    shutdown_grace_period: 2,
    metrics: { enabled: true, host: '127.0.0.1', port: metricsPort },
    webhooks: {
      batching: { enabled: true, duration: 20 },
      vacate_delay_ms: 100,
      retry_initial_ms: 100,
      retry_max_interval_ms: 300,
      timeout_ms: 500,
      breaker: { failure_threshold: 3, cooldown_ms: 600 },
    },
    app: {
      webhooks: [
        webhook(r500, types, { filter: { channel_prefix: 'r500-' } }),
        webhook(r400, types, { filter: { channel_prefix: 'r400-' } }),
        webhook(rStall, types, { filter: { channel_prefix: 'stall-' } }),
        webhook(rDown, types, { filter: { channel_prefix: 'down-' } }),
      ],
    },
  });
  const scrape = () => metricsText(metricsPort);
  const c = await h.connectRaw(srv);

  await t.test('500 twice, then 200: delivered once', async () => {
    r500.plan = [500, 500];
    const ch = h.uniq('r500-x');
    await c.subscribeOk(ch);
    await atLeast(() => r500.delivered(), 1);
    await h.sleep(300);
    assert.deepEqual(r500.requests.map((q) => q.status), [500, 500, 200]);
    assert.deepEqual(r500.delivered(), [{ name: 'channel_occupied', channel: ch }]);
    for (const q of r500.requests) assert.equal(q.raw.includes(ch), true, 'the same event each time');
    const m = await scrape();
    assert.equal(metric(m, 'herald_webhook_retried_total', `url="${r500.url}"`), 2);
    assert.equal(metric(m, 'herald_webhook_events_sent_total', `url="${r500.url}"`), 1);
    assert.equal(metric(m, 'herald_webhook_breaker_state', `url="${r500.url}"`), 0);
  });

  await t.test('400: not retried, counted as dropped', async () => {
    r400.status = 400;
    const ch = h.uniq('r400-x');
    await c.subscribeOk(ch);
    await atLeast(() => r400.requests, 1);
    await h.sleep(h.T(600));
    assert.equal(r400.requests.length, 1);
    const m = await scrape();
    assert.equal(metric(m, 'herald_webhook_dropped_total', `url="${r400.url}"`, 'reason="rejected"'), 1);
    assert.equal(metric(m, 'herald_webhook_retried_total', `url="${r400.url}"`), 0);
  });

  await t.test('a stalled request times out and is retried', async () => {
    rStall.plan = ['stall'];
    const ch = h.uniq('stall-x');
    await c.subscribeOk(ch);
    await atLeast(() => rStall.delivered(), 1, h.T(5000));
    assert.equal(rStall.requests[0].status, 'stall');
    assert.deepEqual(rStall.delivered(), [{ name: 'channel_occupied', channel: ch }]);
    rStall.releaseStalled();
  });

  await t.test('receiver down: breaker opens; back: everything queued is delivered in order', async () => {
    await rDown.down();
    const chans = Array.from({ length: 6 }, (_, i) => `down-${i}-${h.uniq('c')}`);
    await c.subscribeOk(chans[0]);
    await h.eventually(async () => metric(await scrape(), 'herald_webhook_breaker_state', `url="${rDown.url}"`) === 2,
      { timeout: h.T(5000) });
    for (const ch of chans.slice(1)) await c.subscribeOk(ch);
    c.unsubscribe(chans[0]);
    // events wait in the queue: 6 occupied + 1 vacated
    await h.eventually(async () => metric(await scrape(), 'herald_webhook_queue_depth', `url="${rDown.url}"`) === 7);
    let m = await scrape();
    assert.ok(metric(m, 'herald_webhook_retried_total', `url="${rDown.url}"`) >= 3);
    assert.match(srv.stderr, new RegExp(`${rDown.url}.*circuit breaker open`));
    await rDown.up();
    const evs = await atLeast(() => rDown.delivered(), 7, h.T(5000));
    assert.deepEqual(evs.map((e) => `${e.name} ${e.channel}`), [
      ...chans.map((ch) => `channel_occupied ${ch}`), `channel_vacated ${chans[0]}`,
    ]);
    // The receiver counts a request when it arrives; the server settles it
    // (breaker, queue depth, log line) only once the 200 is back.
    await h.eventually(async () => {
      const now = await scrape();
      return metric(now, 'herald_webhook_breaker_state', `url="${rDown.url}"`) === 0
        && metric(now, 'herald_webhook_queue_depth', `url="${rDown.url}"`) === 0;
    }, { timeout: h.T(3000) });
    await h.eventually(() => {
      assert.match(srv.stderr, new RegExp(`${rDown.url}.*circuit breaker closed`));
      return true;
    }, { timeout: h.T(3000) });
    m = await scrape();
    assert.equal(metric(m, 'herald_webhook_dropped_total', `url="${rDown.url}"`), 0);
  });

  await stop(srv);
  for (const r of [r500, r400, rStall, rDown]) r.assertClean();
});

// ---------------------------------------------------------------- shutdown

test('shutdown sends the held-back channel_vacated before exiting', async () => {
  const r = await receiver();
  const srv = await h.startServer({
    webhooks: { batching: { enabled: true, duration: 20 }, vacate_delay_ms: 60000 },
    app: { webhooks: [webhook(r, ['channel_occupied', 'channel_vacated'])] },
  });
  const ch = h.uniq('bye');
  const c = await h.connectRaw(srv);
  await c.subscribeOk(ch);
  await atLeast(() => r.delivered(), 1);
  c.close();
  await c.waitClose();
  await h.sleep(100);
  assert.equal(r.delivered().length, 1, 'vacated is held back for a minute');
  const t0 = Date.now();
  await srv.stop();
  assert.ok(Date.now() - t0 < h.T(5000));
  assert.deepEqual(r.delivered(), [{ name: 'channel_occupied', channel: ch }, { name: 'channel_vacated', channel: ch }]);
  r.assertClean();
});

// ---------------------------------------------------------------- churn

test('churn: 2000 sockets join and leave; occupied/vacated and added/removed alternate everywhere', async () => {
  const r = await receiver();
  const metricsPort = await h.getFreePort();
  const srv = await server({
    metrics: { enabled: true, host: '127.0.0.1', port: metricsPort },
    webhooks: { batching: { enabled: true, duration: 50 }, vacate_delay_ms: 300 },
    app: {
      max_presence_members_per_channel: 1000,
      webhooks: [webhook(r, ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'])],
    },
  });
  const tag = h.uniq('churn');
  const pubs = Array.from({ length: 20 }, (_, i) => `${tag}-pub-${i}`);
  const pres = Array.from({ length: 20 }, (_, i) => `presence-${tag}-${i}`);
  const pick = (a) => a[Math.floor(Math.random() * a.length)];
  const users = Array.from({ length: 150 }, (_, i) => (i % 2 ? i : `user-${i}`)); // numbers and strings

  const open = new Set();
  const TOTAL = 2000;
  const WAVE = 200;
  for (let made = 0; made < TOTAL; made += WAVE) {
    const wave = await Promise.all(Array.from({ length: WAVE }, async () => {
      const c = await h.connectRaw(srv);
      await c.subscribeOk(pick(pubs));
      await c.subscribeOk(pick(pres), { userId: pick(users) });
      return c;
    }));
    wave.forEach((c) => open.add(c));
    // about a third of the open sockets leave; some of them quickly come back as new sockets
    const leaving = [...open].filter(() => Math.random() < 0.35);
    for (const c of leaving) {
      open.delete(c);
      c.terminate();
    }
    await h.sleep(Math.random() < 0.5 ? 50 : 400);
  }
  for (const c of open) c.close();
  srv.clients.clear();

  // settle: every socket gone, every key ended down, nothing queued, held back or in flight
  const sequences = () => {
    const seq = new Map();
    const push = (k, v) => { if (!seq.has(k)) seq.set(k, []); seq.get(k).push(v); };
    for (const e of r.delivered()) {
      if (e.name === 'channel_occupied') push(e.channel, 'up');
      else if (e.name === 'channel_vacated') push(e.channel, 'down');
      else if (e.name === 'member_added') push(`${e.channel} ${e.user_id}`, 'up');
      else if (e.name === 'member_removed') push(`${e.channel} ${e.user_id}`, 'down');
    }
    return seq;
  };
  const settled = async () => {
    const m = await metricsText(metricsPort);
    if (metric(m, 'herald_connections') !== 0 || metric(m, 'herald_webhook_delayed_pending') !== 0 ||
      metric(m, 'herald_webhook_queue_depth') !== 0 || metric(m, 'herald_webhook_requests_in_flight') !== 0) return false;
    return [...sequences().values()].every((s) => s[s.length - 1] === 'down');
  };
  await h.eventually(settled, { timeout: h.T(20000), interval: 200 });
  await h.sleep(h.T(700)); // anything late would be a duplicate
  assert.ok(await settled());

  const seq = sequences();
  for (const ch of [...pubs, ...pres]) assert.ok(seq.has(ch), `${ch} was occupied at some point`);
  let members = 0;
  for (const [k, s] of seq) {
    if (k.includes(' ')) members++;
    for (let i = 0; i < s.length; i++) {
      assert.equal(s[i], i % 2 ? 'down' : 'up', `${k}: ${s.join(',')} must alternate, starting with up`);
    }
    assert.equal(s[s.length - 1], 'down', `${k}: ends vacated / removed (everyone left): ${s.join(',')}`);
  }
  assert.ok(members > 100, `${members} (channel, user) pairs seen`);
  const m = await metricsText(metricsPort);
  assert.equal(metric(m, 'herald_webhook_dropped_total'), 0);
  await stop(srv);
  r.assertClean();
});
