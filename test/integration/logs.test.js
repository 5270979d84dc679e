'use strict';
// The log as an operator reads it: with the default configuration every
// refusal (HTTP error status, 4xxx close, subscription error) is logged at
// info with its reason and context (app, socket_id, channel, remote
// address), rate-limited per reason (the first at once, then one
// "N more <reason> in the last 10 s" line); log_format "json" gives one
// JSON object per line; every run ends with a line giving its exit status.
// Also: a failed signin's pusher:error shows the string to sign.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const h = require('./lib/harness');

const REMOTE = String.raw`remote=127\.0\.0\.1:\d+`;
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Wait until herald's stderr has a line matching re; returns that line. */
async function logLine(server, re, timeout = h.DEFAULT_WAIT) {
  let found;
  await h.eventually(() => {
    found = server.stderr.split('\n').find((l) => re.test(l));
    return found;
  }, { timeout }).catch(() => {
    assert.fail(`no log line matching ${re}\n--- stderr:\n${server.stderr.slice(-4000)}`);
  });
  return found;
}

const lines = (server, re) => server.stderr.split('\n').filter((l) => re.test(l));

/** One raw HTTP request on its own connection; resolves with the status line. */
function rawRequest(server, text) {
  return new Promise((resolve, reject) => {
    const s = net.connect(server.port, '127.0.0.1', () => s.write(text));
    let got = '';
    s.on('data', (c) => { got += c.toString('latin1'); });
    s.on('error', reject);
    s.on('close', () => resolve(got.split('\r\n')[0]));
    s.setTimeout(h.T(3000), () => s.destroy(new Error('raw request timed out')));
  });
}

describe('refusals at the default log level', () => {
  let server;
  before(async () => { server = await h.startServer({ max_http_body_kb: 1 }); });
  after(async () => { await server.stop(); });

  test('the default level is info: the start-up lines show it', async () => {
    await logLine(server, /INFO\s+cleanup\s+/);
  });

  test('a 401 from the HTTP API is logged with its reason, app and remote address', async () => {
    const r = await h.signedRequest(server, { path: '/apps/app-id/channels', signature: 'f'.repeat(64) });
    assert.equal(r.status, 401);
    const line = await logLine(server, /INFO\s+http\s+http 401: /);
    assert.match(line, new RegExp(String.raw`http 401: GET /apps/app-id/channels: Invalid signature: you should have sent ` +
      String.raw`HmacSHA256Hex\(".*", your_secret_key\), but you sent "f{64}" \[app=app-id ${REMOTE}\]$`));
  });

  test('an unknown app key (4001) is logged with the key, socket_id and remote address', async () => {
    const c = await h.connectRaw(server, { key: 'no-such-key', established: false });
    await c.expectErrorAndClose(4001);
    const line = await logLine(server, /close 4001: /);
    assert.match(line, new RegExp(String.raw`INFO\s+session\s+close 4001: Application does not exist \(key "no-such-key"\) ` +
      String.raw`\[socket_id=\d+\.\d+ ${REMOTE}\]$`));
  });

  test('a 413 is logged with the request, app and remote address', async () => {
    const r = await h.signedRequest(server, { method: 'POST', path: '/apps/app-id/events', body: 'x'.repeat(2048) });
    assert.equal(r.status, 413);
    const line = await logLine(server, /http 413: /);
    assert.match(line, new RegExp(String.raw`INFO\s+http\s+http 413: POST /apps/app-id/events: Request body too large ` +
      String.raw`\[app=app-id ${REMOTE}\]$`));
  });

  test('a subscription AuthError is logged with the string to sign, socket_id, channel and remote address', async () => {
    const c = await h.connectRaw(server);
    const channel = h.uniq('private-logs');
    c.subscribe(channel, { auth: 'app-key:bad' });
    const m = await c.waitFor('pusher:subscription_error');
    assert.equal(m.data.type, 'AuthError');
    const line = await logLine(server, /subscription AuthError: /);
    assert.match(line, new RegExp(String.raw`INFO\s+session\s+subscription AuthError: Invalid signature: Expected HMAC SHA256 hex ` +
      `digest of ${esc(`${c.socketId}:${channel}`)}, but got app-key:bad \\(status 401\\) ` +
      `\\[app=app-id socket_id=${esc(c.socketId)} channel=${esc(channel)} ${REMOTE}\\]$`));
    c.close();
  });

  test('a failed signin shows the string to sign in pusher:error, and is logged', async () => {
    const c = await h.connectRaw(server);
    const userData = JSON.stringify({ id: 'log-user' });
    c.send({ event: 'pusher:signin', data: { auth: 'app-key:0badc0de', user_data: userData } });
    const { error, close } = await c.expectErrorAndClose(4009);
    const toSign = `${c.socketId}::user::${userData}`;
    assert.equal(error.data.message,
      `Invalid signature for user authentication: Expected HMAC SHA256 hex digest of ${toSign}, but got app-key:0badc0de`);
    assert.equal(close.reason, 'Invalid signature for user authentication'); // a close frame holds 123 bytes
    const line = await logLine(server, /close 4009: /);
    assert.ok(line.includes(`close 4009: ${error.data.message} [app=app-id socket_id=${c.socketId} remote=127.0.0.1:`), line);
  });

  test('a rejected client event is logged with its channel and event name', async () => {
    const c = await h.connectRaw(server);
    c.send({ event: 'client-hi', channel: 'private-not-joined', data: {} });
    await c.waitFor('pusher:error');
    const line = await logLine(server, /client event: /);
    assert.match(line, new RegExp(String.raw`client event: Client event rejected - not subscribed to the channel \(event "client-hi"\) ` +
      `\\[app=app-id socket_id=${esc(c.socketId)} channel=private-not-joined ${REMOTE}\\]$`));
    c.close();
  });
});

