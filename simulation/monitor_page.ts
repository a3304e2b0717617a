/**
 * The simulation server's `/monitor` page: host description, current figures, charts of the last
 * 10 minutes and the table of simulations, and the same figures as JSON for `/monitor/data`.
 *
 * The page is complete without JavaScript (inline CSS, server-rendered inline SVG charts and
 * table). With JavaScript, `assets/simulation_monitor.js` polls `monitor/data` and keeps the
 * figures, the uPlot charts and the table live. Nothing is loaded from another origin.
 *
 * @module
 */
import { escapeHtml } from "../shared/http.ts";
import type { HostInfo } from "./metrics.ts";
import { type Snapshot, SNAPSHOT_COLUMNS } from "./snapshot.ts";

/** One simulation in the page's table. */
export interface SessionRow {
  id: string;
  world: string;
  /** Webots' streaming port. */
  port: number;
  /** e.g. `preparing`, `starting`, `running`, `idle`. */
  state: string;
  /** Milliseconds since the epoch. */
  startedAt: number;
  /** The browser's address. */
  remote: string;
}

/** What the page shows. */
export interface MonitorPageData {
  fqdn: string;
  host: HostInfo;
  history: readonly Snapshot[];
  sessions: readonly SessionRow[];
  /** Milliseconds since the epoch, for the ages (default: `Date.now()`). */
  now?: number;
}

/** The history as columns (`{timestamp:[…],cpu:[…],…}`), the shape uPlot draws. */
export function snapshotColumns(history: readonly Snapshot[]): Record<string, number[]> {
  const columns: Record<string, number[]> = {};
  for (const [key] of SNAPSHOT_COLUMNS) columns[key] = history.map((s) => s[key]);
  return columns;
}

/** The history as JSON columns (`{"timestamp":[…],"cpu":[…],…}`), e.g. for a live chart. */
export function snapshotsAsJson(history: readonly Snapshot[]): string {
  return JSON.stringify(snapshotColumns(history));
}

interface Series {
  label: string;
  color: string;
  key: keyof Snapshot;
}

const PERCENT_SERIES: readonly Series[] = [
  { label: "CPU", color: "#1f77b4", key: "cpu" },
  { label: "Memory", color: "#ff7f0e", key: "memory" },
  { label: "GPU compute", color: "#2ca02c", key: "gpuCompute" },
  { label: "GPU memory load", color: "#98df8a", key: "gpuMemoryLoad" },
  { label: "GPU memory", color: "#d62728", key: "gpuMemory" },
  { label: "Swap", color: "#9467bd", key: "swap" },
  { label: "Disk", color: "#8c564b", key: "disk" },
];
const NETWORK_SERIES: readonly Series[] = [
  { label: "Sent", color: "#e377c2", key: "networkSent" },
  { label: "Received", color: "#17becf", key: "networkReceived" },
];
const SESSION_SERIES: readonly Series[] = [
  { label: "Running", color: "#2e7d32", key: "webotsRunning" },
  { label: "Idle", color: "#b26a00", key: "webotsIdle" },
];

const WIDTH = 1000;
const HEIGHT = 220;
const LEFT = 48;
const RIGHT = 8;
const TOP = 8;
const BOTTOM = 22;
const SPAN_S = 600;

function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * magnitude) return step * magnitude;
  return 10 * magnitude;
}

const fixed = (v: number) => (Math.round(v * 10) / 10).toString();

interface ChartSpec {
  /** `window.webotsCharts[name]` in the browser. */
  name: string;
  title: string;
  unit: string;
  series: readonly Series[];
  yMax?: number;
}

const CHARTS: readonly ChartSpec[] = [
  { name: "load", title: "Load (%)", unit: "%", series: PERCENT_SERIES, yMax: 100 },
  { name: "network", title: "Network (MB/s)", unit: " MB/s", series: NETWORK_SERIES },
  { name: "simulations", title: "Simulations", unit: "", series: SESSION_SERIES },
];

