'use strict';
// TLS on the main port (ssl.*): wss:// for pusher-js with forceTLS, https://
// for the pusher SDK with useTLS, against a self-signed certificate this
// test generates with the openssl command. Also: TLS 1.1 refused, plain
// HTTP on the TLS port refused, the hostile-client deadlines still apply
// under TLS, and a certificate swapped in by SIGHUP serves new connections.

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');

const h = require('./lib/harness');

function makeCert(dir, cn) {
  const cert = path.join(dir, `${cn}.crt`);
  const key = path.join(dir, `${cn}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  return { cert, key, pem: fs.readFileSync(cert) };
}

function peerCn(port, ca) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const cn = s.getPeerCertificate().subject.CN;
      s.destroy();
      resolve(cn);
    });
    s.on('error', reject);
  });
}

describe('TLS', () => {
  let server;
  let dir;
  let first;
  const prevReject = process.env.NODE_TLS_REJECT_UNAUTHORIZED;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-tls-'));
    first = makeCert(dir, 'herald-one');
    fs.copyFileSync(first.cert, path.join(dir, 'live.crt'));
    fs.copyFileSync(first.key, path.join(dir, 'live.key'));
    server = await startTls({ ssl: { enabled: true, cert_path: path.join(dir, 'live.crt'), key_path: path.join(dir, 'live.key') }, limits: { http_head_timeout_ms: 1500 } });
    // pusher-js (node) has no CA option: trust the test's self-signed certificate process-wide
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  });
  after(async () => {
    if (prevReject === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    else process.env.NODE_TLS_REJECT_UNAUTHORIZED = prevReject;
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // The harness probes readiness over plain HTTP: poll over TLS instead.
  async function startTls(overrides) {
    const port = await h.getFreePort();
    const config = h.makeConfig({ ...overrides, port });
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-it-'));
    const configPath = path.join(tmp, 'config.json');
    fs.writeFileSync(configPath, JSON.stringify(config));
    const s = new h.HeraldServer(config, configPath, tmp);
    s._spawn();
    for (let i = 0; i < 100 && !s.exit; i++) {
      try { await peerCn(port, first.pem); return s; } catch { await h.sleep(50); }
    }
    throw new Error(`herald with TLS did not start: ${s.stderr}`);
  }

  test('pusher-js with forceTLS subscribes and receives a trigger sent by the SDK with useTLS', async () => {
    const channel = h.uniq('tls');
    const client = h.makePusherClient(server, { pusherOptions: { wssPort: server.port, forceTLS: true, enabledTransports: ['ws'] } });
    try {
      await h.pusherConnected(client);
      const ch = await h.pusherSubscribe(client, channel);
      const got = new Promise((resolve) => ch.bind('greet', resolve));
      const sdk = h.makeSdk(server, { useTLS: true, port: server.port });
      const r = await sdk.trigger(channel, 'greet', { hello: 'tls' });
      assert.equal(r.status, 200);
      assert.deepEqual(await got, { hello: 'tls' });
    } finally {
      client.disconnect();
    }
  });

  test('https answers with the certificate, keep-alive and JSON errors as on plain HTTP', async () => {
    const agent = new https.Agent({ ca: first.pem, keepAlive: true, maxSockets: 1 });
    const get = (p) => new Promise((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: server.port, path: p, agent, servername: 'localhost' }, (res) => {
        let body = '';
        res.on('data', (c) => { body += c; });
        res.on('end', () => resolve({ status: res.statusCode, body, reused: res.req.reusedSocket }));
      }).on('error', reject);
    });
    assert.deepEqual(await get('/up'), { status: 200, body: '{"ok":true}', reused: false });
    const second = await get('/apps/app-id/channels');
    assert.equal(second.status, 401);
    assert.equal(second.reused, true, 'keep-alive over TLS');
    agent.destroy();
  });

  test('TLS 1.1 is refused, TLS 1.2 accepted', async () => {
    await assert.rejects(new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: server.port, ca: first.pem, servername: 'localhost', minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }, () => { s.destroy(); resolve(); });
      s.on('error', reject);
    }));
    await new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: server.port, ca: first.pem, servername: 'localhost', maxVersion: 'TLSv1.2' }, () => {
        assert.equal(s.getProtocol(), 'TLSv1.2');
        s.destroy();
        resolve();
      });
      s.on('error', reject);
    });
  });

  test('plain HTTP on the TLS port gets no answer and does not disturb the server', async () => {
    const s = net.connect(server.port, '127.0.0.1');
    let got = '';
    s.on('data', (c) => { got += c.toString('latin1'); });
    s.on('error', () => {});
    s.write('GET /up HTTP/1.1\r\nHost: a\r\n\r\n');
    await new Promise((resolve) => s.on('close', resolve));
    assert.ok(!got.startsWith('HTTP/1.1 200'), 'never served in plaintext');
    assert.equal(await peerCn(server.port, first.pem), 'herald-one');
  });

  test('a stalled TLS handshake costs nothing and is dropped at the head deadline', async () => {
    const s = net.connect(server.port, '127.0.0.1');
    s.on('error', () => {});
    s.write(Buffer.from([0x16, 0x03, 0x01])); // the start of a ClientHello, then nothing
    const t0 = Date.now();
    await new Promise((resolve) => s.on('close', resolve));
    assert.ok(Date.now() - t0 < h.T(6000), 'closed by the head deadline (1.5 s here)');
  });

  test('SIGHUP swaps in a new certificate for new connections; existing ones stay', async () => {
    const client = h.makePusherClient(server, { pusherOptions: { wssPort: server.port, forceTLS: true, enabledTransports: ['ws'] } });
    try {
      await h.pusherConnected(client);
      const second = makeCert(dir, 'herald-two');
      fs.copyFileSync(second.cert, path.join(dir, 'live.crt'));
      fs.copyFileSync(second.key, path.join(dir, 'live.key'));
      server.proc.kill('SIGHUP');
      await h.eventually(async () => (await peerCn(server.port, second.pem).catch(() => null)) === 'herald-two');
      assert.equal(client.connection.state, 'connected', 'the existing wss connection was not dropped');
      const channel = h.uniq('after-reload');
      const ch = await h.pusherSubscribe(client, channel);
      const got = new Promise((resolve) => ch.bind('e', resolve));
      await h.makeSdk(server, { useTLS: true, port: server.port }).trigger(channel, 'e', { ok: 1 });
      assert.deepEqual(await got, { ok: 1 });
    } finally {
      client.disconnect();
    }
  });
});
