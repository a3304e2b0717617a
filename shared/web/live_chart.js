// Live charts of the last 10 minutes for the monitor pages, drawn with uPlot (served as
// assets/uPlot.iife.min.js), and a poller for the pages' JSON data.
//
// A chart is a `<figure data-chart="<name>" data-series='[{"key","label","color"}]'
// data-unit="%" data-max="100">` rendered by the server (`data-integer` for counts: whole-number
// ticks, the scale reaching at least `data-max`; a series may have a `dash` and a `width`;
// `data-lines='[{"value","label","color"}]'`: dashed horizontal lines across the whole chart);
// mounting it adds a uPlot chart and hides the server's static drawing. Every chart is exposed as `globalThis.webotsCharts[<name>]` (the uPlot
// instance: `.data[0]` holds the timestamps), which the browser tests read.
(function () {
  "use strict";
  const SPAN_S = 600;
  const HEIGHT = 220;

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const magnitude = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 2, 5, 10]) if (value <= step * magnitude) return step * magnitude;
    return 10 * magnitude;
  }

  function format(value, unit) {
    if (value === null || value === undefined) return "–";
    // Percentages as every table of the pages writes them: one decimal.
    if (unit === "%") return value.toFixed(1) + unit;
    const shown = Math.abs(value) >= 10 || value === 0
      ? Math.round(value * 10) / 10
      : Number(value.toPrecision(2));
    return shown.toString() + unit;
  }

  // Away from the cursor, the legend shows the latest figures.
  const latest = (u, value, seriesIndex, index) =>
    index === null || index === undefined ? u.data[seriesIndex].at(-1) : value;

  // Times as the pages write them (shared/time_format.ts): UTC, 24-hour.
  const clock = (seconds) => new Date(seconds * 1000).toISOString().slice(11, 19);
  const hoursMinutes = (seconds) => new Date(seconds * 1000).toISOString().slice(11, 16);
  const INTEGER_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

  /** Mounts the chart of one figure; returns `{update(columns)}`. */
  function mount(figure) {
    let series = JSON.parse(figure.dataset.series || "[]");
    const unit = figure.dataset.unit || "";
    const max = figure.dataset.max ? Number(figure.dataset.max) : undefined;
    const integer = figure.dataset.integer !== undefined;
    const lines = JSON.parse(figure.dataset.lines || "[]");
    // Thresholds span the whole chart, not only the seconds that have samples.
    const drawLines = (u) => {
      const ctx = u.ctx;
      const { left, width } = u.bbox;
      ctx.save();
      ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
      ctx.lineWidth = devicePixelRatio;
      ctx.font = `${11 * devicePixelRatio}px sans-serif`;
      ctx.textAlign = "right";
      // Top line first; a label that would touch the one above goes under its own line.
      const placed = lines.map((line) => ({
        line,
        y: Math.round(u.valToPos(line.value, "y", true)),
      }))
        .sort((a, b) => a.y - b.y);
      let lastLabel = -Infinity;
      for (const { line, y } of placed) {
        ctx.strokeStyle = line.color;
        ctx.fillStyle = line.color;
        ctx.beginPath();
        ctx.moveTo(left, y);
        ctx.lineTo(left + width, y);
        ctx.stroke();
        let labelY = y - 3 * devicePixelRatio;
        if (labelY - lastLabel < 12 * devicePixelRatio) labelY = y + 12 * devicePixelRatio;
        lastLabel = labelY;
        ctx.fillText(line.label, left + width - 4 * devicePixelRatio, labelY);
      }
      ctx.restore();
    };
    function seriesOptions(s) {
      return {
        label: s.label,
        stroke: s.color,
        width: s.width || 1.5,
        ...(s.dash ? { dash: s.dash } : {}),
        value: (u, v, i, index) => format(latest(u, v, i, index), unit),
      };
    }
    const holder = document.createElement("div");
    holder.className = "live-chart";
    figure.appendChild(holder);
    figure.classList.add("live");
    const width = () => Math.max(300, holder.clientWidth || figure.clientWidth || 800);
    const options = {
      width: width(),
      height: HEIGHT,
      // Ticks placed on UTC minutes, like their labels.
      // deno-lint-ignore no-undef
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: {
        x: { time: true, range: (_u, _min, last) => [last - SPAN_S, last] },
        y: {
          range: (_u, _min, top) =>
            integer ? [0, Math.max(max ?? 1, niceMax(top))] : [0, max ?? niceMax(top)],
        },
      },
      series: [
        {
          label: "time",
          value: (u, v, i, index) => {
            const t = latest(u, v, i, index);
            return t === undefined || t === null ? "–" : clock(t);
          },
        },
        ...series.map(seriesOptions),
      ],
      axes: [{ values: (_u, ticks) => ticks.map(hoursMinutes) }, {
        ...(integer ? { incrs: INTEGER_STEPS } : {}),
        values: (_u, ticks) => ticks.map((t) => integer ? String(Math.round(t)) : format(t, unit)),
        size: (_u, values) => 24 + 7 * Math.max(3, ...(values || []).map((v) => v.length)),
      }],
      legend: { live: true },
      hooks: { draw: [drawLines] },
      cursor: { drag: { x: false, y: false } },
    };
    const empty = [[], ...series.map(() => [])];
    // deno-lint-ignore no-undef
    const chart = new uPlot(options, empty, holder);
    globalThis.webotsCharts = globalThis.webotsCharts || {};
    globalThis.webotsCharts[figure.dataset.chart] = chart;
    addEventListener("resize", () => chart.setSize({ width: width(), height: HEIGHT }));
    const same = (a, b) =>
      a.length === b.length && a.every((s, i) => s.key === b[i].key && s.label === b[i].label);
    return {
      name: figure.dataset.chart,
      /** New columns; `wanted`, when given, replaces the series (servers joined or left). */
      update(columns, wanted) {
        if (Array.isArray(wanted) && !same(series, wanted)) {
          for (let i = series.length; i >= 1; i--) chart.delSeries(i);
          wanted.forEach((s, i) => chart.addSeries(seriesOptions(s), i + 1));
          series = wanted;
        }
        const time = columns.timestamp || [];
        chart.setData([time, ...series.map((s) => columns[s.key] || time.map(() => null))]);
      },
    };
  }

  /** Mounts every `figure[data-chart]` under `root`; returns `{update(columns)}` for all. */
  function mountCharts(root) {
    const charts = Array.from(root.querySelectorAll("figure[data-chart]"), mount);
    return {
      // `seriesByChart[name]`, when given, is the series that chart should now show.
      update: (columns, seriesByChart) =>
        charts.forEach((c) => c.update(columns, seriesByChart && seriesByChart[c.name])),
    };
  }

  /** Fetches `url` as JSON every `intervalMs` and calls `onData`; `onState(ok)` after each try. */
  function poll(url, intervalMs, onData, onState) {
    const once = async () => {
      try {
        const response = await fetch(url, { cache: "no-store" });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        onData(await response.json());
        onState?.(true);
      } catch (error) {
        onState?.(false, error);
      }
      setTimeout(once, intervalMs);
    };
    once();
  }

  /**
   * Replaces the rows of `tbody`. A row is an array of cells or `{className, cells}`; a cell is
   * text or `{text, href?, className?, cellClass?}` (a link, or a span of that class). Text only,
   * never HTML.
   */
  function fillRows(tbody, rows) {
    const fresh = rows.map((row) => {
      const tr = document.createElement("tr");
      if (!Array.isArray(row) && row.className) tr.className = row.className;
      for (const cell of Array.isArray(row) ? row : row.cells) {
        const td = document.createElement("td");
        if (cell !== null && typeof cell === "object") {
          if (cell.cellClass) td.className = cell.cellClass;
          if (cell.href || cell.className) {
            const inner = document.createElement(cell.href ? "a" : "span");
            if (cell.href) inner.href = cell.href;
            if (cell.className) inner.className = cell.className;
            inner.textContent = cell.text;
            td.appendChild(inner);
          } else {
            td.textContent = cell.text;
          }
          if (cell.colSpan) td.colSpan = cell.colSpan;
        } else {
          td.textContent = String(cell);
        }
        tr.appendChild(td);
      }
      return tr;
    });
    tbody.replaceChildren(...fresh);
  }

  globalThis.WebotsLive = { mountCharts, poll, fillRows };
})();
