// Agent: one agent's facts, site and tags, its checks and inventory
// (inventory.js), its newest runs and sessions, the Terminal, Desktop and Run a fix buttons (technician and up)
// and, for admins, "Move to site…".
import * as api from './api.js';
import { el, ago } from './dom.js';
import { sessionTable } from './sessions.js';
import * as sites from './sites.js';
import * as inventory from './inventory.js';

function facts(a) {
  const rows = [
    ['ID', el('code', {}, a.id)], ['Site', el('span', { id: 'agent-site', dataset: { siteId: a.site_id || '' } }, a.site || '')], ['State', a.revoked ? `revoked ${ago(a.revoked_at)}` : a.online ? 'online' : `offline, last seen ${ago(a.last_seen)}`],
    ['OS', [a.os, a.arch, a.os_version].filter(Boolean).join(' · ')], ['Agent version', a.version],
    ['Users', (a.users || []).join(', ')], ['Addresses', (a.ips || []).join(', ')],
    ['Enrolled', a.enrolled_at ? new Date(a.enrolled_at).toLocaleString() : ''],
    ['First seen', a.first_seen ? new Date(a.first_seen).toLocaleString() : 'never'],
    ['Tags', Object.entries(a.tags || {}).sort().map(([k, v]) => el('span', { class: 'tag' }, `${k}=${v}`,
      a.scoped_tags && a.scoped_tags[k] === v ? ' (token)' : ''))],
  ];
  return el('dl', { class: 'facts', id: 'agent-facts' }, rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

// moveControl is an admin's "Move to site…": a button that opens a form
// (the other sites, Move, Cancel); onMoved(agent) gets the moved agent.
function moveControl(a, onMoved) {
  const open = el('button', { type: 'button', id: 'agent-move-open', dataset: { action: 'move' } }, 'Move to site…');
  const select = el('select', { id: 'agent-move-site', 'aria-label': 'New site' }, el('option', { value: '' }, 'Loading the sites…'));
  const submit = el('button', { type: 'submit', id: 'agent-move-submit', disabled: true }, 'Move');
  const cancel = el('button', { type: 'button', id: 'agent-move-cancel' }, 'Cancel');
  const result = el('span', { id: 'agent-move-result', role: 'status' });
  const form = el('form', { id: 'agent-move', class: 'toolbar', hidden: true },
    el('label', {}, `Move ${a.hostname || a.id} to `, select), submit, cancel, result);
  let current = a;
  open.addEventListener('click', async () => {
    open.hidden = true;
    form.hidden = false;
    result.textContent = '';
    result.className = '';
    try {
      const list = (await sites.listSites()).filter((s) => s.id !== current.site_id);
      select.replaceChildren(el('option', { value: '' }, list.length ? 'Choose a site…' : 'No other site: patchbay sites create'),
        ...list.map((s) => el('option', { value: s.id }, s.full_name)));
      form.dataset.loaded = 'true';
    } catch (err) {
      select.replaceChildren(el('option', { value: '' }, 'The sites could not be read'));
      result.className = 'error';
      result.textContent = err.message;
    }
  });
  select.addEventListener('change', () => { submit.disabled = !select.value; });
  cancel.addEventListener('click', () => { form.hidden = true; open.hidden = false; });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!select.value) return;
    submit.disabled = true;
    result.className = '';
    result.textContent = 'Moving…';
    try {
      current = await (await api.request('POST', `/v1/agents/${encodeURIComponent(current.id)}/site`, { site: select.value })).json();
      form.hidden = true;
      open.hidden = false;
      result.textContent = '';
      onMoved(current, `Moved to ${current.site}.`);
    } catch (err) {
      result.className = 'error';
      result.textContent = err.message;
      submit.disabled = false;
    }
  });
  return { open, form };
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
    let shown = facts(a);
    const moved = el('p', { class: 'ok', id: 'agent-moved', role: 'status', hidden: true });
    const move = api.can('admin') ? moveControl(a, (b, msg) => {
      const f = facts(b);
      shown.replaceWith(f);
      shown = f;
      moved.textContent = msg;
      moved.hidden = false;
    }) : null;
    screen.replaceChildren(
      el('div', { class: 'toolbar' }, el('h1', {}, a.hostname || a.id), el('span', { class: 'spacer' }),
        tech ? el('a', { class: 'button', href: `#/terminal?${new URLSearchParams({ agent: a.id, name: a.hostname || a.id })}`, dataset: { action: 'terminal' } }, 'Terminal') : null,
        tech ? el('a', { class: 'button', href: `#/desktop?${new URLSearchParams({ agent: a.id, name: a.hostname || a.id })}`, dataset: { action: 'desktop' } }, 'Desktop') : null,
        tech ? el('a', { class: 'button', href: `#/run?target=${encodeURIComponent(`id=${a.id}`)}`, dataset: { action: 'run' } }, 'Run a fix…') : null,
        move ? move.open : null),
      move ? move.form : null, moved, error, shown,
      inventory.section(a),
      el('h2', {}, 'Recent jobs'),
      el('table', { class: 'grid' }, el('thead', {}, el('tr', {}, ['Fix', 'State', 'Result', 'By', 'When'].map((h) => el('th', {}, h)))),
        el('tbody', { id: 'agent-runs' }, runRows(runs))),
      el('h2', {}, 'Recent sessions'),
      sessionTable(sessions, () => { location.hash = '#/sessions'; }));
    screen.dataset.loaded = 'true';
  }).catch((err) => { error.textContent = err.message; error.hidden = false; });
  return () => { closed = true; };
}
