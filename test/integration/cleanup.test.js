'use strict';
// Mass disconnect through the cleanup workers (issue 4): 2 000 clients on shared public and presence
// channels drop at once, half abruptly (RST) and half cleanly. Afterwards every channel is vacated,
// each remaining presence member got exactly one member_removed per departed user, nothing leaked
// (connections, registry channels incl. user indexes), and the sync-fallback counter tells which path ran.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const h = require('./lib/harness');

const CLIENTS = 2000;
const USERS = 400; // five sockets per user: dedup must hold
const PUBLIC = 10;
const NEWCOMERS = 20; // connect and subscribe while the 2000 drop

function metrics(port) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

function metricSum(text, name) {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name + ' ') || line.startsWith(name + '{')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function connectMany(server, n, fn) {
  const out = [];
  for (let i = 0; i < n; i += 100) {
    const batch = [];
    for (let k = i; k < Math.min(n, i + 100); k++) batch.push(fn(k));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

async function storm(cleanup) {
  const metricsPort = await h.getFreePort();
  const server = await h.startServer({
    metrics: { enabled: true, host: '127.0.0.1', port: metricsPort },
    cleanup,
    app: { max_presence_members_per_channel: 1000, max_connections: 0 },
  });
  try {
    const tag = h.uniq('storm');
    const presence = `presence-${tag}`;
    const observers = await connectMany(server, 3, async (i) => {
      const c = await h.connectRaw(server);
      await c.subscribeOk(presence, { userId: `observer-${i}` });
      return c;
    });
    const clients = await connectMany(server, CLIENTS, async (i) => {
      const c = await h.connectRaw(server);
      await c.subscribeOk(presence, { userId: `u${i % USERS}`, userInfo: { i } });
      await c.subscribeOk(`${tag}-pub-${i % PUBLIC}`);
      return c;
    });
    const listed = await h.sdkJson(h.makeSdk(server).get({ path: '/channels', params: { filter_by_prefix: tag } }));
    assert.equal(Object.keys(listed.json.channels).length, PUBLIC);

    // all at once: half RST, half a clean close
    clients.forEach((c, i) => {
      if (i % 2) c.ws._socket.resetAndDestroy();
      else c.ws.close(1000);
    });
    // New clients join while the storm is processed (young.c reads them ahead of it
    // when epoll has a backlog): each is served, and joins the presence channel once.
    const newcomers = await Promise.all(Array.from({ length: NEWCOMERS }, async (_, i) => {
      const c = await h.connectRaw(server);
      await c.subscribeOk(presence, { userId: `newcomer-${i}` });
      await c.subscribeOk(`${tag}-new-${i}`);
      return c;
    }));

    for (const o of observers) {
      await h.eventually(() => o.count('pusher_internal:member_removed', presence) >= USERS, { timeout: 30000 }).catch((e) => { throw new Error(`member_removed: ${o.count('pusher_internal:member_removed', presence)} of ${USERS}`); });
    }
    await h.sleep(300); // a duplicate would arrive now
    for (const o of observers) {
      const removed = o.all().filter((m) => m.event === 'pusher_internal:member_removed' && m.channel === presence);
      const ids = removed.map((m) => JSON.parse(m.data).user_id);
      assert.equal(ids.length, USERS, 'exactly one member_removed per departed user');
      assert.equal(new Set(ids).size, USERS);
      assert.ok(!ids.some((id) => id.startsWith('observer-') || id.startsWith('newcomer-')));
      const added = o.all().filter((m) => m.event === 'pusher_internal:member_added' && m.channel === presence)
        .map((m) => JSON.parse(m.data).user_id).filter((id) => id.startsWith('newcomer-'));
      assert.equal(added.length, NEWCOMERS, 'one member_added per newcomer');
      assert.equal(new Set(added).size, NEWCOMERS);
    }
    const sdk = h.makeSdk(server);
    let last;
    await h.eventually(async () => {
      const r = await h.sdkJson(sdk.get({ path: '/channels', params: { filter_by_prefix: tag } }));
      last = r.json;
      // every public storm channel vacated; the newcomers' channels remain
      return Object.keys(r.json.channels).filter((c) => !c.startsWith(`${tag}-new-`)).length === 0;
    }, { timeout: 30000 }).catch(() => { throw new Error(`channels left: ${JSON.stringify(last)}`); });
    const info = await h.sdkJson(sdk.get({ path: `/channels/${presence}`, params: { info: 'user_count,subscription_count' } }));
    assert.deepEqual(info.json, { occupied: true, user_count: 3 + NEWCOMERS, subscription_count: 3 + NEWCOMERS });
    const users = await h.sdkJson(sdk.get({ path: `/channels/${presence}/users` }));
    assert.deepEqual(users.json.users.map((u) => u.id).sort(),
      ['observer-0', 'observer-1', 'observer-2', ...newcomers.map((_, i) => `newcomer-${i}`)].sort());
    for (const c of newcomers) assert.equal(c.isOpen, true);

    for (const o of [...observers, ...newcomers]) o.close();
    let text;
    await h.eventually(async () => {
      text = await metrics(metricsPort);
      return metricSum(text, 'herald_connections') === 0 && metricSum(text, 'herald_channels') === 0;
    }, { timeout: 30000 }).catch(() => {
      throw new Error(`left: connections ${metricSum(text, 'herald_connections')}, channels ${metricSum(text, 'herald_channels')}`);
    });
    return { fallbacks: metricSum(text, 'herald_cleanup_sync_fallbacks_total'), youngReads: metricSum(text, 'herald_young_reads_total'), text };
  } finally {
    await server.stop();
  }
}

test('2000 sockets drop at once through one worker with a 1-job queue: all vacated, one member_removed per user, sync fallbacks > 0, nothing left', { timeout: 120000 }, async () => {
  const { fallbacks } = await storm({ worker_threads: 1, queue_buffer_size: 1, batch_size: 1, batch_timeout_ms: 1 });
  assert.ok(fallbacks > 0, `expected synchronous fallbacks with a 1-job queue, got ${fallbacks}`);
});

test('the same storm with the default cleanup settings: no fallbacks, nothing left', { timeout: 120000 }, async (t) => {
  const { fallbacks, youngReads } = await storm(undefined);
  assert.equal(fallbacks, 0);
  t.diagnostic(`newcomers' reads served ahead of the storm: ${youngReads}`);
});
