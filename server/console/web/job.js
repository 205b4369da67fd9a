// Job: live progress (bar, counts per state, rate, ETA) pushed by the relay
// over a server-sent event stream (GET /v1/jobs/{id}/events; the job is
// polled every second only when the stream fails), each agent's result
// with its full output and details as text (pushed too for jobs of up to
// 500 agents; larger jobs' results are read when they end), cancel, and the
// export links. Without an ID: the newest jobs.
import * as api from './api.js';
import { el, ago } from './dom.js';

const FINAL = ['succeeded', 'failed', 'skipped', 'cancelled', 'halted', 'expired'];
const BIG = 500; // above this many runs, results are loaded when the job ends

// The relay names a job's sites (those of its agents) in its answer to the
// job's creation; the Run form hands them over here, so that the job's
// screen shows them when the job it reads does not.
const createdSites = new Map(); // job ID -> ["ORG/SITE", ...]

// created remembers the sites of a job this page just created.
export function created(job) {
  if (job && job.id && Array.isArray(job.sites) && job.sites.length) createdSites.set(job.id, job.sites);
}

function sitesOf(job) {
  return Array.isArray(job.sites) && job.sites.length ? job.sites : createdSites.get(job.id) || null;
}

// progress sums a job's counts: done (final runs), rate (per second since
// it was created) and eta (seconds, null when unknown).
export function progress(job, now = Date.now()) {
  const counts = job.counts || {};
  const done = Object.entries(counts).filter(([s]) => FINAL.includes(s)).reduce((n, [, c]) => n + c, 0);
  const secs = Math.max(0.001, ((job.ended_at ? Date.parse(job.ended_at) : now) - Date.parse(job.created_at)) / 1000);
  const rate = done / secs;
  const eta = job.ended_at ? 0 : rate > 0 ? (job.total - done) / rate : null;
  return { done, rate, eta };
}

// detailsText renders a run's details ({data|text, restart}) as text.
export function detailsText(d) {
  if (!d) return '';
  if (typeof d === 'string') return d; // an older relay
  const parts = [];
  if (d.data !== undefined) parts.push(JSON.stringify(d.data, null, 2));
  if (d.text) parts.push(d.text);
  if (d.restart) parts.push(d.restart);
  return parts.join('\n');
}

function jobList(main) {
  const tbody = el('tbody', { id: 'jobs' });
  main.append(el('section', { id: 'jobs-screen' }, el('h1', {}, 'Jobs'),
    el('table', { class: 'grid' }, el('thead', {}, el('tr', {}, ['Job', 'Plugin', 'Target', 'State', 'Progress', 'By', 'Created'].map((h) => el('th', {}, h)))), tbody)));
  api.getJSON('/v1/jobs?limit=100').then((jobs) => {
    tbody.replaceChildren(...jobs.map((j) => el('tr', { dataset: { id: j.id } },
      el('td', {}, el('a', { href: `#/job/${j.id}`, class: 'id' }, j.id)),
      el('td', {}, `${j.script || j.plugin} ${j.dry_run ? '(dry run)' : ''}`),
      el('td', {}, el('code', {}, j.target), sitesOf(j) ? el('div', { class: 'muted sites' }, sitesOf(j).join(', ')) : null), el('td', {}, j.state),
      el('td', {}, `${progress(j).done}/${j.total}`), el('td', {}, j.created_by), el('td', { title: j.created_at }, ago(j.created_at)))));
    if (!jobs.length) tbody.append(el('tr', { class: 'empty' }, el('td', { colspan: 7 }, 'No jobs yet.')));
    main.querySelector('#jobs-screen').dataset.loaded = 'true';
  }).catch((err) => main.append(el('p', { class: 'error' }, err.message)));
  return () => {};
}

function resultRow(r) {
  const det = detailsText(r.details);
  const consent = r.consent ? `${r.consent.approved ? 'approved' : 'denied'} by ${r.consent.by}${r.consent.message ? `: ${r.consent.message}` : ''}` : '';
  return el('tr', { dataset: { agent: r.agent_id, state: r.state } },
    el('td', {}, el('a', { href: `#/agent/${r.agent_id}` }, r.hostname || r.agent_id)),
    el('td', {}, el('span', { class: `run ${r.state}` }, r.state)),
    el('td', {}, r.summary, r.error ? el('div', { class: 'error' }, r.error) : null,
      (r.output || det || consent) ? el('details', {}, el('summary', {}, 'Output and details'),
        consent ? el('p', {}, `Consent: ${consent}`) : null,
        r.output ? el('pre', { class: 'output' }, r.output) : null,
        det ? el('pre', { class: 'run-details' }, det) : null,
        r.signer ? el('p', { class: 'muted' }, `Signed by ${r.signer}`) : null) : null),
    el('td', {}, r.duration_ms ? `${(r.duration_ms / 1000).toFixed(1)} s` : ''));
}

