// Subscribe latency (send -> subscription_succeeded) on node B: the node's first subscriber of a
// channel (SUBSCRIBE round trip + member script) vs a later one (member script only).
// Usage (docs/CLUSTER.md 5.4): node subscribe-latency.js [port of node B]
const path = require('path');
const Pusher = require(path.join(__dirname, '../../integration/node_modules', 'pusher-js'));
const port = Number(process.argv[2] || 7622);
const mk = () => new Pusher('app-key', { wsHost: '127.0.0.1', wsPort: port, forceTLS: false, enabledTransports: ['ws'], cluster: 'x' });
const q = (v, p) => { const s = [...v].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(3); };
async function run(client, names) {
  const out = [];
  for (const n of names) {
    const t = process.hrtime.bigint();
    await new Promise((r) => client.subscribe(n).bind('pusher:subscription_succeeded', r));
    out.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return out;
}
(async () => {
  const a = mk(), b = mk();
  await Promise.all([a, b].map((c) => new Promise((r) => c.connection.bind('connected', r))));
  const names = Array.from({ length: 300 }, (_, i) => 'sub-' + process.pid + '-' + i);
  const first = await run(a, names), later = await run(b, names);
  console.log(JSON.stringify({ first_p50: q(first, 0.5), first_p99: q(first, 0.99), later_p50: q(later, 0.5), later_p99: q(later, 0.99) }));
  process.exit(0);
})();
