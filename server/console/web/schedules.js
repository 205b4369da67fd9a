// Schedules: the schedules the caller sees (GET /v1/schedules) with their
// next and last firing, last job and error; Pause/Resume and Delete (asked
// in place) for technicians. Below, the sites' maintenance windows
// (GET /v1/windows) and, for technicians, forms that create a window and a
// patch policy (POST /v1/windows, /v1/patch-policies). Every change is the
// API's, audited there.
import * as api from './api.js';
import { el, ago, grid, errorLine, poller, confirmButton, jsonForm, field, changer } from './dom.js';
import * as sites from './sites.js';

function when(iso) {
  return iso ? el('span', { title: iso }, new Date(iso).toLocaleString()) : '';
}

function scheduleRows(list, act) {
  const tech = api.can('technician');
  return list.map((s) => el('tr', { dataset: { id: s.id, paused: String(s.paused), kind: s.kind } },
    el('td', {}, s.name, el('div', { class: 'id' }, s.id.slice(0, 8))),
    el('td', {}, s.kind, s.site ? el('div', { class: 'muted' }, s.site) : null),
    el('td', {}, el('code', {}, s.cron), el('div', { class: 'muted' }, s.tz), s.window ? el('div', { class: 'muted' }, `window ${s.window}`) : null),
    el('td', {}, s.paused ? el('span', { class: 'state offline' }, 'paused') : when(s.next_fire)),
    el('td', { title: s.last_fire || '' }, s.last_fire ? ago(s.last_fire) : 'never'),
    el('td', {}, s.last_job ? el('a', { href: `#/job/${s.last_job}` }, `job ${s.last_job.slice(0, 8)}`) : ''),
    el('td', { class: 'error' }, s.last_error || ''),
    el('td', { class: 'actions' }, tech ? [
      el('button', { type: 'button', dataset: { action: s.paused ? 'resume' : 'pause' }, onclick: () => act(s, s.paused ? 'resume' : 'pause') }, s.paused ? 'Resume' : 'Pause'),
      confirmButton('Delete', `Delete ${s.name}?`, () => act(s, 'delete'), { dataset: { action: 'delete' } }),
    ] : null)));
}

function windowRows(list, remove) {
  const tech = api.can('technician');
  return list.map((w) => el('tr', { dataset: { id: w.id, site: w.site } },
    el('td', { class: 'site' }, w.site), el('td', {}, w.name),
    el('td', {}, el('code', {}, w.cron_start), ` for ${w.duration}`, el('div', { class: 'muted' }, w.tz)),
    el('td', {}, w.open ? el('span', { class: 'state online' }, 'open now') : when(w.next_open)),
    el('td', { class: 'actions' }, tech ? confirmButton('Delete', `Delete window ${w.name}?`, () => remove(w), { dataset: { action: 'delete' } }) : null)));
}

