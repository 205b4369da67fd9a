// Sites: the sites the caller reaches (GET /v1/sites lists only those), for
// the site filters of Fleet and Audit, the agent's "Move to site…" control
// and the header's list of the caller's sites.
import * as api from './api.js';
import { el } from './dom.js';

// label describes whoami's sites: "all sites", or "Acme/HQ, Acme/Lyon".
export function label(sites) {
  if (!Array.isArray(sites) || !sites.length) return 'no sites';
  if (sites.includes('all')) return 'all sites';
  return sites.join(', ');
}

// listSites reads the sites the caller reaches, sorted by full name.
export async function listSites() {
  const sites = await api.getJSON('/v1/sites');
  return sites.sort((a, b) => a.full_name.localeCompare(b.full_name));
}

// filter builds a site <select> ("All my sites", then each site the caller
// reaches, by ID) with value selected: a site ID, or a reference (a name,
// "ORG/SITE") the relay resolves, shown as given until the list says which
// site it is. ready resolves to the sites listed (empty when they could not
// be read: the select then only offers "All my sites" and what was given).
export function filter(id, value) {
  const select = el('select', { id, 'aria-label': 'Site' }, el('option', { value: '' }, 'All my sites'));
  if (value) select.append(el('option', { value, selected: true }, value));
  const ready = listSites().then((sites) => {
    const known = value ? sites.find((s) => s.id === value || s.full_name.toLowerCase() === value.toLowerCase() || s.name === value) : null;
    const chosen = known && select.value === value ? known.id : select.value;
    select.replaceChildren(el('option', { value: '' }, 'All my sites'),
      value && !known ? el('option', { value }, value) : null,
      ...sites.map((s) => el('option', { value: s.id, title: `${s.agents} agent${s.agents === 1 ? '' : 's'}` }, s.full_name)));
    select.value = chosen;
    select.dataset.loaded = 'true';
    return sites;
  }).catch((err) => {
    select.title = `the sites could not be read: ${err.message}`;
    select.dataset.loaded = 'error';
    return [];
  });
  return { select, ready };
}
