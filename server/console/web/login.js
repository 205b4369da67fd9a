// The login screen: a one-time link (patchbay console) logs in by itself;
// this form takes an API token. Password and single sign-on methods (the
// accounts issue) add forms here that call api.login with their method.
import * as api from './api.js';
import { el } from './dom.js';

export function mount(main, { onLogin }) {
  const token = el('input', { type: 'password', id: 'login-token', name: 'token', autocomplete: 'off',
    placeholder: 'pbt_…', required: true, size: 48 });
  const msg = el('p', { class: 'error', id: 'login-error', role: 'alert', hidden: true });
  const form = el('form', { id: 'login-form', class: 'card login' },
    el('h1', {}, 'Log in to Patchbay'),
    el('p', {}, 'Run ', el('code', {}, 'patchbay console'), ' in a terminal where you are logged in: it opens a one-time link here. Or paste an API token:'),
    el('label', { for: 'login-token' }, 'API token'), token,
    el('button', { type: 'submit' }, 'Log in'),
    msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.hidden = true;
    try {
      const s = await api.login('token', token.value.trim());
      token.value = '';
      onLogin(s);
    } catch (err) {
      msg.textContent = err.message;
      msg.hidden = false;
    }
  });
  main.append(form);
  token.focus();
  return () => {};
}
