// Policies: each check policy (GET /v1/policies) with what it checks, where,
// how often, its fix and self-heal limits, and where it stands across the
// caller's agents (GET /v1/policy-states: passing, failing, erring, and the
// failing agents). Admins create and delete policies (asked in place);
// the relay checks and audits both.
import * as api from './api.js';
import { el, grid, errorLine, poller, confirmButton, jsonForm, field, pairs, kv, changer } from './dom.js';
import * as sites from './sites.js';

const BUILTINS = ['builtin:disk-space', 'builtin:dir-size', 'builtin:service-down', 'builtin:pending-reboot'];

function counts(st) {
  if (!st || st.passed + st.failed + st.error === 0) return el('span', { class: 'muted' }, 'no results yet');
  return el('span', { class: 'counts' },
    el('span', { class: 'ok', dataset: { count: 'passed' } }, `${st.passed} passing`), ' · ',
    el('span', { class: st.failed ? 'error' : 'muted', dataset: { count: 'failed' } }, `${st.failed} failing`),
    st.error ? [' · ', el('span', { class: 'error', dataset: { count: 'error' } }, `${st.error} erring`)] : null);
}

function failing(st) {
  return ((st && st.failing) || []).map((f) => el('div', { class: 'failing' },
    el('a', { href: `#/agent/${f.agent_id}` }, f.hostname || f.agent_id), ' ', el('span', { class: 'muted' }, f.summary || f.state)));
}

function policyRows(list, states, siteNames, remove) {
  const admin = api.can('admin');
  return list.map((p) => {
    const st = states.get(p.id);
    return el('tr', { dataset: { id: p.id, name: p.name } },
      el('td', {}, p.name),
      el('td', {}, el('code', {}, p.check), el('div', {}, kv(p.params))),
      el('td', {}, p.site ? el('div', { class: 'site' }, siteNames.get(p.site) || p.site) : null, p.target ? el('code', {}, p.target) : null),
      el('td', {}, p.interval),
      el('td', {}, p.fix ? [el('code', {}, p.fix), el('div', {}, kv(p.fix_params))] : el('span', { class: 'muted' }, 'none')),
      el('td', { class: 'muted' }, `${p.max_fixes_day}/agent/day, ${p.max_fixes_site_hour}/site/hour`),
      el('td', {}, counts(st), failing(st)),
      el('td', { class: 'actions' }, admin ? confirmButton('Delete', `Delete policy ${p.name}?`, () => remove(p), { dataset: { action: 'delete' } }) : null));
  });
}

// createForm is the admins' "New policy" form; onDone refreshes.
function createForm(onDone) {
  const input = (id, placeholder, size) => el('input', { id, placeholder, size, spellcheck: 'false' });
  const name = input('policy-name', 'disk-c');
  const check = input('policy-check', 'builtin:disk-space or a plugin', 28);
  check.setAttribute('list', 'policy-builtins');
  const params = el('textarea', { id: 'policy-params', rows: 2, placeholder: 'path=/\nmin_free_pct=10' });
  const site = el('select', { id: 'policy-site', 'aria-label': 'Site' }, el('option', { value: '' }, 'Any site (use the selector)'));
  const target = input('policy-target', 'os=linux', 24);
  const interval = input('policy-interval', '5m', 6);
  const fix = input('policy-fix', 'plugin or script:NAME', 20);
  const fixParams = el('textarea', { id: 'policy-fix-params', rows: 2, placeholder: 'dir=/var/cache/x' });
  const perDay = el('input', { id: 'policy-max-day', type: 'number', min: 0, size: 5, placeholder: '3' });
  const perHour = el('input', { id: 'policy-max-hour', type: 'number', min: 0, size: 5, placeholder: '10' });
  const form = jsonForm(el('form', { id: 'policy-form', class: 'card form' }, el('h2', {}, 'New policy'),
    el('datalist', { id: 'policy-builtins' }, BUILTINS.map((b) => el('option', { value: b }))),
    el('div', { class: 'toolbar' }, field('Name', name), field('Check', check), field('Every', interval)),
    field('Check parameters', params, 'name=value, one a line'),
    el('div', { class: 'toolbar' }, field('Site', site), field('Selector', target, 'within the site, if one is chosen')),
    el('div', { class: 'toolbar' }, field('Fix', fix, 'run on failure, then checked again'), field('Fixes per agent a day', perDay), field('Fixes per site an hour', perHour)),
    field('Fix parameters', fixParams, 'name=value, one a line'),
    el('div', { class: 'toolbar' }, el('button', { type: 'submit' }, 'Create the policy'))),
  'POST', '/v1/policies', () => ({
    name: name.value.trim(), check: check.value.trim(), params: pairs(params.value, 'check parameters'), site: site.value,
    target: target.value.trim(), interval: interval.value.trim(), fix: fix.value.trim(), fix_params: pairs(fixParams.value, 'fix parameters'),
    max_fixes_day: parseInt(perDay.value || '0', 10) || 0, max_fixes_site_hour: parseInt(perHour.value || '0', 10) || 0,
  }), () => { form.reset(); onDone(); });
  return { form, site };
}

export function mount(main) {
  const box = el('div', { id: 'policies' });
  const error = errorLine({ id: 'policies-error' });
  const actError = errorLine({ id: 'policies-action-error' });
  const create = api.can('admin') ? createForm(() => p.refresh()) : null;
  main.append(el('section', { id: 'policies-screen' }, el('h1', {}, 'Policies'), error, actError, box, create ? create.form : null));
  const change = changer(actError, () => p.refresh());
  let siteNames = new Map();
  sites.listSites().then((list) => {
    siteNames = new Map(list.map((s) => [s.id, s.full_name]));
    if (create) create.site.append(...list.map((s) => el('option', { value: s.id }, s.full_name)));
  }).catch(() => { /* shown by ID */ });
  const p = poller(async () => {
    const [list, st] = await Promise.all([api.getJSON('/v1/policies'), api.getJSON('/v1/policy-states')]);
    if (p.stopped()) return;
    const states = new Map(st.policies.map((x) => [x.policy_id, x]));
    box.replaceChildren(grid(['Name', 'Check', 'Applies to', 'Every', 'Fix', 'Self-heal limits', 'Agents', ''],
      policyRows(list, states, siteNames, (x) => change('DELETE', `/v1/policies/${encodeURIComponent(x.name)}`)),
      'No policies: patchbay policies create makes one.', { class: 'policies' }));
    box.dataset.loaded = 'true';
  }, error.show);
  return () => p.stop();
}
