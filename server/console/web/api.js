// The console's only way to the relay: the same REST API as the CLI, with
// the session cookie (sent by the browser) and the CSRF token (sent by us on
// every request that changes something).

let session = null; // {name, role, method, csrf, expires_at, idle_seconds}
let who = null; // the promise of the session's GET /v1/whoami, asked once

export const roleRank = { viewer: 1, auditor: 2, technician: 3, admin: 4 };

export function current() { return session; }

// whoami is the relay's GET /v1/whoami for the session (asked once per
// session): {name, role, user, sites: ["ORG/SITE"...] or ["all"], ...}.
export function whoami() {
  if (!who) {
    const asked = getJSON('/v1/whoami');
    who = asked;
    asked.catch(() => { if (who === asked) who = null; }); // ask again next time
  }
  return who;
}

// everySite reports whether whoami's sites are every site ("all").
export function everySite(w) {
  return !!w && Array.isArray(w.sites) && w.sites.includes('all');
}

// can reports whether the logged-in role is at least role. The API checks
// the same thing again; this only hides what would be refused.
export function can(role) {
  return session !== null && roleRank[session.role] >= roleRank[role];
}

// ApiError carries the relay's status and message ({"error": ...}).
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function errorOf(resp) {
  let msg = `${resp.status} ${resp.statusText}`;
  let code = '';
  try {
    const body = await resp.json();
    if (body && typeof body.error === 'string') msg = body.error;
    if (body && typeof body.code === 'string') code = body.code;
  } catch { /* not JSON: keep the status line */ }
  const err = new ApiError(resp.status, msg);
  err.code = code; // e.g. 'totp_required'
  return err;
}

// request calls the relay and returns the Response; non-2xx throws ApiError.
// A 401 also tells the app (onLoggedOut) so it can show the login form.
export async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD' && session) headers['X-CSRF-Token'] = session.csrf;
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (!resp.ok) {
    const err = await errorOf(resp);
    if (resp.status === 401 && session !== null) {
      session = null;
      who = null;
      loggedOutHandlers.forEach((fn) => fn(err.message));
    }
    throw err;
  }
  return resp;
}

export async function getJSON(path) {
  return (await request('GET', path)).json();
}

const loggedOutHandlers = [];
export function onLoggedOut(fn) { loggedOutHandlers.push(fn); }

// loadSession asks the relay who is logged in; null when nobody is.
export async function loadSession() {
  const resp = await fetch('/console/session', { credentials: 'same-origin', cache: 'no-store' });
  if (resp.status === 401) return null;
  if (!resp.ok) throw await errorOf(resp);
  who = null;
  session = await resp.json();
  return session;
}

// login exchanges a one-time link's secret, an API token, or (method
// 'password') a password with extra {user, code} for a session.
export async function login(method, secret, extra = {}) {
  const resp = await fetch('/console/login', {
    method: 'POST', credentials: 'same-origin', cache: 'no-store',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ method, secret, ...extra }),
  });
  if (!resp.ok) throw await errorOf(resp);
  who = null;
  session = await resp.json();
  return session;
}

// loginOptions asks the relay which ways in it offers: {password, sso}.
export async function loginOptions() {
  const resp = await fetch('/console/login-options', { credentials: 'same-origin', cache: 'no-store' });
  if (!resp.ok) throw await errorOf(resp);
  return resp.json();
}

export async function logout() {
  try {
    await request('POST', '/console/logout');
  } finally {
    session = null;
    who = null;
  }
}
