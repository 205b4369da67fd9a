// Reports: the figures of a period in one site or every site the caller
// reaches (GET /v1/reports/summary), with bar charts drawn here as inline
// SVG (no chart library). Labels are SVG text nodes: data never becomes
// markup.
import * as api from './api.js';
import { el } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// barChart draws one horizontal bar per item ({label, value, title}), the
// longest for the largest value; an empty list says so.
export function barChart(id, title, items, unit = '') {
  const box = el('figure', { class: 'chart', id, dataset: { bars: String(items.length) } }, el('figcaption', {}, title));
  if (!items.length) {
    box.append(el('p', { class: 'muted' }, 'Nothing in this period.'));
    return box;
  }
  const rowH = 24, labelW = 180, barW = 320, valueW = 70;
  const max = Math.max(1, ...items.map((x) => x.value));
  const chart = svg('svg', { width: labelW + barW + valueW, height: items.length * rowH + 4, role: 'img', 'aria-label': title,
    viewBox: `0 0 ${labelW + barW + valueW} ${items.length * rowH + 4}` });
  items.forEach((x, i) => {
    const y = i * rowH + 2;
    const w = Math.max(2, Math.round((x.value / max) * barW));
    const label = x.label.length > 24 ? `${x.label.slice(0, 23)}…` : x.label;
    chart.append(
      svg('text', { x: labelW - 8, y: y + 16, 'text-anchor': 'end', class: 'chart-label' }, label || '(none)'),
      svg('rect', { x: labelW, y: y + 3, width: w, height: rowH - 8, rx: 3, class: `bar ${x.cls || ''}`, 'data-key': x.label, 'data-value': x.value },
        svg('title', {}, `${x.title || x.label}: ${x.value}${unit}`)),
      svg('text', { x: labelW + w + 6, y: y + 16, class: 'chart-value' }, `${x.value}${unit}`));
  });
  box.append(chart);
  return box;
}

