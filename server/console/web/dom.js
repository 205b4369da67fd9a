import * as api from './api.js';

// el builds an element: el('td', {class: 'x', dataset: {id}}, child, ...).
// Children are nodes or strings (always text: data never becomes markup).
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// ago describes a time relative to now: "just now", "5 min ago", "3 d ago".
export function ago(iso, now = Date.now()) {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 10) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// grid builds a table.grid: its headers, its rows (tr elements, or none:
// then one row saying empty) and the tbody's attributes.
export function grid(headers, rows, empty, tbody = {}) {
  const body = rows.length ? rows : [el('tr', { class: 'empty' }, el('td', { colspan: headers.length }, empty))];
  return el('table', { class: 'grid' },
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', {}, h)))),
    el('tbody', tbody, body));
}

// errorLine is a hidden error paragraph; show(err) shows err's message
// (and hides the line for null).
export function errorLine(attrs = {}) {
  const p = el('p', { class: 'error', role: 'alert', hidden: true, ...attrs });
  p.show = (err) => { p.textContent = err ? err.message : ''; p.hidden = !err; };
  return p;
}

// poller calls load() now and every ms after it settles, until stop();
// load's errors go to fail. refresh() loads again at once.
export function poller(load, fail, ms = 5000) {
  let timer = 0;
  let stopped = false;
  async function refresh() {
    clearTimeout(timer);
    try {
      await load();
      if (!stopped) fail(null);
    } catch (err) {
      if (!stopped) fail(err);
    }
    if (!stopped) timer = setTimeout(refresh, ms);
  }
  refresh();
  return { refresh, stop: () => { stopped = true; clearTimeout(timer); }, stopped: () => stopped };
}

// confirmButton is a button that asks in place ("Delete X? Yes No") before
// doing action; errors of action are shown by fail.
export function confirmButton(label, question, action, attrs = {}) {
  const box = el('span', { class: 'confirm' });
  const ask = el('button', { type: 'button', ...attrs }, label);
  const yes = el('button', { type: 'button', class: 'danger', dataset: { confirm: 'yes' } }, 'Yes');
  const no = el('button', { type: 'button', dataset: { confirm: 'no' } }, 'No');
  const q = el('span', { class: 'confirm-question', hidden: true }, question, ' ', yes, ' ', no);
  ask.addEventListener('click', () => { ask.hidden = true; q.hidden = false; });
  no.addEventListener('click', () => { ask.hidden = false; q.hidden = true; });
  yes.addEventListener('click', () => { yes.disabled = true; action(); });
  box.append(ask, q);
  return box;
}

// jsonForm makes form send what body() returns to the relay (method, path)
// on submit: the relay's error is shown in the form's error line, and
// done(answer) is called on success. body may throw to refuse the input.
export function jsonForm(form, method, path, body, done) {
  const error = errorLine({ dataset: { formError: form.id } });
  const submit = form.querySelector('button[type=submit]');
  form.append(error);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.show(null);
    if (submit) submit.disabled = true;
    try {
      const resp = await api.request(method, path, body());
      done(resp.status === 204 ? null : await resp.json());
    } catch (err) {
      error.show(err);
    } finally {
      if (submit) submit.disabled = false;
    }
  });
  return form;
}

// field is a labelled form field: label, input, hint.
export function field(label, input, hint) {
  return el('label', { class: 'field' }, el('span', { class: 'label' }, label), input, hint ? el('span', { class: 'hint' }, hint) : null);
}

// pairs reads "name=value" lines into an object (undefined when empty);
// a line without '=' throws naming it.
export function pairs(text, what) {
  const out = {};
  for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const i = line.indexOf('=');
    if (i < 1) throw new Error(`${what}: "${line}": want name=value, one a line`);
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return Object.keys(out).length ? out : undefined;
}

// kv shows an object as "a=1 b=2" tags.
export function kv(obj) {
  return Object.entries(obj || {}).sort().map(([k, v]) => el('span', { class: 'tag' }, `${k}=${v}`));
}

// changer returns change(method, path): one change asked of the relay,
// its error shown in errLine, then after() (which shows the lists again).
export function changer(errLine, after) {
  return async (method, path) => {
    try {
      await api.request(method, path);
      errLine.show(null);
    } catch (err) {
      errLine.show(err);
    }
    after();
  };
}
