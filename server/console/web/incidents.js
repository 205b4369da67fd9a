// Incidents: the incidents of the caller's sites (GET /v1/incidents),
// newest first, filtered by state, refreshed every few seconds. Each row
// shows its ticket, site, agents and title; the known fixes an incident
// matches are in `patchbay incidents show` and GET /v1/incidents/{id}.
import * as api from './api.js';
import { el, ago, grid } from './dom.js';

const STATES = ['open', 'resolved'];

export function incidentTable(list) {
  const rows = list.map((x) => el('tr', { dataset: { id: x.id, state: x.state } },
    el('td', {}, el('span', { class: `severity ${x.severity}` }, x.severity)),
    el('td', {}, el('span', { class: `state ${x.state === 'resolved' ? 'offline' : 'online'}` }, x.state)),
    el('td', {}, x.ticket || ''),
    el('td', { class: 'site' }, x.site || ''),
    el('td', {}, ...(x.agents || []).map((id, i) => el('a', { href: `#/agent/${id}` }, (x.hostnames && x.hostnames[i]) || id))),
    el('td', {}, x.title, x.resolution ? el('div', { class: 'muted' }, `fixed: ${x.resolution}`) : null),
    el('td', { title: x.created_at }, ago(x.created_at)),
    el('td', {}, x.created_by || '')));
  return grid(['Severity', 'State', 'Ticket', 'Site', 'Agents', 'Title', 'Opened', 'By'], rows, 'No incidents.', { class: 'incidents' });
}

export function mount(main, params) {
  let closed = false;
  let timer = 0;
  const state = el('select', { id: 'incident-state', 'aria-label': 'State', onchange: () => refresh() },
    el('option', { value: '' }, 'Every state'), ...STATES.map((s) => el('option', { value: s }, s)));
  state.value = STATES.includes(params && params.get && params.get('state')) ? params.get('state') : '';
  const box = el('div', { id: 'incidents' });
  const error = el('p', { class: 'error', role: 'alert', hidden: true });
  main.append(el('section', { id: 'incidents-screen' }, el('h1', {}, 'Incidents'), el('div', { class: 'toolbar' }, state), error, box));

  async function refresh() {
    clearTimeout(timer);
    try {
      const q = state.value ? `?state=${encodeURIComponent(state.value)}` : '';
      const out = await api.getJSON(`/v1/incidents${q}`);
      if (closed) return;
      box.replaceChildren(incidentTable(out.incidents || []));
      box.dataset.loaded = 'true';
      error.hidden = true;
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
