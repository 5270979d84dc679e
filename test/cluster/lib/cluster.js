'use strict';
// Multinode test harness for herald's Redis adapter (docs/CLUSTER.md §9).
//
// - RedisServer: a private redis-server on a free loopback port, no
//   persistence; stop() / start() again on the same port for outage tests.
// - startCluster(opts): one RedisServer, N herald nodes sharing it under a
//   random key prefix (each with its own port and metrics port, started by
//   test/integration/lib's startServer with the HERALD_ADAPTER_* env), and a
//   webhook receiver every app posts to. Each node waits for GET /ready 200.
// - WebhookReceiver: records every webhook event with its arrival time and
//   checks method, content type, key and signature of every request.
// - metric(): one family of a node's Prometheus text, summed over the
//   samples whose labels include the given ones (other labels ignored).
// - sameAnswer(): the same signed GET on every node; the bodies must be
//   byte-identical.
//
// Threading: plain Node, one event loop; every wait has a deadline scaled by
// HERALD_TEST_TIMEOUT_SCALE (h.T).
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const http = require('node:http');
const net = require('node:net');

const h = require('../../integration/lib/harness');

const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';

// ---------------------------------------------------------------- redis

/** One RESP command over a fresh connection; resolves with the parsed reply (errors as Error objects). */
function redisCommand(port, args, timeout = h.T(2000)) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const parts = [`*${args.length}\r\n`];
    for (const a of args) {
      const s = Buffer.from(String(a));
      parts.push(`$${s.length}\r\n`, s, '\r\n');
    }
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`redis ${args[0]} on :${port} timed out`)); }, timeout);
    sock.on('connect', () => { for (const p of parts) sock.write(p); });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parseResp(buf, 0);
      if (r) { clearTimeout(timer); sock.destroy(); resolve(r.value); }
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

/** Parse one RESP value at buf[i]; null when incomplete. */
function parseResp(buf, i) {
  const eol = buf.indexOf('\r\n', i);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[i]);
  const line = buf.toString('utf8', i + 1, eol);
  const next = eol + 2;
  if (type === '+') return { value: line, end: next };
  if (type === '-') return { value: new Error(line), end: next };
  if (type === ':') return { value: Number(line), end: next };
  if (type === '$') {
    const n = Number(line);
    if (n < 0) return { value: null, end: next };
    if (buf.length < next + n + 2) return null;
    return { value: buf.toString('utf8', next, next + n), end: next + n + 2 };
  }
  if (type === '*') {
    const n = Number(line);
    if (n < 0) return { value: null, end: next };
    const out = [];
    let at = next;
    for (let k = 0; k < n; k++) {
      const r = parseResp(buf, at);
      if (!r) return null;
      out.push(r.value);
      at = r.end;
    }
    return { value: out, end: at };
  }
  throw new Error(`unexpected RESP type ${type}`);
}

const liveRedis = new Set();
process.on('exit', () => {
  for (const r of liveRedis) { try { r.proc.kill('SIGKILL'); } catch { /* gone */ } }
});

class RedisServer {
  constructor() {
    this.port = 0;
    this.proc = null;
    this.watchdog = null;
    this.log = '';
  }

  /** Start (again) on this.port, or on a free port the first time. Resolves once PING answers. */
  async start() {
    if (!this.port) this.port = await h.getFreePort();
    try {
      execFileSync(REDIS_SERVER, ['--version'], { stdio: 'ignore' });
    } catch {
      throw new Error(`${REDIS_SERVER} not found: install redis-server (scripts/deps.sh test) or set REDIS_SERVER`);
    }
    const proc = spawn(REDIS_SERVER, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '',
      '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'yes', '--loglevel', 'warning'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    liveRedis.add(this);
    proc.stdout.on('data', (d) => { this.log += d; });
    proc.stderr.on('data', (d) => { this.log += d; });
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => {
      liveRedis.delete(this);
      resolve({ code, signal });
    }));
    // If this test process dies without its exit handlers (killed by the
    // runner), a tiny watchdog stops redis within a second. It only kills
    // the pid while that pid is still the redis it watches.
    this.watchdog = spawn('sh', ['-c',
      'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done; kill -0 "$2" 2>/dev/null && kill -9 "$2"',
      'watchdog', String(process.pid), String(proc.pid)], { stdio: 'ignore' });
    this.watchdog.unref();
    const deadline = Date.now() + h.T(5000);
    for (;;) {
      try {
        if ((await redisCommand(this.port, ['PING'], 500)) === 'PONG') return this;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`redis-server on :${this.port} did not answer PING:\n${this.log}`);
      await h.sleep(20);
    }
  }

  /** Stop it hard (SIGKILL: connections are reset, nothing is saved). */
  async stop() {
    if (!this.proc) return;
    const { proc, watchdog } = this;
    this.proc = null;
    try { watchdog.kill('SIGKILL'); } catch { /* gone */ }
    try { proc.kill('SIGKILL'); } catch { /* gone */ }
    await this.exited;
  }

  command(...args) {
    return redisCommand(this.port, args);
  }
}

