'use strict';
// Per-app HTTP API rate limit (max_http_requests_per_second): a burst over
// the limit is answered 429 {"error":"Too many requests ..."} with a
// Retry-After header, only authenticated requests are charged, other apps
// are not affected, and after waiting the app's requests pass again.
//
// Timing: the bucket holds one second's worth (burst = rate). Assertions
// leave room for refills during a burst and wait well past Retry-After.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const RATE = 5;
const LIMITED = { id: 'lim-id', key: 'lim-key', secret: 'lim-secret', max_http_requests_per_second: RATE };
const NEIGHBOUR = { id: 'nb-id', key: 'nb-key', secret: 'nb-secret', max_http_requests_per_second: RATE };
const FORGED = { id: 'fg-id', key: 'fg-key', secret: 'fg-secret', max_http_requests_per_second: RATE };

let server;
before(async () => {
  server = await h.startServer({ extraApps: [LIMITED, NEIGHBOUR, FORGED] });
});
after(async () => { if (server) await server.stop(); });

function trigger(app, ch) {
  return h.signedRequest(server, { method: 'POST', path: `/apps/${app.id}/events`, app, body: { name: 'n', channel: ch, data: 'd' } });
}
function listChannels(app) {
  return h.signedRequest(server, { path: `/apps/${app.id}/channels`, app });
}

/** n requests at once (publishes and reads mixed); resolves with the responses and the time they took. */
async function burst(app, n) {
  const t0 = Date.now();
  const ch = h.uniq('lim');
  const rs = await Promise.all(Array.from({ length: n }, (_, i) => (i % 2 ? listChannels(app) : trigger(app, ch))));
  return { rs, ms: Date.now() - t0 };
}

function assert429(r) {
  assert.equal(r.status, 429, r.text);
  assert.ok(r.json && typeof r.json.error === 'string', `429 body must be {"error": ...}: ${r.text}`);
  assert.match(r.json.error, /^Too many requests/);
  const ra = r.headers['retry-after'];
  assert.ok(ra !== undefined, `429 without Retry-After (headers ${JSON.stringify(r.headers)})`);
  assert.match(ra, /^\d+$/);
  assert.ok(Number(ra) >= 1, `Retry-After ${ra}`);
  return Number(ra);
}

test('a burst over the limit gets 429 with Retry-After; other apps are unaffected; later requests pass', async () => {
  const { rs, ms } = await burst(LIMITED, 30);
  const ok = rs.filter((r) => r.status === 200);
  const limited = rs.filter((r) => r.status === 429);
  assert.equal(ok.length + limited.length, rs.length, `only 200 and 429 expected: ${rs.map((r) => r.status)}`);
  // at least the burst passes; at most the burst plus what refilled meanwhile (+1 for rounding)
  assert.ok(ok.length >= RATE, `${ok.length} passed, expected >= ${RATE}`);
  assert.ok(ok.length <= RATE + Math.ceil((ms / 1000) * RATE) + 1, `${ok.length} passed in ${ms} ms`);
  assert.ok(limited.length > 0, 'expected some 429s');
  const waits = limited.map(assert429);

  // the neighbour (same limit, own bucket) and the unlimited default app pass at once
  for (let i = 0; i < RATE; i++) assert.equal((await listChannels(NEIGHBOUR)).status, 200);
  const free = await Promise.all(Array.from({ length: 40 }, () => listChannels(h.APP)));
  assert.deepEqual([...new Set(free.map((r) => r.status))], [200]);
  // health routes are not charged
  assert.equal((await h.httpRequest(server, { path: `/up/${LIMITED.id}` })).status, 200);

  // after Retry-After (plus a generous margin) the app passes again
  await h.sleep(Math.max(...waits) * 1000 + 1000);
  const again = await trigger(LIMITED, h.uniq('lim-again'));
  assert.equal(again.status, 200, again.text);
});

test('the 429 comes before the handler: a throttled publish is not delivered', async () => {
  const ch = h.uniq('lim-deliver');
  const c = await h.connectRaw(server, { key: LIMITED.key });
  await c.subscribeOk(ch);
  await h.sleep(1500); // let the bucket refill from the previous test
  const rs = await Promise.all(Array.from({ length: RATE * 4 }, (_, i) => h.signedRequest(server, {
    method: 'POST', path: `/apps/${LIMITED.id}/events`, app: LIMITED, body: { name: `e${i}`, channel: ch, data: String(i) },
  })));
  const passed = rs.map((r, i) => (r.status === 200 ? `e${i}` : null)).filter(Boolean);
  assert.ok(rs.some((r) => r.status === 429), `statuses ${rs.map((r) => r.status)}`);
  for (const name of passed) await c.waitFor(name);
  const refused = rs.map((r, i) => (r.status === 429 ? `e${i}` : null)).filter(Boolean);
  await c.expectNone((m) => refused.includes(m.event), 300);
  c.close();
});

test('requests that fail authentication are not charged to the app', async () => {
  // 50 requests with a wrong signature: all 401, and the bucket is untouched
  const forged = await Promise.all(Array.from({ length: 50 }, () => h.signedRequest(server, {
    path: `/apps/${FORGED.id}/channels`, app: { ...FORGED, secret: 'not-the-secret' },
  })));
  assert.deepEqual([...new Set(forged.map((r) => r.status))], [401]);
  for (let i = 0; i < RATE; i++) {
    const r = await listChannels(FORGED);
    assert.equal(r.status, 200, `request ${i}: ${r.text}`);
  }
});
