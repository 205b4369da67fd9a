// Known fixes: the team's knowledge base (GET /v1/known-fixes?q=), each a
// symptom (a check, an error text pattern) and the plugin or script that
// fixed it. Technicians are offered each fix on the Run a fix screen,
// filled in, and see the fixes the relay offers for the open alerts; they
// add and delete entries (audited by the relay).
import * as api from './api.js';
import { el, grid, errorLine, poller, confirmButton, jsonForm, field, pairs, kv, changer } from './dom.js';

// runLink opens Run a fix with fix k's plugin and parameters filled in,
// on target (a selector) when given.
export function runLink(k, target) {
  const q = new URLSearchParams();
  const script = k.plugin.startsWith('script:');
  q.set('plugin', script ? k.plugin : `plugin:${k.plugin}`);
  if (target) q.set('target', target);
  for (const [n, v] of Object.entries(k.params || {})) q.set(`param.${n}`, v);
  return el('a', { class: 'button', href: `#/run?${q}`, dataset: { action: 'offer' } }, 'Run this fix…');
}

function fixRows(list, remove) {
  const tech = api.can('technician');
  return list.map((k) => el('tr', { dataset: { id: k.id, name: k.name } },
    el('td', {}, el('strong', {}, k.name), k.title ? el('div', {}, k.title) : null),
    el('td', {}, k.check ? el('div', {}, 'check ', el('code', {}, k.check)) : null,
      k.pattern ? el('div', {}, `${k.pattern_kind || 'substring'} `, el('code', {}, k.pattern)) : null),
    el('td', {}, el('code', {}, k.plugin), el('div', {}, kv(k.params))),
    el('td', { class: 'description' }, k.description || ''),
    el('td', { class: 'muted' }, k.created_by || ''),
    el('td', { class: 'actions' }, tech ? [runLink(k),
      confirmButton('Delete', `Delete ${k.name}?`, () => remove(k), { dataset: { action: 'delete' } })] : null)));
}

// offered lists the open alerts the relay offers known fixes for.
function offered(alerts, byName) {
  const rows = alerts.filter((a) => (a.known_fixes || []).length).map((a) => el('tr', { dataset: { alert: a.id } },
    el('td', {}, a.agent_id ? el('a', { href: `#/agent/${a.agent_id}` }, a.hostname || a.agent_id) : ''),
    el('td', {}, a.summary),
    el('td', {}, a.known_fixes.map((h) => el('div', {}, el('strong', {}, h.name), ' ',
      api.can('technician') && byName.has(h.name) ? runLink(byName.get(h.name), a.agent_id ? `id=${a.agent_id}` : '') : el('code', {}, h.command))))));
  return grid(['Agent', 'Alert', 'Known fixes'], rows, 'No open alert matches a known fix.', { class: 'offered' });
}

function createForm(onDone) {
  const input = (id, placeholder, size) => el('input', { id, placeholder, size, spellcheck: 'false' });
  const name = input('kf-name', 'clear-print-spool');
  const title = input('kf-title', 'Printer queue stuck', 32);
  const check = input('kf-check', 'a check or alert kind');
  const pattern = input('kf-pattern', 'text in the error', 24);
  const kind = el('select', { id: 'kf-pattern-kind' }, el('option', { value: 'substring' }, 'substring'), el('option', { value: 'regexp' }, 'regexp'));
  const plugin = input('kf-plugin', 'plugin or script:NAME');
  const params = el('textarea', { id: 'kf-params', rows: 2, placeholder: 'name=value, one a line' });
  const desc = el('textarea', { id: 'kf-description', rows: 3, placeholder: 'What happens and why this fixes it (Markdown)' });
  const form = jsonForm(el('form', { id: 'kf-form', class: 'card form' }, el('h2', {}, 'New known fix'),
    el('div', { class: 'toolbar' }, field('Name', name), field('Title', title)),
    el('div', { class: 'toolbar' }, field('Check', check), field('Error text', pattern), field('Match', kind)),
    el('div', { class: 'toolbar' }, field('Fix', plugin), field('Parameters', params)),
    field('Description', desc),
    el('div', { class: 'toolbar' }, el('button', { type: 'submit' }, 'Add the known fix'))),
  'POST', '/v1/known-fixes', () => ({
    name: name.value.trim(), title: title.value.trim(), check: check.value.trim(), pattern: pattern.value,
    pattern_kind: pattern.value ? kind.value : '', plugin: plugin.value.trim(), params: pairs(params.value, 'parameters'), description: desc.value,
  }), () => { form.reset(); onDone(); });
  return form;
}

export function mount(main, params) {
  const q = el('input', { id: 'kf-search', type: 'search', placeholder: 'Search name, symptom, description…', size: 40, value: (params && params.get('q')) || '' });
  const box = el('div', { id: 'known-fixes' });
  const offerBox = el('div', { id: 'known-fixes-offered' });
  const error = errorLine({ id: 'known-fixes-error' });
  const actError = errorLine({ id: 'known-fixes-action-error' });
  const tech = api.can('technician');
  main.append(el('section', { id: 'known-fixes-screen' }, el('h1', {}, 'Known fixes'), el('div', { class: 'toolbar' }, q),
    error, actError, box, el('h2', {}, 'Offered for open alerts'), offerBox, tech ? createForm(() => p.refresh()) : null));
  const change = changer(actError, () => p.refresh());
  let typing = 0;
  q.addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(() => p.refresh(), 250); });
  const p = poller(async () => {
    const term = q.value.trim();
    const [list, all, alerts] = await Promise.all([api.getJSON(`/v1/known-fixes${term ? `?q=${encodeURIComponent(term)}` : ''}`),
      api.getJSON('/v1/known-fixes'), api.getJSON('/v1/alerts?state=open')]);
    if (p.stopped() || term !== q.value.trim()) return;
    box.replaceChildren(grid(['Name', 'Symptom', 'Fix', 'Description', 'By', ''],
      fixRows(list.known_fixes, (k) => change('DELETE', `/v1/known-fixes/${encodeURIComponent(k.name)}`)),
      term ? `No known fix matches "${term}".` : 'No known fixes yet.', { class: 'known-fixes' }));
    offerBox.replaceChildren(offered(alerts.alerts || [], new Map(all.known_fixes.map((k) => [k.name, k]))));
    box.dataset.loaded = 'true';
    box.dataset.query = term;
  }, error.show, 10000);
  return () => { clearTimeout(typing); p.stop(); };
}