// ---------------------------------------------------------------- webhooks

class WebhookReceiver {
  constructor(apps) {
    this.secrets = new Map(apps.map((a) => [a.key, a.secret]));
    this.events = []; // {..event, at, app}
    this.problems = [];
    this.server = null;
    this.port = 0;
    this.waiters = [];
  }

  get url() { return `http://127.0.0.1:${this.port}/hook`; }

  async start() {
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok');
        this._record(req, Buffer.concat(chunks).toString('utf8'));
      });
    });
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    return this;
  }

  _record(req, raw) {
    const key = req.headers['x-pusher-key'];
    const secret = this.secrets.get(key);
    if (req.method !== 'POST') this.problems.push(`method ${req.method}`);
    if (!secret) { this.problems.push(`unknown x-pusher-key ${key}`); return; }
    if (req.headers['x-pusher-signature'] !== h.hmac(secret, raw)) this.problems.push(`bad signature on ${raw.slice(0, 200)}`);
    let body;
    try { body = JSON.parse(raw); } catch { this.problems.push(`not JSON: ${raw.slice(0, 200)}`); return; }
    const at = Date.now();
    for (const e of body.events || []) this.events.push({ ...e, at, app: key });
    for (const w of this.waiters.slice()) w.check();
  }

  /** Events matching pred (a function, or {name, channel, user_id, app} fields to equal). */
  find(pred) {
    const p = typeof pred === 'function' ? pred
      : (e) => Object.entries(pred).every(([k, v]) => e[k] === v);
    return this.events.filter(p);
  }

  /** Resolve with the matching events once there are at least n of them. */
  waitCount(pred, n = 1, timeout = h.T(5000)) {
    return new Promise((resolve, reject) => {
      const w = {
        check: () => {
          const got = this.find(pred);
          if (got.length >= n) { done(); resolve(got); }
        },
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`webhooks: wanted ${n} matching ${JSON.stringify(typeof pred === 'function' ? String(pred) : pred)}, ` +
          `got ${this.find(pred).length} within ${timeout} ms; last events:\n  ${this.events.slice(-15).map((e) => JSON.stringify(e)).join('\n  ')}`));
      }, timeout);
      const done = () => { clearTimeout(timer); const i = this.waiters.indexOf(w); if (i >= 0) this.waiters.splice(i, 1); };
      this.waiters.push(w);
      w.check();
    });
  }

  assertClean() { assert.deepEqual(this.problems, [], 'every webhook request is a signed POST of JSON'); }

  async stop() {
    if (this.server) await new Promise((r) => { this.server.close(r); this.server.closeAllConnections(); });
    this.server = null;
  }
}

// ---------------------------------------------------------------- metrics

