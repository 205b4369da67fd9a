// Terminal: an SSH session to one agent in the browser (#/terminal?agent=ID).
// session.js runs the SSH client (our Go code in WebAssembly) over the
// session websocket, with the consent countdown; xterm.js renders the
// terminal.
import { el } from './dom.js';
import { onConnect, openSession, reasonInput, refuseWithoutTechnician, statusLine, stylesheet } from './session.js';

let xterm = null; // a promise of {Terminal, FitAddon}, loaded once per page

// load fetches xterm.js (make web copies it into vendor/) when a terminal is
// first opened.
function load() {
  if (!xterm) {
    stylesheet('/assets/vendor/xterm.css');
    stylesheet('/assets/terminal.css');
    xterm = Promise.all([import('./vendor/xterm.mjs'), import('./vendor/addon-fit.mjs')])
      .then(([{ Terminal }, { FitAddon }]) => ({ Terminal, FitAddon }));
    xterm.catch(() => { xterm = null; });
  }
  return xterm;
}

// adoptStyles applies the <style> elements xterm.js adds to its element
// (the page's CSP blocks inline <style>) as constructed style sheets. It
// reacts only to changes of those <style> elements: xterm.js rewrites rows
// on every keystroke, and re-adopting the sheets each time made the browser
// recompute the whole page's styles after every key.
function adoptStyles(root) {
  const base = [...document.adoptedStyleSheets];
  let sheets = new Map(); // <style> element -> {text, sheet}
  const sync = () => {
    const next = new Map();
    let changed = false;
    for (const s of root.querySelectorAll('style')) {
      const prev = sheets.get(s);
      if (prev && prev.text === s.textContent) {
        next.set(s, prev);
        continue;
      }
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(s.textContent);
      next.set(s, { text: s.textContent, sheet });
      changed = true;
    }
    if (changed || next.size !== sheets.size) {
      document.adoptedStyleSheets = [...base, ...[...next.values()].map((v) => v.sheet)];
    }
    sheets = next;
  };
  const isStyle = (n) => n && (n.nodeName === 'STYLE' || (n.parentNode && n.parentNode.nodeName === 'STYLE'));
  const obs = new MutationObserver((muts) => {
    if (muts.some((m) => isStyle(m.target) || [...m.addedNodes].some(isStyle) || [...m.removedNodes].some(isStyle))) sync();
  });
  obs.observe(root, { childList: true, subtree: true, characterData: true });
  sync();
  return () => { obs.disconnect(); document.adoptedStyleSheets = base; };
}

export function mount(main, params) {
  const agent = params.get('agent') || '';
  if (refuseWithoutTechnician(main, 'terminal-screen', 'Terminal')) return () => {};
  const reason = reasonInput('term-reason');
  const submit = el('button', { type: 'submit', id: 'term-connect' }, 'Connect');
  const line = statusLine('term-status', 'term-countdown');
  const box = el('div', { id: 'terminal', class: 'terminal', hidden: true });
  const form = el('form', { id: 'term-form', class: 'card form', novalidate: true },
    el('h1', {}, 'Terminal on ', el('code', {}, params.get('name') || agent)),
    el('label', { class: 'field' }, el('span', { class: 'label' }, 'Reason *'), reason),
    el('div', { class: 'toolbar' }, submit));
  main.append(el('section', { id: 'terminal-screen' }, form, el('div', { class: 'card' }, line.status, line.countdown), box));

  let sess = null;
  let ssh = null;
  let term = null;
  let unstyle = () => {};
  let gone = false;
  const onWindowResize = () => { if (term) term.fit.fit(); };

  function openTerminal({ Terminal, FitAddon }, client, base) {
    box.hidden = false;
    const t = new Terminal({ cursorBlink: true, convertEol: false, fontFamily: 'monospace', fontSize: 14 });
    const fit = new FitAddon();
    t.loadAddon(fit);
    t.open(box);
    unstyle = adoptStyles(box);
    fit.fit();
    term = { t, fit };
    ssh = client.connect({ ...base, cols: t.cols, rows: t.rows, output: (b) => t.write(b) });
    t.onData((d) => ssh.input(d));
    t.onResize(({ cols, rows }) => ssh.resize(cols, rows));
    window.addEventListener('resize', onWindowResize);
    box.dataset.state = 'open';
    t.focus();
    return ssh;
  }

  onConnect(form, reason, [submit, reason], line, async (why) => {
    line.show('starting', 'Starting the SSH client…');
    const lib = await load();
    sess = await openSession({
      agent, reason: why, capabilities: 'shell', line, gone: () => gone,
      start: (client, base) => openTerminal(lib, client, base),
      closed: (msg) => {
        line.show('ended', msg);
        box.dataset.state = 'ended';
      },
    });
  });
  reason.focus();

  return () => {
    gone = true;
    line.stopCountdown();
    window.removeEventListener('resize', onWindowResize);
    if (sess) sess.close('You left the terminal.');
    if (term) term.t.dispose();
    unstyle();
  };
}