function svgChart(spec: ChartSpec, history: readonly Snapshot[]): string {
  const { series } = spec;
  const last = history.at(-1);
  const end = last?.timestamp ?? 0;
  const max = spec.yMax ??
    niceMax(Math.max(0, ...series.flatMap((s) => history.map((h) => h[s.key]))));
  const plotW = WIDTH - LEFT - RIGHT;
  const plotH = HEIGHT - TOP - BOTTOM;
  const x = (t: number) => LEFT + (1 - Math.min(SPAN_S, Math.max(0, end - t)) / SPAN_S) * plotW;
  const y = (v: number) => TOP + plotH - (Math.min(max, Math.max(0, v)) / max) * plotH;
  const grid = [0, 0.5, 1].map((f) => {
    const gy = fixed(TOP + plotH - f * plotH);
    return `<line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${gy}" y2="${gy}" class="grid"/>` +
      `<text x="${LEFT - 4}" y="${gy}" class="ylabel">${escapeHtml(fixed(f * max))}</text>`;
  }).join("");
  const xLabels =
    ([[600, "−10 min", "start"], [300, "−5 min", "middle"], [0, "now", "end"]] as const)
      .map(([ago, label, anchor]) =>
        `<text x="${fixed(x(end - ago))}" y="${
          HEIGHT - 6
        }" class="xlabel" text-anchor="${anchor}">` +
        `${label}</text>`
      ).join("");
  const lines = series.map((s) => {
    const points = history.map((h) => `${fixed(x(h.timestamp))},${fixed(y(h[s.key]))}`).join(" ");
    return `<polyline points="${points}" stroke="${s.color}" class="line"/>`;
  }).join("");
  const legend = series.map((s) =>
    `<span class="key"><span class="swatch" style="background:${s.color}"></span>` +
    `${escapeHtml(s.label)} ${escapeHtml(last ? fixed(last[s.key]) : "–")}${
      escapeHtml(spec.unit)
    }</span>`
  ).join(" ");
  return `<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${
    escapeHtml(spec.title)
  }">` +
    `${grid}${xLabels}${lines}</svg><div class="legend">${legend}</div>`;
}

/** A chart's figure: the static SVG (or a placeholder) and what the live chart needs. */
function chart(spec: ChartSpec, history: readonly Snapshot[]): string {
  const series = spec.series.map(({ key, label, color }) => ({ key, label, color }));
  const max = spec.yMax === undefined ? "" : ` data-max="${spec.yMax}"`;
  const body = history.length === 0
    ? `<p class="none">No figures yet.</p>`
    : svgChart(spec, history);
  return `<figure data-chart="${spec.name}" data-unit="${escapeHtml(spec.unit)}"${max} ` +
    `data-series="${escapeHtml(JSON.stringify(series))}">` +
    `<figcaption>${escapeHtml(spec.title)}</figcaption>${body}</figure>`;
}

