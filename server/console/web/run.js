// Run a fix: pick a plugin or script from the catalog, fill the form its
// manifest generates (checked here, and again by the relay before the job
// exists), aim it with a selector (the count of matching agents follows
// the typing), then go to the job's screen.
import * as api from './api.js';
import { el } from './dom.js';
import * as jobScreen from './job.js';
import * as sites from './sites.js';

// catalogChoices groups the catalog's plugins and scripts by name (the list
// is newest first: the first seen of a name is the one a job runs).
export function catalogChoices(plugins, scripts) {
  const seen = new Map();
  for (const a of [...plugins.filter((p) => p.name !== 'script'), ...scripts]) {
    const key = `${a.kind}:${a.name}`;
    if (!seen.has(key)) seen.set(key, a);
  }
  return [...seen.entries()].sort((x, y) => x[0].localeCompare(y[0]));
}

// checkParam mirrors the relay's typed parameter check (plugins/sdk).
export function checkParam(p, v) {
  if (v === '') return p.required ? 'required' : '';
  if (p.type === 'int' && !/^[+-]?\d+$/.test(v)) return `"${v}" is not an integer`;
  if (p.type === 'bool' && !/^(1|0|t|f|true|false|TRUE|FALSE|True|False|T|F)$/.test(v)) return `"${v}" is not true or false`;
  if (p.type === 'duration' && !/^([+-]?(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$|^0$/.test(v)) return `"${v}" is not a duration (like 90s or 15m)`;
  if (p.allowed && p.allowed.length && !p.allowed.includes(v)) return `"${v}" is not one of ${p.allowed.join(', ')}`;
  return '';
}

function field(p) {
  const id = `param-${p.name}`;
  let input;
  if (p.allowed && p.allowed.length) {
    input = el('select', { id, name: p.name }, p.required ? null : el('option', { value: '' }, '(default)'),
      p.allowed.map((v) => el('option', { value: v, selected: v === p.default }, v)));
  } else if (p.type === 'bool') {
    input = el('select', { id, name: p.name }, el('option', { value: '' }, `(default${p.default ? `: ${p.default}` : ''})`),
      el('option', { value: 'true' }, 'true'), el('option', { value: 'false' }, 'false'));
  } else {
    input = el('input', { id, name: p.name, type: p.type === 'int' ? 'number' : 'text', placeholder: p.default || '', spellcheck: 'false' });
  }
  const err = el('span', { class: 'error field-error', id: `${id}-error` });
  return { p, input, err, row: el('label', { class: 'field' },
    el('span', { class: 'label' }, p.name, p.required ? ' *' : '', el('span', { class: 'muted' }, ` ${p.type || 'string'}`)),
    input, err, p.description ? el('span', { class: 'hint' }, p.description) : null) };
}

export function mount(main, params) {
  if (!api.can('technician')) {
    main.append(el('section', { class: 'card', id: 'run-screen' }, el('h1', {}, 'Run a fix'),
      el('p', { class: 'error' }, 'Running fixes needs the technician role.')));
    return () => {};
  }
  let closed = false;
  let fields = [];
  let countTimer = 0;
  let countSeq = 0;
  const pick = el('select', { id: 'run-pick', 'aria-label': 'Plugin or script' }, el('option', { value: '' }, 'Loading the catalog…'));
  const about = el('p', { class: 'hint', id: 'run-about' });
  const paramBox = el('div', { id: 'run-params', class: 'fields' });
  const free = el('textarea', { id: 'run-free', rows: 3, placeholder: 'name=value, one a line', hidden: true });
  const target = el('input', { id: 'run-target', size: 48, spellcheck: 'false', value: params.get('target') || '', placeholder: 'site=paris,os=linux  or  all' });
  const count = el('span', { id: 'run-count', class: 'muted' });
  const scope = el('span', { id: 'run-sites', class: 'hint', hidden: true });
  const dry = el('input', { type: 'checkbox', id: 'run-dry', checked: true });
  const canary = el('input', { id: 'run-canary', size: 6, placeholder: '1 or 10%' });
  const conc = el('input', { id: 'run-concurrency', type: 'number', min: 0, size: 6, placeholder: '0 = no limit' });
  const maxf = el('input', { id: 'run-max-failures', size: 6, placeholder: 'N or P%' });
  const expires = el('input', { id: 'run-expires', size: 6, placeholder: '24h' });
  const reason = el('input', { id: 'run-reason', size: 60, maxlength: 1024, placeholder: 'why (kept in the audit log)' });
  const error = el('p', { class: 'error', id: 'run-error', role: 'alert', hidden: true });
  const submit = el('button', { type: 'submit', id: 'run-submit', disabled: true }, 'Start the job');
  const choices = new Map();

  const form = el('form', { id: 'run-form', class: 'card form', novalidate: true },
    el('h1', {}, 'Run a fix'),
    el('label', { class: 'field' }, el('span', { class: 'label' }, 'Plugin or script'), pick), about,
    paramBox, free,
    el('label', { class: 'field' }, el('span', { class: 'label' }, 'Target'), target, count, scope),
    el('div', { class: 'toolbar' },
      el('label', {}, dry, ' Dry run (check only, change nothing)'),
      el('label', {}, 'Canary ', canary), el('label', {}, 'Concurrency ', conc),
      el('label', {}, 'Failure gate ', maxf), el('label', {}, 'Expires ', expires)),
    el('label', { class: 'field' }, el('span', { class: 'label' }, 'Reason'), reason),
    error, el('div', { class: 'toolbar' }, submit));
  main.append(el('section', { id: 'run-screen' }, form));

  function choose() {
    const a = choices.get(pick.value);
    fields = [];
    paramBox.replaceChildren();
    free.hidden = true;
    submit.disabled = !a;
    if (!a) { about.textContent = ''; return; }
    about.textContent = `${a.kind} ${a.name} ${a.version}${a.description ? ` — ${a.description}` : ''}${a.needs_consent ? ' · asks the user at the machine' : ''}${a.may_reboot ? ' · may restart' : ''}`;
    fields = (a.params || []).map(field);
    if (pick.value === params.get('plugin')) { // offered with its parameters (a known fix)
      for (const f of fields) if (params.has(`param.${f.p.name}`)) f.input.value = params.get(`param.${f.p.name}`);
    }
    paramBox.append(...fields.map((f) => f.row));
    free.hidden = !a.free_params;
  }

  function values() {
    const out = {};
    let bad = false;
    for (const f of fields) {
      const v = f.input.value.trim();
      f.err.textContent = checkParam(f.p, v);
      if (f.err.textContent) bad = true;
      else if (v !== '') out[f.p.name] = v;
    }
    if (!free.hidden) {
      for (const line of free.value.split('\n').map((l) => l.trim()).filter(Boolean)) {
        const i = line.indexOf('=');
        if (i < 1) { error.textContent = `"${line}": want name=value`; error.hidden = false; return null; }
        out[line.slice(0, i).trim()] = line.slice(i + 1);
      }
    }
    return bad ? null : out;
  }

  async function recount() {
    const seq = ++countSeq;
    const t = target.value.trim();
    if (!t) { count.textContent = 'a target is required ("all" selects every agent)'; return; }
    try {
      const resp = await api.request('GET', `/v1/agents?${new URLSearchParams({ target: t, limit: '1' })}`);
      if (closed || seq !== countSeq) return;
      const n = resp.headers.get('X-Total-Count') || '?';
      count.textContent = `${n} agent${n === '1' ? '' : 's'} match`;
      count.dataset.count = n;
    } catch (err) {
      if (closed || seq !== countSeq) return;
      count.textContent = err.message;
      delete count.dataset.count;
    }
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const a = choices.get(pick.value);
    const p = values();
    if (!a || !p) return;
    const body = { plugin: a.kind === 'script' ? 'script' : a.name, target: target.value.trim(), params: p,
      dry_run: dry.checked, canary: canary.value.trim(), concurrency: parseInt(conc.value || '0', 10) || 0,
      max_failures: maxf.value.trim(), expires: expires.value.trim(), reason: reason.value.trim() };
    if (a.kind === 'script') body.params = { ...p, name: a.name };
    submit.disabled = true;
    try {
      const job = await (await api.request('POST', '/v1/jobs', body)).json();
      jobScreen.created(job); // its sites: only this answer names them
      location.hash = `#/job/${job.id}`;
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      submit.disabled = false;
    }
  });
  pick.addEventListener('change', choose);
  target.addEventListener('input', () => { clearTimeout(countTimer); countTimer = setTimeout(recount, 250); });

  (async () => {
    try {
      const [plugins, scripts] = await Promise.all([api.getJSON('/v1/plugins'), api.getJSON('/v1/scripts')]);
      if (closed) return;
      const list = catalogChoices(plugins, scripts);
      pick.replaceChildren(el('option', { value: '' }, list.length ? 'Choose…' : 'The catalog is empty: patchbay plugins publish'),
        ...list.map(([key, a]) => { choices.set(key, a); return el('option', { value: key }, `${a.name} (${a.kind} ${a.version})`); }));
      const want = params.get('plugin');
      if (want && choices.has(want)) pick.value = want;
      choose();
      form.dataset.loaded = 'true';
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  })();
  api.whoami().then((w) => {
    if (closed || api.everySite(w)) return;
    scope.textContent = `Only agents of your sites can be targeted: ${sites.label(w.sites)}.`;
    scope.hidden = false;
  }).catch(() => { /* the relay still refuses what is out of reach */ });
  recount();
  return () => { closed = true; clearTimeout(countTimer); };
}