function httpGet(port, path, timeout = h.T(3000)) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} on :${port} timed out`)));
    req.on('error', reject);
  });
}

/** Parse Prometheus text into [{name, labels, value}]. */
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

/**
 * Sum of the samples of `family` on node's metrics port whose labels include
 * `labels` (extra labels ignored). Throws when the family is absent (a
 * metric that does not exist must not read as 0), unless absentIsZero: for
 * a reading taken before anything could have been counted.
 */
async function metric(node, family, labels = {}, { absentIsZero = false } = {}) {
  const r = await httpGet(node.metricsPort, '/metrics');
  assert.equal(r.status, 200, `GET /metrics on ${node.name}`);
  const samples = parseMetrics(r.text).filter((s) => s.name === family);
  if (!samples.length && absentIsZero) return 0;
  assert.ok(samples.length > 0, `${node.name}: no metric family ${family} in /metrics`);
  return samples.filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

// ---------------------------------------------------------------- cluster

const NODE_NAMES = 'ABCDEFGH';

/** GET /ready on the main port: {status, text}. */
function ready(node) {
  return httpGet(node.port, '/ready', h.T(2000));
}

async function waitReady(node, timeout = h.T(10000)) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    if (node.exit) throw new Error(`node ${node.name} exited: ${JSON.stringify(node.exit)}\n${tailOf(node.stderr)}`);
    try { last = await ready(node); if (last.status === 200) return; } catch (e) { last = { status: 0, text: e.message }; }
    if (Date.now() > deadline) {
      throw new Error(`node ${node.name} not ready within ${timeout} ms: ${last.status} ${last.text}\n${tailOf(node.stderr)}`);
    }
    await h.sleep(25);
  }
}

function tailOf(s, n = 4000) { return s.length > n ? `...${s.slice(-n)}` : s; }

/**
 * startCluster(opts):
 *   nodes      : how many herald nodes (default 3), named A, B, C...
 *   apps       : app configs (merged onto the harness' DEFAULT_APP); default one app
 *   webhookEvents: event types every app posts to the receiver (default: none, no receiver)
 *   env        : extra HERALD_* variables for every node (e.g. HERALD_WEBHOOKS_VACATE_DELAY_MS)
 *   config     : extra top-level config keys for every node
 * Returns { redis, nodes, hooks, prefix, apps, addNode(), kill(node), stop(), logs() }.
 */
async function startCluster(opts = {}) {
  const n = opts.nodes === undefined ? 3 : opts.nodes;
  const redis = await new RedisServer().start();
  const prefix = `ct${crypto.randomBytes(4).toString('hex')}`;
  const apps = (opts.apps || [{ ...h.APP }]).map((a) => ({ ...h.DEFAULT_APP, ...a }));
  let hooks = null;
  if (opts.webhookEvents) {
    hooks = await new WebhookReceiver(apps).start();
    for (const a of apps) a.webhooks = [{ url: hooks.url, event_types: opts.webhookEvents }];
  }
  const cluster = {
    redis, prefix, apps, hooks, nodes: [],
    env: {
      HERALD_ADAPTER_DRIVER: 'redis',
      HERALD_ADAPTER_REDIS_HOST: '127.0.0.1',
      HERALD_ADAPTER_REDIS_PORT: String(redis.port),
      HERALD_ADAPTER_REDIS_PREFIX: prefix,
      ...(opts.env || {}),
    },
    async addNode(extraEnv = {}) {
      const metricsPort = await h.getFreePort();
      const node = await h.startServer({
        apps,
        metrics: { enabled: true, host: '127.0.0.1', port: metricsPort },
        ...(opts.config || {}),
      }, { env: { ...this.env, ...extraEnv } });
      node.metricsPort = metricsPort;
      node.name = NODE_NAMES[this.nodes.length] || `N${this.nodes.length}`;
      this.nodes.push(node);
      await waitReady(node);
      return node;
    },
    /** SIGKILL a node; resolves once it is gone. Its clients see their sockets drop. */
    async kill(node) {
      node.stopping = true;
      node.proc.kill('SIGKILL');
      await node.exitPromise;
      node.clients.clear();
    },
    /** Every node's stderr tail, for failure messages. */
    logs() {
      return this.nodes.map((nd) => `----- node ${nd.name} (port ${nd.port}) stderr:\n${tailOf(nd.stderr)}`).join('\n') +
        `\n----- redis:\n${tailOf(redis.log, 1000)}`;
    },
    async stop() {
      const errors = [];
      for (const nd of this.nodes) {
        if (nd.exit && nd.stopping) continue; // killed on purpose
        try { await nd.stop(); } catch (e) { errors.push(`node ${nd.name}: ${e.message}`); }
      }
      if (hooks) await hooks.stop();
      await redis.stop();
      if (errors.length) throw new Error(errors.join('\n'));
    },
  };
  try {
    for (let i = 0; i < n; i++) await cluster.addNode();
  } catch (e) {
    await cluster.stop().catch(() => {});
    throw e;
  }
  return cluster;
}

/**
 * Wrap a test body so that a failure carries every node's log tail (the
 * assertion first). Use as test(name, withLogs(() => cluster, async () => {...})).
 */
function withLogs(getCluster, fn) {
  return async (t) => {
    try {
      await fn(t);
    } catch (e) {
      const c = getCluster();
      if (c && e && typeof e.message === 'string' && !e.clusterLogs) {
        e.clusterLogs = true;
        e.message += `\n${c.logs()}`;
      }
      throw e;
    }
  };
}

// ---------------------------------------------------------------- HTTP API on every node

/** Signed GET of /apps/{id}{path} on node. */
function apiGet(node, path, params = {}, app = node.app(0)) {
  return h.signedRequest(node, { method: 'GET', path: `/apps/${app.id}${path}`, params, app });
}

/**
 * The same signed GET on every node, at once: asserts status 200 and
 * byte-identical bodies; returns the parsed body.
 */
async function sameAnswer(nodes, path, params = {}, app) {
  const answers = await Promise.all(nodes.map((nd) => apiGet(nd, path, params, app || nd.app(0))));
  answers.forEach((r, i) => assert.equal(r.status, 200, `${nodes[i].name} GET ${path} ${JSON.stringify(params)}: ${r.status} ${r.text}`));
  for (let i = 1; i < answers.length; i++) {
    assert.equal(answers[i].text, answers[0].text,
      `GET ${path} ${JSON.stringify(params)}: node ${nodes[i].name} answers differently from ${nodes[0].name}`);
  }
  return answers[0].json;
}

/** Poll sameAnswer until its body deep-equals want (both the agreement and the truth must hold at the deadline). */
async function eventuallySame(nodes, path, params, want, { timeout = h.T(5000), app, normalize = (x) => x } = {}) {
  return h.eventually(async () => {
    const got = await sameAnswer(nodes, path, params, app);
    assert.deepEqual(normalize(got), want, `GET ${path} ${JSON.stringify(params)}`);
    return true;
  }, { timeout, interval: 50 });
}

// ---------------------------------------------------------------- clients

/** A raw client subscribed to a presence channel as userId (with userInfo). */
async function presenceClient(node, channel, userId, userInfo, { app } = {}) {
  const c = await h.connectRaw(node, app ? { key: app.key } : {});
  await c.subscribeOk(channel, userInfo === undefined ? { userId, app } : { userId, userInfo, app });
  return c;
}

/** A raw client subscribed to channel (any kind; presence needs userId). */
async function subscribedClient(node, channel, opts = {}) {
  const c = await h.connectRaw(node, opts.app ? { key: opts.app.key } : {});
  await c.subscribeOk(channel, opts);
  return c;
}

/** Parsed data of member_added / member_removed frames on channel received by c. */
function memberEvents(c, event, channel) {
  return c.all().filter((m) => m.event === `pusher_internal:${event}` && m.channel === channel)
    .map((m) => JSON.parse(m.data));
}

/**
 * Publish a marker event through node `via` and wait until every client has
 * it; lets a test assert that something did NOT arrive without sleeping.
 * Valid for clients on other nodes than `via` (checked): they receive the
 * marker through Redis, and each node delivers what its Redis subscription
 * brings in Redis' execution order. So once a client has the marker, it has
 * everything Redis executed before the marker's PUBLISH: what `via` itself
 * published earlier (one command connection per node, in order), and what
 * the test saw take effect before calling this (an event another client
 * received, a count read back through the HTTP API). A client on `via`
 * would get the marker locally, ahead of its Redis stream.
 */
async function marker(via, channel, clients, timeout = h.T(5000)) {
  for (const c of clients) assert.notEqual(c.server, via, 'marker: a client on the publishing node proves nothing');
  const id = crypto.randomBytes(4).toString('hex');
  const r = await h.apiTrigger(via, { name: 'ct-marker', channel, data: id });
  assert.equal(r.status, 200, `marker publish: ${r.text}`);
  await Promise.all(clients.map((c) => c.waitFor((m) => m.event === 'ct-marker' && m.channel === channel && m.data === id, { timeout })));
}

module.exports = {
  RedisServer,
  redisCommand,
  WebhookReceiver,
  parseMetrics,
  metric,
  ready,
  waitReady,
  startCluster,
  withLogs,
  apiGet,
  sameAnswer,
  eventuallySame,
  presenceClient,
  subscribedClient,
  memberEvents,
  marker,
  httpGet,
};
