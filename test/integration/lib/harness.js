'use strict';
// Integration-test harness for herald.
//
// - startServer(overrides): writes a config file, spawns `herald --config FILE`
//   on a free loopback port, waits for GET /up == 200.
// - server.stop(): SIGTERM, waits for exit, asserts exit code 0 and no
//   sanitizer reports on stderr.
// - RawClient: a `ws` client that records every JSON frame and lets a test
//   wait for (and consume) matching frames.
// - pusher-js / pusher SDK factories, signing helpers, signed HTTP requests.
// - HERALD_TEST_REDIS=1: every herald runs with adapter.driver "redis"
//   against one redis-server per test file (see testRedisEnv below).

const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const WebSocket = require('ws');
const PusherJS = require('pusher-js');
const PusherSDK = require('pusher');

// pusher-js bundles faye-websocket, whose close() arms a 30 s "close handshake"
// timer even when the server already closed the socket (e.g. after a 4009).
// That timer is harmless but keeps the test process alive for 30 s after the
// last test. Unref just those timers so each test file exits promptly.
{
  const origSetTimeout = global.setTimeout;
  global.setTimeout = function patchedSetTimeout(fn, ms, ...args) {
    const t = origSetTimeout.call(this, fn, ms, ...args);
    if (ms === 30000 && typeof t.unref === 'function') {
      const stack = new Error().stack || '';
      if (stack.includes('pusher-js')) t.unref();
    }
    return t;
  };
}

const TEST_DIR = path.resolve(__dirname, '..');
const HERALD_BIN = process.env.HERALD_BIN
  ? path.resolve(process.env.HERALD_BIN)
  : path.resolve(TEST_DIR, '../../build/herald');

// Sanitizer builds are slower: HERALD_TEST_TIMEOUT_SCALE=3 stretches every wait.
const SCALE = Number(process.env.HERALD_TEST_TIMEOUT_SCALE || 1) || 1;
const T = (ms) => Math.round(ms * SCALE);
const DEFAULT_WAIT = T(3000);

const APP = Object.freeze({ id: 'app-id', key: 'app-key', secret: 'app-secret' });
// 32 bytes, base64: lets the SDK hand out shared_secret for private-encrypted- channels.
const ENCRYPTION_MASTER_KEY_BASE64 = Buffer.alloc(32, 7).toString('base64');

const SOCKET_ID_RE = /^\d+\.\d+$/;
const SANITIZER_RE = /AddressSanitizer|LeakSanitizer|ThreadSanitizer|MemorySanitizer|UndefinedBehaviorSanitizer|runtime error/;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- redis mode

// HERALD_TEST_REDIS=1 runs the whole single-node suite against the Redis
// adapter: this test file starts one redis-server (free loopback port, no
// persistence) the first time a herald is spawned, and every herald gets
// adapter.driver "redis" with its own random key prefix, so each one is a
// cluster of one node and must behave exactly like adapter.driver "local".
// A test that configures the adapter itself (an "adapter" key in its config,
// or HERALD_ADAPTER_DRIVER in its env) keeps its own choice.
const REDIS_MODE = process.env.HERALD_TEST_REDIS === '1';
let testRedis = null; // {port, proc, ready: Promise}

function redisPing(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
    let got = '';
    s.on('data', (d) => { got += d; if (got.includes('\r\n')) { s.destroy(); resolve(got.startsWith('+PONG')); } });
    s.on('error', () => resolve(false));
    s.setTimeout(500, () => { s.destroy(); resolve(false); });
  });
}

function startTestRedis() {
  // found synchronously: some tests call HeraldServer._spawn() directly
  const port = Number(execFileSync(process.execPath, ['-e',
    "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{process.stdout.write(String(s.address().port));s.close()})"]));
  const bin = process.env.REDIS_SERVER || 'redis-server';
  const proc = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--loglevel', 'warning'], { stdio: 'ignore' });
  proc.on('error', () => {}); // reported by the readiness wait below
  proc.unref(); // the test file exits when its tests are done; the exit handler below stops redis
  // stops redis within a second if this process dies without its exit handlers
  spawn('sh', ['-c', 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done; kill -0 "$2" 2>/dev/null && kill -9 "$2"',
    'watchdog', String(process.pid), String(proc.pid)], { stdio: 'ignore' }).unref();
  process.on('exit', () => { try { proc.kill('SIGKILL'); } catch { /* gone */ } });
  const ready = (async () => {
    const deadline = Date.now() + T(5000);
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) break;
      if (await redisPing(port)) return;
      await sleep(20);
    }
    throw new Error(`HERALD_TEST_REDIS=1: ${bin} did not answer PING on 127.0.0.1:${port} (is redis-server installed?)`);
  })();
  ready.catch(() => {}); // awaited by startServer
  return { port, proc, ready };
}

