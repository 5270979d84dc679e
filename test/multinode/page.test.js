'use strict';
// Drives the multinode playground page in headless Chromium (Debian's chromium, through playwright-core)
// against a real stack: redis-server and three herald nodes with adapter.driver redis, all on free
// loopback ports (stack.js), so it never collides with a stack a developer has running.
//
// Steps, each one subtest, each followed by a screenshot in test/multinode/artifacts/ (a failed step's
// name ends in -FAILED; the steps after a failed one are skipped):
//   1. the page loads and shows three panels on a redis cluster
//   2. panel 1 connects to node A and panel 2 to node B, as two different users
//   3. both subscribe to one presence channel: each panel's pusher-js lists both users
//   4. an event triggered through node C's HTTP API reaches each panel exactly once
//   5. every node's GET /channels counts both users (a failure here does not skip the later steps)
//   6. a client event sent on B reaches panel 1 once (not its sender); sendToUser through C reaches the user
//      signed in on B once (a failure here does not skip step 7)
//   7. kill -9 node B: its user leaves panel 1's presence view within the node timeout (3 s here)
//
//   node --test test/multinode/page.test.js        HERALD_BIN=... picks the build (default build/herald)

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { test, after } = require('node:test');

const { chromium } = require('playwright-core');
const { startStack } = require('./stack');

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ARTIFACTS = path.join(__dirname, 'artifacts');
const NODE_TIMEOUT_MS = 3000;
// What the browser adds to the cluster's own deadline: the member_removed frame reaching pusher-js, the
// page redrawing on the next animation frame, and this test's 50 ms polling of the page.
const OBSERVE_SLACK_MS = 500;
const WAIT_MS = 5000;

const rand = crypto.randomBytes(3).toString('hex');
const USER_A = `ann-${rand}`;
const USER_B = `ben-${rand}`;
const CHANNEL_BASE = `mn-${rand}`;
const CHANNEL = `presence-${CHANNEL_BASE}`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let stack = null;
let browser = null;
let page = null;
let stepNo = 0;
let broken = null; // the first failed step: the later ones depend on it and are skipped
const serverLog = [];
const pageErrors = [];

fs.mkdirSync(ARTIFACTS, { recursive: true });
for (const f of fs.readdirSync(ARTIFACTS)) if (f.endsWith('.png')) fs.rmSync(path.join(ARTIFACTS, f));

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (stack) await stack.stop();
});

/** Polls fn() (truthy = done) until deadline; fails with what() describing the last state seen. */
async function waitFor(fn, what, ms = WAIT_MS) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) break;
    await sleep(50);
  }
  assert.fail(`${typeof what === 'function' ? await what() : what} (waited ${ms} ms)`);
}

/**
 * One step: a subtest, skipped after a failure, with a screenshot whichever way it ends. An independent
 * step's failure does not skip the later ones (they do not build on what it did).
 */
function step(name, fn, { independent = false } = {}) {
  test(name, async (t) => {
    if (broken) { t.skip(`after the failure of "${broken}"`); return; }
    stepNo += 1;
    const slug = `${String(stepNo).padStart(2, '0')}-${name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')}`;
    let ok = false;
    try {
      await fn(t);
      ok = true;
    } catch (err) {
      if (!independent) broken = name;
      const tail = serverLog.slice(-30).join('\n');
      err.message += `\n--- page errors: ${pageErrors.join(' | ') || 'none'}\n--- last server lines:\n${tail}`;
      throw err;
    } finally {
      if (page) {
        const file = path.join(ARTIFACTS, `${slug}${ok ? '' : '-FAILED'}.png`);
        await page.screenshot({ path: file, fullPage: true }).catch(() => {});
        t.diagnostic(`screenshot: ${path.relative(process.cwd(), file)}`);
        console.log(`screenshot: ${file}`);
      }
    }
  });
}

const byTestId = (id) => page.getByTestId(id, { exact: true });
const stateOf = async (panel) => (await byTestId(`state-${panel}`).textContent()).trim();
const cell = (panel, user) => page.locator(`[data-testid="presence-cell"][data-channel="${CHANNEL}"]` +
                                           `[data-panel="${panel}"][data-user="${user}"]`);
