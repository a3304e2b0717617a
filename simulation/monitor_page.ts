/**
 * The simulation server's `/monitor` page: host description, current figures, charts of the last
 * 10 minutes and the table of simulations, and the same figures as JSON for `/monitor/data`.
 *
 * The figures and the table are rendered on the server, so they show without JavaScript. The
 * charts are drawn in the browser only (`assets/live_chart.js` on uPlot, the one place that
 * computes their scales): `assets/simulation_monitor.js` polls `monitor/data` and keeps the
 * figures, the charts and the table live. Nothing is loaded from another origin.
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

/**
 * A chart's figure: what the live chart (`assets/live_chart.js`, on uPlot) needs to draw it. The
 * scale and the drawing are the browser's alone; without JavaScript the figures above the charts
 * still give the current values.
 */
function chart(spec: ChartSpec): string {
  const series = spec.series.map(({ key, label, color }) => ({ key, label, color }));
  const max = spec.yMax === undefined ? "" : ` data-max="${spec.yMax}"`;
  return `<figure data-chart="${spec.name}" data-unit="${escapeHtml(spec.unit)}"${max} ` +
    `data-series="${escapeHtml(JSON.stringify(series))}">` +
    `<figcaption>${escapeHtml(spec.title)}</figcaption>` +
    `<noscript><p class="none">The chart needs JavaScript.</p></noscript></figure>`;
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
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
.state{padding:.1em .5em;border-radius:.8em;color:#fff}
.state-running{background:#2e7d32}.state-idle,.state-paused{background:#b26a00}
.state-starting,.state-preparing{background:#1565c0}.state-other{background:#616161}
.live-chart{background:#fafafa;border:1px solid #ddd}
.u-legend{font-size:.85em}.u-legend th,.u-legend td{border:0;padding:.1em .3em}
.live-state{font-size:.75em;font-weight:normal;color:#666;margin-left:.5em}
.live-state.stale{color:#c00}
`;

/** Renders the page; every value from outside is HTML-escaped. */
export function renderMonitorPage(data: MonitorPageData): string {
  const { host } = data;
  const now = data.now ?? Date.now();
  const figures = figureLines(data).map((f) => `<li>${escapeHtml(f)}</li>`).join("\n");
  const charts = CHARTS.map(chart).join("\n");
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
