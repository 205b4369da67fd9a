// Fleet: every agent, a page at a time (the relay sorts, filters and pages;
// the page never holds more than one page of rows), with a search box that
// takes a target selector or free text, sortable columns, and live
// online/offline changes from the relay's event stream. A site filter
// narrows the list to one of the caller's sites (the relay lists only
// those anyway).
import * as api from './api.js';
import { el, ago } from './dom.js';
import * as sites from './sites.js';

const PAGE = 100;

const columns = [
  { key: 'hostname', label: 'Hostname' },
  { key: null, label: 'Site' },
  { key: 'os', label: 'OS' },
  { key: 'version', label: 'Version' },
  { key: null, label: 'Tags' },
  { key: 'online', label: 'State' },
  { key: 'last_seen', label: 'Last seen' },
  { key: null, label: '' }, // actions: Terminal, Desktop (technician and admin)
];

// isSelector tells a target selector (site=paris, os in (linux,darwin))
// from free text (web-01, paris).
export function isSelector(s) {
  return /[=]/.test(s) || /\s(not)?in\s*\(/i.test(s);
}

export function mount(main, params) {
  const state = {
    search: params.get('q') || '',
    site: params.get('site') || '', // a site ID (or reference); '' for every site of the caller's
    sort: params.get('sort') || 'hostname',
    page: Math.max(0, parseInt(params.get('page') || '0', 10) || 0),
    total: 0,
  };
  let closed = false;
  let inflight = false;
  let dirty = false;
  let timer = 0;
  let rows = [];

  const search = el('input', { type: 'search', id: 'search', value: state.search, size: 48, spellcheck: 'false',
    placeholder: 'site=paris,os=linux  or  free text', 'aria-label': 'Search agents' });
  const searchError = el('p', { class: 'error', id: 'search-error', role: 'alert', hidden: true });
  const runButton = api.can('technician')
    ? el('button', { type: 'button', id: 'run', dataset: { action: 'run' }, onclick: () => {
      const t = isSelector(state.search) ? state.search : '';
      location.hash = `#/run?target=${encodeURIComponent(t)}`;
    } }, 'Run a fix…')
    : null;
  const siteFilter = sites.filter('fleet-site', state.site);
  siteFilter.select.addEventListener('change', () => { state.site = siteFilter.select.value; go(0); });
  const count = el('span', { id: 'fleet-count' });
  const live = el('span', { id: 'live', class: 'live', dataset: { state: 'connecting' } }, 'connecting…');
  const thead = el('tr', {});
  const tbody = el('tbody', { id: 'agents' });
  const prev = el('button', { type: 'button', id: 'prev', onclick: () => go(state.page - 1) }, '← Previous');
  const next = el('button', { type: 'button', id: 'next', onclick: () => go(state.page + 1) }, 'Next →');
  const range = el('span', { id: 'range' });

  main.append(el('section', { id: 'fleet' },
    el('div', { class: 'toolbar' }, search, el('label', {}, 'Site ', siteFilter.select), runButton, el('span', { class: 'spacer' }), count, live),
    el('p', { class: 'hint' }, 'A selector (', el('code', {}, 'os=linux,site=paris'), ', ',
      el('code', {}, 'hostname=web-*'), ', ', el('code', {}, 'site notin (lab,test)'),
      ') or text found in a hostname, ID, OS, version or tag.'),
    searchError,
    el('table', { class: 'grid' }, el('thead', {}, thead), tbody),
    el('div', { class: 'pager' }, prev, range, next)));

  function header() {
    const [desc, key] = state.sort.startsWith('-') ? [true, state.sort.slice(1)] : [false, state.sort];
    thead.replaceChildren(...columns.map((c) => {
      if (!c.key) return el('th', {}, c.label);
      const mark = c.key === key ? (desc ? ' ▼' : ' ▲') : '';
      return el('th', { 'aria-sort': c.key === key ? (desc ? 'descending' : 'ascending') : 'none' },
        el('button', { type: 'button', class: 'sort', dataset: { sort: c.key },
          onclick: () => { state.sort = c.key === key && !desc ? `-${c.key}` : c.key; go(0); } }, c.label + mark));
    }));
  }

  function remember() {
    const p = new URLSearchParams();
    if (state.search) p.set('q', state.search);
    if (state.site) p.set('site', state.site);
    if (state.sort !== 'hostname') p.set('sort', state.sort);
    if (state.page) p.set('page', String(state.page));
    const q = p.toString();
    history.replaceState(null, '', `#/fleet${q ? `?${q}` : ''}`);
  }

  function go(page) {
    state.page = Math.max(0, page);
    remember();
    header();
    refresh();
  }

  function renderRows() {
    const now = Date.now();
    tbody.replaceChildren(...rows.map((a) => el('tr', { dataset: { id: a.id, online: String(a.online) } },
      el('td', { class: 'host' }, el('a', { href: `#/agent/${a.id}` }, a.hostname || '(unknown)'), el('div', { class: 'id' }, a.id)),
      el('td', { class: 'site' }, a.site || ''),
      el('td', {}, [a.os, a.arch].filter(Boolean).join('/')),
      el('td', {}, a.version),
      el('td', { class: 'tags' }, Object.entries(a.tags || {}).sort().map(([k, v]) => el('span', { class: 'tag' }, `${k}=${v}`))),
      el('td', {}, el('span', { class: a.revoked ? 'state revoked' : a.online ? 'state online' : 'state offline' },
        a.revoked ? 'revoked' : a.online ? 'online' : 'offline')),
      el('td', { title: a.last_seen || '' }, a.online ? 'now' : ago(a.last_seen, now)),
      el('td', { class: 'actions' }, api.can('technician') && a.online && !a.revoked
        ? [el('a', { class: 'button', dataset: { action: 'terminal' },
          href: `#/terminal?${new URLSearchParams({ agent: a.id, name: a.hostname || a.id })}` }, 'Terminal'),
          el('a', { class: 'button', dataset: { action: 'desktop' },
            href: `#/desktop?${new URLSearchParams({ agent: a.id, name: a.hostname || a.id })}` }, 'Desktop')]
        : null))));
    if (rows.length === 0) {
      tbody.append(el('tr', { class: 'empty' }, el('td', { colspan: columns.length },
        state.search ? 'No agent matches this search.' : state.site ? 'No agent in this site.' : 'No agents enrolled yet: patchbay tokens create, then patchbay-agent enroll.')));
    }
  }

  async function refresh() {
    if (closed) return;
    if (inflight) { dirty = true; return; }
    inflight = true;
    dirty = false;
    const p = new URLSearchParams({ sort: state.sort, limit: String(PAGE), offset: String(state.page * PAGE) });
    const s = state.search.trim();
    if (s) p.set(isSelector(s) ? 'target' : 'q', s);
    if (state.site) p.set('site', state.site);
    try {
      const resp = await api.request('GET', `/v1/agents?${p}`);
      const list = await resp.json();
      if (closed) return;
      state.total = parseInt(resp.headers.get('X-Total-Count') || String(list.length), 10);
      const online = resp.headers.get('X-Online-Count') || '?';
      if (list.length === 0 && state.page > 0 && state.total > 0) {
        state.page = Math.floor((state.total - 1) / PAGE);
        inflight = false;
        remember();
        return refresh();
      }
      rows = list;
      searchError.hidden = true;
      count.textContent = `${state.total} agent${state.total === 1 ? '' : 's'} · ${online} online`;
      const first = state.total ? state.page * PAGE + 1 : 0;
      range.textContent = `${first}–${state.page * PAGE + list.length} of ${state.total}`;
      prev.disabled = state.page === 0;
      next.disabled = (state.page + 1) * PAGE >= state.total;
      renderRows();
      main.querySelector('#fleet').dataset.loaded = 'true';
    } catch (err) {
      if (closed) return;
      searchError.textContent = err.message;
      searchError.hidden = false;
    } finally {
      inflight = false;
    }
    if (dirty) refresh();
  }

  // Live changes: reload the page shown (at most every 300 ms) whenever
  // agents come or go; the relay has stored the change before it tells us.
  const events = new EventSource('/console/events');
  events.addEventListener('open', () => { live.dataset.state = 'open'; live.textContent = 'live'; });
  events.addEventListener('error', () => {
    if (events.readyState === EventSource.CLOSED) {
      live.dataset.state = 'closed';
      live.textContent = 'live updates stopped: reload the page';
    } else {
      live.dataset.state = 'connecting';
      live.textContent = 'reconnecting…';
    }
  });
  events.addEventListener('agents', () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
  events.addEventListener('logout', () => { events.close(); api.request('GET', '/console/session').catch(() => {}); });

  let typing = 0;
  search.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.search = search.value; go(0); }, 250);
  });
  const ticker = setInterval(renderRows, 30000); // keep "5 min ago" true

  header();
  refresh();
  return () => {
    closed = true;
    events.close();
    clearTimeout(timer);
    clearTimeout(typing);
    clearInterval(ticker);
  };
}
