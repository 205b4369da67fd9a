// Audit: the newest records of the relay's hash chain that match the
// filters (actor, action, agent, site, time), filtered by the relay (GET
// /v1/audit), never in the page; Export links download every match as CSV
// or JSON lines (GET /v1/audit/export). Above them, the chain's head and a
// check that the newest records link to each other. "Verify the whole
// chain" reads every record and recomputes every hash in the page, with the
// Go verifier of patchbay audit verify compiled to WebAssembly
// (cmd/patchbay-webssh); the CLI also checks consent receipts against the
// CA pinned at login. Callers who do not reach every site see only the
// records about their sites: the head and the whole chain are not theirs
// to read (GET /v1/audit/head answers 403), so they get a note instead.
import * as api from './api.js';
import { el } from './dom.js';
import { loadClient } from './session.js';
import * as sites from './sites.js';

const WINDOW = 1000; // newest records whose links are checked
const SHOWN = 500; // matching records shown, newest first
const DEBOUNCE_MS = 250; // typing pauses this long before the relay is asked

// linked reports the first record (in seq order) whose prev_hash is not the
// hash of the record before it, or null when the loaded records chain.
export function brokenLink(recs) {
  for (let i = 1; i < recs.length; i++) {
    if (recs[i].seq === recs[i - 1].seq + 1 && recs[i].prev_hash !== recs[i - 1].hash) return recs[i];
  }
  return null;
}

// filterQuery turns the form's values into the relay's query parameters:
// actor (contains, any case), action (exact, or a prefix ending in *),
// agent (ID, ID prefix or hostname), site (ID or reference), since and
// until (RFC 3339). The
// datetime-local inputs are local minutes: "To 10:30" includes 10:30:59.
export function filterQuery(f) {
  const q = new URLSearchParams();
  for (const k of ['actor', 'action', 'agent', 'site']) if (f[k]) q.set(k, f[k]);
  const at = (v, plusMinute) => {
    const t = new Date(v);
    if (Number.isNaN(t.getTime())) return '';
    if (plusMinute) t.setMinutes(t.getMinutes() + 1);
    return t.toISOString();
  };
  if (f.from && at(f.from, false)) q.set('since', at(f.from, false));
  if (f.to && at(f.to, true)) q.set('until', at(f.to, true));
  return q;
}

