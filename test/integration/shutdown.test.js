'use strict';
// Graceful shutdown: SIGTERM closes every client with 4200 and herald exits 0.
const { test } = require('node:test');
const net = require('node:net');
const assert = require('node:assert/strict');
const http = require('node:http');
const h = require('./lib/harness');

test('SIGTERM: connected clients get close 4200, herald exits 0 (idle keep-alive HTTP open too)', async () => {
  const server = await h.startServer({});
  let stopped = false;
  try {
    const a = await h.connectRaw(server);
    const b = await h.connectRaw(server);
    await a.subscribeOk(h.uniq('shutdown'));
    await b.subscribeOk(h.uniq('presence-shutdown'), { userId: 'bye' });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const r = await h.signedRequest(server, { method: 'GET', path: `/apps/${h.APP.id}/channels`, agent });
    assert.equal(r.status, 200);
    const t0 = Date.now();
    const closes = Promise.all([a.waitClose(h.T(10000)), b.waitClose(h.T(10000))]);
    stopped = true;
    await server.stop({ keepClients: true }); // asserts exit code 0 and no sanitizer reports
    const infos = await closes;
    assert.deepEqual(infos.map((i) => i.code), [4200, 4200]);
    assert.ok(Date.now() - t0 < h.T(10000));
    agent.destroy();
  } finally {
    if (!stopped) await server.stop();
  }
});

test('SIGTERM: a pusher-js client sees the connection drop with 4200 (retry action)', async () => {
  const server = await h.startServer({});
  let stopped = false;
  try {
    const p = h.makePusherClient(server);
    await h.pusherConnected(p);
    const changes = [];
    p.connection.bind('state_change', (s) => changes.push(s.current));
    let closeCode = null;
    p.connection.connection.transport.bind('closed', (ev) => { closeCode = ev && ev.code; });
    stopped = true;
    await server.stop({ keepClients: true });
    await h.eventually(() => closeCode !== null);
    assert.equal(closeCode, 4200);
    await h.eventually(() => changes.length > 0);
    assert.notEqual(changes[0], 'failed');
    p.disconnect();
  } finally {
    if (!stopped) await server.stop();
  }
});

// Item 8 of the hardening issue: stop accepting first, explain every close,
// and let an impatient operator end it with a second signal.
test('SIGTERM: pusher:error 4200 precedes every close, new connections are refused at once, a final log line', async () => {
  const server = await h.startServer({ shutdown_grace_period: 3 });
  const a = await h.connectRaw(server);
  await a.subscribeOk(h.uniq('bye'));
  const err = a.waitFor((m) => m.event === 'pusher:error');
  const closed = a.waitClose(h.T(5000));
  // one session that never completes its close handshake keeps the grace period going
  const stuck = await h.stalledWebSocket(server);
  server.proc.kill('SIGTERM');
  const e = await err;
  assert.equal(e.data.code, 4200);
  assert.equal((await closed).code, 4200);
  // during the grace period the port refuses: a reconnect is not welcomed and closed again
  const refused = await new Promise((resolve) => {
    const s = net.connect(server.port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(false); });
    s.on('error', (x) => resolve(x.code === 'ECONNREFUSED'));
  });
  assert.ok(!server.exit, 'still in its grace period');
  assert.equal(refused, true, 'new connections are refused during shutdown');
  const exit = await server.exitPromise;
  assert.equal(exit.code, 0);
  assert.match(server.stderr, /stopped \(exit status 0\)/);
  stuck.destroy();
  await server.stop({ keepClients: true });
});

test('a second SIGTERM during the grace period exits at once', async () => {
  // A webhook endpoint that never answers keeps the graceful shutdown busy
  // flushing for the whole grace period.
  let hit = false;
  const hang = http.createServer(() => { hit = true; });
  await new Promise((r) => hang.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${hang.address().port}/hook`;
  const server = await h.startServer({
    shutdown_grace_period: 30,
    webhooks: { batching: { enabled: false, duration: 50 }, timeout_ms: 60000 },
    app: { webhooks: [{ url, event_types: ['channel_occupied'] }] },
  });
  const c = await h.connectRaw(server);
  await c.subscribeOk(h.uniq('occupied'));
  await h.eventually(() => hit);
  server.proc.kill('SIGTERM');
  await h.sleep(h.T(500));
  assert.ok(!server.exit, 'still flushing its webhook');
  const t0 = Date.now();
  server.proc.kill('SIGTERM');
  const exit = await server.exitPromise;
  assert.ok(Date.now() - t0 < h.T(5000), 'the second signal ended it');
  assert.equal(exit.code, 1);
  assert.match(server.stderr, /again during shutdown: exiting at once/);
  hang.closeAllConnections();
  hang.close();
  server.stopping = true;
  await server.stop({ keepClients: true }).catch(() => {}); // exit code 1 is the point here; this cleans up
});
