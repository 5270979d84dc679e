'use strict';
// SIGHUP reloads the app list from the config file without dropping
// connections (hardening issue, "clean restarts"): apps added, changed and
// removed; a broken file changes nothing; other keys need a restart; the
// webhooks of an added app; and 20 reloads in a row under client churn.
//
// Each test rewrites the file the harness wrote (server.configPath) and
// sends SIGHUP to the process, then waits for herald's summary line
// ("reload apps: ...") or its failure line.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const h = require('./lib/harness');

const APP2 = Object.freeze({ id: 'app-2', key: 'key-2', secret: 'secret-2' });
const APP3 = Object.freeze({ id: 'app-3', key: 'key-3', secret: 'secret-3' });

const servers = [];
async function start(overrides) {
  const s = await h.startServer(overrides);
  servers.push(s);
  return s;
}
/** Stop inside the test, so a bad exit (status, sanitizer report) fails it. */
async function stop(s) {
  servers.splice(servers.indexOf(s), 1);
  await s.stop();
}
const receivers = [];
after(async () => {
  for (const s of servers.splice(0)) {
    try { await s.stop(); } catch (e) { console.error(e.message); }
  }
  for (const r of receivers) await new Promise((resolve) => r.close(resolve));
});

const RELOAD_DONE = /reload\s+apps: \d+ added|reload failed|reload\s+refused/g;

/** Count of reload outcomes logged so far. */
function reloadsLogged(server) {
  return (server.stderr.match(RELOAD_DONE) || []).length;
}

/** Send SIGHUP and wait for the reload's outcome; returns what herald logged meanwhile. */
async function sighup(server) {
  const from = server.stderr.length;
  const before = reloadsLogged(server);
  server.proc.kill('SIGHUP');
  await h.eventually(() => reloadsLogged(server) > before, { timeout: h.T(5000) });
  return server.stderr.slice(from);
}

/**
 * Rewrite the config file with makeConfig(overrides) (same port) and
 * SIGHUP. server.config follows when the reload succeeds, so harness
 * helpers (server.app(i), connectRaw's signing) see the new apps.
 */
async function reload(server, overrides) {
  const config = h.makeConfig({ ...overrides, port: server.port });
  fs.writeFileSync(server.configPath, JSON.stringify(config, null, 2));
  const log = await sighup(server);
  if (!/reload failed|refused/.test(log)) server.config = config;
  return log;
}

/** A signed GET /apps/{id}/channels for app. */
function channels(server, app) {
  return h.signedRequest(server, { method: 'GET', path: `/apps/${app.id}/channels`, app });
}

async function expectRefused(server, key) {
  const c = await h.connectRaw(server, { key, established: false });
  const { error } = await c.expectErrorAndClose(4001);
  assert.match(error.data.message, /does not exist/);
}

/** Publish on app's channel and wait for the client to get it. */
async function delivers(server, app, client, channel, tag) {
  const res = await h.apiTrigger(server, { name: 'ev', channel, data: JSON.stringify({ tag }) }, { app });
  assert.equal(res.status, 200, res.text);
  const m = await client.waitFor((x) => x.event === 'ev' && x.channel === channel && JSON.parse(x.data).tag === tag);
  assert.equal(JSON.parse(m.data).tag, tag);
}

test('an added app is usable at once; the first app\'s client stays connected and keeps receiving', async () => {
  const server = await start({});
  const app1 = server.app(0);
  const ch = h.uniq('news');
  const old = await h.connectRaw(server);
  await old.subscribeOk(ch);
  await delivers(server, app1, old, ch, 'before');
  await expectRefused(server, APP2.key);

  const log = await reload(server, { extraApps: [APP2] });
  assert.match(log, /app app-2 added/);
  assert.match(log, /reload\s+apps: 1 added, 0 changed, 0 removed, 1 unchanged/);

  const c2 = await h.connectRaw(server, { key: APP2.key, app: APP2 });
  const ch2 = h.uniq('private-two');
  await c2.subscribeOk(ch2, { app: APP2 });
  await delivers(server, APP2, c2, ch2, 'app-2');
  const res = await channels(server, APP2);
  assert.equal(res.status, 200, res.text);
  assert.ok(res.json.channels[ch2], `channel list of app-2: ${res.text}`);

  assert.equal(old.closeInfo, null, 'the first app\'s client was not disconnected');
  await delivers(server, app1, old, ch, 'after');
  await old.roundTrip();
  await stop(server);
});