export function mount(main, params) {
  const input = (id, label, type = 'text', placeholder = '') => el('label', {}, `${label} `, el('input', { id, type, value: params.get(id.slice(6)) || '', size: type === 'text' ? 16 : undefined, placeholder }));
  const siteFilter = sites.filter('audit-site', params.get('site') || '');
  const filters = el('form', { class: 'toolbar', id: 'audit-filters' },
    input('audit-actor', 'Actor'), input('audit-action', 'Action', 'text', 'session.*'), input('audit-agent', 'Agent', 'text', 'hostname or ID'),
    el('label', {}, 'Site ', siteFilter.select),
    input('audit-from', 'From', 'datetime-local'), input('audit-to', 'To', 'datetime-local'));
  const exportCSV = el('a', { id: 'audit-export-csv', href: '/v1/audit/export?format=csv', download: '' }, 'Export CSV');
  const exportJSONL = el('a', { id: 'audit-export-jsonl', href: '/v1/audit/export?format=jsonl', download: '' }, 'Export JSON lines');
  const head = el('p', { id: 'audit-head' }, 'Reading the chain head…');
  const tbody = el('tbody', { id: 'audit' });
  const error = el('p', { class: 'error', role: 'alert', hidden: true });
  // Shown once whoami says the caller reaches every site.
  const verifyButton = el('button', { type: 'button', id: 'audit-verify', hidden: true }, 'Verify the whole chain');
  const verified = el('span', { id: 'audit-verified', role: 'status' });
  const verifyNote = el('p', { class: 'hint', id: 'audit-verify-note', hidden: true },
    'You see only the records about your sites. Verifying the whole chain needs every record: ',
    'an admin, or someone granted every site, can verify it here or with ', el('code', {}, 'patchbay audit verify'), '.');
  main.append(el('section', { id: 'audit-screen' }, el('h1', {}, 'Audit log'), head,
    el('div', { class: 'toolbar' }, verifyButton, verified), verifyNote,
    el('p', { class: 'hint' }, 'Consent receipts are also checked against the CA by the CLI: ', el('code', {}, 'patchbay audit verify')),
    filters, el('div', { class: 'toolbar', id: 'audit-export' }, exportCSV, ' ', exportJSONL,
      el('span', { class: 'muted' }, ' every matching record, oldest first')), error,
    el('table', { class: 'grid' }, el('thead', {}, el('tr', {}, ['Seq', 'Time', 'Actor', 'Action', 'Target', 'Detail'].map((h) => el('th', {}, h)))), tbody)));

  const val = (id) => main.querySelector(`#audit-${id}`).value.trim();
  let siteNames = new Map(); // site ID -> "ORG/SITE", for the records' details
  let asked = 0; // the newest request; older answers are dropped
  let timer = null;
  async function load() {
    const q = filterQuery({ actor: val('actor'), action: val('action'), agent: val('agent'), site: val('site'), from: val('from'), to: val('to') });
    const mine = ++asked;
    exportCSV.href = `/v1/audit/export?${new URLSearchParams([...q, ['format', 'csv']])}`;
    exportJSONL.href = `/v1/audit/export?${new URLSearchParams([...q, ['format', 'jsonl']])}`;
    q.set('order', 'desc');
    q.set('limit', String(SHOWN));
    let shown;
    try {
      shown = await api.getJSON(`/v1/audit?${q}`);
    } catch (err) {
      if (mine !== asked) return;
      error.textContent = err.message; // e.g. "agent: no agent with ID, ID prefix or hostname ..."
      error.hidden = false;
      tbody.replaceChildren();
      delete tbody.dataset.filtered;
      return;
    }
    if (mine !== asked) return;
    error.hidden = true;
    tbody.replaceChildren(...shown.map((r) => el('tr', { dataset: { seq: String(r.seq) } },
      el('td', {}, String(r.seq)), el('td', { title: r.time }, new Date(r.time).toLocaleString()),
      el('td', {}, r.actor), el('td', {}, el('code', {}, r.action)), el('td', { class: 'id' }, r.target),
      el('td', {}, Object.entries(r.detail || {}).sort().map(([k, v]) => el('div', {}, el('span', { class: 'muted' }, `${k}: `),
        k === 'site' && siteNames.has(v) ? el('span', { title: v }, siteNames.get(v)) : v))))));
    if (!shown.length) tbody.append(el('tr', { class: 'empty' }, el('td', { colspan: 6 }, 'No record matches.')));
    tbody.dataset.filtered = q.toString();
  }
  const render = () => {
    clearTimeout(timer);
    timer = setTimeout(load, DEBOUNCE_MS);
  };
  filters.addEventListener('input', render);
  verifyButton.addEventListener('click', async () => {
    verifyButton.disabled = true;
    delete verified.dataset.done;
    verified.className = '';
    verified.textContent = 'Verifying…';
    try {
      const v = (await loadClient()).auditVerifier();
      let after = 0;
      let problem = '';
      for (;;) { // every page, as patchbay audit verify reads them
        const res = await api.request('GET', `/v1/audit?after=${after}&limit=1000`);
        const text = await res.text();
        problem = v.add(text);
        const page = JSON.parse(text);
        if (problem || page.length === 0) break;
        after = page[page.length - 1].seq;
        verified.textContent = `Verifying… ${v.count()} records`;
      }
      if (!problem) {
        const h = await api.getJSON('/v1/audit/head');
        while (after < h.seq && !problem) { // records appended while reading
          const page = await (await api.request('GET', `/v1/audit?after=${after}&limit=1000`)).text();
          const recs = JSON.parse(page).filter((r) => r.seq <= h.seq);
          if (!recs.length) break;
          problem = v.add(JSON.stringify(recs));
          after = recs[recs.length - 1].seq;
        }
        problem = problem || v.finish(h.seq, h.hash);
        if (!problem) {
          verified.className = 'ok';
          verified.textContent = `The whole chain verifies: ${v.count()} records, every hash recomputed here, ending at the relay's head (record ${h.seq}).`;
        }
      }
      if (problem) {
        verified.className = 'error';
        verified.textContent = `The chain does not verify: ${problem}`;
      }
    } catch (err) {
      verified.className = 'error';
      verified.textContent = `Could not verify: ${err.message}`;
    } finally {
      verifyButton.disabled = false;
      verified.dataset.done = 'true';
    }
  });
  filters.addEventListener('submit', (e) => e.preventDefault());

  // scoped tells a caller who reaches only some sites why there is no
  // head and no verification.
  const scoped = () => {
    verifyButton.hidden = true;
    verifyNote.hidden = false;
    head.textContent = 'The chain\'s head is shown to those who reach every site.';
  };

  // chainHead shows the head and whether the newest records link to it.
  async function chainHead(h) {
    const recs = (await api.getJSON(`/v1/audit?order=desc&limit=${WINDOW}`)).reverse();
    const bad = brokenLink(recs);
    const last = recs[recs.length - 1];
    head.replaceChildren(`Chain head: record ${h.seq}, hash `, el('code', { id: 'audit-head-hash' }, h.hash), '. ',
      el('span', { id: 'audit-links', class: bad || (last && (last.seq < h.seq || (last.seq === h.seq && last.hash !== h.hash))) ? 'error' : 'ok' },
        bad ? `Record ${bad.seq} does not link to the one before it.`
          : `The ${recs.length} newest records link to each other and to the head.`));
  }

  (async () => {
    try {
      siteNames = new Map((await siteFilter.ready).map((s) => [s.id, s.full_name]));
      let every = true;
      try {
        every = api.everySite(await api.whoami());
      } catch { /* the head's answer tells */ }
      let h = null;
      if (every) {
        try {
          h = await api.getJSON('/v1/audit/head');
        } catch (err) {
          if (err.status !== 403) throw err;
        }
      }
      if (h) {
        verifyButton.hidden = false;
        await chainHead(h);
      } else {
        scoped();
      }
      await load();
      main.querySelector('#audit-screen').dataset.loaded = 'true';
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  })();
  return () => clearTimeout(timer);
}
