'use strict';
// Graceful shutdown: SIGTERM closes every client with 4200 and herald exits 0.
const { test } = require('node:test');
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
