// Terminal: an SSH session to one agent in the browser (#/terminal?agent=ID).
// The SSH client is our Go code compiled to WebAssembly (vendor/webssh.wasm,
// cmd/patchbay-webssh): it makes the key pair, whose private half never
// leaves it; the relay's user CA certifies the public half for the
// logged-in technician (POST /v1/ssh/certificate, the API patchbay login
// uses), and the client checks the agent's host certificate against the
// relay's host CA. The websocket is the session endpoint patchbay ssh uses:
// text messages are the relay's status (waiting, approved, denied, failed),
// binary messages SSH bytes, which this module only carries between the
// socket and the wasm client. xterm.js renders the terminal.
import * as api from './api.js';
import { el } from './dom.js';

const CERT_TTL = '1h'; // the browser's certificate: one sitting
const SUBPROTOCOL = 'patchbay.session.v1';

let wasm = null; // a promise of {ssh: patchbayWebSSH, Terminal, FitAddon}, loaded once per page

// load fetches what make web builds into vendor/ (xterm.js, the wasm SSH
// client) when a terminal is first opened.
function load() {
  if (!wasm) {
    wasm = (async () => {
      if (!document.querySelector('link[data-terminal]')) {
        document.head.append(el('link', { rel: 'stylesheet', href: '/assets/vendor/xterm.css', dataset: { terminal: '' } }),
          el('link', { rel: 'stylesheet', href: '/assets/terminal.css', dataset: { terminal: '' } }));
      }
      const [{ Terminal }, { FitAddon }] = await Promise.all([import('./vendor/xterm.mjs'), import('./vendor/addon-fit.mjs')]);
      await import('./vendor/wasm_exec.js'); // sets globalThis.Go
      const go = new globalThis.Go();
      const { instance } = await WebAssembly.instantiateStreaming(fetch('/assets/vendor/webssh.wasm'), go.importObject);
      go.run(instance); // runs until the page goes; main sets patchbayWebSSH first
      if (!globalThis.patchbayWebSSH) throw new Error('the SSH client did not start');
      return { ssh: globalThis.patchbayWebSSH, Terminal, FitAddon };
    })();
    wasm.catch(() => { wasm = null; });
  }
  return wasm;
}

// adoptStyles applies the <style> elements xterm.js adds to its element
// (the page's CSP blocks inline <style>) as constructed style sheets.
function adoptStyles(root) {
  const base = [...document.adoptedStyleSheets];
  const sync = () => {
    const sheets = [...root.querySelectorAll('style')].map((s) => {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(s.textContent);
      return sheet;
    });
    document.adoptedStyleSheets = [...base, ...sheets];
  };
  const obs = new MutationObserver(sync);
  obs.observe(root, { childList: true, subtree: true, characterData: true });
  sync();
  return () => { obs.disconnect(); document.adoptedStyleSheets = base; };
}

// refusal describes a final status other than approved, and who decided.
function refusal(st) {
  const c = st.consent || {};
  const by = c.by ? ` by ${c.by}${c.backend ? ` (${c.mode} via ${c.backend})` : ''}` : '';
  if (st.state === 'denied') return `The session was refused${by}: ${st.message || 'no reason given'}`;
  return `The session could not start: ${st.message || 'no reason given'}`;
}

