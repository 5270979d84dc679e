'use strict';
// The metrics port serves many connections at once: a client that trickles
// its request head, or many that send nothing, must not hold up /metrics and
// /ready for anyone else; each connection gets a hard deadline for its whole
// request head (2 s from accept, not moved by arriving bytes) and a bounded
// head size. Answers stay HTTP/1.0 with Connection: close.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');

const h = require('./lib/harness');

const HEAD_DEADLINE_MS = 2000; // src/metrics/metrics.c
const MAX_CONNS = 64;          // src/metrics/metrics.c

let server;
let metricsPort;

test.before(async () => {
  metricsPort = await h.getFreePort();
  server = await h.startServer({ metrics: { enabled: true, host: '127.0.0.1', port: metricsPort } });
});

test.after(async () => {
  if (server) await server.stop();
});

/** GET on the metrics port: {status, version, headers, text}. */
function get(pathName) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: metricsPort, path: pathName, agent: false, timeout: h.T(5000) },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { text += d; });
        res.on('end', () => resolve({ status: res.statusCode, version: res.httpVersion, headers: res.headers, text }));
      });
    req.on('timeout', () => req.destroy(new Error(`GET ${pathName} on the metrics port timed out${server.deathNote()}`)));
    req.on('error', reject);
  });
}

/**
 * A raw connection to the metrics port that records what it receives and
 * when the server closes it. `closed` resolves with the close time.
 */
async function rawConnect() {
  const sock = net.connect(metricsPort, '127.0.0.1');
  const c = { sock, received: '', closedAt: null };
  sock.setEncoding('latin1');
  sock.on('data', (d) => { c.received += d; });
  sock.on('error', () => { /* a reset shows up as the close */ });
  c.closed = new Promise((resolve) => sock.on('close', () => { c.closedAt = Date.now(); resolve(c.closedAt); }));
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  c.connectedAt = Date.now();
  return c;
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/** Status line and JSON body of a raw answer. */
function parseAnswer(text) {
  const m = /^HTTP\/1\.0 (\d{3}) [^\r\n]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(text);
  assert.ok(m, `not an HTTP/1.0 answer: ${JSON.stringify(text.slice(0, 300))}`);
  assert.match(m[2], /^Connection: close$/mi);
  let json;
  try { json = JSON.parse(m[3]); } catch { json = undefined; }
  return { status: Number(m[1]), json, body: m[3] };
}

async function expectScrapeWorks() {
  const m = await get('/metrics');
  assert.equal(m.status, 200);
  assert.equal(m.version, '1.0');
  assert.equal(m.headers.connection, 'close');
  assert.match(m.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  assert.match(m.text, /^# TYPE herald_connections gauge$/m);
  const r = await get('/ready');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(JSON.parse(r.text), { ok: true });
}

test('a client trickling its request head blocks nobody and is cut off at the head deadline', async () => {
  const slow = await rawConnect();
  const head = 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n\r\n';
  let sent = 0;
  const trickle = () => {
    if (!slow.closedAt && slow.sock.writable && sent < head.length - 1) slow.sock.write(head[sent++]);
  };
  trickle();
  const timer = setInterval(trickle, 500);
  try {
    await h.sleep(700); // the server is mid-way through the slow head
    await expectScrapeWorks();
    assert.equal(slow.closedAt, null, 'the slow client was still connected while /metrics and /ready answered');

    // A deadline moved by each byte would never fire: a byte comes every 500 ms.
    await withTimeout(slow.closed, h.T(10000), 'the server to close the trickling client');
    assert.ok(sent < head.length - 1, 'the head was never completed');
    assert.ok(slow.closedAt - slow.connectedAt >= HEAD_DEADLINE_MS - 100,
      `closed ${slow.closedAt - slow.connectedAt} ms after connecting, before the head deadline`);
    const a = parseAnswer(slow.received);
    assert.equal(a.status, 408);
    assert.equal(typeof a.json.error, 'string');
  } finally {
    clearInterval(timer);
    slow.sock.destroy();
  }
});

test('50 idle connections do not block /metrics; each is closed with 408 at its deadline', async () => {
  const idle = [];
  try {
    for (let i = 0; i < 50; i++) idle.push(await rawConnect());
    await expectScrapeWorks();
    await withTimeout(Promise.all(idle.map((c) => c.closed)), h.T(10000), 'the server to close 50 idle connections');
    for (const c of idle) assert.equal(parseAnswer(c.received).status, 408);
  } finally {
    for (const c of idle) c.sock.destroy();
  }
});

test('more idle connections than the table holds: scrapes still answer, every one is refused cleanly', async () => {
  const idle = [];
  try {
    for (let i = 0; i < MAX_CONNS + 16; i++) idle.push(await rawConnect());
    await expectScrapeWorks();
    await withTimeout(Promise.all(idle.map((c) => c.closed)), h.T(10000), 'the server to close the idle connections');
    for (const c of idle) {
      // 503 when evicted to make room for a newer connection, 408 at the deadline
      const a = parseAnswer(c.received);
      assert.ok(a.status === 503 || a.status === 408, `status ${a.status}`);
      assert.equal(typeof a.json.error, 'string');
    }
  } finally {
    for (const c of idle) c.sock.destroy();
  }
});

test('a request head over 4 KiB is answered 431 with a short JSON body', async () => {
  const c = await rawConnect();
  try {
    c.sock.write(`GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ${'a'.repeat(5000)}\r\n\r\n`);
    await withTimeout(c.closed, h.T(5000), 'the answer to an oversized head');
    const a = parseAnswer(c.received);
    assert.equal(a.status, 431);
    assert.equal(typeof a.json.error, 'string');
    assert.ok(a.body.length < 200);
  } finally {
    c.sock.destroy();
  }
});

test('a malformed request line is answered 400; an unknown path 404', async () => {
  const c = await rawConnect();
  try {
    c.sock.write('hello\r\n\r\n');
    await withTimeout(c.closed, h.T(5000), 'the answer to a malformed request');
    const a = parseAnswer(c.received);
    assert.equal(a.status, 400);
    assert.equal(typeof a.json.error, 'string');
  } finally {
    c.sock.destroy();
  }
  const nf = await get('/nope');
  assert.equal(nf.status, 404);
  assert.deepEqual(JSON.parse(nf.text), { error: 'Not found: try /metrics' });
  const q = await get('/metrics?name[]=herald_connections');
  assert.equal(q.status, 200);
  const up = await get('/up');
  assert.equal(up.status, 200);
});
