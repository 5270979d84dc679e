'use strict';
// The Grafana dashboard (docs/grafana/herald-dashboard.json) must only query
// series that herald really exports. A running herald with a webhook
// endpoint, a subscribed client and a publish behind it has every family on
// its metrics port; every metric name in every PromQL expression of the
// dashboard (panel targets and template variables) must be one of the names
// /metrics prints, and every label a selector or a `by (...)` names must be
// a label those series carry. A renamed metric or a typo in a panel fails
// here instead of showing "No data" in production. And every family
// /metrics prints must be queried by some panel, so a new series does not
// go without one.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const h = require('./lib/harness');

const DASHBOARD = path.resolve(__dirname, '../../docs/grafana/herald-dashboard.json');

// Labels Prometheus adds at scrape time: not in herald's text, always there.
const TARGET_LABELS = new Set(['instance', 'job']);

// PromQL words that look like identifiers but are not metric names.
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset',
  'and', 'or', 'unless', 'inf', 'nan', 'Inf', 'NaN']);

// ---------------------------------------------------------------- PromQL

/**
 * Metric selectors of a PromQL expression: [{name, labels: [label names in
 * its matcher]}], plus the label names of its by/without/on/ignoring/group
 * clauses. Strings, range selectors, function calls and aggregation
 * operators are skipped; names keep their _bucket/_sum/_count suffix, since
 * that is the series name PromQL asks for.
 */
function parsePromQL(expr) {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  const grouping = [];
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_, _kw, list) => {
    for (const l of list.split(',').map((x) => x.trim()).filter(Boolean)) grouping.push(l);
    return ' ';
  });
  s = s.replace(/\[[^\]]*\]/g, ' '); // range and subquery selectors
  const selectors = [];
  const re = /[A-Za-z_:][A-Za-z0-9_:]*/g;
  let m;
  while ((m = re.exec(s)) !== null) {
    const word = m[0];
    const before = m.index > 0 ? s[m.index - 1] : '';
    if (/[0-9.]/.test(before)) continue; // the exponent of a number such as 1e3
    const rest = s.slice(re.lastIndex);
    if (/^\s*\(/.test(rest)) continue; // a function or an aggregation
    if (KEYWORDS.has(word)) continue;
    const labels = [];
    const matcher = /^\s*\{([^}]*)\}/.exec(rest);
    if (matcher) {
      for (const part of matcher[1].split(',')) {
        const name = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)/.exec(part);
        if (name) labels.push(name[1]);
      }
      re.lastIndex += matcher[0].length;
    }
    selectors.push({ name: word, labels });
  }
  // a matcher without a metric name ({__name__="x"}) is not used by the dashboard
  return { selectors, grouping };
}

