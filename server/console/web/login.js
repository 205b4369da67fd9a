// The login screen: a one-time link (patchbay console) logs in by itself;
// people log in with their user name, password and, when they have TOTP,
// the code from their authenticator app (or a recovery code); an API token
// can be pasted instead. When the relay has single sign-on, a "Sign in with
// SSO" button leads to the company's identity provider (OpenID Connect):
// the relay runs that flow and sends the browser back to Fleet, or here
// with #sso-error=MESSAGE (app.js shows it).
import * as api from './api.js';
import { el } from './dom.js';

export function mount(main, { onLogin }) {
  const msg = el('p', { class: 'error', id: 'login-error', role: 'alert', hidden: true });
  const fail = (err) => {
    msg.textContent = err.message;
    msg.hidden = false;
  };

  const user = el('input', { type: 'text', id: 'login-user', name: 'username', autocomplete: 'username',
    required: true, size: 32, autocapitalize: 'none', spellcheck: 'false' });
  const password = el('input', { type: 'password', id: 'login-password', name: 'password',
    autocomplete: 'current-password', required: true, size: 32 });
  const code = el('input', { type: 'text', id: 'login-code', name: 'code', autocomplete: 'one-time-code',
    inputmode: 'numeric', size: 20, placeholder: '123456' });
  const pwForm = el('form', { id: 'login-password-form', class: 'card login' },
    el('h1', {}, 'Log in to Patchbay'),
    el('label', { for: 'login-user' }, 'User name'), user,
    el('label', { for: 'login-password' }, 'Password'), password,
    el('label', { for: 'login-code' }, 'Code from your authenticator app, or a recovery code (if you use two-factor login)'), code,
    el('button', { type: 'submit' }, 'Log in'),
    msg);
  pwForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.hidden = true;
    try {
      const s = await api.login('password', password.value, { user: user.value.trim(), code: code.value.trim() });
      password.value = '';
      code.value = '';
      onLogin(s);
    } catch (err) {
      code.value = '';
      fail(err);
      if (err.code === 'totp_required') code.focus();
    }
  });

  const token = el('input', { type: 'password', id: 'login-token', name: 'token', autocomplete: 'off',
    placeholder: 'pbt_…', required: true, size: 48 });
  const form = el('form', { id: 'login-form', class: 'card login' },
    el('p', {}, 'Or run ', el('code', {}, 'patchbay console'), ' in a terminal where you are logged in: it opens a one-time link here. Or paste an API token:'),
    el('label', { for: 'login-token' }, 'API token'), token,
    el('button', { type: 'submit' }, 'Log in with the token'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.hidden = true;
    try {
      const s = await api.login('token', token.value.trim());
      token.value = '';
      onLogin(s);
    } catch (err) {
      fail(err);
    }
  });
  main.append(pwForm, form);
  user.focus();

  // Single sign-on: a plain navigation to the relay, which redirects to the
  // provider (the flow's cookie must be set by a top-level response).
  const sso = el('div', { id: 'login-sso-card', class: 'card login', hidden: true },
    el('p', {}, 'Your organisation signs you in:'),
    el('a', { id: 'login-sso', class: 'button', href: '/console/oidc/start' }, 'Sign in with SSO'));
  main.prepend(sso);
  let live = true;
  api.loginOptions().then((o) => {
    if (live && o.sso) {
      sso.hidden = false;
      if (!o.password) pwForm.hidden = true;
    }
  }).catch(() => { /* the other forms still work */ });
  return () => { live = false; };
}