test('a changed secret: the old signature is refused 401, the new one accepted; connections untouched', async () => {
  const server = await start({});
  const before = { ...server.app(0) };
  const ch = h.uniq('private-room');
  const client = await h.connectRaw(server);
  await client.subscribeOk(ch);

  const log = await reload(server, { app: { secret: 'secret-new' } });
  assert.match(log, /app app-id: settings updated/);
  const after = server.app(0);
  assert.equal(after.secret, 'secret-new');

  const stale = await h.apiTrigger(server, { name: 'ev', channel: ch, data: '{}' }, { app: before });
  assert.equal(stale.status, 401, stale.text);
  await delivers(server, after, client, ch, 'new-secret');
  assert.equal(client.closeInfo, null);

  // the next channel signature is checked against the new secret too
  const refused = h.uniq('private-old');
  client.subscribe(refused, { auth: h.privateAuth(client.socketId, refused, before) });
  await client.waitFor((m) => (m.event === 'pusher:subscription_error' && m.channel === refused) ||
    (m.event === 'pusher:error'));
  await client.subscribeOk(h.uniq('private-new'), { app: after });
  await client.roundTrip();
  await stop(server);
});

test('a removed app: its clients get 4001, new connections 4001, its API 404; the other app is untouched', async () => {
  const server = await start({ extraApps: [APP2] });
  const app1 = server.app(0);
  const keep = await h.connectRaw(server);
  const ch = h.uniq('stay');
  await keep.subscribeOk(ch);
  const gone = await h.connectRaw(server, { key: APP2.key, app: APP2 });
  await gone.subscribeOk(h.uniq('presence-gone'), { userId: 'u1', app: APP2 });
  assert.equal((await channels(server, APP2)).status, 200);

  const log = await reload(server, {});
  assert.match(log, /app app-2 removed/);
  assert.match(log, /0 added, 0 changed, 1 removed, 1 unchanged/);

  await gone.expectErrorAndClose(4001);
  await expectRefused(server, APP2.key);
  const res = await channels(server, APP2);
  assert.equal(res.status, 404, res.text);
  await delivers(server, app1, keep, ch, 'still here');

  // back again: same id, usable at once
  const back = await reload(server, { extraApps: [APP2] });
  assert.match(back, /app app-2: added back/);
  const again = await h.connectRaw(server, { key: APP2.key, app: APP2 });
  await again.roundTrip();
  assert.equal((await channels(server, APP2)).status, 200);
  assert.equal(keep.closeInfo, null);
  await stop(server);
});

test('a config with an error: logged naming the key, nothing changes, the server keeps serving', async () => {
  const server = await start({});
  const app1 = { ...server.app(0) };
  const client = await h.connectRaw(server);
  const ch = h.uniq('ok');
  await client.subscribeOk(ch);

  // an app added and a secret changed in the same file, next to a typo
  const log = await reload(server, { app: { secret: 'other', max_conections: 5 }, extraApps: [APP3] });
  assert.match(log, /reload failed, nothing changed/);
  assert.match(log, /app_manager\.array\.apps\[0\]\.max_conections: unknown key/);
  assert.deepEqual(server.config.app_manager.array.apps.map((a) => a.id), ['app-id'], 'harness view unchanged');
  await expectRefused(server, APP3.key);
  await delivers(server, app1, client, ch, 'old secret still valid');

  fs.writeFileSync(server.configPath, '{"port": 1,');
  assert.match(await sighup(server), /reload failed.*invalid JSON/);
  fs.rmSync(server.configPath);
  assert.match(await sighup(server), /reload failed.*cannot open/);
  await delivers(server, app1, client, ch, 'still serving');
  assert.equal(client.closeInfo, null);
  await stop(server);
});

