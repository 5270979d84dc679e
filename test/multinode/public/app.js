'use strict';
// The multinode playground's logic, in the browser. Three panels, each one pusher-js client connected to the
// herald node it picks; every frame a panel receives goes to its log with the time. Channel auth and user
// sign-in go to the dev server (it holds the secret); triggers and send-to-user go to the dev server too,
// which calls the HTTP API of the node chosen in the form. Two views are redrawn from scratch on each change:
// presence (each panel's pusher-js member list side by side) and counts (each node's GET /channels, polled).
//
// Threading: the page's one event loop; pusher-js callbacks and timers only mark views dirty or append to
// logs. Test hooks: every control has data-testid="<role>-<panel>"; log entries, presence cells and count
// cells carry data-* attributes that say what they show.

const CHANNEL_TYPES = [
  { type: 'public', prefix: '' },
  { type: 'private', prefix: 'private-' },
  { type: 'presence', prefix: 'presence-' },
  { type: 'cache', prefix: 'cache-' },
];
const DEFAULT_USERS = ['alice', 'bob', 'carol'];
const MAX_LOG_ENTRIES = 500;
const COUNTS_EVERY_MS = 1000;

let config = null;
const panels = [];
const nodeCounts = new Map(); // node name -> {ok, channels, error, at}

// ---------------------------------------------------------------- small helpers

/** el('button', {class: 'x', testid: 'connect-1', onclick}, 'Connect'): a DOM element. */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'testid') e.dataset.testid = v;
    else if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function clock(d = new Date()) {
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function show(data) {
  if (data === undefined) return '';
  return typeof data === 'string' ? data : JSON.stringify(data);
}

/** POST a JSON body to the dev server; the parsed answer, or an Error with the server's message. */
async function postJson(url, body) {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                 body: JSON.stringify(body) });
  const text = await res.text();
  let obj;
  try { obj = JSON.parse(text); } catch { obj = { error: text }; }
  if (!res.ok) throw new Error(obj.error || `${url}: HTTP ${res.status}`);
  return obj;
}

function nodeOptions(selected) {
  return config.nodes.map((n) => el('option', { value: n.name, selected: n.name === selected },
    `node ${n.name} · :${n.port}`));
}

// ---------------------------------------------------------------- one panel

class Panel {
  constructor(index) {
    this.index = index;
    this.pusher = null;
    this.signedInAs = null;
    this.build();
  }

  id(role) { return `${role}-${this.index}`; }
  get nodeName() { return this.ui.node.value; }
  get userId() { return this.ui.user.value.trim(); }
  get channelName() {
    const t = CHANNEL_TYPES.find((c) => c.type === this.ui.type.value);
    return t.prefix + this.ui.channel.value.trim();
  }

