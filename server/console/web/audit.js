// Audit: the newest records of the relay's hash chain, filtered here by
// actor, action, agent and time; the chain's head, and a check that each
// loaded record links to the one before it. "Verify the whole chain" reads
// every record and recomputes every hash in the page, with the Go verifier
// of patchbay audit verify compiled to WebAssembly (cmd/patchbay-webssh);
// the CLI also checks consent receipts against the CA pinned at login.
import * as api from './api.js';
import { el } from './dom.js';
import { loadClient } from './session.js';

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
  const verifyButton = el('button', { type: 'button', id: 'audit-verify' }, 'Verify the whole chain');
  const verified = el('span', { id: 'audit-verified', role: 'status' });
  main.append(el('section', { id: 'audit-screen' }, el('h1', {}, 'Audit log'), head,
    el('div', { class: 'toolbar' }, verifyButton, verified),
    el('p', { class: 'hint' }, 'Consent receipts are also checked against the CA by the CLI: ', el('code', {}, 'patchbay audit verify')),
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