test('a non-app key that changed is logged as needing a restart; the running value is kept', async () => {
  const server = await start({ activity_timeout: 120 });
  const log = await reload(server, { activity_timeout: 60, pong_timeout: 15 });
  assert.match(log, /activity_timeout changed: it needs a restart/);
  assert.match(log, /pong_timeout changed: it needs a restart/);
  assert.doesNotMatch(log, /port changed/);
  assert.match(log, /0 added, 0 changed, 0 removed, 1 unchanged/);
  const c = await h.connectRaw(server);
  assert.equal(c.established.activity_timeout, 120);

  // a global that is the apps' default reaches the apps that leave it out
  const name = 'a-name-of-20-chars!!';
  assert.equal((await h.apiTrigger(server, { name, channel: 'c', data: '{}' })).status, 200);
  const more = await reload(server, { activity_timeout: 60, pong_timeout: 15, event_limits: { max_name_length: 10 } });
  assert.match(more, /event_limits\.max_name_length changed: applied to the apps that leave it out/);
  assert.match(more, /0 added, 1 changed, 0 removed, 0 unchanged/);
  const res = await h.apiTrigger(server, { name, channel: 'c', data: '{}' });
  assert.equal(res.status, 400, res.text);
  assert.match(res.text, /max 10/);
  await stop(server);
});

test('a reload that needs more new apps than there is room for is refused, changing nothing', async () => {
  const server = await start({}); // room: 1 app + 256
  const many = Array.from({ length: 257 }, (_, i) => ({ id: `x${i}`, key: `xk${i}`, secret: 's' }));
  const log = await reload(server, { app: { secret: 'changed' }, extraApps: many });
  assert.match(log, /refused: 257 new app\(s\) do not fit/);
  await expectRefused(server, 'xk0');
  assert.equal((await h.apiTrigger(server, { name: 'e', channel: 'c', data: '{}' }, { app: h.APP })).status, 200);
  const fits = await reload(server, { extraApps: many.slice(0, 256) });
  assert.match(fits, /256 added, 0 changed, 0 removed, 1 unchanged/);
  await (await h.connectRaw(server, { key: 'xk255', app: many[255] })).roundTrip();
  await stop(server);
});