/** Whether a herald with this config and extra env runs on the test Redis. */
function redisModeFor(config, env) {
  return REDIS_MODE && !(config && typeof config === 'object' && 'adapter' in config) && !('HERALD_ADAPTER_DRIVER' in (env || {}));
}

/** The HERALD_ADAPTER_* variables of redis mode (starts this file's redis-server on first use). */
function testRedisEnv() {
  if (!testRedis) testRedis = startTestRedis();
  return {
    HERALD_ADAPTER_DRIVER: 'redis',
    HERALD_ADAPTER_REDIS_HOST: '127.0.0.1',
    HERALD_ADAPTER_REDIS_PORT: String(testRedis.port),
    HERALD_ADAPTER_REDIS_PREFIX: `it${crypto.randomBytes(5).toString('hex')}`,
  };
}

let uniqueCounter = 0;
/** A channel/user name unique within this process: uniq('private-chat') -> private-chat-<pid>-<n>-<rand> */
function uniq(prefix = 'ch') {
  uniqueCounter += 1;
  return `${prefix}-${process.pid}-${uniqueCounter}-${crypto.randomBytes(3).toString('hex')}`;
}

// ---------------------------------------------------------------- signing

function hmac(secret, str) {
  return crypto.createHmac('sha256', secret).update(str, 'utf8').digest('hex');
}
function md5(str) {
  return crypto.createHash('md5').update(str).digest('hex');
}
/** auth for private-/private-encrypted- channels: "<key>:<hmac(socket_id:channel)>" */
function privateAuth(socketId, channel, app = APP) {
  return `${app.key}:${hmac(app.secret, `${socketId}:${channel}`)}`;
}
/** auth for presence channels: signs socket_id:channel:channel_data (exact string) */
function presenceAuth(socketId, channel, channelData, app = APP) {
  return `${app.key}:${hmac(app.secret, `${socketId}:${channel}:${channelData}`)}`;
}
/** auth for pusher:signin: signs socket_id::user::user_data (exact string) */
function userAuth(socketId, userData, app = APP) {
  return `${app.key}:${hmac(app.secret, `${socketId}::user::${userData}`)}`;
}

// ---------------------------------------------------------------- config

const DEFAULT_APP = Object.freeze({
  id: APP.id,
  key: APP.key,
  secret: APP.secret,
  enabled: true,
  enable_client_messages: true,
});

/**
 * makeConfig(overrides) -> config object (JSON-serialisable).
 *   overrides.port         : port (startServer fills it in)
 *   overrides.app          : merged into the first (default) app
 *   overrides.apps         : replaces the app list; each entry is merged onto
 *                            DEFAULT_APP (so give at least id/key/secret)
 *   overrides.extraApps    : appended after the default app (merged onto DEFAULT_APP)
 *   any other key          : top-level config key (activity_timeout, pong_timeout,
 *                            max_message_size_kb, max_http_body_kb, ...)
 */
function makeConfig(overrides = {}) {
  const { app, apps, extraApps, ...top } = overrides;
  let appList;
  if (apps) {
    appList = apps.map((a) => ({ ...DEFAULT_APP, ...a }));
  } else {
    appList = [{ ...DEFAULT_APP, ...(app || {}) }];
  }
  if (extraApps) appList = appList.concat(extraApps.map((a) => ({ ...DEFAULT_APP, ...a })));
  return {
    host: '127.0.0.1',
    port: 6001,
    activity_timeout: 120,
    pong_timeout: 30,
    io_threads: 2,
    metrics: { enabled: false },
    ...top,
    app_manager: { array: { apps: appList } },
  };
}

function getFreePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function httpGetStatus(port, pathName, timeout = 1000) {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: pathName, method: 'GET', agent: false, timeout },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
        res.on('error', () => resolve(0));
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

// ---------------------------------------------------------------- server

// Never leave a herald behind: if the test process exits (crash, timeout,
// forgotten stop()), kill every server it started.
const liveServers = new Set();
process.on('exit', () => {
  for (const s of liveServers) {
    if (!s.exit && s.proc) { try { s.proc.kill('SIGKILL'); } catch { /* ignore */ } }
  }
});

class HeraldServer {
  constructor(config, configPath, tmpDir) {
    this.config = config;
    this.port = config.port;
    this.configPath = configPath;
    this.tmpDir = tmpDir;
    this.stdout = '';
    this.stderr = '';
    this.proc = null;
    this.exit = null; // {code, signal} once exited
    this.exitPromise = null;
    this.clients = new Set(); // things with a close()/disconnect() for cleanup
    this.stopping = false;
  }

