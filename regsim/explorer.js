// The regsim results explorer: draws the study's data (the JSON block "explorer-data",
// written by regsim/explorer.py) with Plotly, redrawing on every change of a control.
// Nothing is fetched: the data and Plotly are inline in the page.
(function () {
  "use strict";

  const D = JSON.parse(document.getElementById("explorer-data").textContent);
  const F = D.factors;
  const S = D.series.length;
  const P = D.parameters.length;
  const factorIndex = {};
  F.forEach(function (f, i) { factorIndex[f.name] = i; });
  const parameterIndex = {};
  D.parameters.forEach(function (p, i) { parameterIndex[p.name] = i; });
  const measureByName = {};
  D.measures.forEach(function (m) { measureByName[m.name] = m; });

  // (cell, series, parameter) -> group, and a cell's level indices -> cell
  const groupAt = new Int32Array(D.cells.length * S * P).fill(-1);
  D.groups.cell.forEach(function (c, g) {
    groupAt[(c * S + D.groups.series[g]) * P + D.groups.parameter[g]] = g;
  });
  const cellAt = new Map();
  D.cells.forEach(function (c, i) { cellAt.set(c.levels.join(","), i); });

  const ALPHA = D.study.alpha;
  const R = D.study.replications;
  const BAND = 1.96 * Math.sqrt(ALPHA * (1 - ALPHA) / R);
  const POSITIVE = new Set(D.study.scales);
  const REFERENCE = "#595959";
  const COVER = "#56B4E9";
  const NONCOVER = "#E69F00";
  const CONFIG = { responsive: true, displaylogo: false, displayModeBar: "hover" };

  const varied = F.filter(function (f) { return f.levels.length > 1; }).map(function (f) {
    return f.name;
  });
  const state = {
    view: "plot",
    measure: D.study["default"].measure,
    parameter: D.study["default"].parameter,
    x: varied.indexOf("n") >= 0 || varied.length === 0 ? "n" : varied[0],
    panel: "none",
    filters: {},
    methods: {},
    priors: {},
  };
  if (state.x !== "sigma" && varied.indexOf("sigma") >= 0) state.panel = "sigma";
  F.forEach(function (f) { state.filters[f.name] = 0; });
  D.methods.forEach(function (m) { state.methods[m.name] = true; });
  D.priors.forEach(function (p) { state.priors[p] = true; });

  const explorer = { draws: 0, lastDrawMs: null, view: null, state: state, data: D };
  window.explorer = explorer;

  // ------------------------------------------------------------------------------------
  // Helpers
  // ------------------------------------------------------------------------------------

  function byId(id) { return document.getElementById(id); }

  function escapeText(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function fmt(v, digits) {
    if (v === null || v === undefined) return "–";
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(digits - 1);
    return String(Number(v.toPrecision(digits)));
  }

  function group(cell, series, parameter) {
    return cell < 0 ? -1 : groupAt[(cell * S + series) * P + parameter];
  }

  function value(measure, g, what) {
    const m = D.values[measure];
    if (!m || g < 0) return null;
    return m[what || "estimate"][g];
  }

  function seriesOn(s) {
    const series = D.series[s];
    if (!state.methods[series.method]) return false;
    return series.prior === "" || state.priors[series.prior] !== false;
  }

  function cellText(cell) {
    const levels = D.cells[cell].levels;
    return F.filter(function (f) {
      return f.name === "n" || f.name === "sigma" || varied.indexOf(f.name) >= 0;
    }).map(function (f) {
      const i = factorIndex[f.name];
      return f.label + " = " + escapeText(f.text[levels[i]]);
    }).join(", ");
  }

  function hover(s, cell, g) {
    const measure = measureByName[state.measure];
    const estimate = value(state.measure, g);
    const mcse = value(state.measure, g, "mcse");
    const shown = fmt(estimate, 4) + (mcse === null ? "" : " (" + fmt(mcse, 2) + ")");
    const reps = value("n_reps", g);
    const failed = value("n_failed", g);
    return "<b>" + escapeText(D.series[s].label) + "</b><br>" + cellText(cell) + "<br>" +
      escapeText(measure.label) + " of " + D.parameters[parameterIndex[state.parameter]].label +
      ": " + shown + "<br>n_reps " + (reps === null ? "–" : reps) + ", failures " +
      (failed === null ? "–" : failed);
  }

  function axisName(k) { return k === 0 ? "" : String(k + 1); }

  function yTitle() {
    return measureByName[state.measure].label + " of " +
      D.parameters[parameterIndex[state.parameter]].label;
  }

  function trueOf(cell, parameter) {
    for (let s = 0; s < S; s += 1) {
      const g = group(cell, s, parameter);
      if (g >= 0) return D.groups["true"][g];
    }
    return null;
  }

  function numericAxis(f) {
    if (f.name === "n") return "log";
    const lo = Math.min.apply(null, f.levels);
    const hi = Math.max.apply(null, f.levels);
    return lo > 0 && hi / lo >= 10 ? "log" : "linear";
  }

  function lineShape(ax, y, dash, width) {
    return {
      type: "line", xref: "x" + ax + " domain", x0: 0, x1: 1, yref: "y" + ax, y0: y, y1: y,
      line: { color: REFERENCE, width: width || 1, dash: dash || "dot" }, layer: "below",
    };
  }

  function bandShape(ax, lo, hi) {
    return {
      type: "rect", xref: "x" + ax + " domain", x0: 0, x1: 1, yref: "y" + ax, y0: lo, y1: hi,
      fillcolor: "rgba(0,0,0,0.09)", line: { width: 0 }, layer: "below",
    };
  }

  function panelTitle(ax, text) {
    return {
      text: text, xref: "x" + ax + " domain", yref: "y" + ax + " domain", x: 0.5, y: 1.0,
      xanchor: "center", yanchor: "bottom", showarrow: false, font: { size: 13 },
    };
  }

  // ------------------------------------------------------------------------------------
  // The plot: a measure against a factor, a panel per level of another
  // ------------------------------------------------------------------------------------

  function plotFigure() {
    const xf = F[factorIndex[state.x]];
    const pf = state.panel === "none" ? null : F[factorIndex[state.panel]];
    const panels = pf === null ? [null] : pf.levels.map(function (_, i) { return i; });
    const columns = Math.min(3, panels.length);
    const rows = Math.ceil(panels.length / columns);
    const pi = parameterIndex[state.parameter];
    const target = measureByName[state.measure].target;
    const traces = [];
    const shapes = [];
    const annotations = [];
    const legend = {};
    const layout = {
      grid: { rows: rows, columns: columns, pattern: "independent", roworder: "top to bottom",
        xgap: 0.12, ygap: rows > 1 ? 0.22 : 0.1 },
      height: 120 + 22 * Math.ceil(S / 5) + rows * Math.max(290, Math.min(440, 620 / rows)),
      margin: { l: 70, r: 20, t: 60 + 22 * Math.ceil(S / 5), b: 60 },
      hovermode: "closest",
      // above the panels' titles, at the top of the page's drawing
      legend: { orientation: "h", x: 0, xanchor: "left", yref: "container", y: 1,
        yanchor: "top" },
      showlegend: true,
    };
    const categorical = !xf.numeric;
    const xValues = xf.levels.map(function (level, i) { return categorical ? xf.text[i] : level; });
    panels.forEach(function (level, k) {
      const ax = axisName(k);
      const base = F.map(function (f) { return state.filters[f.name]; });
      if (pf !== null) base[factorIndex[pf.name]] = level;
      const cells = xf.levels.map(function (_, i) {
        const levels = base.slice();
        levels[factorIndex[xf.name]] = i;
        const c = cellAt.get(levels.join(","));
        return c === undefined ? -1 : c;
      });
      D.series.forEach(function (series, s) {
        if (!seriesOn(s)) return;
        const x = [];
        const y = [];
        const error = [];
        const text = [];
        const labels = [];
        cells.forEach(function (c, i) {
          if (c < 0) return;
          const g = group(c, s, pi);
          const v = value(state.measure, g);
          const m = value(state.measure, g, "mcse");
          x.push(xValues[i]);
          y.push(v);
          error.push(m === null ? null : 1.96 * m);
          text.push(hover(s, c, g));
          labels.push(D.cells[c].label);
        });
        if (!y.some(function (v) { return v !== null; })) return;
        traces.push({
          type: "scatter", mode: "lines+markers", x: x, y: y, name: series.label,
          legendgroup: series.label, showlegend: !legend[s],
          xaxis: "x" + ax, yaxis: "y" + ax,
          line: { color: series.color, dash: series.dash, width: 1.5 },
          marker: { symbol: series.symbol, color: series.color, size: 7,
            line: { color: series.color, width: 1.3 } },
          error_y: { type: "data", array: error, visible: true, color: series.color,
            thickness: 1, width: 3 },
          customdata: text, hovertemplate: "%{customdata}<extra></extra>",
          meta: { kind: "series", method: series.method, prior: series.prior,
            parameter: state.parameter, measure: state.measure, cells: labels },
        });
        legend[s] = true;
      });
      if (target === "coverage") {
        shapes.push(bandShape(ax, 1 - ALPHA - BAND, 1 - ALPHA + BAND));
        shapes.push(lineShape(ax, 1 - ALPHA, "dot", 1.2));
      } else if (target === "zero") {
        shapes.push(lineShape(ax, 0, "solid", 0.8));
      } else if (target === "rejection") {
        const nulls = [];
        cells.forEach(function (c, i) {
          if (c >= 0 && trueOf(c, pi) === 0) nulls.push(xValues[i]);
        });
        const present = cells.filter(function (c) { return c >= 0; }).length;
        if (nulls.length > 0 && nulls.length === present) {
          shapes.push(bandShape(ax, ALPHA - BAND, ALPHA + BAND));
          shapes.push(lineShape(ax, ALPHA, "dot", 1.2));
        } else if (nulls.length > 0) {
          traces.push({
            type: "scatter", mode: "markers", x: nulls,
            y: nulls.map(function () { return ALPHA; }),
            xaxis: "x" + ax, yaxis: "y" + ax, name: "α where the truth is 0",
            legendgroup: "target", showlegend: !legend.target,
            marker: { symbol: "line-ew-open", size: 16, color: REFERENCE, line: { width: 2 } },
            error_y: { type: "constant", value: BAND, color: REFERENCE, thickness: 6, width: 0 },
            hovertemplate: "nominal α (true value 0)<extra></extra>",
            meta: { kind: "target" },
          });
          legend.target = true;
        }
      }
      if (pf !== null) annotations.push(panelTitle(ax, pf.label + " = " + escapeText(pf.text[level])));
      const xaxis = { title: { text: Math.floor(k / columns) === rows - 1 ? xf.label : "" },
        zeroline: false, automargin: true };
      if (categorical) {
        xaxis.type = "category";
        xaxis.categoryorder = "array";
        xaxis.categoryarray = xValues;
      } else {
        xaxis.type = numericAxis(xf);
        xaxis.tickvals = xf.levels;
        xaxis.ticktext = xf.text;
      }
      layout["xaxis" + ax] = xaxis;
      layout["yaxis" + ax] = { title: { text: k % columns === 0 ? yTitle() : "" },
        zeroline: false, automargin: true };
    });
    layout.shapes = shapes;
    layout.annotations = annotations;
    return { traces: traces, layout: layout };
  }

  // ------------------------------------------------------------------------------------
  // The nested-loop plot over every cell
  // ------------------------------------------------------------------------------------

  function nestedFigure() {
    const loops = D.study.loops.filter(function (name) { return name in factorIndex; });
    let scenarios = [[]];
    loops.forEach(function (name) {
      const count = F[factorIndex[name]].levels.length;
      const next = [];
      scenarios.forEach(function (combo) {
        for (let i = 0; i < count; i += 1) next.push(combo.concat([i]));
      });
      scenarios = next;
    });
    const cells = scenarios.map(function (combo) {
      const levels = F.map(function () { return 0; });
      loops.forEach(function (name, d) { levels[factorIndex[name]] = combo[d]; });
      const c = cellAt.get(levels.join(","));
      return c === undefined ? -1 : c;
    });
    const pi = parameterIndex[state.parameter];
    const N = scenarios.length;
    const edges = scenarios.map(function (_, i) { return i - 0.5; }).concat([N - 0.5]);
    const traces = [];
    let positive = POSITIVE.has(state.measure);
    const widths = { ols: 3.2, mle: 2.2 };
    D.series.forEach(function (series, s) {
      if (!seriesOn(s)) return;
      const y = [];
      const text = [];
      const labels = [];
      cells.forEach(function (c) {
        const g = group(c, s, pi);
        const v = value(state.measure, g);
        if (v !== null && v <= 0) positive = false;
        y.push(v);
        text.push(c < 0 ? "" : hover(s, c, g));
        labels.push(c < 0 ? null : D.cells[c].label);
      });
      if (!y.some(function (v) { return v !== null; })) return;
      y.push(y[y.length - 1]);
      text.push(text[text.length - 1]);
      labels.push(labels[labels.length - 1]);
      traces.push({
        type: "scatter", mode: "lines", x: edges, y: y, name: series.label,
        line: { color: series.color, dash: series.dash, shape: "hv",
          width: series.prior === "" && widths[series.method] ? widths[series.method] : 1.5 },
        customdata: text, hovertemplate: "%{customdata}<extra></extra>",
        meta: { kind: "series", method: series.method, prior: series.prior,
          parameter: state.parameter, measure: state.measure, cells: labels },
      });
    });
    const annotations = [];
    const shapes = [];
    loops.forEach(function (name, depth) {
      const f = F[factorIndex[name]];
      const base = loops.length - 1 - depth;
      const steps = Math.max(f.levels.length - 1, 1);
      const index = scenarios.map(function (combo) { return combo[depth]; });
      const y = index.map(function (i) { return base + 0.55 * i / steps; });
      traces.push({
        type: "scatter", mode: "lines", x: edges, y: y.concat([y[y.length - 1]]),
        xaxis: "x", yaxis: "y2", line: { color: "#404040", width: 1.2, shape: "hv" },
        showlegend: false, hoverinfo: "skip", meta: { kind: "loop", factor: name },
      });
      annotations.push({ text: f.label, x: -0.01, xref: "paper", xanchor: "right",
        y: base + 0.27, yref: "y2", showarrow: false });
      const innermost = depth === loops.length - 1;
      for (let i = 0; i < N; i += 1) {
        if (i === 0 || index[i] !== index[i - 1] || innermost) {
          if (innermost && i >= f.levels.length) break;
          annotations.push({ text: escapeText(f.text[index[i]]), x: i, xref: "x",
            y: y[i] + 0.06, yref: "y2", yanchor: "bottom", showarrow: false,
            font: { size: 10 } });
        }
      }
    });
    if (loops.length > 0) {
      const block = N / F[factorIndex[loops[0]]].levels.length;
      for (let edge = block; edge < N; edge += block) {
        shapes.push({ type: "line", xref: "x", x0: edge - 0.5, x1: edge - 0.5, yref: "paper",
          y0: 0, y1: 1, line: { color: "#b3b3b3", width: 1, dash: "dot" } });
      }
    }
    const target = measureByName[state.measure].target;
    if (target === "coverage") {
      shapes.push(bandShape("", 1 - ALPHA - BAND, 1 - ALPHA + BAND));
      shapes.push(lineShape("", 1 - ALPHA, "dot", 1.2));
    } else if (target === "zero") {
      shapes.push(lineShape("", 0, "solid", 0.8));
    }
    const layout = {
      height: 620,
      margin: { l: 90, r: 20, t: 30, b: 20 },
      hovermode: "closest",
      xaxis: { anchor: "y2", showticklabels: false, zeroline: false, range: [-0.7, N - 0.3] },
      yaxis: { domain: [0.36, 1], title: { text: yTitle() }, zeroline: false,
        type: positive ? "log" : "linear" },
      yaxis2: { domain: [0, 0.3], showticklabels: false, showgrid: false, zeroline: false,
        range: [-0.15, loops.length] },
      shapes: shapes,
      annotations: annotations,
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    };
    return { traces: traces, layout: layout };
  }

  // ------------------------------------------------------------------------------------
  // The zip plot of one cell
  // ------------------------------------------------------------------------------------

  function zipFigure() {
    const Z = D.zip;
    const note = byId("zip-note");
    if (!Z || !(state.parameter in Z.panels)) {
      note.textContent = !Z ? "The zip plot's cell was not given to the explorer." :
        "Only the intervals of " + Z.parameters.join(", ") + " are embedded (a large cell).";
      return { traces: [], layout: { height: 120, xaxis: { visible: false },
        yaxis: { visible: false } } };
    }
    note.textContent = Z.stride > 1 ? "Every " + Z.stride + "th interval in order of |z| is " +
      "drawn (the coverage counts them all)." : "";
    const panels = Z.panels[state.parameter].filter(function (p) { return seriesOn(p.series); });
    const truth = Z.truth[state.parameter];
    const columns = Math.min(3, Math.max(1, panels.length));
    const rows = Math.max(1, Math.ceil(panels.length / columns));
    const traces = [];
    const shapes = [];
    const annotations = [];
    const layout = {
      grid: { rows: rows, columns: columns, pattern: "independent", roworder: "top to bottom",
        xgap: 0.08, ygap: 0.25 },
      height: 90 + 300 * rows, margin: { l: 70, r: 20, t: 40, b: 60 }, showlegend: false,
      hovermode: false,
    };
    const nominal = 100 * (1 - ALPHA);
    panels.forEach(function (panel, k) {
      const ax = axisName(k);
      const series = D.series[panel.series];
      [1, 0].forEach(function (covers) {
        const x = [];
        const y = [];
        panel.covers.forEach(function (c, i) {
          if (c !== covers) return;
          x.push(panel.lower[i], panel.upper[i], null);
          y.push(panel.centile[i], panel.centile[i], null);
        });
        traces.push({
          type: "scatter", mode: "lines", x: x, y: y, xaxis: "x" + ax, yaxis: "y" + ax,
          line: { color: covers ? COVER : NONCOVER, width: panel.count > 500 ? 0.6 : 1 },
          hoverinfo: "skip", connectgaps: false,
          meta: { kind: "zip", method: series.method, prior: series.prior, covers: covers },
        });
      });
      shapes.push({ type: "line", xref: "x" + ax, x0: truth, x1: truth,
        yref: "y" + ax + " domain", y0: 0, y1: 1, line: { color: "black", width: 1 } });
      shapes.push(lineShape(ax, nominal, "dot", 1));
      if (panel.coverage !== null) {
        shapes.push({ type: "line", xref: "x" + ax + " domain", x0: 0, x1: 1, yref: "y" + ax,
          y0: 100 * panel.coverage, y1: 100 * panel.coverage,
          line: { color: "black", width: 1.4 } });
        [-1, 1].forEach(function (sign) {
          const edge = 100 * (panel.coverage + sign * panel.half);
          shapes.push({ type: "line", xref: "x" + ax + " domain", x0: 0, x1: 1, yref: "y" + ax,
            y0: edge, y1: edge, line: { color: "black", width: 1, dash: "dash" } });
        });
      }
      const coverage = panel.coverage === null ? "no usable replicates" : "coverage " +
        (100 * panel.coverage).toFixed(1) + "% (" +
        (100 * (panel.coverage - panel.half)).toFixed(1) + "–" +
        (100 * (panel.coverage + panel.half)).toFixed(1) + ")";
      annotations.push(panelTitle(ax, "<b>" + escapeText(series.label) + "</b><br>" + coverage +
        (panel.failed ? ", " + panel.failed + " failed" : "")));
      layout["xaxis" + ax] = { range: Z.range[state.parameter], zeroline: false,
        title: { text: Math.floor(k / columns) === rows - 1 ? (100 - 100 * ALPHA) +
          "% intervals for " + D.parameters[parameterIndex[state.parameter]].label : "" } };
      layout["yaxis" + ax] = { range: [0, 100], tickvals: [0, 25, 50, 75, 100], zeroline: false,
        title: { text: k % columns === 0 ? "Centile of |z|" : "" } };
    });
    layout.shapes = shapes;
    layout.annotations = annotations;
    return { traces: traces, layout: layout };
  }

  // ------------------------------------------------------------------------------------
  // Drawing, controls and views
  // ------------------------------------------------------------------------------------

  const FIGURES = { plot: plotFigure, nested: nestedFigure, zip: zipFigure };

  function draw() {
    const started = performance.now();
    const view = state.view;
    if (!(view in FIGURES)) {
      explorer.view = view;
      explorer.draws += 1;
      return Promise.resolve();
    }
    const figure = FIGURES[view]();
    return Plotly.react(byId(view), figure.traces, figure.layout, CONFIG).then(function () {
      explorer.lastDrawMs = performance.now() - started;
      explorer.view = view;
      explorer.draws += 1;
    });
  }

  function option(select, value, text, selected) {
    const element = document.createElement("option");
    element.value = value;
    element.textContent = text;
    element.selected = !!selected;
    select.appendChild(element);
  }

  function checkbox(parent, id, text, colour, onChange) {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.id = id;
    input.checked = true;
    input.addEventListener("change", function () { onChange(input.checked); });
    label.appendChild(input);
    if (colour) {
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.borderTopColor = colour;
      label.appendChild(swatch);
    }
    label.appendChild(document.createTextNode(text));
    parent.appendChild(label);
  }

  function buildFilters() {
    const box = byId("filters");
    box.textContent = "";
    F.forEach(function (f) {
      const label = document.createElement("label");
      label.className = "field";
      label.appendChild(document.createTextNode(f.label + " "));
      const select = document.createElement("select");
      select.id = "filter-" + f.name;
      select.dataset.factor = f.name;
      if (f.name === state.x || f.name === state.panel) {
        option(select, "", f.name === state.x ? "all (x axis)" : "all (panels)", true);
        select.disabled = true;
      } else {
        // each level's exact text as the value, so no value is another option's label
        f.text.forEach(function (text, i) {
          option(select, f.keys[i], text, i === state.filters[f.name]);
        });
        select.disabled = f.levels.length < 2;
      }
      select.addEventListener("change", function () {
        state.filters[f.name] = f.keys.indexOf(select.value);
        draw();
      });
      label.appendChild(select);
      box.appendChild(label);
    });
  }

  function buildPanelChoices() {
    const select = byId("panel-factor");
    select.textContent = "";
    option(select, "none", "none", state.panel === "none");
    varied.forEach(function (name) {
      if (name !== state.x) option(select, name, F[factorIndex[name]].label, name === state.panel);
    });
  }

  function buildControls() {
    const measure = byId("measure");
    D.measures.forEach(function (m) { option(measure, m.name, m.label, m.name === state.measure); });
    measure.addEventListener("change", function () { state.measure = measure.value; draw(); });

    const parameter = byId("parameter");
    D.parameters.forEach(function (p) {
      option(parameter, p.name, p.label, p.name === state.parameter);
    });
    parameter.addEventListener("change", function () { state.parameter = parameter.value; draw(); });

    const x = byId("x-factor");
    (varied.length ? varied : ["n"]).forEach(function (name) {
      option(x, name, F[factorIndex[name]].label, name === state.x);
    });
    x.addEventListener("change", function () {
      state.x = x.value;
      if (state.panel === state.x) state.panel = "none";
      buildPanelChoices();
      buildFilters();
      draw();
    });
    const panel = byId("panel-factor");
    buildPanelChoices();
    panel.addEventListener("change", function () {
      state.panel = panel.value;
      buildFilters();
      draw();
    });
    buildFilters();

    const methods = byId("methods");
    D.methods.forEach(function (m) {
      const colour = D.series.filter(function (s) { return s.method === m.name; })[0].color;
      checkbox(methods, "method-" + m.name, m.label, colour, function (on) {
        state.methods[m.name] = on;
        draw();
      });
    });
    const priors = byId("priors");
    if (D.priors.length === 0) priors.textContent = "none in this study";
    D.priors.forEach(function (p) {
      checkbox(priors, "prior-" + p, p, null, function (on) {
        state.priors[p] = on;
        draw();
      });
    });
  }

  function show(view) {
    state.view = view;
    document.querySelectorAll("nav button").forEach(function (button) {
      button.setAttribute("aria-selected", button.dataset.view === view ? "true" : "false");
    });
    document.querySelectorAll("main > section").forEach(function (section) {
      section.hidden = section.id !== "view-" + view;
    });
    byId("controls").hidden = !(view in FIGURES);
    document.querySelectorAll("#controls [data-views]").forEach(function (element) {
      element.classList.toggle("idle", element.dataset.views.split(" ").indexOf(view) < 0);
    });
    return draw();
  }

  function buildTables() {
    const select = byId("table-select");
    if (!select) return;
    select.addEventListener("change", function () {
      document.querySelectorAll("section.paper-table").forEach(function (section) {
        section.hidden = section.dataset.table !== select.value;
      });
    });
  }

  const zipNote = document.createElement("p");
  zipNote.id = "zip-note";
  zipNote.className = "note";
  byId("view-zip").insertBefore(zipNote, byId("zip"));

  buildControls();
  buildTables();
  document.querySelectorAll("nav button").forEach(function (button) {
    button.addEventListener("click", function () { show(button.dataset.view); });
  });
  explorer.show = show;
  explorer.redraw = draw;
  show("plot");
})();
