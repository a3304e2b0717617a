/**
 * The simulation server's `/monitor` page, most important first: what `/load` answers and what
 * it is made of (monitor_load.ts), the slots, the table of simulations (with the drain when there
 * is one), the charts of the last 10 minutes (the load and its parts, the simulations, the
 * network), then the host; and the same figures as JSON for `/monitor/data`.
 *
 * Everything but the charts is rendered on the server, so it shows without JavaScript. The charts
 * are drawn in the browser only (`assets/live_chart.js` on uPlot, the one place that computes
 * their scales): `assets/simulation_monitor.js` polls `monitor/data` and keeps the page live.
 * GPU series and figures appear only when a GPU was found. Nothing is loaded from another origin.
 *
 * @module
 */
import { escapeHtml } from "../shared/http.ts";
import { formatDuration, formatPercent } from "../shared/time_format.ts";
import type { LoadStatus } from "./load.ts";
import type { HostInfo } from "./metrics.ts";
import { loadColumns, type LoadView, loadView } from "./monitor_load.ts";
import { type Snapshot, SNAPSHOT_COLUMNS } from "./snapshot.ts";

/** One simulation in the page's table. */
export interface SessionRow {
  id: string;
  world: string;
  /** The Webots release it runs on, once started. */
  release: string | undefined;
  /** Webots' streaming port. */
  port: number;
  /** e.g. `preparing`, `starting`, `running`, `idle`. */
  state: string;
  /** Milliseconds since the epoch. */
  startedAt: number;
  /** Since when its simulation is paused (ms since the epoch), or undefined while it runs. */
  idleSince: number | undefined;
  /** The browser's address. */
  remote: string;
}

/** What the page shows. */
export interface MonitorPageData {
  fqdn: string;
  host: HostInfo;
  history: readonly Snapshot[];
  sessions: readonly SessionRow[];
  /** What `/load` answers at this moment. */
  status: LoadStatus;
  /** The figures `/load` judges by (`steadyFigures`); undefined before the first snapshot. */
  loadFigures: Snapshot | undefined;
  /** Seconds CPU and GPU figures are averaged over (`loadWindow`; one snapshot a second). */
  loadWindow: number;
  /** Milliseconds since the epoch, for the ages (default: `Date.now()`). */
  now?: number;
}

/** The history as columns (`{timestamp:[…],cpu:[…],…}`), the shape uPlot draws. */
export function snapshotColumns(history: readonly Snapshot[]): Record<string, number[]> {
  const columns: Record<string, number[]> = {};
  for (const [key] of SNAPSHOT_COLUMNS) columns[key] = history.map((s) => s[key] ?? 0);
  return columns;
}

/** The history as JSON columns (`{"timestamp":[…],"cpu":[…],…}`), e.g. for a live chart. */
export function snapshotsAsJson(history: readonly Snapshot[]): string {
  return JSON.stringify(snapshotColumns(history));
}

interface Series {
  label: string;
  color: string;
  key: string;
  width?: number;
}

const GPU_KEYS = new Set(["gpuComputeMean", "gpuMemoryMean"]);

/** The "Load (%)" chart: the figure `/load` answers, and the parts it is the maximum of. */
function loadSeries(loadWindow: number): Series[] {
  return [
    { label: "Load (/load)", color: "#222", key: "load", width: 2.5 },
    { label: "Slots", color: "#2e7d32", key: "slots" },
    { label: `CPU (${loadWindow} s mean)`, color: "#1f77b4", key: "cpuMean" },
    { label: "Memory", color: "#ff7f0e", key: "memory" },
    { label: "Swap", color: "#9467bd", key: "swap" },
    { label: `GPU compute (${loadWindow} s mean)`, color: "#17becf", key: "gpuComputeMean" },
    { label: `GPU memory (${loadWindow} s mean)`, color: "#d62728", key: "gpuMemoryMean" },
  ];
}
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
  /** Counts: whole-number ticks, the scale reaching at least `yMax`. */
  integer?: boolean;
}

function chartSpecs(data: MonitorPageData): ChartSpec[] {
  const gpu = data.host.gpu !== undefined;
  return [
    {
      name: "load",
      title: "Load (%): the figure /load computes (100 while draining), and its parts",
      unit: "%",
      series: loadSeries(data.loadWindow).filter((s) => gpu || !GPU_KEYS.has(s.key)),
      yMax: 100,
    },
    {
      name: "simulations",
      title: `Simulations (maxConnections ${data.status.maxConnections})`,
      unit: "",
      series: SESSION_SERIES,
      yMax: data.status.maxConnections,
      integer: true,
    },
    { name: "network", title: "Network (MB/s)", unit: " MB/s", series: NETWORK_SERIES },
  ];
}