  build() {
    const i = this.index;
    const defaultNode = config.nodes[(i - 1) % config.nodes.length].name;
    const ui = this.ui = {};
    ui.state = el('span', { class: 'state disconnected', testid: this.id('state') }, 'disconnected');
    ui.socket = el('span', { class: 'socket', testid: this.id('socket'), title: 'socket id' });
    ui.node = el('select', { testid: this.id('node'), title: 'node this panel connects to' }, nodeOptions(defaultNode));
    ui.user = el('input', { testid: this.id('user'), value: DEFAULT_USERS[i - 1] || `user${i}`, size: 8,
                            title: 'user id for presence channels and sign-in' });
    ui.connect = el('button', { testid: this.id('connect'), class: 'primary', onclick: () => this.connect() }, 'Connect');
    ui.disconnect = el('button', { testid: this.id('disconnect'), onclick: () => this.disconnect(), disabled: true }, 'Disconnect');

    ui.type = el('select', { testid: this.id('type'), onchange: () => this.refreshChannelName() },
      CHANNEL_TYPES.map((c) => el('option', { value: c.type, selected: c.type === 'presence' }, c.type)));
    ui.channel = el('input', { testid: this.id('channel'), value: 'room', size: 10,
                               oninput: () => this.refreshChannelName() });
    ui.fullName = el('code', { testid: this.id('fullname'), class: 'fullname' });
    ui.subscribe = el('button', { testid: this.id('subscribe'), class: 'primary', onclick: () => this.subscribe() }, 'Subscribe');
    ui.unsubscribe = el('button', { testid: this.id('unsubscribe'), onclick: () => this.unsubscribe() }, 'Unsubscribe');
    ui.subs = el('div', { class: 'chips', testid: this.id('subscriptions') });

    ui.clientEvent = el('input', { testid: this.id('client-event'), value: 'client-hello', size: 12 });
    ui.clientData = el('input', { testid: this.id('client-data'), value: `{"from":"panel ${i}"}` });
    ui.clientSend = el('button', { testid: this.id('client-send'), onclick: () => this.sendClientEvent() }, 'Send');

    ui.triggerNode = el('select', { testid: this.id('trigger-node'), title: 'node whose HTTP API is called' }, nodeOptions(defaultNode));
    ui.triggerEvent = el('input', { testid: this.id('trigger-event'), value: 'my-event', size: 12 });
    ui.triggerData = el('input', { testid: this.id('trigger-data'), value: '{"hello":"world"}' });
    ui.triggerExclude = el('input', { type: 'checkbox', testid: this.id('trigger-exclude') });
    ui.triggerSend = el('button', { testid: this.id('trigger-send'), onclick: () => this.trigger() }, 'Trigger');
    ui.triggerResult = el('div', { class: 'result', testid: this.id('trigger-result') });

    ui.signin = el('button', { testid: this.id('signin'), onclick: () => this.signin() }, 'Sign in');
    ui.signinState = el('span', { class: 'muted', testid: this.id('signin-state') }, 'not signed in');
    ui.stuUser = el('input', { testid: this.id('stu-user'), value: DEFAULT_USERS[i % DEFAULT_USERS.length], size: 8 });
    ui.stuNode = el('select', { testid: this.id('stu-node') }, nodeOptions(defaultNode));
    ui.stuEvent = el('input', { testid: this.id('stu-event'), value: 'direct-message', size: 12 });
    ui.stuData = el('input', { testid: this.id('stu-data'), value: `{"note":"from panel ${i}"}` });
    ui.stuSend = el('button', { testid: this.id('stu-send'), onclick: () => this.sendToUser() }, 'Send to user');
    ui.stuResult = el('div', { class: 'result', testid: this.id('stu-result') });

    ui.log = el('ol', { class: 'log', testid: this.id('log'), reversed: true });
    ui.logCount = el('span', { class: 'muted', testid: this.id('log-count') }, '0 entries');

    this.root = el('section', { class: `panel p${i}`, testid: this.id('panel'), 'data-panel': i },
      el('header', {}, el('h2', {}, `Panel ${i}`), ui.state),
      el('div', { class: 'row' }, el('label', {}, 'Node ', ui.node), el('label', { class: 'grow' }, 'User ', ui.user)),
      el('div', { class: 'row' }, ui.connect, ui.disconnect, ui.socket),
      el('fieldset', {}, el('legend', {}, 'Channel'),
        el('div', { class: 'row' }, ui.type, ui.channel, el('span', { class: 'arrow' }, '→'), ui.fullName),
        el('div', { class: 'row' }, ui.subscribe, ui.unsubscribe),
        ui.subs),
      el('fieldset', {}, el('legend', {}, 'Client event, on this channel, from this socket'),
        el('div', { class: 'row' }, ui.clientEvent, ui.clientData, ui.clientSend)),
      el('fieldset', {}, el('legend', {}, 'Trigger on this channel through a node\u2019s HTTP API'),
        el('div', { class: 'row' }, el('label', {}, 'via ', ui.triggerNode), ui.triggerEvent, ui.triggerData),
        el('div', { class: 'row' }, el('label', { class: 'check' }, ui.triggerExclude, ' except this socket'),
          ui.triggerSend),
        ui.triggerResult),
      el('fieldset', {}, el('legend', {}, 'Users'),
        el('div', { class: 'row' }, ui.signin, ui.signinState),
        el('div', { class: 'row' }, el('label', {}, 'to ', ui.stuUser), el('label', {}, 'via ', ui.stuNode),
          ui.stuEvent, ui.stuData),
        el('div', { class: 'row' }, ui.stuSend),
        ui.stuResult),
      el('div', { class: 'log-head' }, el('h3', {}, 'Received'), ui.logCount,
        el('button', { class: 'small', testid: this.id('log-clear'), onclick: () => this.clearLog() }, 'Clear')),
      ui.log);
    this.refreshChannelName();
  }

  refreshChannelName() { this.ui.fullName.textContent = this.channelName || '(no name)'; }

  // ---- the log