function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h > 0) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m > 0) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${s} s`;
}

const STATE_CLASSES = new Set(["running", "idle", "paused", "starting", "preparing"]);

/** A table row as the page shows it (plain text; escaped when rendered). */
export interface DisplayRow {
  id: string;
  world: string;
  port: string;
  state: string;
  /** The CSS class of the state badge: `state-running`, …, or `state-other`. */
  stateClass: string;
  age: string;
  remote: string;
}

function displayRows(sessions: readonly SessionRow[], now: number): DisplayRow[] {
  return sessions.map((r) => ({
    id: r.id,
    world: r.world,
    port: String(r.port),
    state: r.state,
    stateClass: `state-${STATE_CLASSES.has(r.state) ? r.state : "other"}`,
    age: age(now - r.startedAt),
    remote: r.remote,
  }));
}

const NO_SIMULATION = "No simulation is running.";

function sessionTable(rows: readonly DisplayRow[]): string {
  const body = rows.map((r) =>
    `<tr><td>${escapeHtml(r.id)}</td><td>${escapeHtml(r.world)}</td>` +
    `<td>${escapeHtml(r.port)}</td><td><span class="state ${escapeHtml(r.stateClass)}">${
      escapeHtml(r.state)
    }</span></td><td>${escapeHtml(r.age)}</td><td>${escapeHtml(r.remote)}</td></tr>`
  ).join("\n");
  return `<p class="none"${rows.length === 0 ? "" : " hidden"}>${NO_SIMULATION}</p>` +
    `<table${rows.length === 0 ? " hidden" : ""}><thead><tr><th>Id</th><th>World</th>` +
    `<th>Port</th><th>State</th><th>Age</th><th>Remote address</th></tr></thead>` +
    `<tbody>\n${body}\n</tbody></table>`;
}

/** The lines of the figures list, as plain text. */
export function figureLines(data: MonitorPageData): string[] {
  const { host } = data;
  const s = data.history.at(-1);
  const pct = (v: number | undefined) => `${fixed(v ?? 0)}%`;
  const gpu = host.gpu
    ? `GPU load compute: ${pct(s?.gpuCompute)} — load memory: ${pct(s?.gpuMemoryLoad)} — ` +
      `memory used: ${pct(s?.gpuMemory)} — ${host.gpu.name}, ${fixed(host.gpu.memoryTotalGB)} GB`
    : "GPU: Not recognized";
  return [
    `CPU load: ${pct(s?.cpu)} — ${host.cpuModel} (${host.cpuCores} cores)`,
    gpu,
    `RAM: ${fixed(host.ramTotalGB)} GB (${pct(s?.memory)} used) — swap: ${
      fixed(host.swapTotalGB)
    } GB (${pct(s?.swap)} used)`,
    `Disk: ${pct(s?.disk)} used — network: ${fixed(s?.networkSent ?? 0)} MB/s sent, ${
      fixed(s?.networkReceived ?? 0)
    } MB/s received`,
    `Simulations: ${s?.webotsRunning ?? 0} running, ${s?.webotsIdle ?? 0} idle`,
  ];
}

/** What `/monitor/data` answers: the page's live parts, ready to show. */
export interface MonitorData {
  figures: string[];
  /** Snapshot columns, see `snapshotColumns`. */
  history: Record<string, number[]>;
  sessions: DisplayRow[];
}

/** The page's live parts as data for `/monitor/data`. */
export function monitorData(data: MonitorPageData): MonitorData {
  return {
    figures: figureLines(data),
    history: snapshotColumns(data.history),
    sessions: displayRows(data.sessions, data.now ?? Date.now()),
  };
}

const STYLE = `
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.4em}
ul.figures{list-style:none;padding:0}ul.figures li{margin:.25em 0}
figure{margin:1em 0}figcaption{font-weight:600;margin-bottom:.3em}
svg{width:100%;height:auto;background:#fafafa;border:1px solid #ddd}
.grid{stroke:#ddd;stroke-width:1}.line{fill:none;stroke-width:1.5}
.ylabel{font-size:11px;text-anchor:end;dominant-baseline:middle;fill:#666}
.xlabel{font-size:11px;fill:#666}
.legend{font-size:.9em}.key{margin-right:1em;white-space:nowrap}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.3em;vertical-align:middle}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
.state{padding:.1em .5em;border-radius:.8em;color:#fff}
.state-running{background:#2e7d32}.state-idle,.state-paused{background:#b26a00}
.state-starting,.state-preparing{background:#1565c0}.state-other{background:#616161}
figure.live>svg,figure.live>.legend,figure.live>p.none{display:none}
.live-chart{background:#fafafa;border:1px solid #ddd}
.u-legend{font-size:.85em}.u-legend th,.u-legend td{border:0;padding:.1em .3em}
.live-state{font-size:.75em;font-weight:normal;color:#666;margin-left:.5em}
.live-state.stale{color:#c00}
`;

/** Renders the page; every value from outside is HTML-escaped. */
export function renderMonitorPage(data: MonitorPageData): string {
  const { host, history } = data;
  const now = data.now ?? Date.now();
  const figures = figureLines(data).map((f) => `<li>${escapeHtml(f)}</li>`).join("\n");
  const charts = CHARTS.map((spec) => chart(spec, history)).join("\n");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Webots simulation server</title>
<link rel="stylesheet" href="assets/uPlot.min.css">
<style>${STYLE}</style>
<script src="assets/uPlot.iife.min.js" defer></script>
<script src="assets/live_chart.js" defer></script>
<script src="assets/simulation_monitor.js" defer></script>
</head>
<body>
<h1>Webots simulation server: ${escapeHtml(data.fqdn)}</h1>
<h2>Host: ${escapeHtml(host.os)}</h2>
<p>${escapeHtml(host.hostname)} — kernel ${escapeHtml(host.kernel)}</p>
<ul class="figures" id="figures">
${figures}
</ul>
<h2>Last 10 minutes <span id="live" class="live-state"></span></h2>
${charts}
<h2>Simulations</h2>
<div id="sessions">
${sessionTable(displayRows(data.sessions, now))}
</div>
</body>
</html>
`;
}
