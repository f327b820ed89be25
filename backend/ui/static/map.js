// The model page's embedding map (backend/ui/mapsection.py): every photo of the project as a point, drawn
// by Apache ECharts (static/vendor/echarts-map.min.js, canvas, no eval: the page's policy allows none) from
// the section's data-source (GET /projects/<id>/map.json, in columns); one scatter series per colour group in
// ECharts' "large" mode (one path per series), which keeps 50,000 points one draw. The lasso is a path on a
// transparent canvas over the chart (#map-lasso), not ECharts' brush, which redrew the whole chart on every
// mouse move (0.1-0.2 s a move at 10,000-50,000 points); when the drag ends the points inside are found once
// and ringed by one more series. "Open in Label Studio as a tab" posts their task ids to
// /projects/<id>/map/selection, which answers the tab's URL. Styles go through the CSSOM (allowed by the policy).
// The points are placed by t-SNE once the backend has computed it (backend/collection/layouts.py); until then
// by the first two principal components, and map.js asks again (pollLayout) and redraws with t-SNE when it
// is ready (not while a selection is held: it would move the points from under it).
// For tests and bench/map.py the box says how far it got: data-state (loading / drawn / error), data-drawn-ms
// (map.js start to first draw), data-drawn-at (navigation to first draw), data-selected (points selected),
// data-layout (tsne / pca).
'use strict';
(() => {
  const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7',
    '#9c755f', '#17becf', '#bcbd22', '#7f3c8d'];
  const NONE = '#c4c4c4';
  const CONFIDENCE = [['< 50%', '#d73027', 0, 500], ['50–70%', '#fc8d59', 500, 700],
    ['70–90%', '#91bfdb', 700, 900], ['≥ 90%', '#1a7f37', 900, 1001]];
  const LASSO = {fill: 'rgba(44,111,187,0.12)', line: '#2c6fbb'};
  const SELECTION = 'selection';  // the id of the series that rings the selected points
  // while t-SNE is computed the map asks again after POLL_MS, then ever less often (each ask reads the whole
  // map: ~2 MB at 50,000 photos, where t-SNE takes minutes)
  const POLL_MS = 4000, POLL_GROWTH = 1.5, POLL_MAX_MS = 30000;
  const LEGEND_HEIGHT = 40;  // the legend's strip above the plot: clicks there toggle groups, no lasso starts
  const byId = id => document.getElementById(id);

  // -- colour groups: one name, colour and group number per row ----------------------------------------
  function groups(data, mode) {
    const n = data.task.length, of = new Int32Array(n), classes = data.classes;
    const colour = i => PALETTE[i % PALETTE.length];
    if (mode === 'labeled') {
      for (let i = 0; i < n; i++) of[i] = data.label[i] >= 0 ? 0 : 1;
      return {names: ['labeled', 'not labeled'], colours: ['#2c6fbb', NONE], of};
    }
    if (mode === 'confidence') {
      for (let i = 0; i < n; i++) {
        const c = data.confidence[i];
        of[i] = c < 0 ? CONFIDENCE.length : CONFIDENCE.findIndex(b => c >= b[2] && c < b[3]);
      }
      return {names: [...CONFIDENCE.map(b => b[0]), 'no prediction'],
        colours: [...CONFIDENCE.map(b => b[1]), NONE], of};
    }
    const codes = mode === 'predicted' ? data.predicted : data.label;
    for (let i = 0; i < n; i++) of[i] = codes[i] >= 0 ? codes[i] : classes.length;
    return {names: [...classes, mode === 'predicted' ? 'no prediction' : 'not labeled'],
      colours: [...classes.map((_, i) => colour(i)), NONE], of};
  }

  // -- the chart's series: per group, the rows it holds and their coordinates ----------------------------
  function buildSeries(data, mode) {
    const g = groups(data, mode), count = new Int32Array(g.names.length);
    for (const k of g.of) count[k]++;
    const rows = g.names.map((_, k) => new Int32Array(count[k]));
    const coords = g.names.map((_, k) => new Float32Array(2 * count[k]));
    const fill = new Int32Array(g.names.length);
    const size = data.task.length < 1000 ? 8 : data.task.length < 10000 ? 5 : 3;  // dots a crowd does not bury
    for (let i = 0; i < g.of.length; i++) {
      const k = g.of[i], j = fill[k]++;
      rows[k][j] = i;
      coords[k][2 * j] = data.x[i];
      coords[k][2 * j + 1] = data.y[i];
    }
    const series = g.names.map((name, k) => ({
      name, type: 'scatter', large: true, largeThreshold: 500, symbolSize: size, progressive: 0,
      dimensions: ['x', 'y'], data: coords[k], itemStyle: {color: g.colours[k], opacity: 0.8},
      emphasis: {disabled: true}, animation: false,
    }));
    series.push(selectionSeries(new Float32Array(0), size));
    return {series, rows, names: g.names, of: g.of, size};
  }

  // the selected points, ringed on top of their colours; silent, so hovering still reaches the point below
  function selectionSeries(coords, size) {
    return {id: SELECTION, name: 'selected', type: 'scatter', large: coords.length > 0, largeThreshold: 0, progressive: 0,
      symbolSize: size + 4, dimensions: ['x', 'y'], data: coords, silent: true, z: 3, animation: false,
      itemStyle: {color: 'rgba(0,0,0,0)', borderColor: 'rgba(0,0,0,0.6)', borderWidth: 1}, emphasis: {disabled: true}};
  }

  function option(data, built) {
    const pad = data.top * 0.03;  // the extreme points inside the plot, where a lasso can start around them
    const axis = {type: 'value', min: -pad, max: data.top + pad, show: false};
    return {
      animation: false,
      grid: {left: 10, right: 10, top: LEGEND_HEIGHT, bottom: 10},
      xAxis: axis, yAxis: {...axis},
      legend: {top: 5, left: 10, right: 10, type: 'plain', data: built.names},
      dataZoom: [{type: 'inside', xAxisIndex: 0, moveOnMouseMove: false},
        {type: 'inside', yAxisIndex: 0, moveOnMouseMove: false}],
      tooltip: {trigger: 'item', showDelay: 0, transitionDuration: 0, confine: true,
        formatter: p => tooltip(data, built.rows[p.seriesIndex][p.dataIndex])},
      series: built.series,
    };
  }

  // -- hover: the photo (the backend's thumbnail route) and what is known of it ----------------------------
  function tooltip(data, row) {
    const box = document.createElement('div');
    const img = document.createElement('img');
    const task = data.task[row];
    img.src = '/projects/' + data.project + '/tasks/' + task + '/image';
    img.alt = 'task ' + task;
    img.style.cssText = 'width:160px;height:160px;object-fit:cover;display:block;border-radius:4px;background:#eee';
    const name = code => (code >= 0 ? data.classes[code] : '–');
    const conf = data.confidence[row];
    const lines = ['task ' + task, 'label: ' + name(data.label[row]),
      'predicted: ' + name(data.predicted[row]) + (conf >= 0 ? ' (' + (conf / 10).toFixed(0) + '%)' : '')];
    box.appendChild(img);
    for (const text of lines) {
      const line = document.createElement('div');
      line.textContent = text;
      box.appendChild(line);
    }
    box.className = 'map-tip';
    box.dataset.task = task;
    return box;
  }

  // -- the lasso: a path on the overlay while dragging (its cost does not depend on the points) ------------
  function local(view, ev) {  // pointer position in the chart's pixels (#map has no border or padding)
    const r = view.plot.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top];
  }

  function sizeOverlay(view) {
    const {overlay, plot} = view, ratio = window.devicePixelRatio || 1;
    overlay.width = Math.round(plot.clientWidth * ratio);
    overlay.height = Math.round(plot.clientHeight * ratio);
    overlay.style.width = plot.clientWidth + 'px';
    overlay.style.height = plot.clientHeight + 'px';
    overlay.getContext('2d').setTransform(ratio, 0, 0, ratio, 0, 0);
  }

  function paintLasso(view, closed) {
    const ctx = view.overlay.getContext('2d'), poly = view.lasso;
    view.frame = 0;
    ctx.clearRect(0, 0, view.overlay.width, view.overlay.height);
    if (!poly || poly.length < 2) return;
    ctx.beginPath();
    ctx.moveTo(poly[0][0], poly[0][1]);
    for (let i = 1; i < poly.length; i++) ctx.lineTo(poly[i][0], poly[i][1]);
    ctx.closePath();
    if (!closed) { ctx.fillStyle = LASSO.fill; ctx.fill(); }
    ctx.strokeStyle = LASSO.line;
    ctx.lineWidth = 1;
    ctx.setLineDash(closed ? [4, 3] : []);
    ctx.stroke();
  }

  function lassoStart(view, ev) {
    const at = local(view, ev);
    if (ev.button !== 0 || !ev.isPrimary || at[1] < LEGEND_HEIGHT) return;
    ev.preventDefault();  // no mouse events for the chart while the lasso is drawn (no tooltip, no text selection)
    ev.stopPropagation();
    view.area.setPointerCapture(ev.pointerId);
    view.chart.dispatchAction({type: 'hideTip'});
    view.lasso = [at];
    view.dragging = true;
  }

  function lassoMove(view, ev) {
    if (!view.dragging) return;
    view.lasso.push(local(view, ev));
    if (!view.frame) view.frame = requestAnimationFrame(() => paintLasso(view, false));
  }

  function lassoEnd(view, ev) {
    if (!view.dragging) return;
    view.dragging = false;
    if (view.frame) cancelAnimationFrame(view.frame);
    if (ev.type === 'pointerup') view.lasso.push(local(view, ev));
    const poly = view.lasso, xs = poly.map(p => p[0]), ys = poly.map(p => p[1]);
    const small = Math.max(...xs) - Math.min(...xs) < 3 && Math.max(...ys) - Math.min(...ys) < 3;
    if (small || ev.type !== 'pointerup') { clearSelection(view); return; }  // a click: no selection
    paintLasso(view, true);
    select(view, selectedRows(view, poly));
  }

  // -- the selection: the points inside the polygon, found once, and the tab made of them ------------------
  // The axes are linear, so two reference points give each point's pixel position.
  function inPolygon(px, py, poly) {
    let hit = false;
    for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
      const [xi, yi] = poly[i], [xj, yj] = poly[j];
      if ((yi > py) !== (yj > py) && px < xi + (py - yi) * (xj - xi) / (yj - yi)) hit = !hit;
    }
    return hit;
  }

  function selectedRows(view, poly) {
    const {chart, data, built} = view, out = [];
    if (!poly || poly.length < 3) return out;
    const p0 = chart.convertToPixel({gridIndex: 0}, [0, 0]), p1 = chart.convertToPixel({gridIndex: 0}, [data.top, data.top]);
    const ax = (p1[0] - p0[0]) / data.top, ay = (p1[1] - p0[1]) / data.top;
    const xs = poly.map(p => p[0]), ys = poly.map(p => p[1]);
    const left = Math.min(...xs), right = Math.max(...xs), top = Math.min(...ys), bottom = Math.max(...ys);
    const shown = built.names.map(name => view.legend[name] !== false);  // a group hidden by the legend is not selected
    for (let i = 0; i < data.x.length; i++) {
      const px = p0[0] + ax * data.x[i], py = p0[1] + ay * data.y[i];
      if (px >= left && px <= right && py >= top && py <= bottom && shown[built.of[i]] && inPolygon(px, py, poly))
        out.push(i);
    }
    return out;
  }

  function select(view, rows) {
    const coords = new Float32Array(2 * rows.length);
    rows.forEach((i, j) => { coords[2 * j] = view.data.x[i]; coords[2 * j + 1] = view.data.y[i]; });
    view.chart.setOption({series: [selectionSeries(coords, view.built.size)]});  // drawn before the count shows
    view.selected = rows;
    showSelection(view);
  }

  function forgetLasso(view) {  // its outline only: the selection stays ringed
    view.lasso = null;
    paintLasso(view, true);
  }

  function clearSelection(view) {
    forgetLasso(view);
    if (view.selected.length) select(view, []);
  }

  function showSelection(view) {
    const n = view.selected.length;
    byId('map-selected').textContent = n ? n + ' selected' : 'no selection';
    byId('map-open').disabled = byId('map-clear').disabled = n === 0;
    view.box.dataset.selected = String(n);
  }

  async function openTab(view) {
    const ids = view.selected.map(i => view.data.task[i]);
    const msg = byId('map-msg');
    msg.textContent = 'creating the tab…';
    const answer = await fetch('/projects/' + view.data.project + '/map/selection', {method: 'POST',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({task_ids: ids, title: 'Map selection (' + ids.length + ' tasks)'})});
    const body = await answer.json();
    msg.textContent = '';
    if (!answer.ok) { msg.textContent = body.error || answer.statusText; msg.className = 'small err'; return; }
    const link = document.createElement('a');
    link.href = body.url; link.target = '_blank'; link.rel = 'noopener'; link.id = 'map-tab';
    link.textContent = body.title;
    msg.className = 'small ok';
    msg.append('tab ', link, ' (' + body.count + ' tasks)');
    window.open(body.url, '_blank', 'noopener');
  }

  // -- start: fetch, draw, wire ----------------------------------------------------------------------------
  function draw(view, mode) {
    view.built = buildSeries(view.data, mode);
    view.legend = {};
    view.chart.setOption(option(view.data, view.built), {notMerge: true});
    view.selected = [];
    forgetLasso(view);
    showSelection(view);
  }

  function layout(area, plot, overlay) {
    area.style.cssText = 'position:relative;border:1px solid #ddd;background:#fff;touch-action:none';
    plot.style.cssText = 'width:100%;height:560px';
    overlay.style.cssText = 'position:absolute;left:0;top:0;pointer-events:none';
  }

  function wire(view) {
    const {area, chart, box} = view;
    chart.on('finished', () => {
      if (box.dataset.state === 'drawn') return;
      box.dataset.drawnMs = String(Math.round(performance.now() - view.t0));
      box.dataset.drawnAt = String(Math.round(performance.now()));  // since the page's navigation began
      box.dataset.state = 'drawn';
    });
    chart.on('legendselectchanged', ev => { view.legend = ev.selected; });
    chart.on('datazoom', () => forgetLasso(view));  // the outline would no longer match the points
    area.addEventListener('pointerdown', ev => lassoStart(view, ev), true);
    area.addEventListener('pointermove', ev => lassoMove(view, ev));
    area.addEventListener('pointerup', ev => lassoEnd(view, ev));
    area.addEventListener('pointercancel', ev => lassoEnd(view, ev));
    byId('map-colour').addEventListener('change', ev => draw(view, ev.target.value));
    byId('map-open').addEventListener('click', () => openTab(view));
    byId('map-clear').addEventListener('click', () => clearSelection(view));
    window.addEventListener('resize', () => { chart.resize(); sizeOverlay(view); forgetLasso(view); });
  }

  function describe(view) {
    const {data, box} = view;
    byId('map-count').textContent = data.n + ' photos' + (data.missing ? ' (' + data.missing
      + ' not predicted yet, not shown)' : '') + (data.version ? ', embedded by ' + data.version : '');
    byId('map-layout').textContent = data.layout === 'tsne'
      ? 'Every photo with an embedding, placed by t-SNE: near points look alike to the model.'
      : 'Every photo with an embedding, placed by the first two principal components of the embeddings'
        + (data.layout_pending ? ' for now; the t-SNE map, which keeps look-alike photos together, is being'
          + ' computed and replaces it when ready.' : '.');
    box.dataset.points = String(data.n);
    box.dataset.layout = data.layout;
  }

  async function fetchMap(box) {
    const answer = await fetch(box.dataset.source, {cache: 'no-store'});
    const data = await answer.json();
    if (!answer.ok) throw new Error(data.error || answer.statusText);
    return data;
  }

  function pollLayout(view, wait) {  // until t-SNE is ready; a failed look is tried again later
    const next = Math.min(wait * POLL_GROWTH, POLL_MAX_MS);
    setTimeout(async () => {
      let data = null;
      try { data = await fetchMap(view.box); } catch (e) { data = null; }
      if (!data || (data.layout_pending && data.layout !== 'tsne')) { pollLayout(view, next); return; }
      if (view.selected.length || view.dragging) { pollLayout(view, POLL_MS); return; }
      view.data = data;
      describe(view);
      draw(view, byId('map-colour').value);
    }, wait);
  }

  async function start() {
    const box = byId('map-box');
    if (!box || !window.echarts) return;
    const t0 = performance.now();
    box.dataset.state = 'loading';
    const area = byId('map-area'), plot = byId('map'), overlay = byId('map-lasso');
    layout(area, plot, overlay);
    let data;
    try {
      data = await fetchMap(box);
    } catch (e) {
      byId('map-info').textContent = 'no map: ' + e.message;
      box.dataset.state = 'error';
      return;
    }
    byId('map-info').textContent = data.n ? '' : 'no photos with an embedding yet';
    const chart = window.echarts.init(plot, null, {renderer: 'canvas'});
    const view = {box, area, plot, overlay, chart, data, t0, selected: [], built: null, legend: {}, lasso: null,
      dragging: false, frame: 0};
    describe(view);
    sizeOverlay(view);
    wire(view);
    draw(view, byId('map-colour').value);
    if (data.layout_pending) pollLayout(view, POLL_MS);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