/**
 * A chart's figure: what the live chart (`assets/live_chart.js`, on uPlot) needs to draw it. The
 * scale and the drawing are the browser's alone; without JavaScript the figures above the charts
 * still give the current values.
 */
function chart(spec: ChartSpec): string {
  const series = spec.series.map(({ key, label, color, width }) =>
    width === undefined ? { key, label, color } : { key, label, color, width }
  );
  const max = spec.yMax === undefined ? "" : ` data-max="${spec.yMax}"`;
  return `<figure data-chart="${spec.name}" data-unit="${escapeHtml(spec.unit)}"${max}` +
    `${spec.integer ? " data-integer" : ""} ` +
    `data-series="${escapeHtml(JSON.stringify(series))}">` +
    `<figcaption>${escapeHtml(spec.title)}</figcaption>` +
    `<noscript><p class="none">The chart needs JavaScript.</p></noscript></figure>`;
}

const STATE_CLASSES = new Set(["running", "idle", "paused", "starting", "preparing"]);

/** A table row as the page shows it (plain text; escaped when rendered). */
export interface DisplayRow {
  id: string;
  world: string;
  release: string;
  state: string;
  /** The CSS class of the state badge: `state-running`, …, or `state-other`. */
  stateClass: string;
  age: string;
  /** How long its simulation has been paused, or empty while it runs. */
  idle: string;
  remote: string;
  port: string;
}

function displayRows(sessions: readonly SessionRow[], now: number): DisplayRow[] {
  return sessions.map((r) => ({
    id: r.id,
    world: r.world,
    release: r.release ?? "",
    state: r.state,
    stateClass: `state-${STATE_CLASSES.has(r.state) ? r.state : "other"}`,
    age: formatDuration(now - r.startedAt),
    idle: r.idleSince === undefined ? "" : formatDuration(now - r.idleSince),
    remote: r.remote,
    port: r.port > 0 ? String(r.port) : "",
  }));
}

const NO_SIMULATION = "No simulation is running.";
const SESSION_HEADINGS = ["Id", "World", "Release", "State", "Age", "Idle for", "Address", "Port"];

