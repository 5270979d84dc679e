'use strict';
// One herald per port: a second herald started on a port another process
// listens on (the main port or the metrics port) must fail at start-up with
// a message naming the port, and leave the first one serving. Without this,
// SO_REUSEPORT on every listener let the second one in silently and the
// kernel split new clients between the two processes. `reuse_port: true`
// (or HERALD_REUSE_PORT) is the deliberate way to share the main port.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const h = require('./lib/harness');

// the line herald logs once it serves (not the refusal's "is listening on it")
const STARTED_RE = /herald \S+ listening on \S+ with/;
const METRICS = (port) => ({ enabled: true, host: '127.0.0.1', port });

/**
 * Spawn a herald that must refuse to start. Resolves with {code, signal,
 * stderr} once it exits; rejects as soon as it logs that it is listening
 * (that is the bug), or if it neither exits nor starts within the wait.
 */
async function startExpectingRefusal(overrides, env = {}) {
  const config = h.makeConfig(overrides);
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-it-'));
  const configPath = path.join(tmpDir, 'config.json');
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  const server = new h.HeraldServer(config, configPath, tmpDir);
  server._spawn(env);
  let timer;
  let poll;
  try {
    const outcome = await Promise.race([
      server.exitPromise.then((exit) => ({ exit })),
      new Promise((resolve) => {
        poll = setInterval(() => { if (STARTED_RE.test(server.stderr)) resolve({ started: true }); }, 20);
      }),
      new Promise((resolve) => { timer = setTimeout(() => resolve({ hung: true }), h.T(10000)); }),
    ]);
    if (!outcome.exit) {
      server.proc.kill('SIGKILL');
      await server.exitPromise;
      assert.fail(`the second herald ${outcome.started ? 'started' : 'neither started nor exited'} ` +
        `on a port in use (config ${JSON.stringify(config)}).\nstderr:\n${server.stderr}`);
    }
    return { ...outcome.exit, stderr: server.stderr };
  } finally {
    clearTimeout(timer);
    clearInterval(poll);
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}

function assertRefused(res, port) {
  assert.ok(res.code !== 0 && res.code !== null, `exit code ${res.code} (signal ${res.signal}), expected non-zero`);
  assert.match(res.stderr, new RegExp(`port ${port} is in use: another process is listening on it`),
    `stderr:\n${res.stderr}`);
  assert.doesNotMatch(res.stderr, /AddressSanitizer|LeakSanitizer|runtime error/, `stderr:\n${res.stderr}`);
}

/** The first server still takes WebSocket clients and answers its HTTP API. */
async function assertServing(server) {
  for (let i = 0; i < 8; i++) {
    const c = await h.connectRaw(server);
    assert.match(c.socketId, h.SOCKET_ID_RE);
    c.close();
  }
  const res = await h.signedRequest(server, { method: 'GET', path: `/apps/${server.app().id}/channels` });
  assert.equal(res.status, 200, res.text);
}

/**
 * startServer() for a herald that shares the first one's port: its GET /up
 * may be answered by the first, so also wait for its own "listening" line
 * (logged once it handles SIGTERM).
 */
async function startSharing(overrides, opts) {
  const server = await h.startServer(overrides, opts);
  await h.eventually(() => STARTED_RE.test(server.stderr), { timeout: h.T(10000) });
  return server;
}

function metricsStatus(port, pathName = '/metrics') {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathName, agent: false, timeout: h.T(5000) }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${pathName} on the metrics port timed out`)));
    req.on('error', reject);
  });
}

test('a second herald on the main port in use exits non-zero naming the port; the first keeps serving', async () => {
  const first = await h.startServer();
  try {
    const res = await startExpectingRefusal({ port: first.port });
    assertRefused(res, first.port);
    assert.match(res.stderr, /reuse_port/, 'the message points at the deliberate way to share the port');
    await assertServing(first);
  } finally {
    await first.stop();
  }
});

test('a second herald on the metrics port in use exits non-zero naming the port; the first keeps serving', async () => {
  const metricsPort = await h.getFreePort();
  const first = await h.startServer({ metrics: METRICS(metricsPort) });
  try {
    const mainPort = await h.getFreePort();
    const res = await startExpectingRefusal({ port: mainPort, metrics: METRICS(metricsPort) });
    assertRefused(res, metricsPort);
    assert.equal(await metricsStatus(metricsPort), 200);
    assert.equal(await metricsStatus(metricsPort, '/ready'), 200);
    await assertServing(first);
  } finally {
    await first.stop();
  }
});

test('reuse_port: true lets a second herald join the main port on purpose', async () => {
  const first = await h.startServer();
  try {
    const second = await startSharing({ port: first.port, reuse_port: true });
    try {
      // both serve: whichever process the kernel hands each client to, it is a herald
      for (let i = 0; i < 8; i++) {
        const c = await h.connectRaw(second);
        c.close();
      }
    } finally {
      await second.stop();
    }
    await assertServing(first);
  } finally {
    await first.stop();
  }
});

test('HERALD_REUSE_PORT sets reuse_port from the environment', async () => {
  const first = await h.startServer();
  try {
    const refused = await startExpectingRefusal({ port: first.port }, { HERALD_REUSE_PORT: 'false' });
    assertRefused(refused, first.port);
    const second = await startSharing({ port: first.port }, { env: { HERALD_REUSE_PORT: 'true' } });
    assert.doesNotMatch(second.stderr, /HERALD_REUSE_PORT: no such herald setting/);
    await second.stop();
    await assertServing(first);
  } finally {
    await first.stop();
  }
});

test('reuse_port does not extend to the metrics port', async () => {
  const metricsPort = await h.getFreePort();
  const first = await h.startServer({ metrics: METRICS(metricsPort) });
  try {
    const res = await startExpectingRefusal({ port: first.port, reuse_port: true, metrics: METRICS(metricsPort) });
    assertRefused(res, metricsPort);
    assert.equal(await metricsStatus(metricsPort), 200);
    await assertServing(first);
  } finally {
    await first.stop();
  }
});