  get wsBase() {
    return `ws://127.0.0.1:${this.port}`;
  }
  get httpBase() {
    return `http://127.0.0.1:${this.port}`;
  }
  app(i = 0) {
    return this.config.app_manager.array.apps[i];
  }
  appByKey(key) {
    return this.config.app_manager.array.apps.find((a) => a.key === key);
  }

  _spawn(extraEnv = {}, nofile = 0) {
    // herald reads HERALD_* variables as config overrides: drop the caller's
    // (HERALD_BIN, HERALD_TEST_*, a stray HERALD_PORT...) so the generated
    // config file is the whole truth; tests pass their own via extraEnv.
    const env = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HERALD_')) env[k] = v;
    const redisEnv = redisModeFor(this.config, extraEnv) ? testRedisEnv() : {};
    Object.assign(env, {
      // make leaks show up on exit; the caller's settings win
      ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0',
      UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1',
    }, redisEnv, extraEnv);
    // opts.nofile: run herald with that many file descriptors (prlimit execs it, same pid)
    const argv = ['--config', this.configPath];
    const proc = nofile
      ? spawn('prlimit', [`--nofile=${nofile}:${nofile}`, '--', HERALD_BIN, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env })
      : spawn(HERALD_BIN, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.proc = proc;
    liveServers.add(this);
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (d) => { this.stdout += d; });
    proc.stderr.on('data', (d) => {
      this.stderr += d;
      if (process.env.HERALD_TEST_VERBOSE) process.stderr.write(`[herald] ${d}`);
    });
    this.exitPromise = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        liveServers.delete(this);
        this.exit = { code, signal };
        resolve(this.exit);
      });
      proc.on('error', (err) => {
        this.exit = { code: null, signal: null, error: err };
        resolve(this.exit);
      });
    });
  }

  /** Human-readable note on the process state, appended to wait errors. */
  deathNote() {
    if (!this.exit || this.stopping) return '';
    return `\n  NOTE: herald exited unexpectedly (code=${this.exit.code}, signal=${this.exit.signal}).` +
      `\n  stderr tail:\n${tail(this.stderr, 3000)}`;
  }

  async _waitReady(timeoutMs, pathName = '/up') {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exit) return false;
      const status = await httpGetStatus(this.port, pathName, 500);
      if (status === 200) return true;
      await sleep(50);
    }
    return false;
  }

  sanitizerLines() {
    return this.stderr.split('\n').filter((l) => SANITIZER_RE.test(l));
  }

  /**
   * Stop the server: close harness-tracked clients (unless keepClients), SIGTERM,
   * wait for exit; throws if exit code != 0 or stderr has sanitizer reports.
   */
  async stop({ keepClients = false, timeout = T(15000) } = {}) {
    if (!this.proc) return;
    if (!keepClients) await this.closeClients();
    this.stopping = true;
    try {
      if (!this.exit) {
        this.proc.kill('SIGTERM');
        let timer;
        const res = await Promise.race([
          this.exitPromise,
          new Promise((r) => { timer = setTimeout(() => r(null), timeout); }),
        ]);
        clearTimeout(timer);
        if (!res) {
          this.proc.kill('SIGKILL');
          await this.exitPromise;
          throw new Error(`herald did not exit within ${timeout} ms of SIGTERM (killed).\nstderr tail:\n${tail(this.stderr, 3000)}`);
        }
      }
      const san = this.sanitizerLines();
      if (san.length) {
        throw new Error(`herald stderr has sanitizer reports (a server bug):\n${san.slice(0, 20).join('\n')}\n--- stderr tail:\n${tail(this.stderr, 6000)}`);
      }
      if (this.exit.error) throw new Error(`herald failed to run: ${this.exit.error.message}`);
      if (this.exit.code !== 0) {
        throw new Error(`herald exited with code=${this.exit.code} signal=${this.exit.signal} (expected 0 after SIGTERM).\nstderr tail:\n${tail(this.stderr, 3000)}`);
      }
    } finally {
      try { fs.rmSync(this.tmpDir, { recursive: true, force: true }); } catch { /* ignore */ }
    }
  }

  async closeClients() {
    const all = [...this.clients];
    this.clients.clear();
    await Promise.all(all.map(async (c) => {
      try { await c.closeForCleanup(); } catch { /* ignore */ }
    }));
  }
}

function tail(s, n) {
  return s.length > n ? `...${s.slice(-n)}` : s;
}

/**
 * Start herald with makeConfig(overrides) on a free loopback port.
 * opts.env: extra environment variables for herald (e.g. HERALD_* overrides).
 * opts.nofile: limit herald's open files (RLIMIT_NOFILE) to this many.
 * Rejects with a clear message if the binary is missing or herald fails to start.
 */
