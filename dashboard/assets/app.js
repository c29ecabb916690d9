// eventmetrics dashboard: plain JavaScript over the JSON API under
// dashboard/api/ (relative URLs, so the page works under any prefix) and
// uPlot for the charts. Every card carries data-state (loading, ready,
// empty, error) and the values card data-points (points drawn), for people
// and for the browser test alike.
'use strict';
// An uncaught error is noted on the body, where the browser test looks.
window.addEventListener('error', (e) => { document.body.dataset.jsError = String(e.message); });
window.addEventListener('unhandledrejection', (e) => { document.body.dataset.jsError = String(e.reason); });
(function () {
  const $ = (sel) => document.querySelector(sel);
  const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];
  const CHART_HEIGHT = 240;

  const state = {
    metric: '',
    matchers: [],           // strings: name=value, name!=value, name=~re, name!~re
    range: { last: '1h' },  // or { from: ms, to: ms }
    bounds: '',             // '' = auto
    buckets: 10,
    seq: 0,                 // bumps on every reload; stale answers are dropped
  };
  const charts = {};        // card id -> uPlot

  // ---- API

  async function api(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of params) q.append(k, v);
    const resp = await fetch('dashboard/api/' + path + '?' + q.toString(), { headers: { Accept: 'application/json' } });
    let body = null;
    try { body = await resp.json(); } catch (e) { /* not JSON */ }
    if (!resp.ok) throw new Error((body && body.error) || (resp.status + ' ' + resp.statusText));
    return body;
  }

  function selection() {
    const p = [['metric', state.metric]];
    for (const m of state.matchers) p.push(['match', m]);
    return p;
  }

  function rangeParams() {
    if (state.range.last) return [['last', state.range.last]];
    return [['from', String(state.range.from)], ['to', String(state.range.to)]];
  }

  // ---- formatting

  function fmtNum(v) {
    if (v === null || v === undefined) return '–';
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
    return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toLocaleString('en-US', { maximumFractionDigits: 4 });
  }
  function fmtInt(n) { return Number(n).toLocaleString('en-US'); }
  function seriesLabel(labels) {
    const ks = Object.keys(labels).sort();
    if (ks.length === 0) return state.metric;
    return '{' + ks.map((k) => k + '="' + labels[k] + '"').join(', ') + '}';
  }
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v; else if (k.startsWith('data-')) e.setAttribute(k, v); else e[k] = v;
    }
    for (const k of kids) e.append(k);
    return e;
  }

  // ---- cards

  function setCard(id, st, msg) {
    const card = document.getElementById(id + '-card');
    card.dataset.state = st;
    document.getElementById(id + '-msg').textContent = msg || '';
    if (st !== 'ready' && charts[id]) { charts[id].destroy(); delete charts[id]; }
  }
  function note(id, html) { document.getElementById(id + '-note').innerHTML = html; }
  function esc(s) { return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c])); }

  function chartWidth(id) { return Math.max(260, document.getElementById(id + '-chart').clientWidth); }

  function draw(id, opts, data, onDrawn) {
    if (charts[id]) charts[id].destroy();
    const target = document.getElementById(id + '-chart');
    target.textContent = '';
    opts.width = chartWidth(id);
    opts.height = opts.height || CHART_HEIGHT;
    opts.hooks = Object.assign({}, opts.hooks, { draw: [(u) => { if (onDrawn) onDrawn(u); }] });
    charts[id] = new uPlot(opts, data, target);
  }

  const timeAxis = { stroke: '#6b7280', grid: { stroke: '#eef0f3' }, ticks: { stroke: '#e3e6eb' } };
  function valueAxis(extra) {
    return Object.assign({ stroke: '#6b7280', grid: { stroke: '#eef0f3' }, ticks: { stroke: '#e3e6eb' }, size: 60,
      values: (u, splits) => splits.map(fmtNum) }, extra);
  }

  // ---- metrics list

  let allMetrics = [];
  async function loadMetrics() {
    const ul = $('#metrics');
    ul.dataset.state = 'loading';
    try {
      const r = await api('metrics', []);
      allMetrics = r.metrics;
      $('#store-summary').textContent = fmtInt(r.series) + ' series in ' + fmtInt(r.metrics.length) + ' metrics';
      renderMetrics();
      ul.dataset.state = 'ready';
    } catch (e) {
      ul.textContent = '';
      ul.append(el('li', { class: 'muted' }, 'Error: ' + e.message));
      ul.dataset.state = 'error';
    }
  }

  function renderMetrics() {
    const ul = $('#metrics');
    const f = $('#metric-filter').value.trim().toLowerCase();
    ul.textContent = '';
    const shown = allMetrics.filter((m) => !f || m.name.toLowerCase().includes(f));
    for (const m of shown) {
      const li = el('li', { 'data-metric': m.name, 'data-series': String(m.series), title: m.name },
        el('span', { class: 'name' }, m.name), el('span', { class: 'count', title: 'series' }, fmtInt(m.series)));
      if (m.name === state.metric) li.classList.add('active');
      li.addEventListener('click', () => selectMetric(m.name));
      ul.append(li);
    }
    if (shown.length === 0) ul.append(el('li', { class: 'muted' }, allMetrics.length ? 'No metric matches.' : 'The store holds no metrics yet.'));
    $('#metric-count').textContent = shown.length === allMetrics.length ? String(allMetrics.length) : shown.length + ' / ' + allMetrics.length;
  }

  // ---- selection and label filter

  let labelInfo = [];
  async function selectMetric(name) {
    state.metric = name;
    state.matchers = [];
    state.bounds = '';
    $('#hist-bounds').value = '';
    renderMetrics();
    $('#welcome').hidden = true;
    $('#selection').hidden = false;
    $('#charts').hidden = false;
    $('#metric-title').textContent = name;
    renderChips();
    saveHash();
    labelInfo = [];
    try {
      const r = await api('labels', [['metric', name]]);
      if (state.metric !== name) return;
      labelInfo = r.labels;
    } catch (e) { /* the filter stays empty; the cards show errors */ }
    renderLabelSelect();
    reload();
  }

  function renderLabelSelect() {
    const sel = $('#filter-label');
    sel.textContent = '';
    for (const l of labelInfo) sel.append(el('option', { value: l.name }, l.name + ' (' + l.distinct + ')'));
    sel.disabled = labelInfo.length === 0;
    if (labelInfo.length === 0) sel.append(el('option', { value: '' }, 'no labels'));
    renderValueList();
  }

  function renderValueList() {
    const dl = $('#filter-values');
    dl.textContent = '';
    const l = labelInfo.find((x) => x.name === $('#filter-label').value);
    if (!l) return;
    for (const v of l.values) dl.append(el('option', { value: v.value }, v.series + ' series'));
  }

  function renderChips() {
    const box = $('#chips');
    box.textContent = '';
    state.matchers.forEach((m, i) => {
      const x = el('button', { type: 'button', title: 'remove' }, '×');
      x.addEventListener('click', () => { state.matchers.splice(i, 1); renderChips(); saveHash(); reload(); });
      box.append(el('span', { class: 'chip' }, m, x));
    });
  }

  // ---- range

  function renderRange() {
    for (const b of document.querySelectorAll('#range-buttons button')) {
      const active = b.dataset.last ? b.dataset.last === state.range.last : !state.range.last && !!b.dataset.custom;
      b.classList.toggle('active', active);
    }
    $('#custom-range').hidden = !!state.range.last && !$('#custom-range').dataset.open;
  }

  function toLocalInput(ms) {
    const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
    return d.toISOString().slice(0, 19);
  }

  // ---- loading the cards

  function reload() {
    if (!state.metric) return;
    const seq = ++state.seq;
    loadSeriesCount(seq);
    loadValues(seq);
    loadAggregates(seq);
    loadPercentiles(seq);
    loadHistogram(seq);
    loadCardinality(seq);
  }

  async function loadSeriesCount(seq) {
    try {
      const r = await api('labels', selection());
      if (seq !== state.seq) return;
      $('#metric-series').textContent = fmtInt(r.series) + (r.series === 1 ? ' series' : ' series');
    } catch (e) { $('#metric-series').textContent = ''; }
  }

  async function loadValues(seq) {
    const id = 'values';
    setCard(id, 'loading');
    try {
      const r = await api('points', selection().concat(rangeParams(), [['max', '1000']]));
      if (seq !== state.seq) return;
      const card = $('#values-card');
      card.dataset.total = String(r.total);
      card.dataset.points = '0';
      let n = 'Stored points: ' + fmtInt(r.total) + ' · shown: ' + fmtInt(r.shown);
      if (r.downsampled) n += ' (min/max per bucket, ≤ ' + fmtInt(r.max_points) + ' per series)';
      if (r.series_shown < r.series_total) n += ' · series ' + r.series_shown + ' of ' + r.series_total;
      note(id, esc(n));
      if (r.shown === 0) { setCard(id, 'empty', 'No points in this range.'); return; }
      const tables = r.series.map((s) => [s.t.map((t) => t / 1000), s.v]);
      const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
      const few = r.shown <= 300;
      const series = [{}].concat(r.series.map((s, i) => ({
        label: seriesLabel(s.labels), stroke: PALETTE[i % PALETTE.length], width: 1.5,
        spanGaps: tables.length > 1, points: { show: few, size: 4 },
      })));
      draw(id, { series, axes: [timeAxis, valueAxis()], scales: { x: { time: true } } }, data, () => {
        card.dataset.points = String(r.shown);
      });
      setCard(id, 'ready');
    } catch (e) {
      if (seq === state.seq) setCard(id, 'error', e.message);
    }
  }

  function windowNote(r, extra) {
    let n = 'windows of ' + r.step + (r.rollups ? ' · rollups of cold data read' : '');
    return esc(n) + (extra || '');
  }

  async function loadAggregates(seq) {
    const id = 'agg';
    setCard(id, 'loading');
    try {
      const r = await api('aggregates', selection().concat(rangeParams()));
      if (seq !== state.seq) return;
      const row = r.rows[0];
      note(id, windowNote(r));
      if (!row || row.t.length === 0) { setCard(id, 'empty', 'No points in this range.'); return; }
      const x = row.t.map((t) => t / 1000);
      const data = [x, row.max, row.mean, row.min, row.count];
      draw(id, {
        series: [{},
          { label: 'max', stroke: '#93b4f5', width: 1 },
          { label: 'mean', stroke: '#2563eb', width: 2 },
          { label: 'min', stroke: '#93b4f5', width: 1 },
          { label: 'count', stroke: '#9ca3af', width: 1, dash: [4, 4], scale: 'count', value: (u, v) => fmtNum(v) },
        ],
        bands: [{ series: [1, 3], fill: 'rgba(37, 99, 235, 0.10)' }],
        axes: [timeAxis, valueAxis(), valueAxis({ scale: 'count', side: 1, grid: { show: false } })],
        scales: { x: { time: true } },
      }, data, () => { $('#agg-card').dataset.windows = String(x.length); });
      setCard(id, 'ready');
    } catch (e) {
      if (seq === state.seq) setCard(id, 'error', e.message);
    }
  }

  async function loadPercentiles(seq) {
    const id = 'pct';
    setCard(id, 'loading');
    try {
      const r = await api('percentiles', selection().concat(rangeParams()));
      if (seq !== state.seq) return;
      const row = r.rows[0];
      const card = $('#pct-card');
      card.dataset.approximate = String(r.approximate);
      let badge = '';
      if (r.approximate) {
        badge = '<span class="badge" title="Some windows come from rollup sketches of cold data">approximate: within ±' +
          esc((r.max_rel_err * 100).toFixed(r.max_rel_err < 0.01 ? 2 : 1)) + '%</span>';
      } else {
        badge = ' · exact';
      }
      note(id, windowNote(r, badge));
      if (!row || row.t.length === 0) { setCard(id, 'empty', 'No points in this range.'); return; }
      const x = row.t.map((t) => t / 1000);
      const cols = {};
      r.p.forEach((p, j) => { cols[p] = row.values[j]; });
      const data = [x, cols[99], cols[90], cols[50]];
      draw(id, {
        series: [{},
          { label: 'p99', stroke: '#dc2626', width: 1.5 },
          { label: 'p90', stroke: '#ea580c', width: 1.5 },
          { label: 'p50', stroke: '#2563eb', width: 2 },
        ],
        bands: [
          { series: [1, 2], fill: 'rgba(220, 38, 38, 0.08)' },
          { series: [2, 3], fill: 'rgba(234, 88, 12, 0.10)' },
        ],
        axes: [timeAxis, valueAxis()],
        scales: { x: { time: true } },
      }, data);
      setCard(id, 'ready');
    } catch (e) {
      if (seq === state.seq) setCard(id, 'error', e.message);
    }
  }

  async function loadHistogram(seq) {
    const id = 'hist';
    setCard(id, 'loading');
    const tbody = $('#hist-table tbody');
    try {
      const p = selection().concat(rangeParams(), [['bounds', state.bounds || 'auto'], ['buckets', String(state.buckets)]]);
      const r = await api('histogram', p);
      if (seq !== state.seq) return;
      const card = $('#hist-card');
      card.dataset.bounds = r.bounds.join(',');
      card.dataset.counts = r.counts.join(',');
      if (r.auto) $('#hist-bounds').placeholder = 'auto: ' + r.bounds.map(fmtNum).join(', ');
      note(id, esc(fmtInt(r.total) + ' values' + (r.total ? ' · min ' + fmtNum(r.min) + ' · max ' + fmtNum(r.max) : '') + (r.auto ? ' · auto bounds' : '')));
      const names = r.counts.map((_, i) => i < r.bounds.length ? '≤ ' + fmtNum(r.bounds[i]) : (r.bounds.length ? '> ' + fmtNum(r.bounds[r.bounds.length - 1]) : 'all'));
      tbody.textContent = '';
      const total = r.counts.reduce((a, b) => a + b, 0);
      const top = Math.max(1, ...r.counts);
      r.counts.forEach((c, i) => {
        const lo = i === 0 ? '(−∞, ' : '(' + fmtNum(r.bounds[i - 1]) + ', ';
        const hi = i < r.bounds.length ? fmtNum(r.bounds[i]) + ']' : '+∞)';
        tbody.append(el('tr', { 'data-bucket': String(i) },
          el('td', {}, el('code', {}, lo + hi)),
          el('td', { class: 'num count', 'data-count': String(c) }, fmtInt(c)),
          el('td', { class: 'num' }, el('span', { class: 'bar', style: 'width:' + Math.round(60 * c / top) + 'px' }), total ? (100 * c / total).toFixed(1) + '%' : '–')));
      });
      if (total === 0) { setCard(id, 'empty', 'No values in this range.'); return; }
      const xs = r.counts.map((_, i) => i);
      draw(id, {
        height: 200,
        series: [{ value: (u, i) => (i === null ? '' : names[i]) },
          { label: 'count', fill: 'rgba(37, 99, 235, 0.55)', stroke: '#2563eb', width: 1,
            paths: uPlot.paths.bars({ size: [0.85, 80] }), points: { show: false } }],
        axes: [{ stroke: '#6b7280', grid: { show: false }, splits: () => xs, values: (u, splits) => splits.map((i) => names[i] ?? '') }, valueAxis()],
        scales: { x: { time: false, range: () => [-0.5, xs.length - 0.5] } },
        legend: { show: false },
      }, [xs, r.counts]);
      setCard(id, 'ready');
    } catch (e) {
      if (seq === state.seq) { tbody.textContent = ''; setCard(id, 'error', e.message); }
    }
  }

  async function loadCardinality(seq) {
    const id = 'card';
    setCard(id, 'loading');
    const tbody = $('#card-table tbody');
    try {
      const r = await api('cardinality', selection().concat([['top', '6']]));
      if (seq !== state.seq) return;
      note(id, esc(fmtInt(r.series) + ' series · ' + r.labels.length + ' labels'));
      tbody.textContent = '';
      const top = Math.max(1, ...r.labels.map((l) => l.distinct));
      for (const l of r.labels) {
        const vals = el('div', { class: 'vals' });
        for (const v of l.values) vals.append(el('span', {}, v.value === '' ? '""' : v.value, ' ', el('i', {}, '(' + fmtInt(v.series) + ')')));
        if (l.truncated) vals.append(el('span', { class: 'muted' }, '…'));
        tbody.append(el('tr', { 'data-label': l.name },
          el('td', {}, el('code', {}, l.name)),
          el('td', { class: 'num', 'data-distinct': String(l.distinct) }, el('span', { class: 'bar', style: 'width:' + Math.round(80 * l.distinct / top) + 'px' }), fmtInt(l.distinct)),
          el('td', {}, vals)));
      }
      if (r.labels.length === 0) { setCard(id, 'empty', 'This selection has no labels: one series per metric name.'); return; }
      setCard(id, 'ready');
    } catch (e) {
      if (seq === state.seq) { tbody.textContent = ''; setCard(id, 'error', e.message); }
    }
  }

  // ---- the URL keeps the view (metric, range, filters) for reloads and links

  function saveHash() {
    const p = new URLSearchParams();
    if (state.metric) p.set('metric', state.metric);
    for (const m of state.matchers) p.append('match', m);
    if (state.range.last) p.set('last', state.range.last); else { p.set('from', state.range.from); p.set('to', state.range.to); }
    history.replaceState(null, '', '#' + p.toString());
  }

  function loadHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    if (p.get('last')) state.range = { last: p.get('last') };
    else if (p.get('from') && p.get('to')) state.range = { from: Number(p.get('from')), to: Number(p.get('to')) };
    return { metric: p.get('metric') || '', matchers: p.getAll('match') };
  }

  // ---- wiring

  function wire() {
    $('#metric-filter').addEventListener('input', renderMetrics);
    for (const b of document.querySelectorAll('#range-buttons button')) {
      b.addEventListener('click', () => {
        if (b.dataset.custom) {
          const now = Date.now();
          const to = state.range.last ? now : state.range.to;
          const from = state.range.last ? now - 3600e3 : state.range.from;
          $('#custom-from').value = toLocalInput(from);
          $('#custom-to').value = toLocalInput(to);
          $('#custom-range').dataset.open = '1';
          $('#custom-range').hidden = false;
          return;
        }
        delete $('#custom-range').dataset.open;
        state.range = { last: b.dataset.last };
        renderRange(); saveHash(); reload();
      });
    }
    $('#custom-range').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const from = new Date($('#custom-from').value).getTime();
      const to = new Date($('#custom-to').value).getTime();
      if (!(from < to)) { alert('The end of the range must be after its start.'); return; }
      state.range = { from, to };
      renderRange(); saveHash(); reload();
    });
    $('#refresh').addEventListener('click', () => { loadMetrics(); reload(); });
    $('#filter-label').addEventListener('change', renderValueList);
    $('#filter').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const name = $('#filter-label').value;
      if (!name) return;
      const m = name + $('#filter-op').value + $('#filter-value').value;
      if (!state.matchers.includes(m)) state.matchers.push(m);
      $('#filter-value').value = '';
      renderChips(); saveHash(); reload();
    });
    $('#hist-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      state.bounds = $('#hist-bounds').value.trim();
      state.buckets = Math.min(200, Math.max(1, parseInt($('#hist-buckets').value, 10) || 10));
      loadHistogram(state.seq);
    });
    $('#hist-auto').addEventListener('click', () => {
      state.bounds = '';
      $('#hist-bounds').value = '';
      loadHistogram(state.seq);
    });
    let t = 0;
    window.addEventListener('resize', () => {
      clearTimeout(t);
      t = setTimeout(() => {
        for (const [id, u] of Object.entries(charts)) u.setSize({ width: chartWidth(id), height: u.height });
      }, 150);
    });
  }

  async function start() {
    wire();
    const h = loadHash();
    renderRange();
    await loadMetrics();
    if (h.metric && allMetrics.some((m) => m.name === h.metric)) {
      await selectMetric(h.metric);
      if (h.matchers.length) { state.matchers = h.matchers; renderChips(); saveHash(); reload(); }
    }
    document.body.dataset.ready = '1';
  }

  start();
})();