/** Every PromQL expression of the dashboard: [{where, expr}]. */
function dashboardQueries(dash) {
  const out = [];
  const walk = (panels) => {
    for (const p of panels || []) {
      if (p.type === 'row') {
        walk(p.panels);
        continue;
      }
      for (const t of p.targets || []) out.push({ where: `panel "${p.title}" target ${t.refId}`, expr: t.expr, panel: p, target: t });
    }
  };
  walk(dash.panels);
  for (const v of (dash.templating && dash.templating.list) || []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query && v.query.query;
    const lv = /^\s*label_values\(\s*(.+?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$/.exec(q || '');
    if (lv) out.push({ where: `variable $${v.name}`, expr: lv[1], extraLabels: [lv[2]] });
    else if (q) out.push({ where: `variable $${v.name}`, expr: q.replace(/^\s*query_result\((.*)\)\s*$/, '$1') });
  }
  return out;
}

// ---------------------------------------------------------------- /metrics

/** Series names of a Prometheus text exposition -> Set of their label names. */
function parseExposition(text) {
  const series = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{([^}]*)\})?\s/.exec(line);
    if (!m) continue;
    if (!series.has(m[1])) series.set(m[1], new Set());
    const labels = series.get(m[1]);
    for (const l of (m[3] || '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="(?:[^"\\]|\\.)*"/g)) labels.add(l[1]);
  }
  return series;
}

/** The problems of one query against the exported series (empty: fine). */
function checkQuery(q, series) {
  const problems = [];
  const { selectors, grouping } = parsePromQL(q.expr);
  if (!selectors.length) problems.push(`${q.where}: no metric name found in ${JSON.stringify(q.expr)}`);
  const labelsOfQuery = new Set();
  for (const sel of selectors) {
    const labels = series.get(sel.name);
    if (!labels) {
      const hint = series.has(`${sel.name}_bucket`) ? ` (a histogram: query ${sel.name}_bucket, _sum or _count)` : '';
      problems.push(`${q.where}: series ${sel.name} is not in /metrics${hint}`);
      continue;
    }
    for (const l of labels) labelsOfQuery.add(l);
    for (const l of sel.labels) {
      if (!TARGET_LABELS.has(l) && !labels.has(l)) problems.push(`${q.where}: ${sel.name} has no label "${l}" (it has: ${[...labels].join(', ') || 'none'})`);
    }
  }
  for (const l of [...grouping, ...(q.extraLabels || [])]) {
    if (!TARGET_LABELS.has(l) && !labelsOfQuery.has(l)) problems.push(`${q.where}: grouping label "${l}" is on none of its series`);
  }
  return problems;
}

// ---------------------------------------------------------------- server

let server;
let metricsPort;
let receiver;
let received = 0;

function getMetrics(pathName = '/metrics') {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: metricsPort, path: pathName, agent: false, timeout: h.T(5000) }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${pathName} on the metrics port timed out${server ? server.deathNote() : ''}`)));
    req.on('error', reject);
  });
}

before(async () => {
  // a webhook receiver: without an endpoint herald exports no webhook families
  receiver = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => { received += 1; res.end('ok'); });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  metricsPort = await h.getFreePort();
  server = await h.startServer({
    metrics: { enabled: true, host: '127.0.0.1', port: metricsPort },
    webhooks: { batching: { enabled: true, duration: 10 }, vacate_delay_ms: 100 },
    app: {
      enable_subscription_count: true,
      webhooks: [{
        url: `http://127.0.0.1:${receiver.address().port}/hook`,
        event_types: ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed', 'client_event', 'cache_miss', 'subscription_count'],
      }],
    },
  });
  // traffic, so that every family has samples: a subscriber, a publish, a
  // client event, a disconnect (cleanup job), delivered webhooks
  const ch = h.uniq('private-dash');
  const a = await h.connectRaw(server);
  const b = await h.connectRaw(server);
  await a.subscribeOk(ch);
  await b.subscribeOk(ch);
  const r = await h.apiTrigger(server, { name: 'dash-event', channels: [ch], data: '{"n":1}' });
  assert.equal(r.status, 200, r.text);
  await a.waitFor('dash-event');
  a.send({ event: 'client-dash', channel: ch, data: { n: 2 } });
  await b.waitFor('client-dash');
  b.close();
  await b.waitClose();
  await h.eventually(async () => {
    const m = await getMetrics();
    return /^herald_webhook_events_sent_total\{[^}]*\} [1-9]/m.test(m.text) &&
      /^herald_cleanup_jobs_completed_total\{[^}]*\} [1-9]/m.test(m.text);
  }, { timeout: h.T(10000) });
  a.close();
});

after(async () => {
  if (server) await server.stop();
  if (receiver) await new Promise((resolve) => receiver.close(resolve));
});

// ---------------------------------------------------------------- tests

test('the dashboard is valid JSON with a Prometheus data source variable', () => {
  const dash = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'));
  const ds = dash.templating.list.find((v) => v.name === 'DS_PROMETHEUS');
  assert.ok(ds, 'templating variable DS_PROMETHEUS');
  assert.equal(ds.type, 'datasource');
  assert.equal(ds.query, 'prometheus');
  const queries = dashboardQueries(dash);
  assert.ok(queries.length >= 20, `only ${queries.length} queries found`);
  for (const q of queries) {
    if (!q.panel) continue;
    assert.equal(q.panel.datasource && q.panel.datasource.uid, '${DS_PROMETHEUS}', `${q.where}: panel data source`);
    assert.equal(q.target.datasource && q.target.datasource.uid, '${DS_PROMETHEUS}', `${q.where}: target data source`);
    assert.equal(typeof q.expr, 'string', `${q.where}: expr`);
  }
});