// The row may go between count() and getAttribute() (a member leaving): then it is 'no row', at once.
const cellState = async (panel, user) => ((await cell(panel, user).count())
  ? cell(panel, user).getAttribute('data-state', { timeout: 500 }).catch(() => 'no row') : 'no row');
const logEntries = (panel, event, channel = CHANNEL, dir = 'in') => page.locator(
  `[data-testid="log-${panel}"] [data-testid="log-entry"][data-dir="${dir}"][data-event="${event}"][data-channel="${channel}"]`);

step('the page loads with three panels on a redis cluster', async () => {
  stack = await startStack({
    ports: [0, 0, 0], metricsPorts: [0, 0, 0], webPort: 0, redisPort: 0,
    driver: 'redis', nodeTimeoutMs: NODE_TIMEOUT_MS,
    onLog: (source, line) => { serverLog.push(`[${source}] ${line}`); if (serverLog.length > 500) serverLog.shift(); },
  });
  assert.equal(stack.nodeTimeoutMs, NODE_TIMEOUT_MS,
    'this herald does not accept HERALD_ADAPTER_REDIS_NODE_TIMEOUT_MS (adapter.redis.node_timeout_ms)');
  for (const n of stack.nodes) assert.ok(n.ready, `node ${n.name}: GET /ready did not answer 200 on a running Redis`);

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(stack.url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: WAIT_MS });
  for (const i of [1, 2, 3]) assert.equal(await stateOf(i), 'disconnected');
  assert.match(await byTestId('facts').textContent(), /adapter redis/);
  assert.equal(await page.locator('[data-testid="fatal"]').count(), 0);
});

step('panels 1 and 2 connect to nodes A and B as two users', async () => {
  for (const [panel, node, user] of [[1, 'A', USER_A], [2, 'B', USER_B]]) {
    await byTestId(`node-${panel}`).selectOption(node);
    await byTestId(`user-${panel}`).fill(user);
    await byTestId(`connect-${panel}`).click();
  }
  await waitFor(async () => (await stateOf(1)) === 'connected' && (await stateOf(2)) === 'connected',
    async () => `panel states: 1 ${await stateOf(1)}, 2 ${await stateOf(2)}`);
  assert.match(await byTestId('socket-1').textContent(), /^socket \d+\.\d+$/);
  assert.match(await byTestId('socket-2').textContent(), /^socket \d+\.\d+$/);
});

step('both join one presence channel and each panel lists both users', async () => {
  for (const panel of [1, 2]) {
    await byTestId(`type-${panel}`).selectOption('presence');
    await byTestId(`channel-${panel}`).fill(CHANNEL_BASE);
    assert.equal(await byTestId(`fullname-${panel}`).textContent(), CHANNEL);
    await byTestId(`subscribe-${panel}`).click();
  }
  const grid = async () => {
    const seen = [];
    for (const p of [1, 2]) for (const u of [USER_A, USER_B]) seen.push(`panel ${p} ${u}: ${await cellState(p, u)}`);
    return seen;
  };
  await waitFor(async () => (await grid()).every((s) => s.endsWith(': present')),
    async () => `presence view: ${(await grid()).join(', ')}`);
  const table = page.locator(`[data-testid="presence-channel"][data-channel="${CHANNEL}"]`);
  assert.equal(await table.getAttribute('data-disagreements'), '0');
});

step('an event triggered through node C reaches both panels once', async () => {
  const payload = `{"through":"C","n":"${rand}"}`;
  await byTestId('trigger-node-1').selectOption('C');
  await byTestId('trigger-event-1').fill('mn-event');
  await byTestId('trigger-data-1').fill(payload);
  await byTestId('trigger-send-1').click();
  await waitFor(async () => /trigger via C: 200/.test(await byTestId('trigger-result-1').textContent()),
    async () => `trigger result: ${await byTestId('trigger-result-1').textContent()}`);
  await waitFor(async () => (await logEntries(1, 'mn-event').count()) >= 1 && (await logEntries(2, 'mn-event').count()) >= 1,
    async () => `mn-event entries: panel 1 ${await logEntries(1, 'mn-event').count()}, panel 2 ${await logEntries(2, 'mn-event').count()}`);
  await sleep(700); // a duplicate would arrive right behind the first
  for (const panel of [1, 2]) {
    assert.equal(await logEntries(panel, 'mn-event').count(), 1, `panel ${panel} received mn-event more than once`);
    assert.equal(await logEntries(panel, 'mn-event').locator('.data').textContent(), JSON.stringify(JSON.parse(payload)));
  }
});

