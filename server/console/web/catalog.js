// Catalog: the signed plugins and scripts the relay holds, with signer,
// SHA-256, manifest (description, parameters, consent, restart) and the
// sites it is published to (agents of other sites may not download it).
import * as api from './api.js';
import { el, ago } from './dom.js';
import * as sites from './sites.js';

function manifest(a) {
  return el('details', {}, el('summary', {}, 'Manifest'),
    a.description ? el('p', {}, a.description) : null,
    el('p', { class: 'muted' }, [a.needs_consent ? 'asks the user at the machine' : 'runs without asking',
      a.may_reboot ? 'may restart the machine' : '', a.free_params ? 'takes any name=value parameter' : ''].filter(Boolean).join(' · ')),
    (a.params || []).length ? el('table', { class: 'grid params' },
      el('thead', {}, el('tr', {}, ['Parameter', 'Type', 'Default', 'Allowed', 'Description'].map((h) => el('th', {}, h)))),
      el('tbody', {}, a.params.map((p) => el('tr', {}, el('td', {}, p.name, p.required ? ' *' : ''), el('td', {}, p.type),
        el('td', {}, p.default || ''), el('td', {}, (p.allowed || []).join(', ')), el('td', {}, p.description || ''))))) : null);
}

export function mount(main) {
  const tbody = el('tbody', { id: 'catalog' });
  const error = el('p', { class: 'error', role: 'alert', hidden: true });
  main.append(el('section', { id: 'catalog-screen' }, el('h1', {}, 'Catalog'),
    el('p', { class: 'hint' }, 'Each agent runs only what a key in its allowed_signers file signed; the relay only checked the signature matches.'),
    error, el('table', { class: 'grid' }, el('thead', {}, el('tr', {},
      ['Name', 'Kind', 'Version', 'Platform', 'Sites', 'Signer', 'SHA-256', 'Published', ''].map((h) => el('th', {}, h)))), tbody)));
  Promise.all([api.getJSON('/v1/plugins'), api.getJSON('/v1/scripts')]).then(([plugins, scripts]) => {
    const all = [...plugins, ...scripts];
    tbody.replaceChildren(...all.map((a) => el('tr', { dataset: { sha256: a.sha256, kind: a.kind } },
      el('td', {}, el('strong', {}, a.name), manifest(a)), el('td', {}, a.kind), el('td', {}, a.version),
      el('td', {}, [a.os || 'any OS', a.arch].filter(Boolean).join('/')),
      el('td', { class: 'sites' }, Array.isArray(a.sites) ? sites.label(a.sites) : ''),
      el('td', { class: 'id' }, a.signer, el('div', {}, a.signer_key_type)),
      el('td', { class: 'id hash' }, a.sha256),
      el('td', { title: a.published_at }, `${ago(a.published_at)} by ${a.published_by}`),
      el('td', {}, api.can('technician') && a.name !== 'script'
        ? el('a', { href: `#/run?plugin=${encodeURIComponent(`${a.kind}:${a.name}`)}` }, 'Run…') : null))));
    if (!all.length) tbody.append(el('tr', { class: 'empty' }, el('td', { colspan: 9 }, 'Nothing published yet: patchbay plugins publish, patchbay scripts publish.')));
    main.querySelector('#catalog-screen').dataset.loaded = 'true';
  }).catch((err) => { error.textContent = err.message; error.hidden = false; });
  return () => {};
}