test('without --config there is nothing to reload', async () => {
  // the harness always passes --config: run the binary directly on the embedded config
  const port = await h.getFreePort();
  const { spawn } = require('node:child_process');
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HERALD_')) env[k] = v;
  Object.assign(env, { HERALD_PORT: String(port), HERALD_HOST: '127.0.0.1', HERALD_METRICS_ENABLED: 'false',
    HERALD_IO_THREADS: '2' });
  const proc = spawn(h.HERALD_BIN, [], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  await h.eventually(() => /listening on/.test(stderr), { timeout: h.T(10000) });
  proc.kill('SIGHUP');
  await h.eventually(() => /nothing to reload/.test(stderr), { timeout: h.T(5000) });
  proc.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  assert.doesNotMatch(stderr, /Sanitizer|runtime error/);
});

// ---------------------------------------------------------------- webhooks

function webhookReceiver(app) {
  const events = [];
  const problems = [];
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      if (req.headers['x-pusher-key'] !== app.key) problems.push(`key ${req.headers['x-pusher-key']}`);
      if (req.headers['x-pusher-signature'] !== h.hmac(app.secret, raw)) problems.push('signature');
      try { events.push(...JSON.parse(raw).events); } catch { problems.push('body'); }
      res.writeHead(200);
      res.end();
    });
  });
  receivers.push(srv);
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${srv.address().port}/hook`, events, problems,
  })));
}

test('the webhooks of an app added by a reload are delivered', async () => {
  const server = await start({}); // no webhook anywhere: the pool starts with the reload
  const r = await webhookReceiver(APP2);
  const app2 = { ...APP2, webhooks: [{ url: r.url, event_types: ['channel_occupied', 'client_event'] }] };
  await reload(server, { extraApps: [app2] });
  const c = await h.connectRaw(server, { key: APP2.key, app: APP2 });
  const ch = h.uniq('private-hooked');
  await c.subscribeOk(ch, { app: APP2 });
  c.send({ event: 'client-hi', channel: ch, data: { n: 1 } });
  const got = await h.eventually(() => (r.events.length >= 2 ? r.events : false), { timeout: h.T(5000) });
  assert.deepEqual(got.map((e) => e.name), ['channel_occupied', 'client_event']);
  assert.equal(got[0].channel, ch);
  assert.deepEqual(got[1].data, { n: 1 });
  assert.deepEqual(r.problems, []);
  await stop(server);
});

// ---------------------------------------------------------------- churn

test('20 reloads in a row while clients connect, subscribe, receive and leave: no errors, clean exit', async () => {
  const r = await webhookReceiver(h.APP);
  const variant = (i) => ({
    app: {
      max_presence_members_per_channel: 100 + i, // a changed app every time
      enable_subscription_count: i % 2 === 0,
      webhooks: [{ url: r.url, event_types: i % 2 ? ['channel_occupied'] : ['channel_occupied', 'channel_vacated'] }],
    },
    extraApps: i % 3 === 2 ? [{ ...APP2, max_connections: 1000 + i }] // app-2 changes, app-3 comes and goes
      : [{ ...APP2, max_connections: 1000 + i }, APP3],
  });
  const server = await start(variant(0));
  const apps = [h.APP, APP2];
  const sdks = apps.map((app) => h.makeSdk(server, { app }));
  let stopped = false;
  const done = { rounds: 0, triggers: 0 };
  const errors = [];

  async function clientLoop(k) {
    const app = apps[k % 2];
    while (!stopped) {
      const client = h.makePusherClient(server, { app });
      try {
        await h.pusherConnected(client, h.T(5000));
        const ch = await h.pusherSubscribe(client, h.uniq(`churn${k}`), h.T(5000));
        const got = h.once(ch, 'tick', h.T(5000));
        await sdks[k % 2].trigger(ch.name, 'tick', { k });
        await got;
        done.rounds += 1;
      } catch (e) {
        errors.push(`client ${k}: ${e.message}`);
      } finally {
        client.disconnect();
      }
    }
  }
  async function triggerLoop() {
    while (!stopped) {
      for (const sdk of sdks) {
        try {
          const res = await sdk.trigger(h.uniq('nobody'), 'tick', { x: 1 });
          if (res.status !== 200) errors.push(`trigger ${res.status}`);
          done.triggers += 1;
        } catch (e) {
          errors.push(`trigger: ${e.message}`);
        }
      }
    }
  }
  const loops = [0, 1, 2, 3].map(clientLoop).concat([triggerLoop()]);
  for (let i = 1; i <= 20; i++) {
    const rounds = done.rounds;
    const log = await reload(server, variant(i));
    assert.match(log, /reload\s+apps: /, log);
    // interleave: clients get through a round between two reloads
    await h.eventually(() => done.rounds > rounds, { timeout: h.T(5000) });
  }
  stopped = true;
  await Promise.all(loops);
  assert.deepEqual(errors, []);
  assert.ok(done.triggers > 0);
  assert.doesNotMatch(server.stderr, /reload failed|refused/);
  assert.equal((server.stderr.match(/reload\s+apps: /g) || []).length, 20);
  assert.ok(r.events.length > 0, 'app-id\'s webhooks kept flowing');
  assert.deepEqual(r.problems, []);
  await stop(server); // SIGTERM: exit 0, no sanitizer report
});
