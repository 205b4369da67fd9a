// Desktop: the screen of one agent in the browser (#/desktop?agent=ID),
// end to end like the terminal: session.js runs the SSH client (our Go code
// in WebAssembly) over the session websocket with the consent countdown; the
// client asks the agent for the desktop (desktop@patchbay.dev: the agent
// starts x11vnc for this session, or names the endpoint's VNC server), opens
// a direct-tcpip channel to it, and noVNC (make web copies it into
// vendor/novnc) speaks RFB over that channel, which it takes for a
// WebSocket. "View only" asks for the desktop-view capability: the agent
// then drops all input, whatever the page sends.
import { el } from './dom.js';
import { onConnect, openSession, reasonInput, refuseWithoutTechnician, statusLine, stylesheet } from './session.js';

let novnc = null; // a promise of the RFB class, loaded once per page

function load() {
  if (!novnc) {
    stylesheet('/assets/desktop.css');
    novnc = import('./vendor/novnc/core/rfb.js').then((m) => m.default);
    novnc.catch(() => { novnc = null; });
  }
  return novnc;
}

// Channel is the desktop's direct-tcpip channel as noVNC wants a channel:
// like an open WebSocket of binary messages. The wasm client's handle
// carries the bytes.
class Channel {
  constructor(handle) {
    this.handle = handle;
    this.binaryType = 'arraybuffer';
    this.protocol = '';
    this.readyState = WebSocket.OPEN; // the SSH channel is open before noVNC gets it
    this.onopen = null;
    this.onmessage = null;
    this.onclose = null;
    this.onerror = null;
  }

  send(data) {
    if (this.readyState !== WebSocket.OPEN) return;
    this.handle.write(data instanceof ArrayBuffer ? new Uint8Array(data) : data);
  }

  // close is noVNC ending the connection (it logs why in the console).
  close() { this.ended('The VNC client in this page closed the connection (the browser console says why).'); }

  // deliver hands the VNC server's bytes to noVNC.
  deliver(bytes) {
    if (this.readyState === WebSocket.OPEN && this.onmessage) this.onmessage({ data: bytes.buffer });
  }

  // ended closes the channel once, ending the SSH session with msg.
  ended(msg) {
    if (this.readyState === WebSocket.CLOSED) return;
    this.readyState = WebSocket.CLOSED;
    this.handle.close(msg);
    if (this.onclose) this.onclose({ code: 1000, reason: msg, wasClean: true });
  }
}

export function mount(main, params) {
  const agent = params.get('agent') || '';
  if (refuseWithoutTechnician(main, 'desktop-screen', 'Desktop')) return () => {};
  const reason = reasonInput('desk-reason');
  const viewOnly = el('input', { type: 'checkbox', id: 'desk-view-only' });
  const submit = el('button', { type: 'submit', id: 'desk-connect' }, 'Connect');
  const line = statusLine('desk-status', 'desk-countdown');
  const mode = el('span', { id: 'desk-mode', class: 'tag', hidden: true });
  const cad = el('button', { type: 'button', id: 'desk-cad', hidden: true }, 'Send Ctrl-Alt-Del');
  const leave = el('button', { type: 'button', id: 'desk-disconnect', hidden: true }, 'Disconnect');
  const password = el('input', { type: 'password', id: 'desk-password', autocomplete: 'off' });
  const passwordForm = el('form', { id: 'desk-password-form', class: 'toolbar', hidden: true },
    el('label', {}, 'The VNC server asks for its password: ', password), el('button', { type: 'submit' }, 'Send'));
  const screen = el('div', { id: 'desktop', class: 'desktop', hidden: true });
  const form = el('form', { id: 'desk-form', class: 'card form', novalidate: true },
    el('h1', {}, 'Desktop of ', el('code', {}, params.get('name') || agent)),
    el('label', { class: 'field' }, el('span', { class: 'label' }, 'Reason *'), reason),
    el('label', { class: 'check' }, viewOnly, ' View only (see the screen; no keyboard or mouse)'),
    el('div', { class: 'toolbar' }, submit));
  main.append(el('section', { id: 'desktop-screen' }, form,
    el('div', { class: 'card' }, el('div', { class: 'toolbar' }, line.status, mode, el('span', { class: 'spacer' }), cad, leave),
      line.countdown, passwordForm),
    screen));

  let sess = null;
  let rfb = null;
  let channel = null;
  let gone = false;
  let approved = ''; // the status line's text when the relay approved the session

  function openDesktop(RFB, info) {
    const only = info.viewOnly || viewOnly.checked;
    screen.hidden = false;
    // Without a one-time password (an endpoint's own VNC server) noVNC asks
    // for one: credentialsrequired.
    rfb = new RFB(screen, channel, { credentials: info.password ? { password: info.password } : {}, shared: false });
    rfb.scaleViewport = true;
    rfb.viewOnly = only;
    rfb.background = '#1f2430';
    mode.textContent = only ? 'View only' : 'Control';
    mode.hidden = false;
    screen.dataset.viewOnly = String(only);
    leave.hidden = false;
    rfb.addEventListener('credentialsrequired', () => {
      passwordForm.hidden = false;
      password.focus();
    });
    rfb.addEventListener('connect', () => {
      screen.dataset.state = 'open';
      cad.hidden = only;
      line.show('approved', `${approved}; ${info.server || 'VNC'}${only ? ', view only' : ''}.`);
      if (!only) rfb.focus();
    });
    rfb.addEventListener('securityfailure', (e) => {
      if (channel) channel.ended(`The VNC server refused this viewer: ${e.detail.reason || `security failure ${e.detail.status}`}`);
    });
    rfb.addEventListener('disconnect', () => { cad.hidden = true; passwordForm.hidden = true; });
  }

  cad.addEventListener('click', () => { if (rfb) rfb.sendCtrlAltDel(); });
  leave.addEventListener('click', () => { if (channel) channel.ended('You ended the desktop session.'); });
  passwordForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    passwordForm.hidden = true;
    if (rfb) rfb.sendCredentials({ password: password.value });
    password.value = '';
  });

  onConnect(form, reason, [submit, reason, viewOnly], line, async (why) => {
    let ready = false;
    line.show('starting', 'Starting the VNC client…');
    const RFB = await load();
    sess = await openSession({
      agent, reason: why, capabilities: viewOnly.checked ? 'desktop-view' : 'desktop', line, gone: () => gone,
      start: (client, base) => {
        approved = line.status.textContent.replace(/\.$/, '');
        line.show('approved', `${approved}; asking for the desktop…`);
        const handle = client.desktop({
          ...base,
          ready: (info) => { ready = true; openDesktop(RFB, info); },
          output: (b) => { if (channel) channel.deliver(b); },
        });
        channel = new Channel(handle);
        return handle;
      },
      closed: (msg) => {
        if (channel) channel.ended(msg);
        line.show(ready ? 'ended' : 'failed', msg);
        screen.dataset.state = 'ended';
        screen.hidden = true; // noVNC took its canvas away
        mode.hidden = true;
        cad.hidden = true;
        leave.hidden = true;
      },
    });
  });
  reason.focus();

  return () => {
    gone = true;
    line.stopCountdown();
    if (channel) channel.ended('You left the desktop.');
    if (sess) sess.close('You left the desktop.');
  };
}
