'use strict';
// The dev web server of the multinode playground: serves the page (public/) and pusher-js's browser
// build, signs channel authorisations and user sign-ins with the app secret (the page never sees the
// secret), and calls the HTTP API of whichever node the page names through the official `pusher` SDK.
//
// Routes:
//   GET  /, /app.js, /style.css     the page (files of public/ only)
//   GET  /vendor/pusher.js          pusher-js's dist/web/pusher.js from node_modules
//   GET  /api/config                app key, nodes (name, port), driver, node timeout: what the page needs
//   POST /pusher/auth               {socket_id, channel_name, user_id}  -> authorizeChannel (private-, presence-)
//   POST /pusher/user-auth          {socket_id, user_id}                -> authenticateUser (pusher:signin)
//   POST /trigger                   {node, channel, event, data, socket_id?} -> node's POST /apps/{id}/events
//   POST /send-to-user              {node, user_id, event, data}        -> node's sendToUser
//   GET  /api/counts?node=A         node's GET /apps/{id}/channels, with subscription and user counts
// Bodies may be JSON or form-encoded (pusher-js's own ajax auth transport sends the latter).
//
// Threading: one Node event loop; every handler is async and keeps no state between requests beyond
// one SDK client per node.

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const PusherSDK = require('pusher');

const PUBLIC_DIR = path.join(__dirname, 'public');
const PUSHER_JS = path.join(path.dirname(require.resolve('pusher-js/package.json')), 'dist/web/pusher.js');
const MAX_BODY = 64 * 1024;
const API_TIMEOUT_MS = 3000; // a killed node must fail a call quickly, not hang the page
const STATIC_TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
                       '.css': 'text/css; charset=utf-8' };

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(body);
}

