// Per-message cost, on a node, of a message for a channel it has no subscriber of (what a shared
// pub/sub channel would make every node pay for every message): node B subscribes channels, its
// clients leave (B keeps the pub/sub subscriptions: long linger), then A publishes.
// Usage (docs/CLUSTER.md 5.4): node layout-cost.js <pid A> <pid B> [port A] [port B] [metrics port B]
const path = require('path');
const mods = path.join(__dirname, '../../integration/node_modules');
const Pusher = require(path.join(mods, 'pusher-js'));
const PusherServer = require(path.join(mods, 'pusher'));
const fs = require('fs');
const cpu = (pid) => { const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (+f[11] + +f[12]) * 10; }; // ms
const metric = async (port, name) => { const t = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(); const m = t.match(new RegExp('^' + name + ' (\\d+)', 'm')); return m ? +m[1] : NaN; };
(async () => {
  const [pidA, pidB, portA = 7621, portB = 7622, metricsB = 9722] = process.argv.slice(2).map(Number);
  const chans = Array.from({ length: 10 }, (_, i) => 'lay-' + i);
  const c = new Pusher('app-key', { wsHost: '127.0.0.1', wsPort: portB, forceTLS: false, enabledTransports: ['ws'], cluster: 'x' });
  await Promise.all(chans.map((ch) => new Promise((r) => c.subscribe(ch).bind('pusher:subscription_succeeded', r))));
  c.disconnect();
  await new Promise((r) => setTimeout(r, 1000));
  const s = new PusherServer({ appId: 'app-id', key: 'app-key', secret: 'app-secret', host: '127.0.0.1', port: portA });
  const u0 = await metric(metricsB, 'herald_adapter_messages_unrouted_total'), b0 = cpu(pidB), a0 = cpu(pidA), t0 = Date.now();
  let sent = 0;
  while (Date.now() - t0 < 10000) {
    await s.triggerBatch(chans.map((ch) => ({ channel: ch, name: 'e', data: 'x'.repeat(200) })));
    sent += chans.length;
  }
  await new Promise((r) => setTimeout(r, 500));
  const u1 = await metric(metricsB, 'herald_adapter_messages_unrouted_total'), b1 = cpu(pidB), a1 = cpu(pidA);
  console.log(JSON.stringify({ sent, unrouted_at_B: u1 - u0, cpu_ms_B: b1 - b0, cpu_ms_A: a1 - a0,
    us_per_unrouted_message_B: ((b1 - b0) * 1000 / (u1 - u0)).toFixed(2), us_per_publish_A: ((a1 - a0) * 1000 / sent).toFixed(2) }));
  process.exit(0);
})();