  /** dir: 'in' (a frame received), 'out' (sent by this panel), 'sys' (state, results, errors). */
  log(dir, event, channel, data, level = '') {
    const entry = el('li', { class: `entry ${dir} ${level}`, testid: 'log-entry', 'data-dir': dir,
                             'data-event': event, 'data-channel': channel || '' },
      el('time', {}, clock()),
      el('span', { class: 'dir', title: dir }, dir === 'in' ? '⇣' : dir === 'out' ? '⇡' : '•'),
      el('b', { class: 'event' }, event),
      channel ? el('span', { class: 'channel' }, channel) : null,
      data !== undefined && data !== '' ? el('code', { class: 'data' }, show(data)) : null);
    this.ui.log.prepend(entry);
    while (this.ui.log.children.length > MAX_LOG_ENTRIES) this.ui.log.lastChild.remove();
    this.ui.logCount.textContent = `${this.ui.log.children.length} entries`;
  }

  clearLog() {
    this.ui.log.replaceChildren();
    this.ui.logCount.textContent = '0 entries';
  }

  // ---- connection

  setState(state) {
    this.ui.state.textContent = state;
    this.ui.state.className = `state ${state}`;
    const on = !!this.pusher;
    this.ui.connect.disabled = on;
    this.ui.disconnect.disabled = !on;
    this.ui.node.disabled = on;
    this.ui.user.disabled = on; // the user id is part of what was signed: change it while disconnected
    this.ui.socket.textContent = this.pusher && this.pusher.connection.socket_id ? `socket ${this.pusher.connection.socket_id}` : '';
    renderSoon();
  }

  connect() {
    if (this.pusher) return;
    if (!this.userId) { this.log('sys', 'a user id is needed', '', undefined, 'error'); return; }
    const node = config.nodes.find((n) => n.name === this.nodeName);
    const pusher = new Pusher(config.app.key, {
      wsHost: location.hostname, wsPort: node.port, forceTLS: false, enabledTransports: ['ws'],
      disableStats: true, cluster: 'mt1',
      channelAuthorization: { customHandler: (p, cb) => this.authorize('/pusher/auth',
        { socket_id: p.socketId, channel_name: p.channelName, user_id: this.userId }, cb) },
      userAuthentication: { customHandler: (p, cb) => this.authorize('/pusher/user-auth',
        { socket_id: p.socketId, user_id: this.userId }, cb) },
    });
    this.pusher = pusher;
    this.log('sys', `connecting to node ${node.name}`, '', `ws://${location.hostname}:${node.port}`);
    pusher.connection.bind('state_change', ({ previous, current }) => {
      if (this.pusher !== pusher) return;
      this.log('sys', `${previous} → ${current}`, '', current === 'connected' ? `socket ${pusher.connection.socket_id}` : '');
      if (current !== 'connected') this.setSignedIn(null);
      this.setState(current);
    });
    pusher.connection.bind('error', (err) => {
      if (this.pusher !== pusher) return;
      const e = err && err.error ? err.error : err;
      this.log('sys', 'connection error', '', e && e.data ? e.data : show(e), 'error');
    });
    pusher.connection.bind('message', (m) => {
      if (this.pusher !== pusher) return;
      this.log('in', m.event, m.channel, m.data);
      if (m.event === 'pusher:signin_success') this.setSignedIn(this.userId);
      if (m.channel || m.event.startsWith('pusher_internal:')) renderSoon();
    });
    this.setState(pusher.connection.state);
  }

  disconnect() {
    if (!this.pusher) return;
    const p = this.pusher;
    this.pusher = null;
    p.disconnect();
    this.setSignedIn(null);
    this.log('sys', 'disconnected by you');
    this.setState('disconnected');
    this.renderSubscriptions();
  }

  async authorize(url, body, callback) {
    try {
      callback(null, await postJson(url, body));
    } catch (err) {
      this.log('sys', `${url} refused`, body.channel_name || '', err.message, 'error');
      callback(err, null);
    }
  }

  // ---- channels

  subscribe() {
    if (!this.pusher) { this.log('sys', 'connect first', '', undefined, 'error'); return; }
    const name = this.channelName;
    if (!name || name.endsWith('-')) { this.log('sys', 'a channel name is needed', '', undefined, 'error'); return; }
    if (this.pusher.channel(name) && this.pusher.channel(name).subscribed) {
      this.log('sys', 'already subscribed', name);
      return;
    }
    const ch = this.pusher.subscribe(name);
    this.log('out', 'subscribe', name);
    if (!ch.__playground) {
      ch.__playground = true;
      ch.bind('pusher:subscription_error', (status) => {
        this.log('sys', 'subscription refused', name, status, 'error');
        this.renderSubscriptions();
      });
      ch.bind('pusher:subscription_succeeded', () => this.renderSubscriptions());
    }
    this.renderSubscriptions();
  }

