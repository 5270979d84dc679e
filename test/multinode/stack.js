'use strict';
// The multinode stack: one redis-server (nothing persisted), three herald nodes A, B, C joined through it
// (adapter.driver redis, set by HERALD_* variables), and the dev web server that serves the page.
//
//   node stack.js          (what run.sh runs) starts it, prints the page URL, runs until SIGINT/SIGTERM
//   require('./stack').startStack(opts)  (what page.test.js does) starts it on free ports
//
// Ports come from the environment in the first case (MULTINODE_PORTS, MULTINODE_METRICS_PORTS,
// MULTINODE_WEB_PORT, MULTINODE_REDIS_PORT; 0 = any free port) so a test never collides with a stack a
// developer has running. Every child runs in its own process group: a Ctrl-C in the terminal reaches only
// this process, which stops the nodes (SIGTERM, then SIGKILL past a deadline) and Redis in order; if this
// process dies anyway, its 'exit' handler SIGKILLs whatever is left.
//
// Threading: one Node event loop; children are watched through their exit events and piped output.

const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const { createDevServer } = require('./server');

const REPO = path.resolve(__dirname, '../..');
const CONFIG = path.join(REPO, 'config/config.json');
const APP = Object.freeze({ id: 'app-id', key: 'app-key', secret: 'app-secret' }); // config/config.json's app
const NODE_NAMES = ['A', 'B', 'C'];
const DEFAULTS = Object.freeze({ ports: [6001, 6002, 6003], metricsPorts: [9601, 9602, 9603], webPort: 6100 });
const STOP_DEADLINE_MS = 8000;     // SIGTERM → exit; herald gets a 1 s shutdown grace period here
const START_DEADLINE_MS = 10000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- ports

function canListen(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

/** Ports for every role: a fixed one must be free (else an error naming it), 0 picks a free one. */
async function assignPorts(wanted) {
  const taken = new Set();
  const out = {};
  for (const [role, port] of Object.entries(wanted)) {
    if (port) {
      if (taken.has(port)) throw new Error(`port ${port} is given twice (${role})`);
      if (!(await canListen(port))) {
        throw new Error(`port ${port} (${role}) is in use on 127.0.0.1: stop what listens there or choose other ` +
                        'ports (MULTINODE_PORTS, MULTINODE_METRICS_PORTS, MULTINODE_WEB_PORT, MULTINODE_REDIS_PORT)');
      }
      out[role] = port;
    } else {
      let p;
      do { p = await freePort(); } while (taken.has(p) || Object.values(wanted).includes(p));
      out[role] = p;
    }
    taken.add(out[role]);
  }
  return out;
}

// ---------------------------------------------------------------- probes

function httpStatus(port, pathName) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathName, agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

function redisPing(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let got = '';
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(1000, () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => { got += d; if (got.includes('\r\n')) done(got.startsWith('+PONG')); });
    sock.on('error', () => done(false));
  });
}

/** null when this herald accepts name=value, else its complaint (older builds stop on an unknown key). */
function heraldRefuses(bin, env, name, value) {
  const r = spawnSync(bin, ['--check-config', CONFIG], { env: { ...env, [name]: value }, encoding: 'utf8' });
  return r.status === 0 ? null : `${r.stderr || r.stdout || ''}`.trim() || `exit status ${r.status}`;
}

// ---------------------------------------------------------------- children

const live = new Set();
process.on('exit', () => {
  for (const c of live) { try { process.kill(-c.proc.pid, 'SIGKILL'); } catch { /* already gone */ } }
});

/** A child in its own process group, its output split into lines for onLog, its exit awaited. */
function startChild(name, cmd, args, env, onLog) {
  const proc = spawn(cmd, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const child = { name, proc, output: [], exit: null };
  live.add(child);
  child.exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => { child.exit = { code, signal }; live.delete(child); resolve(child.exit); });
    proc.on('error', (err) => { child.exit = { code: -1, signal: null, error: err }; live.delete(child); resolve(child.exit); });
  });
  for (const stream of [proc.stdout, proc.stderr]) {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (d) => {
      const lines = (rest + d).split('\n');
      rest = lines.pop();
      for (const l of lines) {
        child.output.push(l);
        if (child.output.length > 400) child.output.shift();
        onLog(name, l);
      }
    });
  }
  return child;
}

async function stopChild(child, signal = 'SIGTERM') {
  if (child.exit) return child.exit;
  try { process.kill(-child.proc.pid, signal); } catch { /* already gone */ }
  const t = setTimeout(() => { try { process.kill(-child.proc.pid, 'SIGKILL'); } catch { /* gone */ } }, STOP_DEADLINE_MS);
  const exit = await child.exited;
  clearTimeout(t);
  return exit;
}

/** Polls probe() until true; fails early if the child exits, with the last lines it printed. */
async function waitUntil(child, what, probe, deadlineMs) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (child.exit) {
      throw new Error(`${child.name} exited (${JSON.stringify(child.exit)}) before ${what}:\n` +
                      child.output.slice(-15).join('\n'));
    }
    if (await probe()) return true;
    if (Date.now() > end) return false;
    await sleep(100);
  }
}

