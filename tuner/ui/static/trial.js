/* The trial page: parameters, states with times, metric curves and the log tail. */
'use strict';

Tuner.start(async () => {
  const { api, el, num, time, badge, plot, emptyPlot } = Tuner;
  const { namespace: ns, name, trial } = document.body.dataset;
  const base = 'experiments/' + encodeURIComponent(name) + '/trials/' + encodeURIComponent(trial);
  const qs = Tuner.q(ns);
  const $ = (id) => document.getElementById(id);
  const kv = (k, v) => el('tr', {}, el('th', {}, k), el('td', { class: 'num' }, v));

  async function load() {
    const [t, obs, tail] = await Promise.all([
      api(base + '?' + qs), api(base + '/observations?' + qs), api(base + '/tail?lines=200&' + qs),
    ]);
    const state = $('state');
    state.textContent = t.status;
    state.className = 'badge state-' + t.status;
    $('reason').textContent = t.reason || '';
    $('params').querySelector('tbody').replaceChildren(...Object.entries(t.parameters).map(([k, v]) => kv(k, num(v))));
    $('metrics').querySelector('tbody').replaceChildren(
      kv('objective', num(t.objective)), ...Object.entries(t.metrics).map(([k, v]) => kv(k, num(v))), kv('steps', t.steps));
    $('conditions').querySelector('tbody').replaceChildren(...t.conditions.map((c) => el('tr', {},
      el('td', {}, badge(c.type)), el('td', {}, c.status), el('td', { title: c.message || null }, c.reason || ''),
      el('td', {}, time(c.lastTransitionTime)))));
    const ref = tail.runnerRef;
    $('runner').textContent = !ref ? '' : ref.startsWith('pid:') ? 'Ran here as process ' + ref.slice(4)
      : ref === 'ask-tell' ? 'Driven by ask/tell' : 'Kubernetes Job: ' + ref;
    $('log').textContent = tail.log === null ? tail.message : (tail.log || '(empty)');
    const names = Object.keys(obs.metrics);
    const node = $('plot-metrics');
    if (!names.length) emptyPlot(node, 'This trial reported no metrics yet.');
    else {
      await plot(node, names.map((m, i) => ({
        type: 'scatter', mode: 'lines+markers', name: m, x: obs.metrics[m].map((p) => p.step),
        y: obs.metrics[m].map((p) => p.value), yaxis: i === 0 ? 'y' : 'y2', marker: { size: 4 },
      })), { xaxis: { title: { text: 'step' } }, yaxis: { title: { text: names[0] } },
        yaxis2: names.length > 1 ? { overlaying: 'y', side: 'right', title: { text: names.slice(1).join(', ') } } : undefined });
    }
    return t;
  }
  const t = await load();
  Tuner.ready('trial');
  if (t.status === 'Running' || t.status === 'Created') {
    const timer = setInterval(async () => {
      try {
        const now = await load();
        if (now.status !== 'Running' && now.status !== 'Created') clearInterval(timer);
      } catch (err) { clearInterval(timer); Tuner.showError(err); }
    }, 2000);
  }
});