function sessionTable(rows: readonly DisplayRow[]): string {
  const body = rows.map((r) =>
    `<tr><td>${escapeHtml(r.id)}</td><td>${escapeHtml(r.world)}</td>` +
    `<td>${escapeHtml(r.release)}</td><td><span class="state ${escapeHtml(r.stateClass)}">${
      escapeHtml(r.state)
    }</span></td><td>${escapeHtml(r.age)}</td><td>${escapeHtml(r.idle)}</td>` +
    `<td>${escapeHtml(r.remote)}</td><td>${escapeHtml(r.port)}</td></tr>`
  ).join("\n");
  return `<p class="none"${rows.length === 0 ? "" : " hidden"}>${NO_SIMULATION}</p>` +
    `<table${rows.length === 0 ? " hidden" : ""}><thead><tr>${
      SESSION_HEADINGS.map((h) => `<th>${h}</th>`).join("")
    }</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** The lines about the host, as plain text. */
export function hostLines(data: MonitorPageData): string[] {
  const { host } = data;
  const s = data.history.at(-1);
  const pct = (v: number | undefined) => formatPercent(v ?? 0);
  const gpu = host.gpu
    ? `GPU: ${host.gpu.name}, ${fixed(host.gpu.memoryTotalGB)} GB — compute ${
      pct(s?.gpuCompute)
    }, memory controller ${pct(s?.gpuMemoryLoad)}, memory used ${pct(s?.gpuMemory)}`
    : "GPU: none found (nvidia-smi gave no answer); no GPU figures are shown";
  return [
    `CPU: ${host.cpuModel} (${host.cpuCores} cores) — ${pct(s?.cpu)} in the last second`,
    gpu,
    `RAM: ${fixed(host.ramTotalGB)} GB (${pct(s?.memory)} used) — swap: ${
      fixed(host.swapTotalGB)
    } GB (${pct(s?.swap)} used)`,
    `Disk: ${pct(s?.disk)} used — network: ${fixed(s?.networkSent ?? 0)} MB/s sent, ${
      fixed(s?.networkReceived ?? 0)
    } MB/s received`,
  ];
}

/** What `/monitor/data` answers: the page's live parts, ready to show. */
export interface MonitorData {
  /** Whether a GPU was found: the page was drawn with GPU series or without. */
  gpu: boolean;
  load: LoadView;
  host: string[];
  /** Snapshot columns (see `snapshotColumns`) and the load's (monitor_load.ts `loadColumns`). */
  history: Record<string, number[]>;
  sessions: DisplayRow[];
}

/** The page's live parts as data for `/monitor/data`. */
export function monitorData(data: MonitorPageData): MonitorData {
  const now = data.now ?? Date.now();
  return {
    gpu: data.host.gpu !== undefined,
    load: loadView({
      status: data.status,
      figures: data.loadFigures,
      loadWindow: data.loadWindow,
      hasGpu: data.host.gpu !== undefined,
      now,
    }),
    host: hostLines(data),
    history: {
      ...snapshotColumns(data.history),
      ...loadColumns(data.history, data.loadWindow, data.status.maxConnections),
    },
    sessions: displayRows(data.sessions, now),
  };
}

function loadSection(view: LoadView): string {
  const parts = view.parts.map((p) =>
    `<tr${p.decides ? ` class="decides"` : ""}><td>${escapeHtml(p.name)}</td>` +
    `<td class="num">${escapeHtml(p.value)}</td><td>${escapeHtml(p.note)}</td></tr>`
  ).join("");
  return `<div id="load">` +
    `<p class="figure">Load reported on /load: <strong id="load-figure">${
      escapeHtml(view.load)
    }</strong> <span class="state ${escapeHtml(view.standingClass)}">${
      escapeHtml(view.standing)
    }</span></p>` +
    `<p id="slots">Slots: ${escapeHtml(view.slots)}</p>` +
    `<p id="drain" class="drain"${view.drain === undefined ? " hidden" : ""}>${
      escapeHtml(view.drain ?? "")
    }</p>` +
    `<table class="parts"><thead><tr><th>part (the load is the largest)</th><th>value</th>` +
    `<th>measured</th></tr></thead><tbody id="parts">${parts}</tbody></table></div>`;
}

const STYLE = `
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.4em}
ul.figures{list-style:none;padding:0}ul.figures li{margin:.25em 0}
figure{margin:1em 0}figcaption{font-weight:600;margin-bottom:.3em}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
p.figure{font-size:1.25em;margin:.4em 0}
tr.decides td{font-weight:bold;background:#fff3e0}
.drain{background:#fff3e0;border-left:4px solid #ef6c00;padding:.4em .8em}
.state{padding:.1em .5em;border-radius:.8em;color:#fff;font-size:.85em;white-space:nowrap}
.state-running,.state-available{background:#2e7d32}.state-idle,.state-paused{background:#b26a00}
.state-starting,.state-preparing{background:#1565c0}.state-other{background:#616161}
.state-full{background:#c62828}.state-draining{background:#ef6c00}
.live-chart{background:#fafafa;border:1px solid #ddd}
.u-legend{font-size:.85em}.u-legend th,.u-legend td{border:0;padding:.1em .3em}
.live-state{font-size:.75em;font-weight:normal;color:#666;margin-left:.5em}
.live-state.stale{color:#c00}
`;

/** Renders the page; every value from outside is HTML-escaped. */
export function renderMonitorPage(data: MonitorPageData): string {
  const { host } = data;
  const live = monitorData(data);
  const lines = live.host.map((f) => `<li>${escapeHtml(f)}</li>`).join("\n");
  const charts = chartSpecs(data).map(chart).join("\n");
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
<body data-gpu="${live.gpu}">
<h1>Webots simulation server: ${
    escapeHtml(data.fqdn)
  } <span id="live" class="live-state"></span></h1>
${loadSection(live.load)}
<h2>Simulations</h2>
<div id="sessions">
${sessionTable(live.sessions)}
</div>
<h2>Last 10 minutes (times UTC)</h2>
${charts}
<h2>Host: ${escapeHtml(host.os)}</h2>
<p>${escapeHtml(host.hostname)} — kernel ${escapeHtml(host.kernel)}</p>
<ul class="figures" id="host">
${lines}
</ul>
</body>
</html>
`;
}