// ---------------------------------------------------------------- the stack

/** The environment of a herald node: the caller's without any HERALD_* (the stack is the whole truth). */
function baseEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HERALD_')) env[k] = v;
  return env;
}

/**
 * startStack(opts) -> stack
 *   heraldBin     default $HERALD_BIN or build/herald
 *   ports         [A, B, C] WebSocket/HTTP ports (0 = free; default 6001..6003)
 *   metricsPorts  [A, B, C] (0 = free; default 9601..9603)
 *   webPort       dev server (0 = free; default 6100)
 *   redisPort     undefined: 6379 if free, else a free one; 0: a free one
 *   driver        adapter.driver, 'redis' (default) or 'local'
 *   nodeTimeoutMs adapter.redis.node_timeout_ms when this herald knows the key (stack.nodeTimeoutMs says)
 *   readyDeadlineMs       how long to wait for each node's GET /ready (default 5000; node.ready says)
 *   onLog(source, line)   every line a child prints (default: none)
 * stack: {url, webPort, redis: {port}, nodes: [{name, port, metricsPort, pid, ready}], prefix, driver,
 *         nodeTimeoutMs, killNode(name, signal = 'SIGKILL'), logs(name), stop()}
 */
async function startStack(opts = {}) {
  const heraldBin = path.resolve(opts.heraldBin || process.env.HERALD_BIN || path.join(REPO, 'build/herald'));
  if (!fs.existsSync(heraldBin)) throw new Error(`no herald binary at ${heraldBin} (build it: make build-herald)`);
  const onLog = opts.onLog || (() => {});
  const driver = opts.driver || 'redis';
  const ports = opts.ports || DEFAULTS.ports;
  const metricsPorts = opts.metricsPorts || DEFAULTS.metricsPorts;
  let redisPort = opts.redisPort;
  if (redisPort === undefined) redisPort = (await canListen(6379)) ? 6379 : 0;

  const wanted = { redis: redisPort, web: opts.webPort ?? DEFAULTS.webPort };
  NODE_NAMES.forEach((n, i) => { wanted[`node ${n}`] = ports[i]; wanted[`node ${n} metrics`] = metricsPorts[i]; });
  const assigned = await assignPorts(wanted);

  const prefix = `herald-mn-${crypto.randomBytes(4).toString('hex')}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-mn-'));
  const children = [];
  const stack = {
    prefix, driver, nodeTimeoutMs: null, redis: { port: assigned.redis }, nodes: [],
    webPort: assigned.web, url: `http://127.0.0.1:${assigned.web}/`,
  };
  let web = null;

  stack.stop = async () => {
    if (web) { web.closeAllConnections(); await new Promise((r) => web.close(r)); web = null; }
    const heralds = children.filter((c) => c.name !== 'redis');
    await Promise.all(heralds.map((c) => stopChild(c)));
    await Promise.all(children.filter((c) => c.name === 'redis').map((c) => stopChild(c)));
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  stack.logs = (name) => (children.find((c) => c.name === name) || { output: [] }).output.join('\n');

  try {
    // Redis: loopback, no RDB, no AOF, its working files in a temporary folder.
    const redis = startChild('redis', 'redis-server', ['--bind', '127.0.0.1', '--port', String(assigned.redis),
      '--save', '', '--appendonly', 'no', '--dir', tmp, '--loglevel', 'warning'], process.env, onLog);
    children.push(redis);
    if (!(await waitUntil(redis, 'answering PING', () => redisPing(assigned.redis), START_DEADLINE_MS))) {
      throw new Error(`redis-server on port ${assigned.redis} did not answer PING within ${START_DEADLINE_MS} ms`);
    }

    const env = {
      ...baseEnv(),
      HERALD_HOST: '127.0.0.1',
      HERALD_IO_THREADS: '1',               // three nodes share a small machine
      HERALD_SHUTDOWN_GRACE_PERIOD: '1',
      HERALD_METRICS_HOST: '127.0.0.1',
      HERALD_DEFAULT_APP_ENABLE_SUBSCRIPTION_COUNT: 'true',
      HERALD_ADAPTER_DRIVER: driver,
      HERALD_ADAPTER_REDIS_HOST: '127.0.0.1',
      HERALD_ADAPTER_REDIS_PORT: String(assigned.redis),
      HERALD_ADAPTER_REDIS_PREFIX: prefix,
    };
    if (opts.nodeTimeoutMs) {
      const v = String(opts.nodeTimeoutMs);
      const refusal = heraldRefuses(heraldBin, env, 'HERALD_ADAPTER_REDIS_NODE_TIMEOUT_MS', v);
      if (!refusal) {
        env.HERALD_ADAPTER_REDIS_NODE_TIMEOUT_MS = v;
        stack.nodeTimeoutMs = opts.nodeTimeoutMs;
      } else {
        onLog('stack', `node timeout left at herald's default: ${refusal}`);
      }
    }

    for (const name of NODE_NAMES) {
      const port = assigned[`node ${name}`];
      const metricsPort = assigned[`node ${name} metrics`];
      const child = startChild(name, heraldBin, ['--config', CONFIG],
        { ...env, HERALD_PORT: String(port), HERALD_METRICS_PORT: String(metricsPort) }, onLog);
      children.push(child);
      stack.nodes.push({ name, port, metricsPort, pid: child.proc.pid, ready: false, child });
    }
    for (const node of stack.nodes) {
      if (!(await waitUntil(node.child, 'GET /up answered 200',
        async () => (await httpStatus(node.port, '/up')) === 200, START_DEADLINE_MS))) {
        throw new Error(`node ${node.name} (port ${node.port}) did not answer GET /up within ${START_DEADLINE_MS} ms`);
      }
    }
    // /ready is 503 while a node has not joined the cluster yet (Redis unreachable, say).
    for (const node of stack.nodes) {
      node.ready = await waitUntil(node.child, 'GET /ready answered 200',
        async () => (await httpStatus(node.port, '/ready')) === 200, opts.readyDeadlineMs ?? 5000);
    }

    web = createDevServer({
      app: APP,
      nodes: stack.nodes.map((n) => ({ name: n.name, port: n.port })),
      info: { driver, nodeTimeoutMs: stack.nodeTimeoutMs, redisPort: assigned.redis, prefix },
    });
    await new Promise((resolve, reject) => {
      web.once('error', reject);
      web.listen(assigned.web, '127.0.0.1', resolve);
    });
  } catch (err) {
    await stack.stop();
    throw err;
  }

  stack.killNode = async (name, signal = 'SIGKILL') => {
    const node = stack.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no node ${name}`);
    node.child.proc.kill(signal);
    return node.child.exited;
  };
  return stack;
}

// ---------------------------------------------------------------- command line (run.sh)

function portsFromEnv(name, fallback) {
  const raw = process.env[name];
  if (!raw) return fallback;
  const list = raw.split(',').map((s) => Number(s.trim()));
  if (list.length !== 3 || list.some((p) => !Number.isInteger(p) || p < 0 || p > 65535)) {
    throw new Error(`${name} must be three ports separated by commas (0 = any free one), got ${JSON.stringify(raw)}`);
  }
  return list;
}

function portFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const p = Number(raw);
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new Error(`${name} must be a port (0 = any free one), got ${JSON.stringify(raw)}`);
  return p;
}

function msFromEnv(name) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms <= 0) throw new Error(`${name} must be a number of milliseconds, got ${JSON.stringify(raw)}`);
  return ms;
}

async function main() {
  const opts = {
    ports: portsFromEnv('MULTINODE_PORTS', DEFAULTS.ports),
    metricsPorts: portsFromEnv('MULTINODE_METRICS_PORTS', DEFAULTS.metricsPorts),
    webPort: portFromEnv('MULTINODE_WEB_PORT', DEFAULTS.webPort),
    redisPort: portFromEnv('MULTINODE_REDIS_PORT', undefined),
    driver: process.env.MULTINODE_DRIVER || 'redis',
    nodeTimeoutMs: msFromEnv('MULTINODE_NODE_TIMEOUT_MS'),
    onLog: (source, line) => { if (line) console.log(`[${source}] ${line}`); },
  };
  if (!['redis', 'local'].includes(opts.driver)) throw new Error('MULTINODE_DRIVER must be redis or local');

  const stack = await startStack(opts);
  let stopping = null;
  const stop = async (sig) => {
    // Ctrl-C reaches this process and run.sh's trap, which sends SIGTERM: one stop is under way, so only a
    // second Ctrl-C cuts it short (the 'exit' handler then SIGKILLs the children).
    if (stopping) {
      if (sig === 'SIGINT' && stopping === 'SIGINT') { console.log('\nSIGINT again: killing everything'); process.exit(1); }
      if (sig === 'SIGINT') stopping = sig;
      return;
    }
    stopping = sig;
    console.log(`\n${sig}: stopping the nodes and redis-server...`);
    await stack.stop();
    console.log('stopped.');
    process.exit(0);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => stop('SIGHUP'));

  const lines = [
    '',
    'herald multinode playground',
    `  redis-server  127.0.0.1:${stack.redis.port}  (key prefix ${stack.prefix}, nothing persisted)`,
    ...stack.nodes.map((n) => `  node ${n.name}        ws/http 127.0.0.1:${n.port}  metrics http://127.0.0.1:${n.metricsPort}/metrics` +
      `  pid ${n.pid}${n.ready ? '' : '  (GET /ready is not 200 yet)'}`),
    `  adapter       ${stack.driver}${stack.nodeTimeoutMs ? `, node timeout ${stack.nodeTimeoutMs} ms` : ''}`,
    '',
    `  open ${stack.url}`,
    '',
    'Ctrl-C stops everything.',
    '',
  ];
  console.log(lines.join('\n'));
}

if (require.main === module) {
  main().catch((err) => { console.error(`multinode: ${err.message}`); process.exit(1); });
}

module.exports = { startStack, APP, NODE_NAMES };