function sendFile(res, file) {
  fs.readFile(file, (err, data) => {
    if (err) { sendJson(res, 404, { error: 'not found' }); return; }
    res.writeHead(200, { 'Content-Type': STATIC_TYPES[path.extname(file)] || 'application/octet-stream',
                         'Cache-Control': 'no-store' });
    res.end(data);
  });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) { reject(new HttpError(413, `body larger than ${MAX_BODY} bytes`)); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function readParams(req) {
  const text = await readBody(req);
  if (!text) return {};
  const type = String(req.headers['content-type'] || '');
  // curl -d sends JSON labelled as a form: a body that starts like JSON is read as JSON.
  if (type.includes('application/x-www-form-urlencoded') && !/^\s*\{/.test(text)) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  try {
    const obj = JSON.parse(text);
    if (obj && typeof obj === 'object' && !Array.isArray(obj)) return obj;
  } catch { /* fall through */ }
  throw new HttpError(400, 'body must be a JSON object or form-encoded');
}

function requireString(params, name, max = 200) {
  const v = params[name];
  if (typeof v !== 'string' && typeof v !== 'number') throw new HttpError(400, `${name} is required`);
  const s = String(v);
  if (!s.length) throw new HttpError(400, `${name} is required`);
  if (s.length > max) throw new HttpError(400, `${name} longer than ${max} characters`);
  return s;
}

/** The page types event data as text: JSON when it parses (sent as an object), the raw text otherwise. */
function eventData(raw) {
  if (raw === undefined || raw === null || raw === '') return {};
  if (typeof raw !== 'string') return raw;
  try { return JSON.parse(raw); } catch { return raw; }
}

/** The SDK's errors carry the node's answer (status, body); a network error has neither. */
function apiError(err) {
  if (err && err.status) return { status: err.status, body: err.body };
  const cause = err && err.error ? err.error.code || err.error.message : null; // ECONNREFUSED, say
  return { status: 0, body: String(cause || (err && err.message) || err) };
}

/**
 * createDevServer({app, nodes, info}) -> http.Server (not listening yet).
 *   app   {id, key, secret}
 *   nodes [{name: 'A', port: 6001}, ...]: herald nodes on 127.0.0.1
 *   info  extra fields for GET /api/config (driver, nodeTimeoutMs, redisPort)
 */
function createDevServer({ app, nodes, info = {} }) {
  const sdkFor = new Map(nodes.map((n) => [n.name, new PusherSDK({
    appId: app.id, key: app.key, secret: app.secret,
    host: '127.0.0.1', port: String(n.port), useTLS: false, timeout: API_TIMEOUT_MS,
  })]));
  // Signing needs no node: any SDK instance signs with the same secret.
  const signer = sdkFor.get(nodes[0].name);

  function nodeSdk(name) {
    const sdk = sdkFor.get(String(name));
    if (!sdk) throw new HttpError(400, `unknown node ${JSON.stringify(name)} (one of ${nodes.map((n) => n.name).join(', ')})`);
    return sdk;
  }

  const routes = {
    'GET /api/config': async () => ({
      app: { key: app.key, id: app.id },
      nodes: nodes.map((n) => ({ name: n.name, port: n.port })),
      ...info,
    }),

    'POST /pusher/auth': async (req) => {
      const p = await readParams(req);
      const socketId = requireString(p, 'socket_id', 64);
      const channel = requireString(p, 'channel_name', 200);
      if (channel.startsWith('private-encrypted-')) {
        throw new HttpError(403, 'encrypted channels need a master key, which this playground does not configure');
      }
      if (channel.startsWith('presence-')) {
        const userId = requireString(p, 'user_id', 128);
        return signer.authorizeChannel(socketId, channel, { user_id: userId, user_info: { name: userId } });
      }
      if (channel.startsWith('private-')) return signer.authorizeChannel(socketId, channel);
      throw new HttpError(403, `${channel} is neither a private- nor a presence- channel: it needs no authorisation`);
    },

    'POST /pusher/user-auth': async (req) => {
      const p = await readParams(req);
      const socketId = requireString(p, 'socket_id', 64);
      const userId = requireString(p, 'user_id', 128);
      return signer.authenticateUser(socketId, { id: userId, user_info: { name: userId } });
    },

    'POST /trigger': async (req) => {
      const p = await readParams(req);
      const sdk = nodeSdk(requireString(p, 'node', 8));
      const channel = requireString(p, 'channel', 200);
      const event = requireString(p, 'event', 200);
      const opts = p.socket_id ? { socket_id: String(p.socket_id) } : undefined;
      try {
        const r = await sdk.trigger(channel, event, eventData(p.data), opts);
        return { ok: true, node: p.node, status: r.status, body: await r.text() };
      } catch (err) {
        return { ok: false, node: p.node, ...apiError(err) };
      }
    },

    'POST /send-to-user': async (req) => {
      const p = await readParams(req);
      const sdk = nodeSdk(requireString(p, 'node', 8));
      const userId = requireString(p, 'user_id', 128);
      const event = requireString(p, 'event', 200);
      try {
        const r = await sdk.sendToUser(userId, event, eventData(p.data));
        return { ok: true, node: p.node, status: r.status, body: await r.text() };
      } catch (err) {
        return { ok: false, node: p.node, ...apiError(err) };
      }
    },

    // Two calls, because the API allows user_count only together with filter_by_prefix=presence-:
    // every occupied channel with its subscription count, then the presence ones with user counts.
    'GET /api/counts': async (req, url) => {
      const node = url.searchParams.get('node') || '';
      const sdk = nodeSdk(node);
      try {
        const all = await (await sdk.get({ path: '/channels', params: { info: 'subscription_count' } })).json();
        const presence = await (await sdk.get({ path: '/channels',
          params: { filter_by_prefix: 'presence-', info: 'user_count,subscription_count' } })).json();
        const channels = { ...(all.channels || {}) };
        for (const [name, v] of Object.entries(presence.channels || {})) channels[name] = { ...channels[name], ...v };
        return { ok: true, node, channels };
      } catch (err) {
        return { ok: false, node, ...apiError(err) };
      }
    },
  };

  return http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const route = routes[`${req.method} ${url.pathname}`];
    try {
      if (route) { sendJson(res, 200, await route(req, url)); return; }
      if (req.method !== 'GET') throw new HttpError(404, 'not found');
      if (url.pathname === '/vendor/pusher.js') { sendFile(res, PUSHER_JS); return; }
      if (url.pathname === '/favicon.ico') { res.writeHead(204); res.end(); return; }
      const name = url.pathname === '/' ? 'index.html' : url.pathname.slice(1);
      // Only plain file names of public/: no directories, no '..'.
      if (!/^[a-z0-9_-]+\.(html|js|css)$/i.test(name)) throw new HttpError(404, 'not found');
      sendFile(res, path.join(PUBLIC_DIR, name));
    } catch (err) {
      if (res.headersSent) { res.destroy(); return; }
      const status = err instanceof HttpError ? err.status : 500;
      sendJson(res, status, { error: err.message || String(err) });
    }
  });
}

module.exports = { createDevServer };