  unsubscribe() {
    if (!this.pusher) { this.log('sys', 'connect first', '', undefined, 'error'); return; }
    const name = this.channelName;
    if (!this.pusher.channel(name)) { this.log('sys', 'not subscribed', name, undefined, 'error'); return; }
    this.pusher.unsubscribe(name);
    this.log('out', 'unsubscribe', name);
    this.renderSubscriptions();
  }

  /** The channels pusher-js holds for this panel: {name, subscribed, channel}. */
  channels() {
    if (!this.pusher) return [];
    return Object.values(this.pusher.channels.channels)
      .filter((c) => !c.name.startsWith('#server-to-user-'))
      .map((c) => ({ name: c.name, subscribed: c.subscribed, channel: c }));
  }

  renderSubscriptions() {
    const chips = this.channels().map((c) => {
      const t = CHANNEL_TYPES.slice().reverse().find((x) => c.name.startsWith(x.prefix));
      return el('button', { class: `chip ${c.subscribed ? 'on' : 'pending'}`, testid: 'subscription',
                            'data-channel': c.name, 'data-subscribed': String(c.subscribed),
                            title: c.subscribed ? 'subscribed: click to select' : 'waiting for the server',
                            onclick: () => {
                              this.ui.type.value = t.type;
                              this.ui.channel.value = c.name.slice(t.prefix.length);
                              this.refreshChannelName();
                            } }, c.name);
    });
    this.ui.subs.replaceChildren(...(chips.length ? chips : [el('span', { class: 'muted' }, 'no subscriptions')]));
    renderSoon();
  }

  sendClientEvent() {
    const name = this.channelName;
    const ch = this.pusher && this.pusher.channel(name);
    if (!ch || !ch.subscribed) { this.log('sys', 'subscribe to the channel first', name, undefined, 'error'); return; }
    const event = this.ui.clientEvent.value.trim();
    if (!event.startsWith('client-')) { this.log('sys', 'client events are named client-…', name, event, 'error'); return; }
    let data = this.ui.clientData.value;
    try { data = JSON.parse(data); } catch { /* sent as text */ }
    const sent = ch.trigger(event, data);
    this.log('out', event, name, sent ? data : 'not sent (see the browser console)', sent ? '' : 'error');
  }

  // ---- HTTP API, through the dev server

  async trigger() {
    const channel = this.channelName;
    const node = this.ui.triggerNode.value;
    const body = { node, channel, event: this.ui.triggerEvent.value.trim(), data: this.ui.triggerData.value };
    if (this.ui.triggerExclude.checked && this.pusher && this.pusher.connection.socket_id) {
      body.socket_id = this.pusher.connection.socket_id;
    }
    await this.apiCall('/trigger', body, this.ui.triggerResult, `trigger via ${node}`, channel);
  }

  signin() {
    if (!this.pusher || this.pusher.connection.state !== 'connected') {
      this.log('sys', 'connect first', '', undefined, 'error');
      return;
    }
    this.log('out', 'pusher:signin', '', `as ${this.userId}`);
    this.pusher.signin();
  }

  setSignedIn(user) {
    this.signedInAs = user;
    this.ui.signinState.textContent = user ? `signed in as ${user}` : 'not signed in';
    this.ui.signinState.className = user ? 'ok' : 'muted';
  }

  async sendToUser() {
    const node = this.ui.stuNode.value;
    const body = { node, user_id: this.ui.stuUser.value.trim(), event: this.ui.stuEvent.value.trim(),
                   data: this.ui.stuData.value };
    await this.apiCall('/send-to-user', body, this.ui.stuResult, `send to ${body.user_id} via ${node}`, '');
  }

