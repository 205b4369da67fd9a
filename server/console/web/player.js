// Recording playback: a session's asciicast v2 recording (what the agent
// sent) played in the page with asciinema-player (vendor/, from npm; make
// web copies it). The recording is fetched here, with the session cookie,
// and checked before the player gets it as data, so that a missing,
// foreign or cut-off recording says so instead of showing a blank player.
import * as api from './api.js';
import { el } from './dom.js';

let loading = null;

// loadPlayer adds the player's script (an IIFE that sets the global
// AsciinemaPlayer) and stylesheet to the page, once.
export function loadPlayer() {
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      if (window.AsciinemaPlayer) { resolve(window.AsciinemaPlayer); return; }
      document.head.append(el('link', { rel: 'stylesheet', href: '/assets/vendor/asciinema-player.css' }));
      const s = el('script', { src: '/assets/vendor/asciinema-player.min.js' });
      s.addEventListener('load', () => (window.AsciinemaPlayer ? resolve(window.AsciinemaPlayer) : reject(new Error('the recording player did not load'))));
      s.addEventListener('error', () => reject(new Error('the recording player could not be loaded: run make web and rebuild the relay')));
      document.head.append(s);
    });
    loading.catch(() => { loading = null; });
  }
  return loading;
}

// checkCast checks an asciicast v2 recording and returns {data, events,
// duration, note}: data is what the player gets (the header and every whole
// event), note says what was left out. It throws when nothing can be played.
export function checkCast(text) {
  const lines = text.split('\n');
  let header;
  try { header = JSON.parse(lines[0]); } catch { header = null; }
  if (!header || typeof header !== 'object' || header.version !== 2) {
    throw new Error('this recording is not asciicast v2 (its first line is not a version 2 header)');
  }
  const keep = [lines[0]];
  let events = 0;
  let duration = 0;
  let note = '';
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    let ev = null;
    try { ev = JSON.parse(line); } catch { /* cut off or damaged */ }
    if (!Array.isArray(ev) || typeof ev[0] !== 'number' || typeof ev[1] !== 'string') {
      const last = lines.slice(i + 1).every((l) => l.trim() === '');
      note = last
        ? 'The recording ends with a partial event (the session is still live, or the agent stopped while writing): it plays up to there.'
        : `The recording is damaged at line ${i + 1}: it plays up to there.`;
      break;
    }
    keep.push(line);
    events++;
    duration = ev[0];
  }
  if (events === 0) throw new Error(note ? `nothing to play: ${note}` : 'this recording has no output yet');
  return { data: keep.join('\n') + '\n', events, duration, note };
}

// play fetches a session's recording and plays it in box (replacing what
// box holds). It returns a function that disposes of the player. box's
// data-state says where it is: loading, ready, playing, ended or error.
export function play(box, session) {
  let player = null;
  let disposed = false;
  const msg = el('p', { class: 'muted', id: 'player-message', role: 'status' }, 'Loading the recording…');
  const screen = el('div', { id: 'player' });
  box.dataset.state = 'loading';
  box.dataset.session = session.id;
  box.replaceChildren(msg, screen);
  (async () => {
    try {
      const resp = await api.request('GET', `/v1/sessions/${session.id}/recording`);
      const cast = checkCast(await resp.text());
      const AP = await loadPlayer();
      if (disposed) return;
      msg.textContent = cast.note || `${cast.events} events, ${cast.duration.toFixed(1)} s.`;
      msg.className = cast.note ? 'error' : 'muted';
      box.dataset.partial = String(!!cast.note);
      player = AP.create({ data: cast.data }, screen, { autoPlay: true, idleTimeLimit: 2, fit: 'width', terminalFontSize: '13px' });
      player.addEventListener('play', () => { box.dataset.state = 'playing'; });
      player.addEventListener('playing', () => { box.dataset.state = 'playing'; });
      player.addEventListener('ended', () => { box.dataset.state = 'ended'; });
      box.dataset.state = 'ready';
    } catch (err) {
      if (disposed) return;
      msg.textContent = err.status === 404 ? err.message : `Cannot play this recording: ${err.message}`;
      msg.className = 'error';
      box.dataset.state = 'error';
    }
  })();
  return () => {
    disposed = true;
    if (player) player.dispose();
    box.replaceChildren();
    delete box.dataset.state;
  };
}
