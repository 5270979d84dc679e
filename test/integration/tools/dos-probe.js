'use strict';
// dos-probe.js - measures what four kinds of hostile client do to a herald
// binary (a measurement, not a test: it prints figures and never fails).
//
//   node test/integration/tools/dos-probe.js [path/to/herald]
//
// 1. pipelined POSTs: 20 connections each send five signed POSTs in one
//    write; how many got all five answers, and does /up still answer?
// 2. slowloris: 500 sockets send "GET /up HTTP/1.1\r\n" and stall; server
//    CPU over 2 s (percent of one core).
// 3. bodies before authentication: 300 connections declare 1 MiB, send
//    ~900 KiB with a bad signature and stall; RSS before and after.
// 4. slow consumers: 1000 subscribers that never read, a busy channel;
//    server descriptors 2 s and 20 s after the 4100 closes.
// Every figure is read from /proc of the server process. Loopback only.

const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

process.env.HERALD_BIN = path.resolve(process.argv[2] || process.env.HERALD_BIN || 'build/herald');
const h = require('../lib/harness');

function proc(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return {
    rssMiB: Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024,
    cpuMs: (Number(f[11]) + Number(f[12])) * 10,
    fds: fs.readdirSync(`/proc/${pid}/fd`).length,
  };
}

const connect = (port) => new Promise((resolve, reject) => {
  const s = net.connect(port, '127.0.0.1', () => resolve(s));
  s.on('error', reject);
});

async function upAnswers(server) {
  try { return (await h.httpRequest(server, { path: '/up', timeout: 2000 })).status === 200; } catch { return false; }
}

function signedPost(server, body) {
  const app = server.app(0);
  const p = '/apps/app-id/events';
  const q = { auth_key: app.key, auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: '1.0', body_md5: h.md5(body) };
  const sig = h.hmac(app.secret, `POST\n${p}\n${h.canonicalParams(q)}`);
  const qs = new URLSearchParams({ ...q, auth_signature: sig }).toString();
  return `POST ${p}?${qs} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
}

async function pipelined(server) {
  let complete = 0;
  for (let i = 0; i < 20; i++) {
    const s = await connect(server.port);
    let text = '';
    const done = new Promise((r) => {
      const t = setTimeout(r, 2000);
      s.on('data', (c) => { text += c; if ((text.match(/HTTP\/1\.1 200/g) || []).length >= 5) { clearTimeout(t); r(); } });
      s.on('error', r);
    });
    s.write(Array.from({ length: 5 }, (_, k) => signedPost(server, JSON.stringify({ name: 'e', channel: 'c', data: String(k) }))).join(''));
    await done;
    if ((text.match(/HTTP\/1\.1 200/g) || []).length >= 5) complete++;
    s.destroy();
  }
  return { complete_of_20: complete, up_answers_after: await upAnswers(server) };
}

async function slowloris(server) {
  const socks = [];
  for (let i = 0; i < 500; i++) { const s = await connect(server.port); s.on('error', () => {}); s.write('GET /up HTTP/1.1\r\n'); socks.push(s); }
  await h.sleep(300);
  const a = proc(server.proc.pid); const t0 = Date.now();
  await h.sleep(2000);
  const b = proc(server.proc.pid);
  for (const s of socks) s.destroy();
  return { server_cpu_percent: Math.round(((b.cpuMs - a.cpuMs) / (Date.now() - t0)) * 100) };
}

async function bodies(server) {
  const before = proc(server.proc.pid).rssMiB;
  const socks = [];
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  for (let i = 0; i < 300; i++) {
    const s = await connect(server.port);
    s.on('error', () => {});
    s.write('POST /apps/app-id/events?auth_key=app-key&auth_timestamp=1&auth_version=1.0&auth_signature=x HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n');
    for (let k = 0; k < 14; k++) s.write(chunk);
    socks.push(s);
  }
  await h.sleep(2000);
  const after = proc(server.proc.pid).rssMiB;
  for (const s of socks) s.destroy();
  return { rss_before_mib: before.toFixed(1), rss_after_mib: after.toFixed(1) };
}

async function slowConsumers(server) {
  const socks = [];
  const subscribe = { event: 'pusher:subscribe', data: { channel: 'busy' } };
  for (let i = 0; i < 1000; i++) socks.push(await h.stalledWebSocket(server, { send: [subscribe], until: 'subscription_succeeded' }));
  const base = proc(server.proc.pid).fds - 1000;
  const batch = { batch: Array.from({ length: 10 }, () => ({ name: 'big', channel: 'busy', data: 'y'.repeat(9000) })) };
  let n = 0;
  for (; n < 2000 && !/outbound buffer over/.test(server.stderr); n++) await h.signedRequest(server, { method: 'POST', path: '/apps/app-id/batch_events', body: batch });
  await h.sleep(2000);
  const at2 = proc(server.proc.pid).fds - base;
  await h.sleep(18000);
  const at20 = proc(server.proc.pid).fds - base;
  for (const s of socks) s.destroy();
  return { batches_until_first_4100: n, slow_sockets_held_2s_after: at2, slow_sockets_held_20s_after: at20 };
}

async function main() {
  const results = {};
  for (const [name, fn] of [['pipelined', pipelined], ['slowloris', slowloris], ['bodies', bodies], ['slow_consumers', slowConsumers]]) {
    const server = await h.startServer(name === 'slow_consumers' ? { io_threads: 2, log_level: 'info' } : { io_threads: 1 });
    try { results[name] = await fn(server); } catch (e) { results[name] = { error: e.message.split('\n')[0] }; }
    server.proc.kill('SIGKILL');
    await server.exitPromise;
  }
  console.log(JSON.stringify({ binary: process.env.HERALD_BIN, ...results }, null, 1));
  process.exit(0);
}

main();