describe('a burst of refusals', () => {
  let server;
  before(async () => { server = await h.startServer({}); });
  after(async () => { await server.stop(); });

  test('200 bad requests give the first line and one "N more" line, not 200 lines', async () => {
    for (let i = 0; i < 200; i++) {
      const status = await rawRequest(server, `GET /apps/app-id/channels?x=%zz${i} HTTP/1.1\r\nHost: a\r\n\r\n`);
      assert.match(status, /^HTTP\/1\.1 400 /);
    }
    await logLine(server, /http 400: GET \/apps\/app-id\/channels: Malformed query string \[app=app-id remote=/);
    await h.sleep(h.T(300));
    assert.equal(lines(server, /http 400/).length, 1, 'the rest are counted, not logged');
    // the window ends 10 s after the first: one summary line (io threads flush it on their tick)
    const sum = await logLine(server, /more http 400 in the last 10 s/, h.T(13000));
    assert.match(sum, /INFO\s+http\s+199 more http 400 in the last 10 s$/);
    assert.equal(lines(server, /http 400/).length, 2);
  });
});

describe('log_format json', () => {
  let server;
  before(async () => { server = await h.startServer({ log_format: 'json' }); });
  after(async () => { if (!server.exit) await server.stop(); });

  test('every line is a JSON object; refusals carry their context as keys', async () => {
    const r = await h.signedRequest(server, { path: '/apps/app-id/channels', signature: 'f'.repeat(64) });
    assert.equal(r.status, 401);
    const c = await h.connectRaw(server, { key: 'nokey', established: false });
    await c.expectErrorAndClose(4001);
    await logLine(server, /"reason":"close 4001"/);
    const all = server.stderr.split('\n').filter((l) => l.length);
    const objs = all.map((l) => {
      try { return JSON.parse(l); } catch (e) { return assert.fail(`not JSON: ${l}`); }
    });
    for (const o of objs) {
      assert.match(o.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.ok(['error', 'warn', 'notice', 'info', 'debug'].includes(o.level), o.level);
      assert.equal(typeof o.module, 'string');
      assert.equal(typeof o.msg, 'string');
    }
    const http401 = objs.find((o) => o.reason === 'http 401');
    assert.ok(http401, 'the 401 line');
    assert.equal(http401.level, 'info');
    assert.equal(http401.module, 'http');
    assert.equal(http401.app, 'app-id');
    assert.match(http401.remote, /^127\.0\.0\.1:\d+$/);
    assert.match(http401.msg, /^http 401: GET \/apps\/app-id\/channels: Invalid signature/);
    const close4001 = objs.find((o) => o.reason === 'close 4001');
    assert.equal(close4001.module, 'session');
    assert.equal(close4001.msg, 'close 4001: Application does not exist (key "nokey")'); // quotes escaped
    assert.match(close4001.socket_id, /^\d+\.\d+$/);
    assert.match(close4001.remote, /^127\.0\.0\.1:\d+$/);
  });

  test('the counts still in a window are written at exit, then the final line', async () => {
    for (let i = 0; i < 3; i++) {
      const status = await rawRequest(server, 'BAD\r\n\r\n');
      assert.match(status, /^HTTP\/1\.1 400 /);
    }
    await server.stop();
    const objs = server.stderr.split('\n').filter((l) => l.length).map((l) => JSON.parse(l));
    const last = objs[objs.length - 1];
    assert.equal(last.msg, 'stopped (exit status 0)');
    assert.equal(last.level, 'notice');
    const sum = objs.find((o) => o.reason === 'http 400' && o.count);
    assert.ok(sum, 'the "N more" line of the unfinished window');
    assert.equal(sum.count, 2);
    assert.match(sum.msg, /^2 more http 400 in the last \d+ s$/);
  });
});

describe('the final line gives the exit status', () => {
  test('SIGTERM: "stopped (exit status 0)" is the last line', async () => {
    const server = await h.startServer({}, { env: { HERALD_LOG_FORMAT: 'text' } });
    await server.stop();
    const all = server.stderr.trimEnd().split('\n');
    assert.match(all[all.length - 1], /NOTICE\s+main\s+stopped \(exit status 0\)$/);
  });

  async function runToExit(config, env = {}) {
    const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-it-'));
    const configPath = path.join(tmpDir, 'config.json');
    fs.writeFileSync(configPath, typeof config === 'string' ? config : JSON.stringify(config));
    const server = new h.HeraldServer(config, configPath, tmpDir);
    server._spawn(env);
    const exit = await Promise.race([server.exitPromise, h.sleep(h.T(10000)).then(() => null)]);
    if (!exit) server.proc.kill('SIGKILL');
    fs.rmSync(tmpDir, { recursive: true, force: true });
    assert.ok(exit, `herald did not exit:\n${server.stderr}`);
    return { code: exit.code, stderr: server.stderr };
  }

  test('a port in use: exit 1, and the last line says so', async () => {
    const first = await h.startServer({});
    try {
      const r = await runToExit(h.makeConfig({ port: first.port }));
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`port ${first.port} is in use`));
      const all = r.stderr.trimEnd().split('\n');
      assert.match(all[all.length - 1], /ERR\s+main\s+not started \(exit status 1\)$/);
    } finally {
      await first.stop();
    }
  });

  test('a configuration that does not load: exit 1, and the last line says so', async () => {
    const r = await runToExit(h.makeConfig({ log_level: 'loud' }));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /log_level/);
    const all = r.stderr.trimEnd().split('\n');
    assert.match(all[all.length - 1], /ERR\s+main\s+not started: the configuration did not load \(exit status 1\)$/);
  });
});