// forms builds the window and patch policy forms; onDone refreshes.
function forms(onDone) {
  const site = (id) => el('select', { id, 'aria-label': 'Site' }, el('option', { value: '' }, 'Choose a site…'));
  const wSite = site('window-site');
  const wName = el('input', { id: 'window-name', placeholder: 'nights' });
  const wCron = el('input', { id: 'window-cron', placeholder: '0 22 * * *', spellcheck: 'false' });
  const wDur = el('input', { id: 'window-duration', placeholder: '4h', size: 6 });
  const wTZ = el('input', { id: 'window-tz', placeholder: 'UTC', size: 16 });
  const win = jsonForm(el('form', { id: 'window-form', class: 'card form' }, el('h2', {}, 'New maintenance window'),
    el('div', { class: 'toolbar' }, field('Site', wSite), field('Name', wName), field('Opens (cron)', wCron), field('For', wDur), field('Time zone', wTZ)),
    el('div', { class: 'toolbar' }, el('button', { type: 'submit' }, 'Create the window'))),
  'POST', '/v1/windows', () => ({ site: wSite.value, name: wName.value.trim(), cron_start: wCron.value.trim(), duration: wDur.value.trim(), tz: wTZ.value.trim() }),
  () => { win.reset(); onDone(); });

  const pSite = site('patch-site');
  const pName = el('input', { id: 'patch-name', placeholder: 'patch SITE' });
  const pWindow = el('select', { id: 'patch-window', 'aria-label': 'Window' }, el('option', { value: '' }, 'Choose a window…'));
  const pCats = el('select', { id: 'patch-categories' }, el('option', { value: 'security' }, 'security updates'), el('option', { value: 'all' }, 'all updates'));
  const pReboot = el('select', { id: 'patch-reboot' }, ['ask', 'never', 'force-in-window'].map((v) => el('option', { value: v }, v)));
  const pTarget = el('input', { id: 'patch-target', placeholder: 'all (of the site)', spellcheck: 'false' });
  const patch = jsonForm(el('form', { id: 'patch-form', class: 'card form' }, el('h2', {}, 'New patch policy'),
    el('div', { class: 'toolbar' }, field('Site', pSite), field('Window', pWindow), field('Name', pName)),
    el('div', { class: 'toolbar' }, field('Install', pCats), field('Reboot', pReboot, 'ask the user, never, or forced only inside the window with nobody logged in'), field('Target', pTarget)),
    el('div', { class: 'toolbar' }, el('button', { type: 'submit' }, 'Create the patch policy'))),
  'POST', '/v1/patch-policies', () => ({ site: pSite.value, window: pWindow.value, name: pName.value.trim(), categories: pCats.value, reboot: pReboot.value, target: pTarget.value.trim() }),
  () => { patch.reset(); onDone(); });

  sites.listSites().then((list) => {
    for (const s of [wSite, pSite]) s.append(...list.map((x) => el('option', { value: x.id }, x.full_name)));
  }).catch(() => { /* the relay says which site it cannot find */ });
  const setWindows = (ws) => {
    const v = pWindow.value;
    pWindow.replaceChildren(el('option', { value: '' }, 'Choose a window…'), ...ws.map((w) => el('option', { value: w.id }, `${w.site}/${w.name}`)));
    pWindow.value = v;
  };
  return { nodes: [win, patch], setWindows };
}

export function mount(main) {
  const schedBox = el('div', { id: 'schedules' });
  const winBox = el('div', { id: 'windows' });
  const error = errorLine({ id: 'schedules-error' });
  const actError = errorLine({ id: 'schedules-action-error' });
  const f = api.can('technician') ? forms(() => p.refresh()) : null;
  main.append(el('section', { id: 'schedules-screen' }, el('h1', {}, 'Schedules'), error, actError, schedBox,
    el('h2', {}, 'Maintenance windows'), winBox, ...(f ? f.nodes : [])));

  const change = changer(actError, () => p.refresh());
  const act = (s, verb) => (verb === 'delete' ? change('DELETE', `/v1/schedules/${s.id}`) : change('POST', `/v1/schedules/${s.id}/${verb}`));
  const removeWindow = (w) => change('DELETE', `/v1/windows/${w.id}`);
  const p = poller(async () => {
    const [list, windows] = await Promise.all([api.getJSON('/v1/schedules'), api.getJSON('/v1/windows')]);
    if (p.stopped()) return;
    schedBox.replaceChildren(grid(['Name', 'Kind', 'When', 'Next fire', 'Last fire', 'Last job', 'Last error', ''],
      scheduleRows(list, act), 'No schedules: patchbay schedules create makes one.', { class: 'schedules' }));
    winBox.replaceChildren(grid(['Site', 'Window', 'Opens', 'Next open', ''], windowRows(windows, removeWindow), 'No maintenance windows.', { class: 'windows' }));
    if (f) f.setWindows(windows);
    schedBox.dataset.loaded = 'true';
  }, error.show);
  return () => p.stop();
}