test('the PromQL reader finds names, labels and groupings, and flags a series that does not exist', () => {
  const p = parsePromQL('histogram_quantile(0.99, sum by (le) (rate(herald_x_seconds_bucket{instance=~"$instance",app="a{b}"}[$__rate_interval]))) / clamp_min(sum(rate(herald_y_total[5m])), 1e3) or vector(0)');
  assert.deepEqual(p.selectors, [{ name: 'herald_x_seconds_bucket', labels: ['instance', 'app'] }, { name: 'herald_y_total', labels: [] }]);
  assert.deepEqual(p.grouping, ['le']);
  const series = new Map([['herald_y_total', new Set(['io_thread'])], ['herald_h_bucket', new Set(['le'])]]);
  assert.deepEqual(checkQuery({ where: 'q', expr: 'sum(rate(herald_y_total[1m]))' }, series), []);
  assert.equal(checkQuery({ where: 'q', expr: 'sum(rate(herald_does_not_exist_total[1m]))' }, series).length, 1);
  assert.match(checkQuery({ where: 'q', expr: 'herald_h' }, series)[0], /a histogram/);
  assert.equal(checkQuery({ where: 'q', expr: 'sum by (app) (herald_y_total)' }, series).length, 1);
  assert.equal(checkQuery({ where: 'q', expr: 'herald_y_total{app="x"}' }, series).length, 1);
  assert.deepEqual(checkQuery({ where: 'q', expr: 'sum by (instance, io_thread) (herald_y_total{job="h"})' }, series), []);
});

test('every series and label the dashboard queries exists in /metrics of a running herald', async () => {
  const dash = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'));
  const m = await getMetrics();
  assert.equal(m.status, 200);
  const series = parseExposition(m.text);
  assert.ok(series.has('herald_connections'), 'herald_connections in /metrics');
  assert.ok(series.has('herald_webhook_queue_depth'), 'webhook families in /metrics (the endpoint is configured)');
  assert.ok(received > 0, 'the webhook receiver got requests');
  const problems = [];
  const used = new Set();
  // herald_adapter_* exist only on a node running adapter.driver "redis"
  // (HERALD_TEST_REDIS=1 runs this file that way, and checks them too)
  const clusterOnly = (q) => !series.has('herald_adapter_state') &&
    parsePromQL(q.expr).selectors.every((sel) => sel.name.startsWith('herald_adapter_'));
  for (const q of dashboardQueries(dash)) {
    if (clusterOnly(q)) continue;
    problems.push(...checkQuery(q, series));
    for (const s of parsePromQL(q.expr).selectors) used.add(s.name);
  }
  assert.deepEqual(problems, [], `the dashboard queries series herald does not export:\n  ${problems.join('\n  ')}`);
  assert.ok(used.size >= 30, `the dashboard uses only ${used.size} series`);
});

// The other direction: a family added to herald (docs/METRICS.md) gets a
// panel too, so the dashboard never silently lags behind the metrics.
test('every family /metrics exports is queried by some panel of the dashboard', async () => {
  const dash = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'));
  const m = await getMetrics();
  const used = new Set();
  for (const q of dashboardQueries(dash)) for (const s of parsePromQL(q.expr).selectors) used.add(s.name);
  const families = [...m.text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, type]) => ({ name, type }));
  assert.ok(families.length >= 60, `only ${families.length} families in /metrics`);
  const missing = families
    .filter((f) => (f.type === 'histogram' ? !['_bucket', '_sum', '_count'].some((x) => used.has(f.name + x)) : !used.has(f.name)))
    .map((f) => f.name);
  assert.deepEqual(missing, [], `families no panel queries:\n  ${missing.join('\n  ')}`);
});
