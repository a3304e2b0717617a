/**
 * The simulation server's `/monitor` page: host description, current figures, charts of the last
 * 10 minutes and the table of simulations. Self-contained: inline CSS and server-rendered inline
 * SVG, no script and no external resource, so it shows anywhere, offline and without JavaScript.
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

/** The history as JSON columns (`{"timestamp":[…],"cpu":[…],…}`), e.g. for a live chart. */
export function snapshotsAsJson(history: readonly Snapshot[]): string {
  const columns: Record<string, number[]> = {};
  for (const [key] of SNAPSHOT_COLUMNS) columns[key] = history.map((s) => s[key]);
  return JSON.stringify(columns);
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

function chart(
  title: string,
  unit: string,
  series: readonly Series[],
  history: readonly Snapshot[],
  yMax?: number,
): string {
  const last = history.at(-1);
  const end = last?.timestamp ?? 0;
  const max = yMax ?? niceMax(Math.max(0, ...series.flatMap((s) => history.map((h) => h[s.key]))));
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
      escapeHtml(unit)
    }</span>`
  ).join(" ");
  return `<figure><figcaption>${escapeHtml(title)}</figcaption>` +
    `<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${escapeHtml(title)}">` +
    `${grid}${xLabels}${lines}</svg><div class="legend">${legend}</div></figure>`;
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

function sessionTable(sessions: readonly SessionRow[], now: number): string {
  if (sessions.length === 0) return `<p class="none">No simulation is running.</p>`;
  const rows = sessions.map((r) => {
    const cls = STATE_CLASSES.has(r.state) ? r.state : "other";
    return `<tr><td>${escapeHtml(r.id)}</td><td>${escapeHtml(r.world)}</td>` +
      `<td>${escapeHtml(r.port)}</td><td><span class="state state-${cls}">${
        escapeHtml(r.state)
      }</span></td><td>${escapeHtml(age(now - r.startedAt))}</td><td>${
        escapeHtml(r.remote)
      }</td></tr>`;
  }).join("\n");
  return `<table><thead><tr><th>Id</th><th>World</th><th>Port</th><th>State</th><th>Age</th>` +
    `<th>Remote address</th></tr></thead><tbody>\n${rows}\n</tbody></table>`;
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
`;

/** Renders the page; every value from outside is HTML-escaped. */
export function renderMonitorPage(data: MonitorPageData): string {
  const { host, history } = data;
  const now = data.now ?? Date.now();
  const s = history.at(-1);
  const pct = (v: number | undefined) => `${escapeHtml(fixed(v ?? 0))}%`;
  const gpu = host.gpu
    ? `GPU load compute: ${pct(s?.gpuCompute)} — load memory: ${pct(s?.gpuMemoryLoad)} — ` +
      `memory used: ${pct(s?.gpuMemory)} — ${escapeHtml(host.gpu.name)}, ` +
      `${escapeHtml(fixed(host.gpu.memoryTotalGB))} GB`
    : "GPU: Not recognized";
  const figures = [
    `CPU load: ${pct(s?.cpu)} — ${escapeHtml(host.cpuModel)} (${escapeHtml(host.cpuCores)} cores)`,
    gpu,
    `RAM: ${escapeHtml(fixed(host.ramTotalGB))} GB (${pct(s?.memory)} used) — swap: ${
      escapeHtml(fixed(host.swapTotalGB))
    } GB (${pct(s?.swap)} used)`,
    `Disk: ${pct(s?.disk)} used — network: ${escapeHtml(fixed(s?.networkSent ?? 0))} MB/s sent, ${
      escapeHtml(fixed(s?.networkReceived ?? 0))
    } MB/s received`,
    `Simulations: ${escapeHtml(s?.webotsRunning ?? 0)} running, ${
      escapeHtml(s?.webotsIdle ?? 0)
    } idle`,
  ].map((f) => `<li>${f}</li>`).join("\n");
  const charts = history.length === 0 ? `<p class="none">No figures yet.</p>` : [
    chart("Load (%)", "%", PERCENT_SERIES, history, 100),
    chart("Network (MB/s)", " MB/s", NETWORK_SERIES, history),
    chart("Simulations", "", SESSION_SERIES, history),
  ].join("\n");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Webots simulation server</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Webots simulation server: ${escapeHtml(data.fqdn)}</h1>
<h2>Host: ${escapeHtml(host.os)}</h2>
<p>${escapeHtml(host.hostname)} — kernel ${escapeHtml(host.kernel)}</p>
<ul class="figures">
${figures}
</ul>
<h2>Last 10 minutes</h2>
${charts}
<h2>Simulations</h2>
${sessionTable(data.sessions, now)}
</body>
</html>
`;
}
