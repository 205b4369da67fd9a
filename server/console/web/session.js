// What the terminal and the desktop screens share: the SSH client in
// WebAssembly (vendor/webssh.wasm, cmd/patchbay-webssh), the certificate of
// its key, the session websocket with the relay's status messages, the
// status line with the consent countdown, and the connect form's parts (the
// technician role check, the Reason field and its submit).
//
// The key pair is made by the wasm client, whose private half never leaves
// it; the relay's user CA certifies the public half for the logged-in
// technician (POST /v1/ssh/certificate, the API patchbay login uses), and the
// client checks the agent's host certificate against the relay's host CA.
// The websocket is the session endpoint patchbay ssh uses: text messages are
// the relay's status (waiting, approved, denied, failed), binary messages SSH
// bytes, which this module only carries between the socket and the client.
import * as api from './api.js';
import { el } from './dom.js';

const CERT_TTL = '1h'; // the browser's certificate: one sitting
const SUBPROTOCOL = 'patchbay.session.v1';

let client = null; // a promise of patchbayWebSSH, loaded once per page

// loadClient starts the wasm SSH client when a session is first opened.
export function loadClient() {
  if (!client) {
    client = (async () => {
      await import('./vendor/wasm_exec.js'); // sets globalThis.Go
      const go = new globalThis.Go();
      const { instance } = await WebAssembly.instantiateStreaming(fetch('/assets/vendor/webssh.wasm'), go.importObject);
      go.run(instance); // runs until the page goes; main sets patchbayWebSSH first
      if (!globalThis.patchbayWebSSH) throw new Error('the SSH client did not start');
      return globalThis.patchbayWebSSH;
    })();
    client.catch(() => { client = null; });
  }
  return client;
}

// stylesheet adds <link rel=stylesheet> for href once per page.
export function stylesheet(href) {
  if (!document.querySelector(`link[href="${href}"]`)) document.head.append(el('link', { rel: 'stylesheet', href }));
}

// refusal describes a final status other than approved, and who decided.
export function refusal(st) {
  const c = st.consent || {};
  const by = c.by ? ` by ${c.by}${c.backend ? ` (${c.mode} via ${c.backend})` : ''}` : '';
  if (st.state === 'denied') return `The session was refused${by}: ${st.message || 'no reason given'}`;
  return `The session could not start: ${st.message || 'no reason given'}`;
}

// refuseWithoutTechnician shows, on a session screen (section id, heading
// title), that its sessions need the technician role, and is true, when the
// user lacks it.
export function refuseWithoutTechnician(main, id, title) {
  if (api.can('technician')) return false;
  main.append(el('section', { class: 'card', id }, el('h1', {}, title),
    el('p', { class: 'error' }, `${title} sessions need the technician role.`)));
  return true;
}

// reasonInput is a session screen's Reason field.
export function reasonInput(id) {
  return el('input', { id, size: 60, maxlength: 1024, required: true,
    placeholder: 'why (the user at the machine is shown it; kept in the audit log)' });
}

// onConnect handles a session screen's connect form: on submit it asks for
// a reason (the user at the machine is shown it), disables inputs while
// connect(reason) runs and, if that fails, shows why on line and enables
// them again.
export function onConnect(form, reason, inputs, line, connect) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const why = reason.value.trim();
    if (!why) { line.show('idle', 'A reason is required: the user at the machine is shown it.'); reason.focus(); return; }
    for (const i of inputs) i.disabled = true;
    try {
      await connect(why);
    } catch (err) {
      line.show('failed', err.message);
      for (const i of inputs) i.disabled = false;
    }
  });
}

// statusLine is a screen's status paragraph (data-state: idle, starting,
// connecting, waiting, approved, denied, failed, ended) and its countdown
// to the consent deadline.
export function statusLine(statusID, countdownID) {
  const status = el('p', { id: statusID, role: 'status', dataset: { state: 'idle' } });
  const countdown = el('span', { id: countdownID });
  let tick = 0;
  const line = {
    status, countdown,
    show(state, text) {
      status.dataset.state = state;
      status.textContent = text;
      status.className = state === 'denied' || state === 'failed' ? 'error' : '';
    },
    stopCountdown() { clearInterval(tick); tick = 0; countdown.textContent = ''; },
    startCountdown(st) {
      line.stopCountdown();
      if (st.seconds_left === undefined || st.seconds_left === null) return;
      const end = Date.now() + st.seconds_left * 1000;
      const draw = () => {
        const left = Math.max(0, Math.round((end - Date.now()) / 1000));
        countdown.textContent = `${left} s left to answer`;
        countdown.dataset.secondsLeft = String(left);
      };
      draw();
      tick = setInterval(draw, 1000);
    },
  };
  return line;
}

// openSession gets a certificate for the client's key, asks the relay for a
// session to agent with capabilities and reason, and shows its progress on
// line. Once approved it calls start(ssh, base, status): start opens the SSH
// side with ssh.connect or ssh.desktop, giving them base (certificate,
// knownHosts, agentID, send, closed) and its own options, and returns the
// client's handle. closed(message) is called once when the SSH side ends.
// The result has close(message), which ends the session from this side; it
// is null when gone() says the screen went while the client was loading.
export async function openSession({ agent, reason, capabilities, line, start, closed, gone }) {
  line.show('starting', 'Starting the SSH client…');
  const ssh = await loadClient();
  const cert = await (await api.request('POST', '/v1/ssh/certificate', { public_key: ssh.publicKey(), ttl: CERT_TTL })).json();
  if (gone()) return null;
  const q = new URLSearchParams({ reason, capabilities });
  const ws = new WebSocket(`wss://${location.host}/v1/agents/${encodeURIComponent(agent)}/session?${q}`, SUBPROTOCOL);
  ws.binaryType = 'arraybuffer';
  line.show('connecting', 'Asking the agent…');
  let handle = null;
  let final = false;
  const base = (st) => ({
    certificate: cert.certificate, knownHosts: cert.known_hosts, agentID: st.agent_id,
    send: (b) => { if (ws.readyState === WebSocket.OPEN) ws.send(b); },
    closed: (msg) => { closed(msg); ws.close(); },
  });
  ws.onmessage = (m) => {
    if (typeof m.data !== 'string') {
      if (handle) handle.receive(new Uint8Array(m.data));
      return;
    }
    const st = JSON.parse(m.data);
    if (st.state === 'waiting') {
      line.show('waiting', st.asking ? `Waiting for ${st.asking} to answer…` : 'Waiting for the endpoint to decide…');
      line.startCountdown(st);
    } else if (st.state === 'approved') {
      final = true;
      line.stopCountdown();
      const by = st.consent && st.consent.by ? ` by ${st.consent.by}` : '';
      line.show('approved', `Connected to ${st.hostname || st.agent_id} (approved${by}; session ${st.session_id}).`);
      line.status.dataset.session = st.session_id;
      handle = start(ssh, base(st), st);
    } else {
      final = true;
      line.stopCountdown();
      line.show(st.state === 'denied' ? 'denied' : 'failed', refusal(st));
    }
  };
  ws.onclose = (e) => {
    line.stopCountdown();
    const why = e.reason || (e.code === 1000 ? '' : `connection lost (${e.code})`);
    if (handle) handle.close(why ? `The ${why}` : 'The session ended.');
    else if (!final) line.show('failed', `The relay closed the connection${why ? `: ${why}` : ''}.`);
  };
  return {
    close(msg) {
      ws.close();
      if (handle) handle.close(msg);
    },
  };
}
