// Alerts: the alerts of the caller's sites (GET /v1/alerts), newest first,
// filtered by state, refreshed every few seconds; Acknowledge and Resolve
// for technicians (with a note, kept in the audit log).
import * as api from './api.js';
import { el, ago, grid } from './dom.js';

const STATES = ['open', 'acknowledged', 'resolved'];

export function alertTable(list, onChange) {
  const mayChange = api.can('technician');
  const rows = list.map((a) => el('tr', { dataset: { id: a.id, state: a.state, kind: a.kind } },
    el('td', {}, el('span', { class: `severity ${a.severity}` }, a.severity)),
    el('td', {}, el('span', { class: `state ${a.state === 'resolved' ? 'offline' : 'online'}` }, a.state)),
    el('td', {}, a.kind),
    el('td', {}, a.agent_id ? el('a', { href: `#/agent/${a.agent_id}` }, a.hostname || a.agent_id)
      : (a.kind === 'job_halted' && a.check ? el('a', { href: `#/job/${a.check}` }, `job ${a.check.slice(0, 8)}`) : '')),
    el('td', { class: 'site' }, a.site || ''),
    el('td', {}, a.summary, a.note ? el('div', { class: 'muted' }, `note: ${a.note}`) : null),
    el('td', {}, String(a.count)),
    el('td', { title: a.last_seen }, ago(a.last_seen)),
    el('td', { class: 'actions' },
      mayChange && a.state === 'open' ? el('button', { type: 'button', dataset: { action: 'ack' }, onclick: () => onChange(a, 'ack') }, 'Acknowledge') : null,
      mayChange && a.state !== 'resolved' ? el('button', { type: 'button', dataset: { action: 'resolve' }, onclick: () => onChange(a, 'resolve') }, 'Resolve') : null)));
  return grid(['Severity', 'State', 'Kind', 'About', 'Site', 'Summary', 'Count', 'Last seen', ''], rows, 'No alerts.', { class: 'alerts' });
}

export function mount(main, params) {
  let closed = false;
  let timer = 0;
  const state = el('select', { id: 'alert-state', 'aria-label': 'State', onchange: () => refresh() },
    el('option', { value: '' }, 'Every state'), ...STATES.map((s) => el('option', { value: s }, s)));
  state.value = STATES.includes(params && params.get && params.get('state')) ? params.get('state') : '';
  const box = el('div', { id: 'alerts' });
  const error = el('p', { class: 'error', role: 'alert', hidden: true });
  main.append(el('section', { id: 'alerts-screen' }, el('h1', {}, 'Alerts'), el('div', { class: 'toolbar' }, state), error, box));

  async function change(a, verb) {
    const note = window.prompt(`${verb === 'ack' ? 'Acknowledge' : 'Resolve'} "${a.summary}"? Note (kept in the audit log):`, '');
    if (note === null) return;
    try {
      await api.request('POST', `/v1/alerts/${a.id}/${verb}`, { note });
      error.hidden = true;
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
    refresh();
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const q = state.value ? `?state=${encodeURIComponent(state.value)}` : '';
      const out = await api.getJSON(`/v1/alerts${q}`);
      if (closed) return;
      box.replaceChildren(alertTable(out.alerts || [], change));
      box.dataset.loaded = 'true';
    } catch (err) {
      if (closed) return;
      error.textContent = err.message;
      error.hidden = false;
    }
    timer = setTimeout(refresh, 5000);
  }
  refresh();
  return () => { closed = true; clearTimeout(timer); };
}