function hours(seconds) {
  if (!seconds) return '–';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function pct(rate, ended) { return ended ? `${Math.round(rate * 100)} %` : '–'; }

function tile(label, value, id) {
  return el('div', { class: 'tile', id }, el('div', { class: 'tile-value' }, String(value)), el('div', { class: 'muted' }, label));
}

export function render(rep) {
  const inc = rep.incidents || {};
  const runs = (name, r) => ({ label: name, value: r.ended || 0, title: `${name}: ${r.succeeded || 0} succeeded, ${r.failed || 0} failed of ${r.ended || 0} ended` });
  const counts = (l) => (l || []).map((c) => ({ label: c.key, value: c.count }));
  const fixes = rep.fixes || {}, heals = rep.self_heals || {};
  const pc = rep.patch_compliance || {};
  return el('div', { class: 'report' },
    el('p', { class: 'muted', id: 'report-period' }, `${rep.site || 'All your sites'} · ${rep.from.slice(0, 10)} to ${rep.to.slice(0, 10)} (end not included)`),
    el('div', { class: 'tiles' },
      tile('incidents opened', inc.opened || 0, 'tile-opened'),
      tile('incidents resolved', inc.resolved || 0, 'tile-resolved'),
      tile('median time to resolve', hours(inc.median_resolve_seconds), 'tile-median'),
      tile('mean time to resolve', hours(inc.mean_resolve_seconds), 'tile-mean'),
      tile('fix success rate', pct(fixes.success_rate, fixes.ended), 'tile-fix-rate'),
      tile('self-heal success rate', pct(heals.success_rate, heals.ended), 'tile-heal-rate')),
    el('div', { class: 'charts' },
      barChart('chart-runs', 'Runs ended: fixes and self-heals', [runs('fixes', fixes), runs('self-heals', heals)]),
      barChart('chart-alerts', 'Alerts by kind', counts(rep.alerts_by_kind)),
      barChart('chart-problems', 'Top recurring problems (times raised)',
        (rep.top_problems || []).map((p) => ({ label: p.check ? `${p.kind}: ${p.check}` : p.kind, value: p.raised, title: `${p.kind} ${p.check || ''} (${p.alerts} alerts)` }))),
      barChart('chart-os', 'Agents by OS', counts(rep.agents_by_os)),
      barChart('chart-versions', 'Agents by agent version', counts(rep.agents_by_version))),
    el('h2', {}, 'Patch compliance'),
    el('p', { id: 'report-patch', class: pc.collected ? '' : 'muted' },
      pc.collected ? `${Math.round((pc.share || 0) * 100)} % of ${pc.agents || 0} agents have no pending update (now, as their last patchinstall run listed them).` : `Not collected: ${pc.reason || ''}`),
    pc.collected ? patchSection(pc) : '');
}

// patchSection is the patch compliance per site (a bar per state) and a
// table of the agents that are not patched.
function patchSection(pc) {
  const sites = pc.sites || [];
  const bars = [];
  for (const s of sites) {
    bars.push({ label: `${s.site}: patched`, value: s.patched, cls: 'bar-ok' });
    bars.push({ label: `${s.site}: security`, value: s.security_pending, cls: 'bar-bad', title: `${s.site}: agents with pending security updates` });
    bars.push({ label: `${s.site}: other updates`, value: s.updates_pending });
    bars.push({ label: `${s.site}: never checked`, value: s.never_checked, cls: 'bar-muted' });
  }
  const behind = (pc.per_agent || []).filter((a) => a.state !== 'patched');
  const table = el('table', { id: 'patch-agents' },
    el('thead', {}, el('tr', {}, ...['Agent', 'Site', 'State', 'Pending', 'Security', 'Last check'].map((h) => el('th', {}, h)))),
    el('tbody', {}, ...behind.map((a) => el('tr', { dataset: { state: a.state } },
      el('td', {}, a.hostname || a.agent_id), el('td', {}, a.site), el('td', {}, a.state.replace('-', ' ')),
      el('td', {}, String(a.pending)), el('td', {}, a.security === undefined ? '–' : String(a.security)),
      el('td', {}, a.checked_at ? a.checked_at.slice(0, 16).replace('T', ' ') : 'never')))));
  return el('div', { id: 'report-patch-detail' },
    barChart('chart-patch', 'Agents by patch state, per site', bars),
    behind.length ? table : el('p', { class: 'muted', id: 'patch-all-patched' }, 'Every agent is patched.'));
}

function firstOfMonth(d, add) {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + add, 1)).toISOString().slice(0, 10);
}

export function mount(main, params) {
  let closed = false;
  const get = (k) => (params && params.get && params.get(k)) || '';
  const now = new Date();
  const site = el('input', { id: 'report-site', 'aria-label': 'Site', placeholder: 'every site (or ORG/SITE)', value: get('site') });
  const from = el('input', { id: 'report-from', type: 'date', 'aria-label': 'From', value: get('from') || firstOfMonth(now, 0) });
  const to = el('input', { id: 'report-to', type: 'date', 'aria-label': 'To (not included)', value: get('to') || firstOfMonth(now, 1) });
  const box = el('div', { id: 'reports' });
  const error = el('p', { class: 'error', role: 'alert', hidden: true });
  main.append(el('section', { id: 'reports-screen' }, el('h1', {}, 'Reports'),
    el('form', { class: 'toolbar', onsubmit: (e) => { e.preventDefault(); refresh(); } },
      site, el('label', {}, 'From ', from), el('label', {}, 'To ', to), el('button', { type: 'submit' }, 'Show')),
    error, box));

  async function refresh() {
    const q = new URLSearchParams();
    if (site.value.trim()) q.set('site', site.value.trim());
    if (from.value) q.set('from', from.value);
    if (to.value) q.set('to', to.value);
    try {
      const rep = await api.getJSON(`/v1/reports/summary?${q}`);
      if (closed) return;
      box.replaceChildren(render(rep));
      box.dataset.loaded = 'true';
      error.hidden = true;
    } catch (err) {
      if (closed) return;
      error.textContent = err.message;
      error.hidden = false;
    }
  }
  refresh();
  return () => { closed = true; };
}
