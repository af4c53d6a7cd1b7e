/* The experiment page's Pareto plot and hypervolume history, for experiments with several
   objectives (spec.objectives); hidden otherwise. Data: GET .../pareto/plot. */
'use strict';

Tuner.start(async () => {
  const { api, plot, emptyPlot } = Tuner;
  const ns = document.body.dataset.namespace;
  const name = document.body.dataset.name;
  const base = 'experiments/' + encodeURIComponent(name);
  const qs = Tuner.q(ns);
  const $ = (id) => document.getElementById(id);
  const FINISHED = ['Succeeded', 'Failed', 'Stopped'];

  const experiment = await api(base + '?' + qs);
  const objectives = experiment.spec.objectives || [];
  if (objectives.length < 2) return;
  $('pareto-plots').hidden = false;

  function axis(o) { return { title: { text: o.metric + ' (' + o.type + ')' } }; }

  async function drawFront(data) {
    const node = $('plot-pareto');
    if (!data.points.length) { emptyPlot(node, 'No completed trial yet.'); return; }
    const front = data.points.filter((p) => p.front);
    const rest = data.points.filter((p) => !p.front);
    const group = (points, label, marker) => {
      const trace = { name: label, text: points.map((p) => p.trial), marker,
        hovertemplate: '%{text}<extra>' + label + '</extra>' };
      if (data.objectives.length === 2) {
        return Object.assign(trace, { type: 'scatter', mode: 'markers',
          x: points.map((p) => p.values[0]), y: points.map((p) => p.values[1]) });
      }
      return Object.assign(trace, { type: 'splom', diagonal: { visible: false },
        dimensions: data.objectives.map((o, i) => ({ label: o.metric, values: points.map((p) => p.values[i]) })) });
    };
    const traces = [
      group(rest.filter((p) => p.feasible), 'trials', { size: 7, color: '#94a3b8' }),
      group(rest.filter((p) => !p.feasible), 'infeasible', { size: 7, color: '#f59e0b', symbol: 'x' }),
      group(front, 'Pareto front', { size: 9, color: '#dc2626' }),
    ].filter((t) => (t.x || t.dimensions[0].values).length);
    const layout = data.objectives.length === 2
      ? { xaxis: axis(data.objectives[0]), yaxis: axis(data.objectives[1]) } : { dragmode: 'select' };
    await plot(node, traces, layout);
  }

  async function drawHypervolume(data) {
    const node = $('plot-hypervolume');
    if (!data.hypervolume.length) { emptyPlot(node, 'No completed trial yet.'); return; }
    await plot(node, [{ type: 'scatter', mode: 'lines+markers', name: 'hypervolume',
      x: data.hypervolume.map((h) => h.number), y: data.hypervolume.map((h) => h.value),
      line: { shape: 'hv', color: '#2563eb' },
      hovertemplate: 'after trial %{x}: %{y}<br>reference point ' + (data.referencePoint || []).map((v) => Tuner.num(v)).join(', ') + '<extra></extra>' }],
    { xaxis: { title: { text: 'trial' } },
      yaxis: { title: { text: 'hypervolume' } } });
  }

  async function draw() {
    const data = await api(base + '/pareto/plot?' + qs);
    await Promise.all([drawFront(data), drawHypervolume(data)]);
    Tuner.ready('pareto');
  }
  await draw();
  // While the experiment runs, redraw every few seconds (the plots of experiment.js follow SSE).
  let phase = experiment.status.phase;
  while (!FINISHED.includes(phase)) {
    await new Promise((resolve) => setTimeout(resolve, 3000));
    phase = (await api(base + '?' + qs)).status.phase;
    await draw().catch(Tuner.showError);
  }
});
