// Sessions: live and past interactive sessions (who, where, why, the
// consent decision, how long), refreshed every few seconds; End for a live
// session (your own; an admin: any); Play a recording in the page (see
// player.js) and its download link.
import * as api from './api.js';
import { el, ago } from './dom.js';
import * as player from './player.js';

const LIVE = ['requested', 'approved'];

// duration describes how long a session lasted (or has lasted so far).
export function duration(s, now = Date.now()) {
  if (!s.started) return '';
  const secs = Math.max(0, Math.round(((s.ended ? Date.parse(s.ended) : now) - Date.parse(s.started)) / 1000));
  if (secs < 60) return `${secs} s`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ${secs % 60} s`;
  return `${Math.floor(secs / 3600)} h ${Math.floor((secs % 3600) / 60)} min`;
}

// sessionTable renders sessions; onEnd(s) is called by a row's End button,
// onPlay(s) (when given) by its Play button.
export function sessionTable(list, onEnd, onPlay) {
  const me = api.current();
  const rows = list.map((s) => {
    const mayEnd = LIVE.includes(s.state) && api.can('technician') && (me.role === 'admin' || me.name === s.technician);
    // Recordings: the session's own technician, auditors and admins (the API decides the same).
    const mayRead = s.recording_size > 0 && (me.role === 'admin' || me.role === 'auditor' || me.name === s.technician);
    const c = s.consent || {};
    return el('tr', { dataset: { id: s.id, state: s.state } },
      el('td', {}, s.technician),
      el('td', {}, el('a', { href: `#/agent/${s.agent_id}` }, s.hostname || s.agent_id)),
      el('td', { class: 'site' }, s.site || ''),
      el('td', {}, s.reason),
      el('td', {}, el('span', { class: `state ${LIVE.includes(s.state) ? 'online' : 'offline'}` }, s.state === 'approved' && !s.ended ? 'live' : s.state)),
      el('td', {}, [c.decision, c.by ? `by ${c.by}` : '', c.mode ? `(${c.mode})` : ''].filter(Boolean).join(' '), s.message ? el('div', { class: 'muted' }, s.message) : null),
      el('td', { title: s.requested }, ago(s.requested)),
      el('td', {}, duration(s), s.end_by ? el('div', { class: 'muted' }, `ended by ${s.end_by}${s.end_reason ? `: ${s.end_reason}` : ''}`) : null),
      el('td', { class: 'actions' }, mayRead && onPlay ? el('button', { type: 'button', class: 'play', dataset: { play: s.id }, onclick: () => onPlay(s) }, 'Play') : null,
        mayRead ? el('a', { href: `/v1/sessions/${s.id}/recording`, download: `session-${s.id}.cast` }, 'Recording') : '',
        mayEnd ? el('button', { type: 'button', dataset: { action: 'end' }, onclick: () => onEnd(s) }, 'End') : null));
  });
  if (!rows.length) rows.push(el('tr', { class: 'empty' }, el('td', { colspan: 9 }, 'No sessions.')));
  return el('table', { class: 'grid' },
    el('thead', {}, el('tr', {}, ['Who', 'Where', 'Site', 'Why', 'State', 'Consent', 'Requested', 'Duration', ''].map((h) => el('th', {}, h)))),
    el('tbody', { class: 'sessions' }, rows));
}

export function mount(main) {
  let closed = false;
  let timer = 0;
  let stopPlayer = null;
  const box = el('div', { id: 'sessions' });
  const error = el('p', { class: 'error', role: 'alert', hidden: true });
  const playerTitle = el('h2', {});
  const playerBox = el('div', { id: 'player-box' });
  const closePlayer = () => {
    if (stopPlayer) stopPlayer();
    stopPlayer = null;
    playerPanel.hidden = true;
  };
  const playerPanel = el('section', { id: 'player-panel', class: 'player-panel', hidden: true },
    el('div', { class: 'toolbar' }, playerTitle, el('span', { class: 'spacer' }),
      el('button', { type: 'button', id: 'player-close', onclick: closePlayer }, 'Close')),
    playerBox);
  main.append(el('section', { id: 'sessions-screen' }, el('h1', {}, 'Sessions'), error, playerPanel, box));

  function play(s) {
    closePlayer();
    playerTitle.textContent = `Recording: ${s.technician} on ${s.hostname || s.agent_id}${s.reason ? ` (${s.reason})` : ''}`;
    playerPanel.hidden = false;
    stopPlayer = player.play(playerBox, s);
  }

  async function end(s) {
    const reason = window.prompt(`End the session on ${s.hostname}? Reason (shown in the audit log):`, '');
    if (reason === null) return;
    try {
      await api.request('POST', `/v1/sessions/${s.id}/end`, { reason });
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
    refresh();
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const list = await api.getJSON('/v1/sessions?limit=200');
      if (closed) return;
      box.replaceChildren(sessionTable(list, end, play));
      box.dataset.loaded = 'true';
    } catch (err) {
      if (closed) return;
      error.textContent = err.message;
      error.hidden = false;
    }
    timer = setTimeout(refresh, 3000);
  }
  refresh();
  return () => { closed = true; clearTimeout(timer); closePlayer(); };
}