  async apiCall(url, body, resultEl, what, channel) {
    resultEl.textContent = '…';
    resultEl.className = 'result';
    try {
      const r = await postJson(url, body);
      const text = r.ok ? `${what}: ${r.status} ${r.body || ''}` : `${what}: ${r.status || 'failed'} ${show(r.body)}`;
      resultEl.textContent = `${clock()} ${text}`;
      resultEl.className = `result ${r.ok ? 'ok' : 'error'}`;
      this.log('sys', what, channel, r.ok ? `${r.status}` : `${r.status || ''} ${show(r.body)}`, r.ok ? '' : 'error');
    } catch (err) {
      resultEl.textContent = `${clock()} ${what}: ${err.message}`;
      resultEl.className = 'result error';
      this.log('sys', what, channel, err.message, 'error');
    }
  }
}

// ---------------------------------------------------------------- presence view

let renderPending = false;
function renderSoon() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => { renderPending = false; renderPresence(); });
}

/** For each presence channel any panel holds: users × panels, what each panel's pusher-js lists. */
function renderPresence() {
  const view = document.querySelector('[data-testid="presence-view"]');
  const byChannel = new Map(); // channel -> Map(panelIndex -> {subscribed, members: Map(id -> info), me})
  for (const p of panels) {
    for (const c of p.channels()) {
      if (!c.name.startsWith('presence-')) continue;
      const members = new Map();
      if (c.subscribed) c.channel.members.each((m) => members.set(String(m.id), m.info));
      if (!byChannel.has(c.name)) byChannel.set(c.name, new Map());
      byChannel.get(c.name).set(p.index, { subscribed: c.subscribed, members,
                                           me: c.subscribed && c.channel.members.me ? String(c.channel.members.me.id) : null });
    }
  }
  if (!byChannel.size) {
    view.replaceChildren(el('p', { class: 'empty' }, 'No panel is in a presence channel.'));
    return;
  }
  const tables = [];
  for (const [channel, seen] of [...byChannel.entries()].sort()) {
    const users = new Set();
    for (const v of seen.values()) for (const id of v.members.keys()) users.add(id);
    const subscribedPanels = [...seen.entries()].filter(([, v]) => v.subscribed).map(([i]) => i);
    let disagreements = 0;
    const rows = [...users].sort().map((user) => {
      const presentIn = subscribedPanels.filter((i) => seen.get(i).members.has(user));
      const disagree = presentIn.length !== 0 && presentIn.length !== subscribedPanels.length;
      if (disagree) disagreements += 1;
      return el('tr', { class: disagree ? 'disagree' : '', testid: 'presence-row', 'data-channel': channel,
                        'data-user': user, 'data-disagree': String(disagree) },
        el('th', { scope: 'row' }, user, disagree ? el('span', { class: 'badge bad' }, 'disagree') : null),
        panels.map((p) => {
          const v = seen.get(p.index);
          const state = !v || !v.subscribed ? 'off' : v.members.has(user) ? 'present' : 'absent';
          const mark = state === 'present' ? (v.me === user ? '✓ me' : '✓') : state === 'absent' ? '✗' : '–';
          return el('td', { class: `cell ${state}`, testid: 'presence-cell', 'data-channel': channel,
                            'data-panel': p.index, 'data-user': user, 'data-state': state }, mark);
        }));
    });
    const head = el('tr', {}, el('th', {}, 'user'), panels.map((p) => {
      const v = seen.get(p.index);
      const status = !v ? 'not in channel' : v.subscribed ? `${v.members.size} member(s)` : 'subscribing…';
      return el('th', { class: `p${p.index}` }, `Panel ${p.index}`,
        el('small', {}, p.pusher ? `node ${p.nodeName} · ${p.userId}` : 'disconnected'), el('small', {}, status));
    }));
    const verdict = subscribedPanels.length < 2 ? el('span', { class: 'badge' }, `${subscribedPanels.length} panel(s) subscribed`)
      : disagreements ? el('span', { class: 'badge bad' }, `${disagreements} disagreement(s)`)
        : el('span', { class: 'badge good' }, `${subscribedPanels.length} panels agree`);
    tables.push(el('div', { class: 'presence-channel', testid: 'presence-channel', 'data-channel': channel,
                            'data-disagreements': String(disagreements) },
      el('h3', {}, el('code', {}, channel), ' ', verdict),
      el('table', {}, el('thead', {}, head), el('tbody', {}, rows.length ? rows
        : el('tr', {}, el('td', { colSpan: panels.length + 1, class: 'muted' }, 'no members'))))));
  }
  view.replaceChildren(...tables);
}

// ---------------------------------------------------------------- counts view

