/* The experiment page: status, leaderboard (paged on the server), plots; live via SSE. */
'use strict';

Tuner.start(async () => {
  const { api, el, num, time, badge, plot, emptyPlot } = Tuner;
  const ns = document.body.dataset.namespace;
  const name = document.body.dataset.name;
  const base = 'experiments/' + encodeURIComponent(name);
  const qs = Tuner.q(ns);
  const PAGE = 50;
  const $ = (id) => document.getElementById(id);
  const board = { metric: null, order: 'best', offset: 0, state: '' };
  let experiment = null;
  let metrics = [];
  let parameters = [];
  let specText = '';

  // -- status ----------------------------------------------------------------------------------
  async function loadStatus() {
    experiment = await api(base + '?' + qs);
    const spec = experiment.spec;
    const status = experiment.status;
    metrics = [spec.objective.objectiveMetricName, ...(spec.objective.additionalMetricNames || [])];
    parameters = spec.parameters.map((p) => p.name);
    document.title = name + ' · ' + status.phase + ' · tuner';
    const phase = $('phase');
    phase.textContent = status.phase;
    phase.className = 'badge state-' + status.phase;
    $('reason').textContent = [status.reason, status.message].filter(Boolean).join(': ');
    const counts = status.trialCounts;
    const done = Object.entries(counts).filter(([s]) => s !== 'Running' && s !== 'Created')
      .reduce((a, [, n]) => a + n, 0);
    const max = spec.maxTrialCount;
    $('done').textContent = done;
    $('done').dataset.done = done;
    $('max').textContent = max === undefined || max === null ? '∞' : max;
    $('progress-bar').style.width = (max ? Math.min(100, (100 * done) / max) : 0) + '%';
    $('counts').replaceChildren(...Object.entries(counts).filter(([, n]) => n > 0)
      .map(([s, n]) => el('span', { class: 'count' }, badge(s), ' ' + n)));
    $('message').textContent = status.stepsWithoutStopping && status.stepsWithoutStopping > status.totalSteps
      ? status.totalSteps + ' steps run; about ' + status.stepsWithoutStopping + ' without early stopping'
      : (status.totalSteps ? status.totalSteps + ' steps run' : '');
    const best = status.currentOptimalTrial;
    if (Array.isArray(best)) {  // several objectives: the Pareto front
      $('optimal').replaceChildren(
        el('p', {}, 'Pareto front: ' + best.length + ' trial' + (best.length === 1 ? '' : 's')),
        el('p', { class: 'front' }, ...best.map((b) => el('a', { href: Tuner.trialUrl(ns, name, b.bestTrialName) }, b.bestTrialName + ' '))));
    } else if (best) {
      $('optimal').replaceChildren(
        el('p', {}, el('a', { href: Tuner.trialUrl(ns, name, best.bestTrialName) }, best.bestTrialName)),
        el('table', { class: 'grid kv' }, el('tbody', {},
          best.observation.metrics.map((m) => el('tr', {}, el('th', {}, m.name), el('td', { class: 'num' }, num(m.value)))),
          best.parameterAssignments.map((p) => el('tr', {}, el('th', {}, p.name), el('td', { class: 'num' }, num(p.value)))))));
    } else {
      $('optimal').textContent = 'none yet: no trial has completed with the objective';
    }
    const finished = ['Succeeded', 'Failed', 'Stopped'].includes(status.phase);
    $('stop').disabled = finished;
    const budget = $('budget');
    if (document.activeElement !== budget) budget.value = max || '';
    const text = Tuner.yaml({ apiVersion: experiment.apiVersion, kind: experiment.kind, metadata: experiment.metadata, spec });
    if (text !== specText) { specText = text; $('spec').textContent = text; }
    return experiment;
  }

  // -- leaderboard -----------------------------------------------------------------------------
  function header() {
    const th = (label, key, cls) => {
      const active = key && ((key === 'number' && board.order === 'number') ||
        (board.order === 'best' && key === (board.metric || metrics[0])));
      return el('th', { class: [cls, key ? 'sortable' : '', active ? 'active' : ''].filter(Boolean).join(' '),
        title: key === 'number' ? 'creation order' : key ? 'best first by ' + key : null,
        onclick: key ? () => sortBy(key) : null }, label);
    };
    $('board').querySelector('thead').replaceChildren(el('tr', {},
      th('#', null, 'num'), th('Trial', 'number'), th('State'),
      metrics.map((m, i) => th(i === 0 ? m + ' (objective)' : m, m, 'num')),
      parameters.map((p) => th(p, null, 'num param')), th('Steps', null, 'num')));
  }
  function sortBy(key) {
    if (key === 'number') { board.order = 'number'; board.metric = null; }
    else { board.order = 'best'; board.metric = key === metrics[0] ? null : key; }
    board.offset = 0;
    loadBoard().catch(Tuner.showError);
  }
  async function loadBoard() {
    const params = new URLSearchParams({ limit: PAGE, offset: board.offset, namespace: ns });
    let rows;
    if (board.order === 'number') {
      if (board.state) params.append('state', board.state);
      rows = await api(base + '/trials?' + params);
    } else {
      if (board.metric) params.set('metric', board.metric);
      if (board.state) params.append('status', board.state);
      rows = await api(base + '/leaderboard?' + params);
    }
    header();
    const tbody = $('board').querySelector('tbody');
    tbody.replaceChildren(...rows.map((r, i) => el('tr', { dataset: { trial: r.trial } },
      el('td', { class: 'num muted' }, board.offset + i + 1),
      el('td', {}, el('a', { href: Tuner.trialUrl(ns, name, r.trial) }, r.trial)),
      el('td', {}, badge(r.status, r.reason)),
      metrics.map((m) => el('td', { class: 'num metric', dataset: { metric: m } }, num(r.metrics[m] ?? null))),
      parameters.map((p) => el('td', { class: 'num param' }, num(r.parameters[p]))),
      el('td', { class: 'num' }, r.steps))));
    // Without a state filter the leaderboard ranks only trials that finished with metrics.
    const counts = experiment ? experiment.status.trialCounts : {};
    const total = !experiment ? 0 : board.state ? counts[board.state] || 0
      : board.order === 'best' ? (counts.Succeeded || 0) + (counts.EarlyStopped || 0) : experiment.status.trials;
    $('page').textContent = rows.length ? (board.offset + 1) + '–' + (board.offset + rows.length) + ' of ' + total : '';
    $('prev').disabled = board.offset === 0;
    $('next').disabled = board.offset + PAGE >= total;
    const empty = $('board-empty');
    empty.hidden = rows.length > 0;
    if (!rows.length) {
      empty.textContent = board.state ? 'No ' + board.state + ' trials.' : experiment && !experiment.spec.trialTemplate
        ? 'No trials yet: this experiment has no trialTemplate; ask for trials with POST /api/v1/' + base + '/suggestions (or Client.ask).'
        : 'No trials yet: the first ones start in a moment.';
    }
  }
  $('prev').addEventListener('click', () => { board.offset = Math.max(0, board.offset - PAGE); loadBoard().catch(Tuner.showError); });
  $('next').addEventListener('click', () => { board.offset += PAGE; loadBoard().catch(Tuner.showError); });
  $('state-filter').addEventListener('change', (e) => { board.state = e.target.value; board.offset = 0; loadBoard().catch(Tuner.showError); });

  // -- plots -----------------------------------------------------------------------------------
  const STATE_COLOR = { Succeeded: '#2563eb', EarlyStopped: '#d97706' };
  async function loadHistory() {
    const h = await api(base + '/plots/history?' + qs);
    const node = $('plot-history');
    if (!h.number.length) { emptyPlot(node, 'No completed trial yet.'); return; }
    await plot(node, [
      { type: 'scatter', mode: 'markers', name: h.metric, x: h.number, y: h.value, text: h.trial,
        marker: { size: 6, color: h.state.map((s) => STATE_COLOR[s] || '#6b7280'), opacity: 0.7 },
        hovertemplate: '%{text}<br>' + h.metric + ' %{y}<extra></extra>' },
      { type: 'scatter', mode: 'lines', name: 'best so far', x: h.bestNumber, y: h.bestValue,
        line: { shape: 'hv', color: '#dc2626', width: 2 }, hoverinfo: 'skip' },
    ], { xaxis: { title: { text: 'trial' + (h.sampled ? ' (' + h.number.length + ' of ' + h.total + ' shown)' : '') } },
      yaxis: { title: { text: h.metric } } });
  }
  async function loadParallel() {
    const p = await api(base + '/plots/parallel?' + qs);
    const node = $('plot-parallel');
    if (!p.trial.length) { emptyPlot(node, 'No completed trial yet.'); return; }
    const dims = p.dimensions.map((d) => {
      const dim = { label: d.name, values: d.values.map((v) => (v === null ? NaN : v)) };
      if (d.categories) { dim.tickvals = d.categories.map((_, i) => i); dim.ticktext = d.categories; }
      if (d.scale === 'log') {  // values are log10: ticks at round numbers in the parameter's units
        dim.label = d.name + ' (log)'; dim.range = d.range; dim.tickvals = d.ticks; dim.ticktext = d.tickText;
      }
      return dim;
    });
    dims.push({ label: p.metric, values: p.objective });
    await plot(node, [{ type: 'parcoords', dimensions: dims,
      line: { color: p.objective, colorscale: 'Viridis', reversescale: p.direction === 'minimize', showscale: true,
        colorbar: { title: { text: p.metric } } } }], { margin: { l: 60, r: 60, t: 40, b: 20 } });
  }
  async function loadCurves() {
    const c = await api(base + '/plots/curves?' + qs);
    const node = $('plot-curves');
    if (!c.curves.some((k) => k.step.length)) { emptyPlot(node, 'No intermediate values reported yet.'); return; }
    const traces = c.curves.filter((k) => k.step.length).map((k) => {
      const stopped = k.group === 'stopped';
      return { type: 'scatter', mode: 'lines', x: k.step, y: k.value,
        name: k.trial + (stopped ? ' (early-stopped)' : ''),
        legendgroup: k.group,
        line: stopped ? { dash: 'dot', color: 'rgba(220,38,38,0.55)', width: 1.5 } : { width: 2 },
        hovertemplate: k.trial + ' · ' + k.state + (k.reason ? ': ' + k.reason : '') + '<br>step %{x}: %{y}<extra></extra>' };
    });
    await plot(node, traces, { xaxis: { title: { text: 'step' } }, yaxis: { title: { text: c.metric } }, showlegend: traces.length <= 30 });
  }
  async function loadImportance() {
    const imp = await api(base + '/plots/importance?' + qs);
    const node = $('plot-importance');
    if (!imp.importances.length) { emptyPlot(node, imp.message || 'Not enough completed trials yet.'); return; }
    const items = imp.importances.slice().reverse();
    await plot(node, [{ type: 'bar', orientation: 'h', x: items.map((i) => i.importance), y: items.map((i) => i.parameter),
      marker: { color: '#2563eb' }, hovertemplate: '%{y}: %{x:.3f}<extra></extra>' }],
    { margin: { l: 110, r: 20, t: 10, b: 45 }, xaxis: { title: { text: 'importance (' + imp.method + ', ' + imp.trials + ' trials)' }, rangemode: 'tozero' } });
  }

  // Below the fold: drawn first when scrolled near, else once the plots above are drawn (a page
  // never scrolled, or printed or captured whole, shows them too); then kept up to date.
  let drawParallel = () => Promise.resolve();
  let drawCurves = () => Promise.resolve();

  // -- refresh ---------------------------------------------------------------------------------
  let lastImportance = 0;
  let refreshing = null;
  let again = false;
  async function refresh(all) {
    if (refreshing) { again = true; return refreshing; }
    refreshing = (async () => {
      try {
        await loadStatus();
        const jobs = [loadBoard(), loadHistory(), drawParallel(), drawCurves()];
        if (all || Date.now() - lastImportance > 10000) { lastImportance = Date.now(); jobs.push(loadImportance()); }
        await Promise.all(jobs);
        Tuner.clearError();
      } catch (err) { Tuner.showError(err); }
    })();
    await refreshing;
    refreshing = null;
    if (again) { again = false; await refresh(false); }
  }
  let timer = null;
  function schedule() {
    if (timer) return;
    timer = setTimeout(() => { timer = null; refresh(false); }, 700);
  }

  // -- live ------------------------------------------------------------------------------------
  const live = $('live');
  let streaming = false;
  async function listen() {
    if (streaming) return;
    streaming = true;
    live.hidden = false; live.textContent = '● live'; live.className = 'live on';
    try {
      await Tuner.events(base + '/events?' + qs, (kind, data) => {
        if (kind === 'experiment' && data.state === 'Deleted') { Tuner.showError(new Error('the experiment was deleted')); return; }
        schedule();
      });
      live.textContent = 'finished'; live.className = 'live';
      await refresh(true);
    } catch (err) {
      live.textContent = 'disconnected'; live.className = 'live off';
      if (!(err instanceof Tuner.ApiError)) setTimeout(() => { listen(); }, 3000);
      else Tuner.showError(err);
    } finally { streaming = false; }
  }

  // -- actions ---------------------------------------------------------------------------------
  $('stop').addEventListener('click', async () => {
    if (!window.confirm('Stop experiment ' + ns + '/' + name + '? Its running trials are killed.')) return;
    try { await api(base + '/stop?' + qs, { method: 'POST' }); await refresh(true); } catch (err) { Tuner.showError(err); }
  });
  $('raise').addEventListener('click', async () => {
    const value = parseInt($('budget').value, 10);
    if (!Number.isFinite(value) || value < 1) { Tuner.showError(new Error('maxTrialCount must be a positive whole number')); return; }
    if (!window.confirm('Set maxTrialCount of ' + name + ' to ' + value + '?')) return;
    try {
      await api(base + '?' + qs, { method: 'PATCH', json: { maxTrialCount: value } });
      $('budget').blur();
      await refresh(true);
      if (experiment.status.phase === 'Running') listen();
    } catch (err) { Tuner.showError(err); }
  });

  // -- first load: the table first, then the plots --------------------------------------------
  Tuner.plotly().catch(Tuner.showError);  // compiled off the main thread while the API answers
  await loadStatus();
  header();
  await loadBoard();
  Tuner.ready('table');
  await loadHistory();
  Tuner.ready('plots');
  drawParallel = Tuner.whenVisible($('plot-parallel'), () => loadParallel().then(() => Tuner.ready('parallel')));
  drawCurves = Tuner.whenVisible($('plot-curves'), () => loadCurves().then(() => Tuner.ready('curves')));
  lastImportance = Date.now();
  await loadImportance();
  Tuner.ready('importance');
  drawParallel.now(); drawCurves.now();
  if (!['Succeeded', 'Failed', 'Stopped'].includes(experiment.status.phase)) listen();
});
