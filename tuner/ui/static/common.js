/* Shared helpers of the dashboard pages: API calls with the token, errors, SSE, formatting. */
'use strict';

const Tuner = (() => {
  const body = document.body;
  const authRequired = body.dataset.auth === '1';
  const TOKEN_KEY = 'tuner.apiToken';
  const API = '/api/v1';

  function token() { return sessionStorage.getItem(TOKEN_KEY); }
  function setToken(value) { sessionStorage.setItem(TOKEN_KEY, value); }

  function toLogin() {
    sessionStorage.removeItem(TOKEN_KEY);
    const next = location.pathname + location.search;
    location.assign('/ui/login?next=' + encodeURIComponent(next));
  }

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    const t = token();
    if (t) h.Authorization = 'Bearer ' + t;
    return h;
  }

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function errorMessage(res) {
    let message = res.status + ' ' + res.statusText;
    try {
      const data = await res.json();
      if (data && data.detail) message = data.detail;
    } catch (_) { /* not JSON: keep the status line */ }
    return message;
  }

  /** fetch() an API path; JSON in and out; errors carry the server's message. */
  async function api(path, opts) {
    opts = opts || {};
    const init = { method: opts.method || 'GET', headers: headers(opts.headers) };
    if (opts.json !== undefined) {
      init.body = JSON.stringify(opts.json);
      init.headers['Content-Type'] = 'application/json';
    }
    if (opts.signal) init.signal = opts.signal;
    const res = await fetch(path.startsWith('/') ? path : API + '/' + path, init);
    if ((res.status === 401 || res.status === 403) && authRequired) {
      toLogin();
      throw new ApiError(res.status, await errorMessage(res));
    }
    if (!res.ok) throw new ApiError(res.status, await errorMessage(res));
    if (res.status === 204) return null;
    const type = res.headers.get('content-type') || '';
    return type.includes('json') ? res.json() : res.text();
  }

  const errorBox = document.getElementById('error');
  function showError(err) {
    if (err && err.name === 'AbortError') return;
    errorBox.textContent = (err && err.message) ? err.message : String(err);
    errorBox.hidden = false;
  }
  function clearError() { errorBox.hidden = true; errorBox.textContent = ''; }

  /** Server-Sent Events over fetch(), so that the Authorization header goes along. */
  async function events(path, onEvent, signal) {
    const res = await fetch(API + '/' + path, {
      headers: headers({ Accept: 'text/event-stream' }), signal, cache: 'no-store',
    });
    if (!res.ok) throw new ApiError(res.status, await errorMessage(res));
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let kind = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) kind = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length) onEvent(kind, JSON.parse(data.join('\n')));
      }
    }
  }

  /** el('td', {class: 'num', title: 'x'}, 'text', child) — text is never parsed as HTML. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }

  function num(v) {
    if (v === null || v === undefined) return '–';
    if (typeof v !== 'number') return String(v);
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-4 || a >= 1e6)) return v.toExponential(4);
    return String(Number(v.toPrecision(6)));
  }

  function time(iso) {
    if (!iso) return '–';
    const d = new Date(iso);
    return d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
  }

  function badge(state, reason) {
    const b = el('span', { class: 'badge state-' + state, title: reason || null }, state);
    if (!reason) return b;
    return el('span', { class: 'with-reason' }, b, el('span', { class: 'reason' }, reason));
  }

  /** A small YAML writer for JSON data (the spec as the user would write it). */
  function yaml(value, indent) {
    indent = indent || '';
    const scalar = (v) => {
      if (v === null) return 'null';
      if (typeof v === 'number' || typeof v === 'boolean') return String(v);
      const s = String(v);
      if (s === '' || /^[\s\-?:,[\]{}#&*!|>'"%@`]|[:#]\s|\s$|^(true|false|null|yes|no|on|off|~)$/i.test(s) ||
          /^[-+.\d]/.test(s) || s.includes('\n')) return JSON.stringify(s);
      return s;
    };
    const isEmpty = (v) => (Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0);
    if (Array.isArray(value)) {
      return value.map((item) => {
        if (item !== null && typeof item === 'object' && !isEmpty(item)) {
          const inner = yaml(item, indent + '  ');
          return indent + '- ' + inner.slice(indent.length + 2);
        }
        return indent + '- ' + (item !== null && typeof item === 'object' ? (Array.isArray(item) ? '[]' : '{}') : scalar(item));
      }).join('\n');
    }
    return Object.entries(value).map(([k, v]) => {
      const key = indent + scalar(k) + ':';
      if (v !== null && typeof v === 'object') {
        if (isEmpty(v)) return key + (Array.isArray(v) ? ' []' : ' {}');
        return key + '\n' + yaml(v, indent + '  ');
      }
      return key + ' ' + scalar(v);
    }).join('\n');
  }

  /** plotly's bundle (preloaded by the page), executed on the first plot: the page's table
   *  and buttons come first, the 4 MB script is parsed after them. */
  let plotlyPromise = null;
  function plotly() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (!plotlyPromise) {
      plotlyPromise = new Promise((resolve, reject) => {
        const script = document.createElement('script');
        script.src = body.dataset.plotly;
        script.addEventListener('load', () => resolve(window.Plotly));
        script.addEventListener('error', () => reject(new Error('could not load ' + script.src)));
        document.head.append(script);
      });
    }
    return plotlyPromise;
  }

  /** Runs draw() when node first comes near the viewport; later calls redraw at once. */
  /** Draw ``node`` when it comes near the viewport, or at ``update.now()``, whichever is first.
   *  Returns ``update``: redraws once drawn, else does nothing. */
  function whenVisible(node, draw) {
    let visible = false;
    const start = () => {
      if (visible) return;
      visible = true;
      observer.disconnect();
      draw().catch(showError);
    };
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) start();
    }, { rootMargin: '200px' });
    observer.observe(node);
    const update = () => (visible ? draw() : Promise.resolve());
    update.now = start;
    return update;
  }

  const PLOT_CONFIG = { displaylogo: false, responsive: true };
  function layout(extra) {
    return Object.assign({
      margin: { l: 55, r: 20, t: 10, b: 45 },
      paper_bgcolor: 'rgba(0,0,0,0)', plot_bgcolor: 'rgba(0,0,0,0)',
      font: { size: 12 },
      legend: { orientation: 'h', y: -0.2 },
    }, extra || {});
  }
  function emptyPlot(node, text) {
    node.replaceChildren(el('div', { class: 'empty small' }, text));
    node.dataset.empty = '1';
  }
  async function plot(node, traces, extraLayout) {
    const Plotly = await plotly();
    if (node.dataset.empty) { node.replaceChildren(); delete node.dataset.empty; }
    await Plotly.react(node, traces, layout(extraLayout), PLOT_CONFIG);
  }

  function expUrl(ns, name) { return '/ui/experiments/' + encodeURIComponent(ns) + '/' + encodeURIComponent(name); }
  function trialUrl(ns, name, trial) { return expUrl(ns, name) + '/trials/' + encodeURIComponent(trial); }
  function q(ns) { return 'namespace=' + encodeURIComponent(ns); }

  /** Pages call Tuner.start(main): no API call before a token is there when one is needed. */
  function start(main) {
    const logout = document.getElementById('logout');
    if (logout) {
      logout.hidden = !token();
      logout.addEventListener('click', () => { sessionStorage.removeItem(TOKEN_KEY); location.assign('/ui/login'); });
    }
    if (authRequired && !token() && body.dataset.page !== 'login') { toLogin(); return; }
    Promise.resolve().then(main).catch(showError);
  }

  function ready(name) {
    window.tunerReady = window.tunerReady || {};
    if (window.tunerReady[name] === undefined) window.tunerReady[name] = performance.now();
  }

  return {
    api, events, el, num, time, badge, yaml, plot, plotly, emptyPlot, whenVisible, showError, clearError, start,
    setToken, token, authRequired, expUrl, trialUrl, q, ready, ApiError,
  };
})();
