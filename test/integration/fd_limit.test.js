// fd_limit.test.js - herald run out of file descriptors (RLIMIT_NOFILE 64):
// it keeps serving the connections it has, pauses accepting instead of
// spinning, says so once in its log, and accepts again as soon as closes
// free descriptors.
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./lib/harness');

const NOFILE = 64;
let server;
after(async () => { if (server) await server.stop(); });

/** A connection that must be established within ms, or null. */
async function tryConnect(ms) {
  try {
    return await h.connectRaw(server, { wsOptions: { handshakeTimeout: ms } });
  } catch {
    return null;
  }
}

test('out of file descriptors: existing clients keep working, accepting pauses and resumes, one log line', async () => {
  server = await h.startServer({ io_threads: 1 }, { nofile: NOFILE });
  const clients = [];
  let refused = null;
  for (let i = 0; i < NOFILE; i++) { // more than can fit: herald itself holds some descriptors
    const c = await tryConnect(h.T(1000));
    if (!c) { refused = i; break; }
    clients.push(c);
  }
  assert.ok(refused !== null, `all ${NOFILE} connections were accepted under a ${NOFILE}-descriptor limit`);
  assert.ok(clients.length >= 20, `only ${clients.length} connections before the limit`);
  assert.equal(server.exit, null, 'herald exited');

  // the connections it has still work
  const channel = h.uniq('fd');
  await clients[0].subscribeOk(channel);
  await clients[clients.length - 1].roundTrip();

  // free a few descriptors: new clients get in again
  for (const c of clients.splice(0, 5)) c.ws.terminate();
  const again = await h.eventually(async () => {
    const c = await tryConnect(h.T(1000));
    assert.ok(c, 'not accepting after descriptors were freed');
    return c;
  }, { timeout: h.T(10000) });
  await again.roundTrip();

  const lines = server.stderr.split('\n').filter((l) => l.includes('out of file descriptors'));
  assert.equal(lines.length, 1, `expected one log line while out of descriptors, got:\n${lines.join('\n')}`);
});
