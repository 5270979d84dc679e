'use strict';
// pusher:ping / pusher:pong, WS ping frames, server-side activity checks (4201).
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

// activity_timeout 1 s, pong_timeout 1 s: the server pings after ~1 s of silence
// and closes 4201 ~1 s later if nothing arrives.
let server;
let sdk;
before(async () => {
  server = await h.startServer({ activity_timeout: 1, pong_timeout: 1 });
  sdk = h.makeSdk(server);
});
after(async () => { if (server) await server.stop(); });

const SERVER_PING = (m) => m.event === 'pusher:ping';
SERVER_PING.description = 'server pusher:ping';

// Every test uses its own connection and mostly waits on timers, so they run
// concurrently to keep this file at ~5 s instead of ~25 s.
describe('ping, pong and activity timeout', { concurrency: true }, () => {
  test('pusher:ping is answered with exactly {"event":"pusher:pong","data":"{}"}', async () => {
    const c = await h.connectRaw(server);
    c.send({ event: 'pusher:ping', data: {} });
    const m = await c.waitFor('pusher:pong');
    assert.deepEqual(m, { event: 'pusher:pong', data: '{}' });
    c.close();
  });

  test('pusher:ping without data is answered too', async () => {
    const c = await h.connectRaw(server);
    c.send({ event: 'pusher:ping' });
    const m = await c.waitFor('pusher:pong');
    assert.deepEqual(m, { event: 'pusher:pong', data: '{}' });
    c.close();
  });

  test('WebSocket ping frame is answered with a pong frame carrying the same payload', async () => {
    const c = await h.connectRaw(server);
    c.ws.ping(Buffer.from('hello-herald'));
    await h.eventually(() => c.pongs.length > 0);
    assert.equal(c.pongs[0].toString(), 'hello-herald');
    c.close();
  });

  test('handshake advertises the configured activity_timeout', async () => {
    const c = await h.connectRaw(server);
    assert.equal(c.established.activity_timeout, 1);
    c.close();
  });

  test('idle connection gets {"event":"pusher:ping","data":"{}"} after activity_timeout', async () => {
    const t0 = Date.now();
    const c = await h.connectRaw(server);
    const m = await c.waitFor(SERVER_PING, { timeout: h.T(4000) });
    const elapsed = Date.now() - t0;
    assert.deepEqual(m, { event: 'pusher:ping', data: '{}' });
    assert.ok(elapsed >= 700, `server pinged too early: ${elapsed} ms`);
    c.close();
  });

  test('no reply to the server ping: close 4201 after pong_timeout (not at activity_timeout)', async () => {
    const t0 = Date.now();
    const c = await h.connectRaw(server);
    await c.waitFor(SERVER_PING, { timeout: h.T(4000) });
    const tPing = Date.now();
    const info = await c.waitClose(h.T(5000));
    const tClose = Date.now();
    assert.equal(info.code, 4201);
    assert.ok(tClose - tPing >= 600, `closed only ${tClose - tPing} ms after the ping`);
    assert.ok(tClose - t0 >= 1500, `closed only ${tClose - t0} ms after connect`);
  });

  test('answering server pings with pusher:pong keeps the connection open', async () => {
    const c = await h.connectRaw(server);
    let pings = 0;
    const deadline = Date.now() + h.T(4500);
    while (Date.now() < deadline) {
      try {
        await c.waitFor(SERVER_PING, { timeout: Math.max(50, deadline - Date.now()) });
      } catch (e) {
        if (c.closeInfo) throw e;
        break; // deadline reached
      }
      pings += 1;
      c.send({ event: 'pusher:pong', data: {} });
    }
    assert.ok(pings >= 2, `expected at least 2 server pings in 4.5 s, got ${pings}`);
    assert.equal(c.closeInfo, null, 'connection must stay open');
    await c.roundTrip();
    c.close();
  });

  test('a client that keeps pinging is never pinged by the server and stays open', async () => {
    const c = await h.connectRaw(server);
    const deadline = Date.now() + h.T(3500);
    while (Date.now() < deadline) {
      c.send({ event: 'pusher:ping', data: {} });
      await c.waitFor('pusher:pong');
      await h.sleep(350);
    }
    assert.equal(c.count(SERVER_PING), 0, 'server pinged an active client');
    assert.equal(c.closeInfo, null);
    c.close();
  });

  test('WebSocket ping frames count as activity', async () => {
    const c = await h.connectRaw(server);
    const deadline = Date.now() + h.T(3500);
    while (Date.now() < deadline) {
      c.ws.ping();
      await h.sleep(300);
    }
    assert.equal(c.closeInfo, null, `closed: ${JSON.stringify(c.closeInfo)}`);
    assert.equal(c.count(SERVER_PING), 0, 'server pinged a client that sent ping frames');
    c.close();
  });

  test('any inbound message (e.g. subscribe) resets the idle timer', async () => {
    const c = await h.connectRaw(server);
    const deadline = Date.now() + h.T(3000);
    while (Date.now() < deadline) {
      const ch = h.uniq('idle-reset');
      c.subscribe(ch, { auth: '' });
      await c.waitFor('pusher_internal:subscription_succeeded', { channel: ch });
      await h.sleep(400);
    }
    assert.equal(c.count(SERVER_PING), 0);
    assert.equal(c.closeInfo, null);
    c.close();
  });

  test('outbound traffic does not reset the idle timer', async () => {
    const c = await h.connectRaw(server);
    const ch = h.uniq('outbound');
    await c.subscribeOk(ch);
    let stop = false;
    const pump = (async () => {
      while (!stop) {
        await sdk.trigger(ch, 'tick', { t: Date.now() }).catch(() => {});
        await h.sleep(200);
      }
    })();
    try {
      const ping = await c.waitFor(SERVER_PING, { timeout: h.T(4000) });
      assert.deepEqual(ping, { event: 'pusher:ping', data: '{}' });
      const info = await c.waitClose(h.T(5000));
      assert.equal(info.code, 4201);
      assert.ok(c.count('tick') >= 2, 'events were being delivered while idle');
    } finally {
      stop = true;
      await pump;
    }
  });

  test('pusher-js stays connected across several activity timeouts', async () => {
    const p = h.makePusherClient(server);
    await h.pusherConnected(p);
    const changes = [];
    p.connection.bind('state_change', (s) => changes.push(`${s.previous}->${s.current}`));
    await h.sleep(h.T(4000));
    assert.deepEqual(changes, []);
    assert.equal(p.connection.state, 'connected');
    p.disconnect();
  });
});
