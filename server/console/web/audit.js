// Audit: the newest records of the relay's hash chain, filtered here by
// actor, action, agent and time; the chain's head, and a check that each
// loaded record links to the one before it. The full check (every hash
// recomputed, the head signed by the CA) is the CLI's: patchbay audit verify.
import * as api from './api.js';
import { el } from './dom.js';

const WINDOW = 1000; // newest records loaded

// linked reports the first record (in seq order) whose prev_hash is not the
// hash of the record before it, or null when the loaded records chain.
export function brokenLink(recs) {
  for (let i = 1; i < recs.length; i++) {
    if (recs[i].seq === recs[i - 1].seq + 1 && recs[i].prev_hash !== recs[i - 1].hash) return recs[i];
  }
  return null;
}

export function matches(r, f) {
  const has = (s, sub) => !sub || (s || '').toLowerCase().includes(sub.toLowerCase());
  const t = Date.parse(r.time);
  return has(r.actor, f.actor) && has(r.action, f.action) &&
    (!f.agent || has(r.target, f.agent) || Object.values(r.detail || {}).some((v) => has(v, f.agent))) &&
    (!f.from || t >= Date.parse(f.from)) && (!f.to || t <= Date.parse(f.to));
}

export function mount(main, params) {
  let recs = [];
  const input = (id, label, type = 'text') => el('label', {}, `${label} `, el('input', { id, type, value: params.get(id.slice(6)) || '', size: type === 'text' ? 16 : undefined }));
  const filters = el('form', { class: 'toolbar', id: 'audit-filters' },
    input('audit-actor', 'Actor'), input('audit-action', 'Action'), input('audit-agent', 'Agent'),
    input('audit-from', 'From', 'datetime-local'), input('audit-to', 'To', 'datetime-local'));
  const head = el('p', { id: 'audit-head' }, 'Reading the chain head…');
  const tbody = el('tbody', { id: 'audit' });
  const error = el('p', { class: 'error', role: 'alert', hidden: true });
  main.append(el('section', { id: 'audit-screen' }, el('h1', {}, 'Audit log'), head,
    el('p', { class: 'hint' }, 'Verify the whole chain against the relay\'s CA in the CLI: ', el('code', {}, 'patchbay audit verify')),
    filters, error,
    el('table', { class: 'grid' }, el('thead', {}, el('tr', {}, ['Seq', 'Time', 'Actor', 'Action', 'Target', 'Detail'].map((h) => el('th', {}, h)))), tbody)));

  const val = (id) => main.querySelector(`#audit-${id}`).value.trim();
  function render() {
    const f = { actor: val('actor'), action: val('action'), agent: val('agent'), from: val('from'), to: val('to') };
    const shown = recs.filter((r) => matches(r, f)).reverse();
    tbody.replaceChildren(...shown.slice(0, 500).map((r) => el('tr', { dataset: { seq: String(r.seq) } },
      el('td', {}, String(r.seq)), el('td', { title: r.time }, new Date(r.time).toLocaleString()),
      el('td', {}, r.actor), el('td', {}, el('code', {}, r.action)), el('td', { class: 'id' }, r.target),
      el('td', {}, Object.entries(r.detail || {}).sort().map(([k, v]) => el('div', {}, el('span', { class: 'muted' }, `${k}: `), v))))));
    if (!shown.length) tbody.append(el('tr', { class: 'empty' }, el('td', { colspan: 6 }, 'No record matches.')));
  }
  filters.addEventListener('input', render);
  filters.addEventListener('submit', (e) => e.preventDefault());

  (async () => {
    try {
      const h = await api.getJSON('/v1/audit/head');
      let after = Math.max(0, h.seq - WINDOW);
      for (;;) {
        const page = await api.getJSON(`/v1/audit?after=${after}&limit=1000`);
        recs.push(...page);
        if (page.length < 1000) break;
        after = page[page.length - 1].seq;
      }
      const bad = brokenLink(recs);
      const last = recs[recs.length - 1];
      head.replaceChildren(`Chain head: record ${h.seq}, hash `, el('code', { id: 'audit-head-hash' }, h.hash), '. ',
        el('span', { id: 'audit-links', class: bad || (last && last.hash !== h.hash) ? 'error' : 'ok' },
          bad ? `Record ${bad.seq} does not link to the one before it.`
            : `The ${recs.length} newest records link to each other and to the head.`));
      render();
      main.querySelector('#audit-screen').dataset.loaded = 'true';
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  })();
  return () => {};
}