export function mount(main, params) {
  const agent = params.get('agent') || '';
  if (!api.can('technician')) {
    main.append(el('section', { class: 'card', id: 'terminal-screen' }, el('h1', {}, 'Terminal'),
      el('p', { class: 'error' }, 'Terminal sessions need the technician role.')));
    return () => {};
  }
  const reason = el('input', { id: 'term-reason', size: 60, maxlength: 1024, required: true,
    placeholder: 'why (the user at the machine is shown it; kept in the audit log)' });
  const submit = el('button', { type: 'submit', id: 'term-connect' }, 'Connect');
  const status = el('p', { id: 'term-status', role: 'status', dataset: { state: 'idle' } });
  const countdown = el('span', { id: 'term-countdown' });
  const box = el('div', { id: 'terminal', class: 'terminal', hidden: true });
  const form = el('form', { id: 'term-form', class: 'card form', novalidate: true },
    el('h1', {}, 'Terminal on ', el('code', {}, params.get('name') || agent)),
    el('label', { class: 'field' }, el('span', { class: 'label' }, 'Reason *'), reason),
    el('div', { class: 'toolbar' }, submit));
  main.append(el('section', { id: 'terminal-screen' }, form, el('div', { class: 'card' }, status, countdown), box));

  let ws = null;
  let ssh = null;
  let term = null;
  let unstyle = () => {};
  let tick = 0;
  let gone = false;
  const onWindowResize = () => { if (term) term.fit.fit(); };

  function show(state, text) {
    status.dataset.state = state;
    status.textContent = text;
    status.className = state === 'denied' || state === 'failed' ? 'error' : '';
  }
  function stopCountdown() { clearInterval(tick); tick = 0; countdown.textContent = ''; }
  function startCountdown(st) {
    stopCountdown();
    if (st.seconds_left === undefined || st.seconds_left === null) return;
    const end = Date.now() + st.seconds_left * 1000;
    const draw = () => {
      const left = Math.max(0, Math.round((end - Date.now()) / 1000));
      countdown.textContent = `${left} s left to answer`;
      countdown.dataset.secondsLeft = String(left);
    };
    draw();
    tick = setInterval(draw, 1000);
  }

  function openTerminal({ ssh: sshAPI, Terminal, FitAddon }, cert, st) {
    box.hidden = false;
    const t = new Terminal({ cursorBlink: true, convertEol: false, fontFamily: 'monospace', fontSize: 14 });
    const fit = new FitAddon();
    t.loadAddon(fit);
    t.open(box);
    unstyle = adoptStyles(box);
    fit.fit();
    term = { t, fit };
    ssh = sshAPI.connect({
      certificate: cert.certificate, knownHosts: cert.known_hosts, agentID: st.agent_id,
      cols: t.cols, rows: t.rows,
      send: (b) => { if (ws && ws.readyState === WebSocket.OPEN) ws.send(b); },
      output: (b) => t.write(b),
      closed: (msg) => {
        show('ended', msg);
        box.dataset.state = 'ended';
        if (ws) ws.close();
      },
    });
    t.onData((d) => ssh.input(d));
    t.onResize(({ cols, rows }) => ssh.resize(cols, rows));
    window.addEventListener('resize', onWindowResize);
    box.dataset.state = 'open';
    t.focus();
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const why = reason.value.trim();
    if (!why) { show('idle', 'A reason is required: the user at the machine is shown it.'); reason.focus(); return; }
    submit.disabled = true;
    reason.disabled = true;
    try {
      show('starting', 'Starting the SSH client…');
      const client = await load();
      const cert = await (await api.request('POST', '/v1/ssh/certificate', { public_key: client.ssh.publicKey(), ttl: CERT_TTL })).json();
      if (gone) return;
      const q = new URLSearchParams({ reason: why, capabilities: 'shell' });
      ws = new WebSocket(`wss://${location.host}/v1/agents/${encodeURIComponent(agent)}/session?${q}`, SUBPROTOCOL);
      ws.binaryType = 'arraybuffer';
      show('connecting', 'Asking the agent…');
      let final = false;
      ws.onmessage = (m) => {
        if (typeof m.data !== 'string') {
          if (ssh) ssh.receive(new Uint8Array(m.data));
          return;
        }
        const st = JSON.parse(m.data);
        if (st.state === 'waiting') {
          show('waiting', st.asking ? `Waiting for ${st.asking} to answer…` : 'Waiting for the endpoint to decide…');
          startCountdown(st);
        } else if (st.state === 'approved') {
          final = true;
          stopCountdown();
          const by = st.consent && st.consent.by ? ` by ${st.consent.by}` : '';
          show('approved', `Connected to ${st.hostname || st.agent_id} (approved${by}; session ${st.session_id}).`);
          status.dataset.session = st.session_id;
          openTerminal(client, cert, st);
        } else {
          final = true;
          stopCountdown();
          show(st.state === 'denied' ? 'denied' : 'failed', refusal(st));
        }
      };
      ws.onclose = (e) => {
        stopCountdown();
        const why = e.reason || (e.code === 1000 ? '' : `connection lost (${e.code})`);
        if (ssh) ssh.close(why ? `The ${why}` : 'The session ended.');
        else if (!final) show('failed', `The relay closed the connection${why ? `: ${why}` : ''}.`);
        ws = null;
      };
    } catch (err) {
      show('failed', err.message);
      submit.disabled = false;
      reason.disabled = false;
    }
  });
  reason.focus();

  return () => {
    gone = true;
    stopCountdown();
    window.removeEventListener('resize', onWindowResize);
    if (ws) ws.close();
    if (ssh) ssh.close('You left the terminal.');
    if (term) term.t.dispose();
    unstyle();
  };
}