async function startServer(overrides = {}, opts = {}) {
  try {
    fs.accessSync(HERALD_BIN, fs.constants.X_OK);
  } catch {
    throw new Error(
      `herald binary not found or not executable at ${HERALD_BIN}.\n` +
      '  Build it first (cmake -S . -B build && cmake --build build) or set HERALD_BIN=/path/to/herald.',
    );
  }
  const redisMode = redisModeFor(makeConfig(overrides), opts.env);
  if (redisMode) {
    testRedisEnv();
    await testRedis.ready;
  }
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = overrides.port || (await getFreePort());
    const config = makeConfig({ ...overrides, port });
    const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-it-'));
    const configPath = path.join(tmpDir, 'config.json');
    fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
    const server = new HeraldServer(config, configPath, tmpDir);
    server._spawn(opts.env || {}, opts.nofile || 0);
    const ready = await server._waitReady(T(10000));
    // redis mode: the node also has to have joined its cluster (GET /ready)
    if (ready && redisMode && !(await server._waitReady(T(10000), '/ready'))) {
      const why = await httpRequest(server, { path: '/ready' }).then((r) => `${r.status} ${r.text}`, (e) => e.message);
      await server.stop().catch(() => {});
      throw new Error(`herald (adapter.driver redis) did not become ready within ${T(10000)} ms: ${why}\nstderr tail:\n${tail(server.stderr, 3000)}`);
    }
    if (ready) return server;
    // not ready: collect why
    if (!server.exit) {
      server.proc.kill('SIGKILL');
      await server.exitPromise;
      fs.rmSync(tmpDir, { recursive: true, force: true });
      throw new Error(`herald did not answer GET /up with 200 within ${T(10000)} ms on port ${port}.\nstderr tail:\n${tail(server.stderr, 3000)}`);
    }
    fs.rmSync(tmpDir, { recursive: true, force: true });
    const why = server.exit.error
      ? server.exit.error.message
      : `exit code=${server.exit.code} signal=${server.exit.signal}`;
    lastErr = new Error(`herald exited during startup (${why}).\nconfig: ${JSON.stringify(config)}\nstderr tail:\n${tail(server.stderr, 3000)}`);
    // a port race (someone grabbed the port) is worth a retry; anything else is not
    if (!/in use|EADDRINUSE|bind/i.test(server.stderr) || overrides.port) break;
  }
  throw lastErr;
}

// ---------------------------------------------------------------- raw ws client

function describePred(pred) {
  if (typeof pred === 'string') return `event "${pred}"`;
  if (pred && pred.description) return pred.description;
  return String(pred).slice(0, 200);
}

/** Predicate: message with this event (and channel, if given). */
function ev(event, channel) {
  const p = (m) => m && m.event === event && (channel === undefined || m.channel === channel);
  p.description = channel === undefined ? `event "${event}"` : `event "${event}" on channel "${channel}"`;
  return p;
}

function toPred(pred, channel) {
  if (typeof pred === 'string') return ev(pred, channel);
  return pred;
}