step('every node counts both users of the channel', async () => {
  const counts = async () => {
    const out = {};
    for (const n of ['A', 'B', 'C']) {
      const c = page.locator(`[data-testid="count-cell"][data-node="${n}"][data-channel="${CHANNEL}"]`);
      const listed = (await c.count()) && (await c.getAttribute('data-listed')) === 'true';
      out[n] = listed ? `${await c.getAttribute('data-subs')} sub / ${await c.getAttribute('data-users')} user` : 'not listed';
    }
    return out;
  };
  await waitFor(async () => Object.values(await counts()).every((v) => v === '2 sub / 2 user'),
    async () => `counts per node: ${JSON.stringify(await counts())}`);
  const row = page.locator(`[data-testid="count-row"][data-channel="${CHANNEL}"]`);
  assert.equal(await row.getAttribute('data-disagree'), 'false');
}, { independent: true });

step('a client event from B and a message to a user through C cross nodes once', async () => {
  await byTestId('client-event-2').fill('client-mn');
  await byTestId('client-data-2').fill(`{"from":"B","n":"${rand}"}`);
  await byTestId('client-send-2').click();
  await waitFor(async () => (await logEntries(1, 'client-mn').count()) >= 1,
    async () => `client-mn entries in panel 1: ${await logEntries(1, 'client-mn').count()}`);

  await byTestId('signin-2').click();
  await waitFor(async () => (await byTestId('signin-state-2').textContent()) === `signed in as ${USER_B}`,
    async () => `panel 2 sign-in: ${await byTestId('signin-state-2').textContent()}`);
  await byTestId('stu-user-1').fill(USER_B);
  await byTestId('stu-node-1').selectOption('C');
  await byTestId('stu-event-1').fill('mn-direct');
  await byTestId('stu-send-1').click();
  const direct = logEntries(2, 'mn-direct', `#server-to-user-${USER_B}`);
  await waitFor(async () => (await direct.count()) >= 1, async () => `mn-direct entries in panel 2: ${await direct.count()}, ` +
    `send result: ${await byTestId('stu-result-1').textContent()}`);

  await sleep(700); // a duplicate would arrive right behind the first
  assert.equal(await logEntries(1, 'client-mn').count(), 1, 'panel 1 received client-mn more than once');
  assert.equal(await logEntries(2, 'client-mn').count(), 0, 'the sender received its own client event');
  assert.equal(await direct.count(), 1, 'panel 2 received mn-direct more than once');
  assert.equal(await logEntries(1, 'mn-direct', `#server-to-user-${USER_B}`).count(), 0, 'panel 1 received a message for another user');
}, { independent: true });

step('kill -9 node B and its user leaves panel 1 within the node timeout', async (t) => {
  const started = Date.now();
  await stack.killNode('B', 'SIGKILL');
  await waitFor(async () => (await cellState(1, USER_B)) !== 'present',
    async () => `panel 1 still lists ${USER_B} (${await cellState(1, USER_B)})`, NODE_TIMEOUT_MS + OBSERVE_SLACK_MS);
  const took = Date.now() - started;
  t.diagnostic(`${USER_B} left panel 1's view ${took} ms after kill -9 (node timeout ${NODE_TIMEOUT_MS} ms)`);
  assert.equal(await cellState(1, USER_A), 'present', 'panel 1 lost its own user');
  const removed = page.locator(`[data-testid="log-1"] [data-testid="log-entry"]` +
                               `[data-event="pusher_internal:member_removed"][data-channel="${CHANNEL}"]`);
  await waitFor(async () => (await removed.count()) === 1, async () => `member_removed entries in panel 1: ${await removed.count()}`, 1000);
  assert.match(await removed.locator('.data').textContent(), new RegExp(USER_B));
  await waitFor(async () => (await stateOf(2)) !== 'connected', 'panel 2 still reports connected to the dead node B', 2000);
});
