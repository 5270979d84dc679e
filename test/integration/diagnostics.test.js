'use strict';
// scripts/diagnostics.sh against a running herald: it collects /metrics,
// /ready, /up, the configuration and the log into one file whose path it
// prints last, masks every secret of the configuration (app secret, TLS
// passphrase, webhook header tokens, URL credentials and tokens, also where
// they show up in /metrics labels), and needs nothing but bash, curl and
// coreutils (it runs here with a PATH that holds only those).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const h = require('./lib/harness');

const SCRIPT = path.resolve(__dirname, '../../scripts/diagnostics.sh');

const SECRETS = {
  app: 'app-secret-do-not-leak',
  passphrase: 'pp-do-not-leak',
  header: 'hdr-do-not-leak',
  query: 'qs-do-not-leak',
  redis: 'redis-pass-do-not-leak',
};

// coreutils programs (nothing from other packages: no sed, awk, grep, jq, procps)
const COREUTILS = ['cat', 'date', 'id', 'uname', 'tail', 'head', 'ls', 'wc', 'tr', 'sort', 'uniq', 'stat', 'nproc',
  'mkdir', 'mktemp', 'rm', 'env', 'basename', 'dirname', 'tee', 'cut', 'readlink', 'sleep', 'true', 'false'];

function findOnPath(name) {
  for (const dir of (process.env.PATH || '/usr/bin:/bin').split(':')) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return null;
}

let server;
let metricsPort;
let receiver;
let tmp;
let minimalPath;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-diag-'));
  // a PATH with bash, curl and coreutils only
  minimalPath = path.join(tmp, 'bin');
  fs.mkdirSync(minimalPath);
  for (const name of ['bash', 'curl', ...COREUTILS]) {
    const p = findOnPath(name);
    if (p) fs.symlinkSync(p, path.join(minimalPath, name));
    else assert.ok(!['bash', 'curl'].includes(name), `${name} is needed to run this test`);
  }
  receiver = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('ok')); });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  metricsPort = await h.getFreePort();
  server = await h.startServer({
    metrics: { enabled: true, host: '127.0.0.1', port: metricsPort },
    ssl: { enabled: false, passphrase: SECRETS.passphrase },
    adapter: { driver: 'local', redis: { redis_pub_options: { url: `redis://herald:${SECRETS.redis}@127.0.0.1:6379` } } },
    webhooks: { batching: { enabled: true, duration: 10 } },
    app: {
      secret: SECRETS.app,
      webhooks: [{
        url: `http://127.0.0.1:${receiver.address().port}/hook?token=${SECRETS.query}`,
        event_types: ['channel_occupied'],
        headers: { 'X-Api-Token': SECRETS.header },
      }],
    },
  });
  const c = await h.connectRaw(server);
  await c.subscribeOk(h.uniq('diag'));
  await h.sleep(h.T(200)); // the channel_occupied webhook goes out
});

after(async () => {
  if (server) await server.stop();
  if (receiver) await new Promise((resolve) => receiver.close(resolve));
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Run the script with args and the minimal PATH: {code, stdout, stderr}. */
function runScript(args) {
  return new Promise((resolve, reject) => {
    const env = { PATH: minimalPath, TMPDIR: tmp, LANG: 'C' };
    const p = spawn(path.join(minimalPath, 'bash'), [SCRIPT, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), h.T(30000));
    p.on('error', reject);
    p.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

test('collects metrics, health, config and log into one file, secrets masked, with bash + curl + coreutils only', async () => {
  const logFile = path.join(tmp, 'herald.log');
  fs.writeFileSync(logFile, `${server.stderr}2026-01-01T00:00:00.000Z NOTICE test     last line of the log\n`);
  const out = path.join(tmp, 'diagnostics.txt');
  const r = await runScript(['--metrics-port', String(metricsPort), '--port', String(server.port), '--bin',
    h.HERALD_BIN, '--log', logFile, '--unit', 'herald-test.service', '-o', out, server.configPath]);
  assert.equal(r.code, 0, `exit ${r.code}\nstderr: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines[lines.length - 1], out, `the last line names the file: ${r.stdout}`);
  const text = fs.readFileSync(out, 'utf8');

  // what was collected
  assert.match(text, /^herald \d+\.\d+\.\d+$/m, 'herald --version');
  assert.match(text, /^# TYPE herald_connections gauge$/m, '/metrics text');
  assert.match(text, /^herald_connections\{app="app-id"\} 1$/m, 'the live connection in /metrics');
  assert.match(text, /^herald_webhook_events_queued_total\{app="app-id",url="[^"]*"\} \d+$/m, 'webhook metrics');
  assert.match(text, /===== GET http:\/\/127\.0\.0\.1:\d+\/ready \(metrics port\) =====\n\{"ok":true\}\n\(HTTP 200\)/, '/ready');
  assert.match(text, /===== GET http:\/\/127\.0\.0\.1:\d+\/up \(main port\) =====\n\{"ok":true\}\n\(HTTP 200\)/, '/up');
  assert.match(text, /^ulimit -n \(soft\): (\d+|unlimited)$/m);
  assert.match(text, /^fs\.file-max = /m);
  assert.match(text, /^net\.core\.somaxconn = /m);
  assert.match(text, /^net\.ipv4\.tcp_mem = /m);
  assert.match(text, /last line of the log/, 'the log tail');
  assert.match(text, /journalctl is not available/, 'no journalctl on the minimal PATH');
  assert.match(text, /configuration OK/, 'herald --check-config ran');
  assert.match(text, /"key": "app-key"/, 'the configuration itself is there');

  // what was masked
  for (const [what, secret] of Object.entries(SECRETS)) {
    assert.ok(!text.includes(secret), `the ${what} secret leaked into the diagnostics file`);
  }
  assert.match(text, /"secret": "\*\*\*"/);
  assert.match(text, /"passphrase": "\*\*\*"/);
  assert.match(text, /"X-Api-Token": "\*\*\*"/);
  assert.match(text, /redis:\/\/\*\*\*@127\.0\.0\.1:6379/);
  assert.match(text, /\/hook\?token=\*\*\*"/, 'the webhook URL, in the configuration and in metric labels');
  const mode = fs.statSync(out).mode & 0o777;
  assert.equal(mode & 0o077, 0, `the file is private to its owner (mode ${mode.toString(8)})`);
});

test('a bad option or an unreadable config file is refused with exit status 2', async () => {
  let r = await runScript(['--no-such-option']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option --no-such-option/);
  r = await runScript([path.join(tmp, 'missing.json')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /cannot read/);
  r = await runScript(['--metrics-port', 'abc']);
  assert.equal(r.code, 2);
});