class RawClient {
  constructor(server, ws, url) {
    this.server = server;
    this.ws = ws;
    this.url = url;
    this.messages = []; // {json, raw, consumed, at}
    this.waiters = [];
    this.closeInfo = null;
    this.closeWaiters = [];
    this.socketId = null;
    this.established = null; // parsed handshake data
    this.pongs = [];
    ws.on('message', (data, isBinary) => this._onMessage(data, isBinary));
    ws.on('pong', (data) => this.pongs.push(Buffer.from(data)));
    ws.on('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString() };
      for (const w of this.waiters.splice(0)) w.fail();
      for (const w of this.closeWaiters.splice(0)) w(this.closeInfo);
    });
    ws.on('error', () => { /* surfaced via close */ });
  }

  _onMessage(data, isBinary) {
    const raw = isBinary ? data : data.toString('utf8');
    let json;
    if (!isBinary) {
      try { json = JSON.parse(raw); } catch { json = undefined; }
      // predicates look at m.event etc.: only objects are matchable
      if (json === null || typeof json !== 'object') json = undefined;
    }
    const entry = { json, raw, isBinary, consumed: false, at: Date.now() };
    this.messages.push(entry);
    for (let i = 0; i < this.waiters.length; i++) {
      const w = this.waiters[i];
      if (json !== undefined && w.pred(json)) {
        entry.consumed = true;
        this.waiters.splice(i, 1);
        w.resolve(json);
        return;
      }
    }
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** All JSON messages received so far (consumed or not). */
  all() {
    return this.messages.filter((e) => e.json !== undefined).map((e) => e.json);
  }
  /** Unconsumed JSON messages. */
  pending() {
    return this.messages.filter((e) => !e.consumed && e.json !== undefined).map((e) => e.json);
  }

  _summary() {
    const last = this.messages.slice(-8).map((e) => (e.isBinary ? '<binary>' : e.raw)).join('\n    ');
    return `\n  socket ${this.socketId || '?'} (${this.url}); closed=${this.closeInfo ? JSON.stringify(this.closeInfo) : 'no'}` +
      `\n  last frames received:\n    ${last || '(none)'}` +
      (this.server ? this.server.deathNote() : '');
  }

  /**
   * Wait for (and consume) the first unconsumed message matching pred
   * (a function or an event name; channel narrows an event name).
   */
  waitFor(pred, { timeout = DEFAULT_WAIT, channel } = {}) {
    const p = toPred(pred, channel);
    for (const e of this.messages) {
      if (!e.consumed && e.json !== undefined && p(e.json)) {
        e.consumed = true;
        return Promise.resolve(e.json);
      }
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        pred: p,
        resolve: (m) => { clearTimeout(timer); resolve(m); },
        fail: () => {
          clearTimeout(timer);
          reject(new Error(`socket closed while waiting for ${describePred(pred)}${this._summary()}`));
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`timed out after ${timeout} ms waiting for ${describePred(pred)}${this._summary()}`));
      }, timeout);
      if (this.closeInfo) { waiter.fail(); return; }
      this.waiters.push(waiter);
    });
  }

  /** Wait for the next unconsumed JSON message, whatever it is. */
  next(opts) {
    const p = () => true;
    p.description = 'any message';
    return this.waitFor(p, opts);
  }

  /** Assert that no unconsumed message matching pred arrives within ms. */
  async expectNone(pred, ms = 300, { channel } = {}) {
    const p = toPred(pred, channel);
    await sleep(T(ms));
    const hit = this.messages.find((e) => !e.consumed && e.json !== undefined && p(e.json));
    if (hit) {
      assert.fail(`expected no ${describePred(pred)} but got ${hit.raw}`);
    }
  }

  /** Assert that nothing at all (unconsumed) arrives within ms. */
  async expectSilence(ms = 300) {
    await sleep(T(ms));
    const left = this.messages.filter((e) => !e.consumed);
    if (left.length) assert.fail(`expected no frames but got:\n  ${left.map((e) => (e.isBinary ? '<binary>' : e.raw)).join('\n  ')}`);
  }

  /** Count of received messages matching pred (consumed or not). */
  count(pred, channel) {
    const p = toPred(pred, channel);
    return this.messages.filter((e) => e.json !== undefined && p(e.json)).length;
  }

  send(obj) {
    this.ws.send(JSON.stringify(obj));
  }
  sendRaw(data, opts = {}) {
    this.ws.send(data, opts);
  }

  subscribe(channel, extra = {}) {
    this.send({ event: 'pusher:subscribe', data: { channel, ...extra } });
  }
  unsubscribe(channel) {
    this.send({ event: 'pusher:unsubscribe', data: { channel } });
  }

  /** Subscribe (signing private/presence/encrypted auth automatically) and wait for success. */
  async subscribeOk(channel, { userId, userInfo, channelData, app } = {}) {
    const a = app || this.app || APP;
    const extra = {};
    if (channel.startsWith('presence-')) {
      const cd = channelData !== undefined
        ? channelData
        : JSON.stringify(userInfo === undefined ? { user_id: userId } : { user_id: userId, user_info: userInfo });
      extra.channel_data = cd;
      extra.auth = presenceAuth(this.socketId, channel, cd, a);
    } else if (channel.startsWith('private-')) {
      extra.auth = privateAuth(this.socketId, channel, a);
    } else {
      extra.auth = '';
    }
    const earlier = new Set(this.messages.map((e) => e.json)); // errors from before this call are not ours
    this.subscribe(channel, extra);
    const succeeded = ev('pusher_internal:subscription_succeeded', channel);
    const failed = (m) => m.channel === channel && (m.event === 'pusher:subscription_error');
    const p = (m) => succeeded(m) || failed(m) || (m.event === 'pusher:error' && !earlier.has(m));
    p.description = `subscription_succeeded for ${channel}`;
    const m = await this.waitFor(p);
    if (m.event !== 'pusher_internal:subscription_succeeded') {
      assert.fail(`subscribe to ${channel} failed: ${JSON.stringify(m)}`);
    }
    return m;
  }

  /** pusher:signin with a user object or an exact user_data string; waits for signin_success. */
  async signin(user, { app } = {}) {
    const a = app || this.app || APP;
    const userData = typeof user === 'string' ? user : JSON.stringify(user);
    const earlier = new Set(this.messages.map((e) => e.json));
    this.send({ event: 'pusher:signin', data: { auth: userAuth(this.socketId, userData, a), user_data: userData } });
    const m = await this.waitFor((x) => x.event === 'pusher:signin_success' || (x.event === 'pusher:error' && !earlier.has(x)));
    if (m.event !== 'pusher:signin_success') assert.fail(`signin failed: ${JSON.stringify(m)}`);
    return m;
  }

  /** Round trip through the server: pusher:ping -> pusher:pong. Proves the socket is alive. */
  async roundTrip(timeout) {
    this.send({ event: 'pusher:ping', data: {} });
    return this.waitFor('pusher:pong', { timeout });
  }

  waitClose(timeout = DEFAULT_WAIT) {
    if (this.closeInfo) return Promise.resolve(this.closeInfo);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.closeWaiters.indexOf(done);
        if (i >= 0) this.closeWaiters.splice(i, 1);
        reject(new Error(`timed out after ${timeout} ms waiting for the socket to close${this._summary()}`));
      }, timeout);
      const done = (info) => { clearTimeout(timer); resolve(info); };
      this.closeWaiters.push(done);
    });
  }

  /** Expect {"event":"pusher:error","data":{"code":code,...}} followed by close with that code. */
  async expectErrorAndClose(code, timeout = DEFAULT_WAIT) {
    const err = await this.waitFor((m) => m.event === 'pusher:error' && m.data && m.data.code === code, { timeout });
    assert.equal(typeof err.data.message, 'string');
    const info = await this.waitClose(timeout);
    assert.equal(info.code, code, `close code (reason ${JSON.stringify(info.reason)})`);
    return { error: err, close: info };
  }

  close(code = 1000) {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      try { this.ws.close(code); } catch { /* ignore */ }
    }
  }
  terminate() {
    try { this.ws.terminate(); } catch { /* ignore */ }
  }
  async closeForCleanup() {
    if (this.closeInfo) return;
    this.close();
    try { await this.waitClose(1000); } catch { this.terminate(); }
  }
}