let countsInFlight = false;
async function pollCounts() {
  if (countsInFlight) return;
  countsInFlight = true;
  try {
    await Promise.all(config.nodes.map(async (n) => {
      try {
        const res = await fetch(`/api/counts?node=${encodeURIComponent(n.name)}`);
        const r = await res.json();
        nodeCounts.set(n.name, r.ok ? { ok: true, channels: r.channels, at: new Date() }
          : { ok: false, error: r.status ? `HTTP ${r.status} ${show(r.body)}` : `unreachable (${show(r.body)})`, at: new Date() });
      } catch (err) {
        nodeCounts.set(n.name, { ok: false, error: err.message, at: new Date() });
      }
    }));
    renderCounts();
  } finally {
    countsInFlight = false;
  }
}

function renderCounts() {
  const view = document.querySelector('[data-testid="counts-view"]');
  const names = new Set();
  for (const c of nodeCounts.values()) if (c.ok) for (const ch of Object.keys(c.channels)) names.add(ch);
  const fmt = (v) => (v === undefined ? '' : String(v));
  const head = el('tr', {}, el('th', {}, 'channel'), config.nodes.map((n) => {
    const c = nodeCounts.get(n.name);
    return el('th', { testid: 'count-node', 'data-node': n.name, 'data-ok': String(!!(c && c.ok)),
                      class: c && !c.ok ? 'down' : '' },
      `node ${n.name}`, el('small', {}, c ? (c.ok ? `:${n.port} · ${clock(c.at)}` : c.error) : '…'));
  }));
  const rows = [...names].sort().map((ch) => {
    const answers = config.nodes.map((n) => {
      const c = nodeCounts.get(n.name);
      if (!c || !c.ok) return null;
      const v = c.channels[ch] || {};
      return { subs: v.subscription_count, users: v.user_count, listed: ch in c.channels };
    });
    const keyOf = (a) => `${a.listed}/${fmt(a.subs)}/${fmt(a.users)}`;
    const disagree = new Set(answers.filter(Boolean).map(keyOf)).size > 1;
    return el('tr', { class: disagree ? 'disagree' : '', testid: 'count-row', 'data-channel': ch,
                      'data-disagree': String(disagree) },
      el('th', { scope: 'row' }, el('code', {}, ch), disagree ? el('span', { class: 'badge bad' }, 'nodes disagree') : null),
      answers.map((a, i) => {
        const node = config.nodes[i].name;
        if (!a) return el('td', { class: 'cell off', testid: 'count-cell', 'data-node': node, 'data-channel': ch }, '–');
        const text = !a.listed ? 'not listed' : `${fmt(a.subs)} sub${a.users !== undefined ? ` · ${a.users} user` : ''}`;
        return el('td', { class: 'cell', testid: 'count-cell', 'data-node': node, 'data-channel': ch,
                          'data-subs': fmt(a.subs), 'data-users': fmt(a.users), 'data-listed': String(a.listed) }, text);
      }));
  });
  view.replaceChildren(el('table', {}, el('thead', {}, head), el('tbody', {}, rows.length ? rows
    : el('tr', {}, el('td', { colSpan: config.nodes.length + 1, class: 'muted' }, 'no occupied channel')))));
}

// ---------------------------------------------------------------- start

async function main() {
  config = await (await fetch('/api/config')).json();
  const facts = [
    ['app key', config.app.key], ['adapter', config.driver], ['redis', `127.0.0.1:${config.redisPort}`],
    ['key prefix', config.prefix], config.nodeTimeoutMs ? ['node timeout', `${config.nodeTimeoutMs} ms`] : null,
    ...config.nodes.map((n) => [`node ${n.name}`, `:${n.port}`]),
  ].filter(Boolean);
  document.querySelector('[data-testid="facts"]').replaceChildren(
    ...facts.map(([k, v]) => el('span', { class: 'fact' }, `${k} `, el('code', {}, v))));
  const host = document.querySelector('[data-testid="panels"]');
  for (let i = 1; i <= config.nodes.length; i += 1) {
    const p = new Panel(i);
    panels.push(p);
    host.append(p.root);
    p.renderSubscriptions();
  }
  renderPresence();
  renderCounts();
  pollCounts();
  setInterval(pollCounts, COUNTS_EVERY_MS);
  setInterval(renderPresence, 1000); // belt and braces: pusher-js changes members without telling us on disconnect
  document.body.dataset.ready = 'true';
}

main().catch((err) => {
  document.body.prepend(el('p', { class: 'fatal', testid: 'fatal' }, `The page could not start: ${err.message}`));
});
