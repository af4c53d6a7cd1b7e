/* The experiments list: one aggregate call (GET /api/v1/overview), sorted and filtered here. */
'use strict';

Tuner.start(async () => {
  const { el, num, time } = Tuner;
  const table = document.getElementById('experiments');
  const tbody = table.querySelector('tbody');
  const filter = document.getElementById('filter');
  const phaseFilter = document.getElementById('phase-filter');
  const nsFilter = document.getElementById('ns-filter');
  const count = document.getElementById('count');
  const empty = document.getElementById('empty');
  const params = new URLSearchParams(location.search);
  let rows = [];
  let sortKey = params.get('sort') || 'createdAt';
  let descending = params.get('order') ? params.get('order') === 'desc' : true;
  filter.value = params.get('q') || '';
  phaseFilter.value = params.get('phase') || '';

  const value = (r, key) => {
    if (key === 'progress') return r.maxTrialCount ? r.done / r.maxTrialCount : r.done;
    return r[key];
  };

  function row(r) {
    const max = r.maxTrialCount;
    const pct = max ? Math.min(100, (100 * r.done) / max) : 0;
    return el('tr', { dataset: { name: r.name, namespace: r.namespace } },
      el('td', {}, el('a', { href: Tuner.expUrl(r.namespace, r.name) }, r.name)),
      el('td', {}, r.namespace),
      el('td', {}, Tuner.badge(r.phase, r.reason)),
      el('td', { class: 'progress-cell', title: r.trials + ' trials' },
        el('div', { class: 'progress' }, el('span', { style: 'width:' + pct.toFixed(1) + '%' })),
        el('span', { class: 'small' }, r.done + ' / ' + (max === null ? '∞' : max))),
      el('td', { class: 'num' }, r.running),
      el('td', { class: r.failed ? 'num bad' : 'num' }, r.failed),
      el('td', { class: 'num', title: r.objectiveType + ' ' + r.objectiveMetric }, num(r.best)),
      el('td', {}, r.algorithm),
      el('td', { title: r.createdAt }, time(r.createdAt)));
  }

  function render() {
    const text = filter.value.trim().toLowerCase();
    const phase = phaseFilter.value;
    const ns = nsFilter.value;
    const shown = rows.filter((r) => (!phase || r.phase === phase) && (!ns || r.namespace === ns) &&
      (!text || (r.name + ' ' + r.namespace + ' ' + r.algorithm).toLowerCase().includes(text)));
    const sign = descending ? -1 : 1;
    shown.sort((a, b) => {
      const x = value(a, sortKey); const y = value(b, sortKey);
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * sign;
    });
    for (const th of table.querySelectorAll('th[data-key]')) {
      th.classList.toggle('asc', th.dataset.key === sortKey && !descending);
      th.classList.toggle('desc', th.dataset.key === sortKey && descending);
    }
    tbody.replaceChildren(...shown.map(row));
    count.textContent = shown.length === rows.length ? rows.length + ' experiments'
      : shown.length + ' of ' + rows.length + ' experiments';
    if (rows.length === 0) {
      empty.replaceChildren(
        el('p', {}, 'No experiments yet — submit one:'),
        el('pre', {}, 'tuner submit spec.yaml --server ' + location.origin),
        el('p', { class: 'muted' }, 'or run one locally without a server: tuner run spec.yaml'));
    } else if (shown.length === 0) {
      empty.replaceChildren(el('p', {}, 'No experiment matches the filter.'));
    }
    empty.hidden = shown.length > 0;
    table.hidden = shown.length === 0;
    const url = new URLSearchParams();
    if (filter.value) url.set('q', filter.value);
    if (phase) url.set('phase', phase);
    if (ns) url.set('namespace', ns);
    if (sortKey !== 'createdAt' || !descending) { url.set('sort', sortKey); url.set('order', descending ? 'desc' : 'asc'); }
    const search = url.toString();
    history.replaceState(null, '', search ? '?' + search : location.pathname);
  }

  for (const th of table.querySelectorAll('th[data-key]')) {
    th.addEventListener('click', () => {
      if (sortKey === th.dataset.key) descending = !descending;
      else { sortKey = th.dataset.key; descending = ['createdAt', 'progress', 'running', 'failed'].includes(sortKey); }
      render();
    });
  }
  filter.addEventListener('input', render);
  phaseFilter.addEventListener('change', render);
  nsFilter.addEventListener('change', render);

  async function load() {
    rows = await Tuner.api('overview?limit=5000');
    Tuner.clearError();
    const namespaces = [...new Set(rows.map((r) => r.namespace))].sort();
    const chosen = nsFilter.value || params.get('namespace') || '';
    nsFilter.replaceChildren(el('option', { value: '' }, 'All namespaces'),
      ...namespaces.map((n) => el('option', { value: n }, n)));
    nsFilter.value = namespaces.includes(chosen) ? chosen : '';
    render();
  }
  await load();
  Tuner.ready('list');
  // Light refresh while anything runs: one aggregate call.
  setInterval(() => {
    if (document.hidden || !rows.some((r) => r.phase === 'Running' || r.phase === 'Created')) return;
    load().catch(Tuner.showError);
  }, 5000);
});