function wsUrl(server, { key = APP.key, path: p, query } = {}) {
  const q = query === undefined ? 'protocol=7&client=js&version=8.6.0&flash=false' : query;
  const pathName = p === undefined ? `/app/${key}` : p;
  return `${server.wsBase}${pathName}${q ? `?${q}` : ''}`;
}

/**
 * Open a raw WebSocket to herald. By default waits for the handshake and
 * checks it is pusher:connection_established (sets client.socketId).
 * opts: key, path, query, origin, headers, established (default true), app.
 */
function connectRaw(server, opts = {}) {
  const url = wsUrl(server, opts);
  const wsOpts = { handshakeTimeout: DEFAULT_WAIT, perMessageDeflate: false, ...(opts.wsOptions || {}) };
  if (opts.origin) wsOpts.origin = opts.origin;
  if (opts.headers) wsOpts.headers = opts.headers;
  const ws = new WebSocket(url, wsOpts);
  const client = new RawClient(server, ws, url);
  client.app = opts.app || (server && server.appByKey(opts.key || APP.key)) || APP;
  if (server) server.clients.add(client);
  return new Promise((resolve, reject) => {
    const onErr = (err) => reject(new Error(`WebSocket connect to ${url} failed: ${err.message}${server ? server.deathNote() : ''}`));
    ws.once('error', onErr);
    ws.once('unexpected-response', (req, res) => {
      reject(new Error(`WebSocket upgrade to ${url} answered HTTP ${res.statusCode} (expected 101)`));
    });
    ws.once('open', async () => {
      ws.off('error', onErr);
      if (opts.established === false) { resolve(client); return; }
      try {
        const m = await client.next();
        assert.equal(m.event, 'pusher:connection_established', `first frame: ${JSON.stringify(m)}`);
        assert.equal(typeof m.data, 'string', 'connection_established data must be a JSON string');
        client.established = JSON.parse(m.data);
        client.socketId = client.established.socket_id;
        resolve(client);
      } catch (e) { reject(e); }
    });
  });
}

// ---------------------------------------------------------------- raw TCP WebSocket clients

/** A client text frame, masked with a zero key (so the payload goes as is). */
function maskedFrame(obj) {
  const p = Buffer.from(typeof obj === 'string' ? obj : JSON.stringify(obj));
  const hdr = p.length < 126 ? Buffer.from([0x81, 0x80 | p.length]) : Buffer.from([0x81, 0xfe, p.length >> 8, p.length & 255]);
  return Buffer.concat([hdr, Buffer.alloc(4), p]);
}

/**
 * A WebSocket client on a raw TCP socket that stops reading for good: it
 * handshakes, waits for connection_established, sends the frames in `send`
 * (objects, one after the other), waits until `until` appears in what it
 * received, then pauses the socket and resolves with it. Node's socket
 * pause, unlike a `ws` client's, really leaves the bytes in the kernel.
 */
