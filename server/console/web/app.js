// Entry point: log in (one-time link, API token form), then route between
// screens by the URL fragment (#/fleet, #/run?target=...). Each screen is a
// module exporting mount(main, params), which returns a function that
// unmounts it (closes its streams). New screens add a route here and a link
// in index.html's nav.
import * as api from './api.js';
import { el } from './dom.js';
import * as fleet from './fleet.js';
import * as run from './run.js';
import * as agent from './agent.js';
import * as job from './job.js';
import * as sessions from './sessions.js';
import * as audit from './audit.js';
import * as catalog from './catalog.js';
import * as terminal from './terminal.js';
import * as desktop from './desktop.js';
import * as loginScreen from './login.js';
import * as sites from './sites.js';
import * as alerts from './alerts.js';
import * as incidents from './incidents.js';
import * as reports from './reports.js';
import * as schedules from './schedules.js';
import * as policies from './policies.js';
import * as knownFixes from './knownfixes.js';

const routes = { fleet, run, agent, job, jobs: job, sessions, audit, catalog, terminal, desktop };
routes.alerts = alerts;
routes.incidents = incidents;
routes.reports = reports;
routes.schedules = schedules;
routes.policies = policies;
routes['known-fixes'] = knownFixes;

const main = document.getElementById('main');
let unmount = () => {};

function banner(text) {
  const b = document.getElementById('banner');
  b.textContent = text || '';
  b.hidden = !text;
}

function showUser(s) {
  document.getElementById('nav').hidden = !s;
  document.getElementById('who').hidden = !s;
  const whoSites = document.getElementById('who-sites');
  whoSites.textContent = '';
  whoSites.title = '';
  delete whoSites.dataset.sites;
  if (s) {
    document.getElementById('who-name').textContent = s.name;
    document.getElementById('who-role').textContent = s.role;
    // The sites the caller reaches: "· all sites" or "· Acme/HQ, Acme/Lyon".
    api.whoami().then((w) => {
      if (api.current() !== s) return; // logged out or in again meanwhile
      whoSites.textContent = `· ${sites.label(w.sites)}`;
      whoSites.title = `Sites you reach: ${sites.label(w.sites)}`;
      whoSites.dataset.sites = (w.sites || []).join('\n');
    }).catch(() => { whoSites.textContent = ''; });
  }
}

function parseRoute() {
  const h = location.hash.startsWith('#/') ? location.hash.slice(2) : 'fleet';
  const [path, query] = h.split('?', 2);
  const [name, id] = path.split('/', 2); // #/job/ID: params has id
  const params = new URLSearchParams(query || '');
  if (id) params.set('id', decodeURIComponent(id));
  return { name: routes[name] ? name : 'fleet', params };
}

function render() {
  unmount();
  main.replaceChildren();
  if (!api.current()) {
    unmount = loginScreen.mount(main, { onLogin: loggedIn });
    return;
  }
  const { name, params } = parseRoute();
  document.querySelectorAll('#nav a').forEach((a) => a.classList.toggle('active', a.dataset.screen === name));
  unmount = routes[name].mount(main, params) || (() => {});
}

function loggedIn(s) {
  banner('');
  showUser(s);
  render();
}

api.onLoggedOut((why) => {
  showUser(null);
  banner(why);
  render();
});

document.getElementById('logout').addEventListener('click', async () => {
  try {
    await api.logout();
  } catch (err) {
    banner(`log out: ${err.message}`);
  }
  showUser(null);
  render();
});

window.addEventListener('hashchange', () => { if (api.current()) render(); });

async function start() {
  // A one-time link: /login#pbl_... The secret is in the fragment, which the
  // browser never sends anywhere; drop it from the address bar and history
  // before using it.
  if (location.pathname === '/login') {
    const secret = location.hash.slice(1);
    history.replaceState(null, '', '/#/fleet');
    if (secret) {
      try {
        loggedIn(await api.login('link', secret));
        return;
      } catch (err) {
        banner(err.message);
      }
    }
  }
  // A refused single sign-on comes back as /#sso-error=MESSAGE.
  if (location.hash.startsWith('#sso-error=')) {
    let msg = location.hash.slice('#sso-error='.length);
    try { msg = decodeURIComponent(msg); } catch { /* show it as it came */ }
    history.replaceState(null, '', '/');
    banner(msg);
  }
  try {
    const s = await api.loadSession();
    showUser(s);
  } catch (err) {
    banner(`console session: ${err.message}`);
  }
  render();
}

start().catch((err) => {
  main.replaceChildren(el('p', { class: 'error' }, `console failed to start: ${err.message}`));
});