export function mount(main, params) {
  const id = params.get('id');
  if (!id) return jobList(main);
  let closed = false;
  let timer = 0;
  let events = null; // the EventSource while the stream is used
  const title = el('h1', {}, 'Job');
  const live = el('span', { id: 'job-live', class: 'live-state', dataset: { state: 'connecting' } });
  const meta = el('p', { class: 'muted', id: 'job-meta' });
  const bar = el('progress', { id: 'job-bar', max: 1, value: 0 });
  const counts = el('div', { id: 'job-counts', class: 'toolbar' });
  const speed = el('span', { id: 'job-rate', class: 'muted' });
  const state = el('span', { id: 'job-state', class: 'state' });
  const error = el('p', { class: 'error', id: 'job-error', role: 'alert', hidden: true });
  const cancel = api.can('technician')
    ? el('button', { type: 'button', id: 'job-cancel', dataset: { action: 'cancel' }, hidden: true, onclick: async () => {
      cancel.disabled = true;
      try { await api.request('POST', `/v1/jobs/${id}/cancel`); if (!events) poll(); } catch (err) { error.textContent = err.message; error.hidden = false; cancel.disabled = false; }
    } }, 'Cancel the job')
    : null;
  const tbody = el('tbody', { id: 'results' });
  main.append(el('section', { id: 'job-screen' }, title, meta,
    el('div', { class: 'toolbar' }, state, bar, speed, live, el('span', { class: 'spacer' }), cancel,
      el('a', { href: `/v1/jobs/${id}/export?format=csv`, download: `job-${id}.csv`, id: 'export-csv' }, 'Export CSV'),
      el('a', { href: `/v1/jobs/${id}/export?format=json`, download: `job-${id}.json`, id: 'export-json' }, 'Export JSON')),
    counts, error,
    el('table', { class: 'grid' }, el('thead', {}, el('tr', {}, ['Agent', 'State', 'Result', 'Took'].map((h) => el('th', {}, h)))), tbody)));

  function render(job) {
    const p = progress(job);
    title.textContent = `${job.dry_run ? 'Dry run' : 'Job'}: ${job.script || job.plugin} ${job.version}`;
    const jobSites = sitesOf(job);
    meta.textContent = `${job.id} · target ${job.target}${jobSites ? ` · site${jobSites.length === 1 ? '' : 's'} ${jobSites.join(', ')}` : ''} · by ${job.created_by} · ${ago(job.created_at)}${job.reason ? ` · ${job.reason}` : ''}`;
    state.textContent = job.state;
    state.className = `state ${job.state}`;
    bar.max = Math.max(1, job.total);
    bar.value = p.done;
    speed.textContent = `${p.done}/${job.total} · ${p.rate.toFixed(1)}/s${p.eta === null ? '' : job.ended_at ? '' : ` · ETA ${Math.ceil(p.eta)} s`}`;
    counts.replaceChildren(...Object.entries(job.counts || {}).filter(([, n]) => n > 0).sort()
      .map(([s, n]) => el('span', { class: `count run ${s}`, dataset: { state: s } }, `${s} ${n}`)),
    ...(job.offline ? [el('span', { class: 'muted' }, `${job.offline} waiting for offline agents`)] : []));
    if (cancel) cancel.hidden = !!job.ended_at;
    if (job.results) showResults(job.results);
    main.querySelector('#job-screen').dataset.final = String(!!job.ended_at);
  }

  // showResults replaces the result rows, keeping open the details the
  // person opened.
  function showResults(results) {
    const open = new Set([...tbody.querySelectorAll('details[open]')].map((d) => d.closest('tr').dataset.agent));
    tbody.replaceChildren(...results.map(resultRow));
    for (const tr of tbody.querySelectorAll('tr[data-agent]')) {
      const d = tr.querySelector('details');
      if (d && open.has(tr.dataset.agent)) d.open = true;
    }
  }

  function failed(err) {
    error.textContent = err.message;
    error.hidden = false;
  }

  // finish shows the ended job with every result (read once).
  async function finish() {
    try {
      const job = await api.getJSON(`/v1/jobs/${id}`);
      if (!closed) render(job);
    } catch (err) {
      if (!closed) failed(err);
    }
  }

  // stream follows the job's event stream; when it fails (not a reconnect
  // the browser makes by itself) the screen polls instead.
  function stream() {
    events = new EventSource(`/v1/jobs/${id}/events`);
    const stop = () => { if (events) events.close(); events = null; };
    events.addEventListener('open', () => { live.dataset.state = 'open'; live.textContent = 'live'; });
    events.addEventListener('progress', (e) => render(JSON.parse(e.data)));
    events.addEventListener('results', (e) => showResults(JSON.parse(e.data)));
    events.addEventListener('end', () => { stop(); live.dataset.state = 'ended'; live.textContent = ''; finish(); });
    events.addEventListener('failed', (e) => { stop(); failed(new Error(JSON.parse(e.data))); fallback(); });
    events.addEventListener('error', () => {
      if (!events || events.readyState !== EventSource.CLOSED) return; // the browser reconnects
      stop();
      fallback();
    });
  }

  function fallback() {
    if (closed) return;
    live.dataset.state = 'polling';
    live.textContent = 'polling';
    poll();
  }

  async function poll() {
    clearTimeout(timer);
    try {
      const head = await api.getJSON(`/v1/jobs/${id}?results=false`);
      if (closed) return;
      const full = head.ended_at || head.total <= BIG;
      render(full ? await api.getJSON(`/v1/jobs/${id}`) : head);
      if (closed) return;
      if (!head.ended_at) timer = setTimeout(poll, 1000);
    } catch (err) {
      if (closed) return;
      failed(err);
      if (err.status !== 404) timer = setTimeout(poll, 5000);
    }
  }
  if (typeof EventSource === 'function') stream(); else fallback();
  return () => { closed = true; clearTimeout(timer); if (events) events.close(); events = null; };
}