function stalledWebSocket(server, { send = [], until = 'connection_established', key = APP.key } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect(server.port, '127.0.0.1', () => s.write(`GET /app/${key}?protocol=7 HTTP/1.1\r\nHost: a\r\n` +
      'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'));
    let text = '';
    let sent = false;
    s.on('error', () => {});
    s.on('data', (c) => {
      text += c.toString('latin1');
      if (!sent && text.includes('connection_established')) {
        sent = true;
        for (const f of send) s.write(maskedFrame(f));
      }
      if (sent && text.includes(until)) { s.removeAllListeners('data'); s.pause(); resolve(s); }
    });
    setTimeout(() => reject(new Error(`raw WebSocket did not see ${until}`)), T(5000)).unref();
  });
}

// ---------------------------------------------------------------- pusher SDK / pusher-js

function appOf(server, app) {
  if (app) return app;
  return server ? server.app(0) : APP;
}

/** Official server SDK pointed at herald. */
function makeSdk(server, { app, ...extra } = {}) {
  const a = appOf(server, app);
  return new PusherSDK({
    appId: a.id,
    key: a.key,
    secret: a.secret,
    host: '127.0.0.1',
    port: server ? server.port : 0,
    useTLS: false,
    encryptionMasterKeyBase64: ENCRYPTION_MASTER_KEY_BASE64,
    ...extra,
  });
}

/**
 * pusher-js client. opts:
 *   app          : app config (default first app)
 *   user         : {id, user_info?, watchlist?} for pusher.signin()
 *   presence     : {user_id, user_info?} used for presence channel auth
 *   authSecret   : sign channel auth with this secret instead (to force AuthError)
 *   pusherOptions: merged into the pusher-js options
 */
function makePusherClient(server, opts = {}) {
  const a = appOf(server, opts.app);
  const signer = makeSdk(server, { app: opts.authSecret ? { ...a, secret: opts.authSecret } : a });
  const client = new PusherJS(a.key, {
    wsHost: '127.0.0.1',
    wsPort: server.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    cluster: 'mt1',
    disableStats: true,
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, callback) => {
        try {
          const data = channelName.startsWith('presence-') ? opts.presence : undefined;
          callback(null, signer.authorizeChannel(socketId, channelName, data));
        } catch (e) {
          callback(e, null);
        }
      },
    },
    userAuthentication: {
      customHandler: ({ socketId }, callback) => {
        try {
          callback(null, signer.authenticateUser(socketId, opts.user));
        } catch (e) {
          callback(e, null);
        }
      },
    },
    ...(opts.pusherOptions || {}),
  });
  const tracked = {
    closeForCleanup: async () => { try { client.disconnect(); } catch { /* ignore */ } },
  };
  if (server) server.clients.add(tracked);
  return client;
}

/** Resolve when a pusher-js client reaches state 'connected'. */
function pusherConnected(client, timeout = DEFAULT_WAIT) {
  return new Promise((resolve, reject) => {
    if (client.connection.state === 'connected') { resolve(client.connection.socket_id); return; }
    const timer = setTimeout(() => {
      client.connection.unbind('state_change', onChange);
      reject(new Error(`pusher-js did not connect within ${timeout} ms (state ${client.connection.state})`));
    }, timeout);
    const onChange = ({ current }) => {
      if (current === 'connected') {
        clearTimeout(timer);
        client.connection.unbind('state_change', onChange);
        resolve(client.connection.socket_id);
      } else if (current === 'failed') {
        clearTimeout(timer);
        client.connection.unbind('state_change', onChange);
        reject(new Error(`pusher-js connection failed (state ${current})`));
      }
    };
    client.connection.bind('state_change', onChange);
  });
}

/** Resolve with the first emission of eventName on emitter (channel, connection, user, ...). */
function once(emitter, eventName, timeout = DEFAULT_WAIT) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.unbind(eventName, handler);
      reject(new Error(`timed out after ${timeout} ms waiting for pusher-js event "${eventName}"`));
    }, timeout);
    const handler = (data, metadata) => {
      clearTimeout(timer);
      emitter.unbind(eventName, handler);
      resolve({ data, metadata });
    };
    emitter.bind(eventName, handler);
  });
}

/** Subscribe with pusher-js and wait for pusher:subscription_succeeded (rejects on subscription_error). */
function pusherSubscribe(client, channelName, timeout = DEFAULT_WAIT) {
  const channel = client.subscribe(channelName);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`pusher-js subscription to ${channelName} not confirmed within ${timeout} ms`));
    }, timeout);
    const ok = () => { cleanup(); resolve(channel); };
    const bad = (status) => { cleanup(); reject(new Error(`subscription_error on ${channelName}: ${JSON.stringify(status)}`)); };
    function cleanup() {
      clearTimeout(timer);
      channel.unbind('pusher:subscription_succeeded', ok);
      channel.unbind('pusher:subscription_error', bad);
    }
    channel.bind('pusher:subscription_succeeded', ok);
    channel.bind('pusher:subscription_error', bad);
  });
}

