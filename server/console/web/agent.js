// Agent: one agent's inventory and tags, its newest runs and sessions, and
// the Terminal, Desktop and Run a fix buttons (technician and up).
import * as api from './api.js';
import { el, ago } from './dom.js';
import { sessionTable } from './sessions.js';

function facts(a) {
  const rows = [
    ['ID', el('code', {}, a.id)], ['State', a.revoked ? `revoked ${ago(a.revoked_at)}` : a.online ? 'online' : `offline, last seen ${ago(a.last_seen)}`],
    ['OS', [a.os, a.arch, a.os_version].filter(Boolean).join(' · ')], ['Agent version', a.version],
    ['Users', (a.users || []).join(', ')], ['Addresses', (a.ips || []).join(', ')],
    ['Enrolled', a.enrolled_at ? new Date(a.enrolled_at).toLocaleString() : ''],
    ['First seen', a.first_seen ? new Date(a.first_seen).toLocaleString() : 'never'],
    ['Tags', Object.entries(a.tags || {}).sort().map(([k, v]) => el('span', { class: 'tag' }, `${k}=${v}`,
      a.scoped_tags && a.scoped_tags[k] === v ? ' (token)' : ''))],
  ];
  return el('dl', { class: 'facts', id: 'agent-facts' }, rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

function runRows(runs) {
  if (!runs.length) return [el('tr', { class: 'empty' }, el('td', { colspan: 5 }, 'No runs yet.'))];
  return runs.map((r) => el('tr', { dataset: { job: r.job_id } },
    el('td', {}, el('a', { href: `#/job/${r.job_id}` }, `${r.script || r.plugin}${r.dry_run ? ' (dry run)' : ''}`)),
    el('td', {}, el('span', { class: `run ${r.state}` }, r.state)), el('td', {}, r.summary, r.error ? el('div', { class: 'error' }, r.error) : null),
    el('td', {}, r.created_by), el('td', { title: r.created_at }, ago(r.created_at))));
}

export function mount(main, params) {
  const id = params.get('id') || '';
  let closed = false;
  const error = el('p', { class: 'error', role: 'alert', hidden: true });
  const screen = el('section', { id: 'agent-screen' }, el('p', { class: 'muted' }, 'Loading…'), error);
  main.append(screen);
  const enc = encodeURIComponent(id);
  Promise.all([api.getJSON(`/v1/agents/${enc}`), api.getJSON(`/v1/agents/${enc}/runs?limit=20`),
    api.getJSON(`/v1/sessions?agent=${enc}&limit=20`)]).then(([a, runs, sessions]) => {
    if (closed) return;
    const tech = api.can('technician') && !a.revoked;
    screen.replaceChildren(
      el('div', { class: 'toolbar' }, el('h1', {}, a.hostname || a.id), el('span', { class: 'spacer' }),
        tech ? el('a', { class: 'button', href: `#/terminal?${new URLSearchParams({ agent: a.id, name: a.hostname || a.id })}`, dataset: { action: 'terminal' } }, 'Terminal') : null,
        tech ? el('a', { class: 'button', href: `#/desktop?${new URLSearchParams({ agent: a.id, name: a.hostname || a.id })}`, dataset: { action: 'desktop' } }, 'Desktop') : null,
        tech ? el('a', { class: 'button', href: `#/run?target=${encodeURIComponent(`id=${a.id}`)}`, dataset: { action: 'run' } }, 'Run a fix…') : null),
      error, facts(a),
      el('h2', {}, 'Recent jobs'),
      el('table', { class: 'grid' }, el('thead', {}, el('tr', {}, ['Fix', 'State', 'Result', 'By', 'When'].map((h) => el('th', {}, h)))),
        el('tbody', { id: 'agent-runs' }, runRows(runs))),
      el('h2', {}, 'Recent sessions'),
      sessionTable(sessions, () => { location.hash = '#/sessions'; }));
    screen.dataset.loaded = 'true';
  }).catch((err) => { error.textContent = err.message; error.hidden = false; });
  return () => { closed = true; };
}
