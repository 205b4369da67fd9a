// Run a fix: the form generated from the catalog comes with the next
// console release. Until then this screen hands the technician the CLI
// command for the agents they selected on the Fleet screen.
import * as api from './api.js';
import { el } from './dom.js';

export function mount(main, params) {
  const target = params.get('target') || '';
  const q = target ? ` --target '${target.replaceAll("'", "'\\''")}'` : ' --target SELECTOR';
  main.append(el('section', { class: 'card', id: 'run-screen' },
    el('h1', {}, 'Run a fix'),
    api.can('technician')
      ? [el('p', {}, 'The Run a fix form is not in the console yet. From a terminal:'),
        el('pre', {}, `patchbay run PLUGIN${q} --dry-run --wait`)]
      : el('p', { class: 'error' }, 'Running fixes needs the technician role.'),
    el('p', {}, el('a', { href: '#/fleet' }, '← Back to the fleet'))));
  return () => {};
}