// ---------------------------------------------------------------- HTTP

/**
 * Plain HTTP request to herald. Returns {status, headers, text, json, reusedSocket}.
 * opts: method, path, headers, body (string|Buffer), agent.
 */
function httpRequest(server, { method = 'GET', path: p, headers = {}, body, agent = false, timeout = DEFAULT_WAIT }) {
  return new Promise((resolve, reject) => {
    // HTTP API clients send Content-Length (herald answers chunked request bodies with 411).
    if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length' || h.toLowerCase() === 'transfer-encoding')) {
      headers = { ...headers, 'content-length': Buffer.byteLength(body) };
    }
    const req = http.request({ host: '127.0.0.1', port: server.port, method, path: p, headers, agent, timeout }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json, reusedSocket: req.reusedSocket });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`HTTP ${method} ${p} timed out after ${timeout} ms${server.deathNote()}`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** The string-to-sign query part: lower-cased keys, sorted, k=v unescaped, joined by &. */
function canonicalParams(params) {
  return Object.keys(params)
    .filter((k) => k !== 'auth_signature')
    .map((k) => [k.toLowerCase(), params[k]])
    .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/**
 * Hand-signed HTTP API request.
 * opts: method, path, params (extra query), body (object -> JSON, string as-is),
 *       app, timestamp, bodyMd5 (override), signature (override), noSign, agent, headers.
 */
function signedRequest(server, opts) {
  const a = opts.app || server.app(0);
  const method = (opts.method || 'GET').toUpperCase();
  const bodyStr = opts.body === undefined ? undefined : typeof opts.body === 'string' || Buffer.isBuffer(opts.body) ? opts.body : JSON.stringify(opts.body);
  const params = {
    auth_key: a.key,
    auth_timestamp: String(opts.timestamp !== undefined ? opts.timestamp : Math.floor(Date.now() / 1000)),
    auth_version: '1.0',
    ...(opts.params || {}),
  };
  if (bodyStr !== undefined) params.body_md5 = opts.bodyMd5 || md5(bodyStr);
  const toSign = `${method}\n${opts.path}\n${canonicalParams(params)}`;
  const sig = opts.signature || hmac(a.secret, toSign);
  const qs = Object.entries({ ...params, auth_signature: sig })
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
  const headers = { ...(opts.headers || {}) };
  if (bodyStr !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
  return httpRequest(server, { method, path: `${opts.path}?${qs}`, headers, body: bodyStr, agent: opts.agent || false });
}

/** Trigger through the HTTP API (hand-signed). body is the /events JSON body. */
function apiTrigger(server, body, opts = {}) {
  const a = opts.app || server.app(0);
  return signedRequest(server, { method: 'POST', path: `/apps/${a.id}/events`, body, ...opts });
}

/** Poll fn until it returns a truthy value (or throws the last assertion error at the deadline). */
async function eventually(fn, { timeout = DEFAULT_WAIT, interval = 50 } = {}) {
  const deadline = Date.now() + timeout;
  let lastErr;
  for (;;) {
    try {
      const v = await fn();
      if (v !== false && v !== undefined && v !== null) return v;
      lastErr = new Error('condition still false');
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) throw lastErr;
    await sleep(interval);
  }
}

/** Read a fetch Response (pusher SDK result) as {status, json}. */
async function sdkJson(promise) {
  const res = await promise;
  const text = await res.text();
  return { status: res.status, json: JSON.parse(text), text };
}

/** Run a pusher SDK call that must fail; returns {status, body(text), json}. */
async function sdkError(promise) {
  try {
    const res = await promise;
    assert.fail(`expected the SDK call to fail, got HTTP ${res.status}`);
  } catch (e) {
    if (e.code === 'ERR_ASSERTION') throw e;
    if (e.status === undefined) throw e;
    let json;
    try { json = JSON.parse(e.body); } catch { json = undefined; }
    return { status: e.status, body: e.body, json };
  }
  return undefined;
}

module.exports = {
  REDIS_MODE,
  APP,
  DEFAULT_APP,
  HERALD_BIN,
  ENCRYPTION_MASTER_KEY_BASE64,
  SOCKET_ID_RE,
  SCALE,
  T,
  DEFAULT_WAIT,
  sleep,
  uniq,
  hmac,
  md5,
  privateAuth,
  presenceAuth,
  userAuth,
  makeConfig,
  getFreePort,
  startServer,
  HeraldServer,
  RawClient,
  ev,
  wsUrl,
  connectRaw,
  maskedFrame,
  stalledWebSocket,
  makeSdk,
  makePusherClient,
  pusherConnected,
  pusherSubscribe,
  once,
  httpRequest,
  canonicalParams,
  signedRequest,
  apiTrigger,
  eventually,
  sdkJson,
  sdkError,
};
