// The agent screen's inventory and checks: hardware, installed software
// (searched here), the software history (GET /v1/agents/{id}/inventory,
// /inventory?software=1, /inventory/history) and each policy's check as
// the agent last reported it (GET /v1/agents/{id}/checks). Technicians
// ask the agent for a fresh inventory.
import * as api from './api.js';
import { el, ago, grid, errorLine } from './dom.js';

const SHOWN = 100; // software lines shown at once

export function bytes(n) {
  if (!n) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

function hardware(inv) {
  const h = inv.hardware || {};
  const rows = [
    ['CPU', [h.cpu_model, h.cpu_count ? `${h.cpu_count} cores` : ''].filter(Boolean).join(' · ')], ['Memory', bytes(h.memory_bytes)],
    ['Model', [h.vendor, h.model].filter(Boolean).join(' ')], ['Serial', h.serial], ['Firmware', h.firmware],
    ['Disks', (h.disks || []).map((d) => el('div', { dataset: { mount: d.mount } }, `${d.mount}: ${bytes(d.free)} free of ${bytes(d.size)}`,
      d.size ? ` (${Math.round((100 * d.free) / d.size)} %)` : ''))],
    ['Last reboot', inv.boot_time ? new Date(inv.boot_time).toLocaleString() : ''],
    ['Software', `${inv.software_count} packages${inv.software_at ? `, changed ${ago(inv.software_at)}` : ''}`],
  ];
  return el('dl', { class: 'facts', id: 'agent-hardware' }, rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v || '')]));
}

function software(pkgs) {
  const q = el('input', { id: 'software-search', type: 'search', placeholder: 'Search the software…', size: 32 });
  const box = el('div', { id: 'agent-software' });
  const show = () => {
    const t = q.value.trim().toLowerCase();
    const hits = pkgs.filter((p) => !t || p.name.toLowerCase().includes(t));
    box.replaceChildren(grid(['Package', 'Version', 'Source'], hits.slice(0, SHOWN).map((p) => el('tr', { dataset: { name: p.name } },
      el('td', {}, p.name), el('td', {}, p.version), el('td', { class: 'muted' }, p.source || ''))),
    t ? `No package matches "${t}".` : 'No software reported.'),
    el('p', { class: 'muted', hidden: hits.length <= SHOWN }, `${SHOWN} of ${hits.length} shown: search to narrow.`));
    box.dataset.query = t;
  };
  q.addEventListener('input', show);
  show();
  return [el('div', { class: 'toolbar' }, q), box];
}

function history(changes) {
  return grid(['When', 'Change', 'Package', 'Version'], changes.map((c) => el('tr', { dataset: { change: c.change, name: c.name } },
    el('td', { title: c.at }, ago(c.at)), el('td', {}, c.change), el('td', {}, c.name),
    el('td', {}, [c.old_version, c.new_version].filter(Boolean).join(' → ')))), 'No changes recorded yet.', { id: 'agent-history' });
}

function checks(list) {
  return grid(['Policy', 'Check', 'State', 'Result', 'Changed', 'Last checked'], list.map((c) => el('tr', { dataset: { policy: c.policy, state: c.state } },
    el('td', {}, el('a', { href: '#/policies' }, c.policy)), el('td', {}, el('code', {}, c.check)),
    el('td', {}, el('span', { class: c.state === 'passed' ? 'ok' : 'error' }, c.state)), el('td', {}, c.summary || ''),
    el('td', { title: c.changed_at }, ago(c.changed_at)), el('td', {}, c.checked_at ? ago(c.checked_at) : ''))),
  'No check results: no policy applies, or none has reported.', { id: 'agent-checks' });
}

// section returns the agent's checks and inventory, filled in when read.
export function section(a) {
  const enc = encodeURIComponent(a.id);
  const error = errorLine({ id: 'agent-inventory-error' });
  const box = el('div', { id: 'agent-inventory' }, el('p', { class: 'muted' }, 'Loading the inventory…'));
  const status = el('span', { id: 'inventory-refresh-status', role: 'status', class: 'muted' });
  const refresh = api.can('technician') && !a.revoked ? el('button', { type: 'button', id: 'inventory-refresh', onclick: async () => {
    try {
      await api.request('POST', `/v1/agents/${enc}/inventory/refresh`);
      status.textContent = 'Asked: the agent reports shortly; reload to see it.';
      error.show(null);
    } catch (err) { error.show(err); }
  } }, 'Refresh inventory') : null;
  const load = async () => {
    const [ch, inv, hist] = await Promise.all([api.getJSON(`/v1/agents/${enc}/checks`), api.getJSON(`/v1/agents/${enc}/inventory?software=1`),
      api.getJSON(`/v1/agents/${enc}/inventory/history?limit=50`)]);
    box.replaceChildren(el('h2', {}, 'Checks'), checks(ch.checks),
      el('h2', {}, 'Hardware'), hardware(inv), el('h2', {}, 'Software'), ...software(inv.software || []),
      el('h2', {}, 'Software history'), history(hist));
    box.dataset.loaded = 'true';
  };
  load().catch((err) => { box.replaceChildren(); error.show(err); });
  return el('div', {}, el('div', { class: 'toolbar' }, el('h2', {}, 'Inventory and checks'), refresh, status), error, box);
}
