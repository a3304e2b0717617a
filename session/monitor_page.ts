/**
 * The session server's `/monitor` page: one row per simulation server (state, time of its last
 * answer, load, simulations and free slots), the fleet's totals, the leases and queue sections
 * when those features report figures, a chart of the last 10 minutes of loads with the `fullAt`
 * and `availableAt` lines, and the last changes of standing; and the same as JSON for
 * `/monitor/data`.
 *
 * The page is rendered on the server, so it works without JavaScript; with it,
 * `assets/session_monitor.js` polls `monitor/data` and keeps everything live. Every value is
 * escaped; nothing is loaded from another origin. Times are UTC in one form
 * (shared/time_format.ts); every load is written with one decimal.
 *
 * @module
 */
import { escapeHtml } from "../shared/http.ts";
import { formatDuration, formatPercent, formatTime } from "../shared/time_format.ts";
import { monitorUrl, type UrlMode } from "../shared/urls.ts";
import type { FleetLog, StandingChange } from "./fleet_log.ts";
import type { SourceStatus } from "./discovery.ts";
import {
  answeredLoad,
  averageLoad,
  isFull,
  type LoadThresholds,
  type ServerView,
  type Standing,
  standingOf,
} from "./load_rules.ts";
import type { LoadColumns } from "./load_history.ts";

/** Shown where a figure is not known (a stock simulation server sends no slot figures). */
export const UNKNOWN = "—";

/**
 * Slot leases, when the session server grants them (`leaseSecret`): absent otherwise, and its
 * section is then not shown.
 */
export interface LeaseFigures {
  /**
   * Slots held by leases on the servers that answer: leases granted and neither used nor expired,
   * and leased sessions whose Webots does not run yet.
   */
  readonly outstanding: number;
}

/**
 * The queue on `/` (issue 10, queue feature): absent until that feature fills it, and its section
 * is then not shown.
 */
export interface QueueFigures {
  /** Pages waiting. */
  readonly length: number;
  /** Seconds the page at the head of the queue has waited, while one waits. */
  readonly longestWaitS?: number;
  /** Mean seconds the last served pages waited, once one was served. */
  readonly averageWaitS?: number;
  /** Estimated wait of a page joining now, in seconds, when the queue has an estimate. */
  readonly estimateS?: number;
}

/** What other features report for the page; each part is optional. */
export interface FleetExtras {
  readonly leases?: LeaseFigures;
  readonly queue?: QueueFigures;
  /** The DNS entries of `simulationServers` (discovery.ts), when there are any. */
  readonly discovery?: readonly SourceStatus[];
}

/** Everything the page is made from. */
export interface MonitorInput {
  readonly servers: readonly ServerView[];
  readonly log: FleetLog;
  readonly mode: UrlMode;
  readonly thresholds: LoadThresholds;
  readonly extras?: FleetExtras | undefined;
}

/** How a row shows a standing: its word and the class of its coloured badge. */
export function standingBadge(standing: Standing): { text: string; className: string } {
  switch (standing) {
    case "available":
    case "full":
    case "draining":
      return { text: standing, className: `state state-${standing}` };
    case "down":
      return { text: "not responding", className: "state state-down" };
    case "unknown":
      return { text: "not polled yet", className: "state state-unknown" };
    default:
      return standing satisfies never;
  }
}

/** One table row, as plain text. */
export interface ServerRow {
  entry: string;
  /** The server's own monitor page. */
  monitor: string;
  state: string;
  stateClass: string;
  /** When it last answered (`2026-11-21 06:03:09`), or `never`. */
  lastAnswer: string;
  /** e.g. `12.5%` or `N/A`. */
  load: string;
  /** `load` or `load full`. */
  loadClass: string;
  /** Simulations running or paused, or `—` when the server does not say. */
  simulations: string;
  /** Free slots of all, e.g. `3 of 5`, or `—`. */
  freeSlots: string;
}

function freeOf(used: number, max: number): number {
  return Math.max(0, max - used);
}

function serverRows(input: MonitorInput): ServerRow[] {
  return input.servers.map(({ entry, state }) => {
    const standing = standingOf(state);
    const badge = standingBadge(standing);
    const load = answeredLoad(state);
    const { answeredAt, slots } = input.log.record(entry);
    // Figures of a server that no longer answers would be stale: shown only while it answers.
    const known = state.kind === "up" ? slots : undefined;
    return {
      entry,
      monitor: monitorUrl(entry, input.mode),
      state: badge.text,
      stateClass: badge.className,
      lastAnswer: answeredAt === undefined ? "never" : formatTime(answeredAt),
      load: load === undefined ? "N/A" : formatPercent(load),
      // Red exactly while the server is full, band included (load_rules.ts `nextState`).
      loadClass: standing === "full" ? "load full" : "load",
      simulations: known === undefined ? UNKNOWN : String(known.simulations),
      freeSlots: known === undefined ? UNKNOWN : `${freeOf(known.used, known.max)} of ${known.max}`,
    };
  });
}

/** The fleet's line under the rows. */
export interface Totals {
  /** The average load of the answering servers, not draining (the `/load` of this server). */
  average: { text: string; className: string };
  /** Simulations over the servers that say. */
  simulations: string;
  /** Free slots of the servers that take new clients (available), over those that say. */
  freeSlots: string;
}

function totals(input: MonitorInput): Totals {
  const average = averageLoad(input.servers);
  let simulations: number | undefined;
  let free: number | undefined;
  for (const { entry, state } of input.servers) {
    const slots = state.kind === "up" ? input.log.record(entry).slots : undefined;
    if (slots === undefined) continue;
    simulations = (simulations ?? 0) + slots.simulations;
    // Known to be 0 as soon as one server says its slots, even if none takes new clients.
    free = (free ?? 0) + (standingOf(state) === "available" ? freeOf(slots.used, slots.max) : 0);
  }
  return {
    average: average === undefined ? { text: "N/A", className: "load" } : {
      text: formatPercent(average),
      className: isFull(average, input.thresholds) ? "load full" : "load",
    },
    simulations: simulations === undefined ? UNKNOWN : String(simulations),
    freeSlots: free === undefined ? UNKNOWN : String(free),
  };
}

/** A change of standing as the list shows it. */
export interface ChangeRow {
  time: string;
  entry: string;
  from: string;
  to: string;
  /** The badge class of the new standing. */
  toClass: string;
  /** The load it answered, or empty. */
  load: string;
}

/** The badge of a change's end: a standing, or a server joining or leaving through DNS. */
function changeBadge(to: StandingChange["to"] | "absent"): { text: string; className: string } {
  switch (to) {
    case "joined":
    case "left":
      return { text: to, className: `state state-${to}` };
    case "absent":
      return { text: "not listed", className: "state state-unknown" };
    default:
      return standingBadge(to);
  }
}

function changeRows(log: FleetLog): ChangeRow[] {
  return log.changes().map((change) => {
    const to = changeBadge(change.to);
    return {
      time: formatTime(change.at),
      entry: change.via === undefined ? change.entry : `${change.entry} (${change.via})`,
      from: changeBadge(change.from).text,
      to: to.text,
      toClass: to.className,
      load: change.load === undefined ? "" : formatPercent(change.load),
    };
  });
}

/** The lines of the queue section, when there is a queue to show. */
function queueLines(queue: QueueFigures | undefined): string[] | undefined {
  if (queue === undefined) return undefined;
  const wait = (s: number | undefined) => s === undefined ? UNKNOWN : formatDuration(s * 1000);
  return [
    `Pages waiting: ${queue.length}`,
    `Longest wait now: ${wait(queue.longestWaitS)}`,
    `Average wait of the last served pages: ${wait(queue.averageWaitS)}`,
    `Estimated wait for a page joining now: ${wait(queue.estimateS)}`,
  ];
}

/** What `/monitor/data` answers. */
export interface MonitorData {
  servers: ServerRow[];
  totals: Totals;
  thresholds: LoadThresholds;
  changes: ChangeRow[];
  /** Present only when the lease feature reports (see `LeaseFigures`). */
  leases?: string[];
  /** Present only when the queue feature reports (see `QueueFigures`). */
  queue?: string[];
  /** Present only when `simulationServers` has DNS entries. */
  discovery?: string[];
  /** Chart columns: `timestamp`, `average`, and `s<i>` for the i-th server. */
  history: Record<string, (number | null)[]>;
  /** The chart's series now: a page follows servers that joined or left since it was loaded. */
  series: ChartSeries[];
}

function leaseLines(leases: LeaseFigures | undefined): string[] | undefined {
  return leases === undefined
    ? undefined
    : [`Slots held by leases (granted, no Webots running yet): ${leases.outstanding}`];
}

/** One line per DNS entry: how many servers it gives, and when it answered or why it fails. */
function discoveryLines(sources: readonly SourceStatus[] | undefined): string[] | undefined {
  if (sources === undefined || sources.length === 0) return undefined;
  return sources.map(({ source, servers, resolvedAt, error }) => {
    const count = `${servers} server${servers === 1 ? "" : "s"}`;
    const answered = resolvedAt === undefined
      ? "never answered"
      : `answered ${formatTime(resolvedAt)}`;
    return error === undefined
      ? `${source}: ${count}, ${answered}`
      : `${source}: lookups failing (${error}); keeping ${count}, ${answered}`;
  });
}

/** The page's live parts as data for `/monitor/data`. */
export function monitorData(input: MonitorInput, history: LoadColumns): MonitorData {
  const columns: Record<string, (number | null)[]> = {
    timestamp: history.timestamp,
    average: history.average,
  };
  history.servers.forEach((loads, i) => (columns[`s${i}`] = loads));
  const data: MonitorData = {
    servers: serverRows(input),
    totals: totals(input),
    thresholds: { fullAt: input.thresholds.fullAt, availableAt: input.thresholds.availableAt },
    changes: changeRows(input.log),
    history: columns,
    series: chartSeries(input.servers),
  };
  const leases = leaseLines(input.extras?.leases);
  if (leases !== undefined) data.leases = leases;
  const queue = queueLines(input.extras?.queue);
  if (queue !== undefined) data.queue = queue;
  const discovery = discoveryLines(input.extras?.discovery);
  if (discovery !== undefined) data.discovery = discovery;
  return data;
}

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

/** "1 simulation server", "3 simulation servers". */
export function managedText(n: number): string {
  return `${n} simulation server${n === 1 ? "" : "s"}`;
}

/** One series of the load chart. */
export interface ChartSeries {
  key: string;
  label: string;
  color: string;
  width?: number;
}

/** The load chart's series: the average, then one per server (`s<i>`, the i-th server). */
function chartSeries(servers: readonly ServerView[]): ChartSeries[] {
  return [
    { key: "average", label: "average", color: "#222", width: 2.5 },
    ...servers.map((s, i) => ({
      key: `s${i}`,
      label: s.entry,
      color: PALETTE[i % PALETTE.length]!,
    })),
  ];
}

function chartFigure(servers: readonly ServerView[], thresholds: LoadThresholds): string {
  const series = chartSeries(servers);
  // Drawn across the whole chart by the live chart (`data-lines`).
  const lines = [
    {
      value: thresholds.fullAt,
      label: `full at ${formatPercent(thresholds.fullAt)}`,
      color: "#c62828",
    },
    {
      value: thresholds.availableAt,
      label: `available again below ${formatPercent(thresholds.availableAt)}`,
      color: "#2e7d32",
    },
  ];
  return `<figure data-chart="load" data-unit="%" data-max="100" ` +
    `data-lines="${escapeHtml(JSON.stringify(lines))}" ` +
    `data-series="${escapeHtml(JSON.stringify(series))}">` +
    `<figcaption>Load of the last 10 minutes (%): full at ${
      escapeHtml(formatPercent(thresholds.fullAt))
    }, available again below ${escapeHtml(formatPercent(thresholds.availableAt))}</figcaption>` +
    `<noscript><p class="none">The chart needs JavaScript.</p></noscript></figure>`;
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.4em}
table{border-collapse:collapse}
th,td{border:1px solid #bbb;padding:.3em .7em;text-align:left}
td.load,td.num{text-align:right;font-variant-numeric:tabular-nums}
.full{color:#c00}
tr.total td{font-weight:bold}
.state{padding:.1em .5em;border-radius:.8em;color:#fff;white-space:nowrap}
.state-available{background:#2e7d32}.state-full{background:#c62828}.state-draining{background:#ef6c00}
.state-down{background:#757575}.state-unknown{background:#9e9e9e}
.state-joined{background:#1565c0}.state-left{background:#6a1b9a}
ul.figures{list-style:none;padding:0}ul.figures li{margin:.2em 0}
figure{margin:1.5em 0}figcaption{font-weight:600;margin-bottom:.3em}
.live-chart{background:#fafafa;border:1px solid #ddd}
.u-legend{font-size:.85em}.u-legend th,.u-legend td{border:0;padding:.1em .3em}
.live-state{font-size:.8em;color:#666;margin-left:.5em}.live-state.stale{color:#c00}
.none{color:#666}`;

function serverRowHtml(row: ServerRow, i: number): string {
  return `<tr><td>${i + 1}</td><td><a href="${escapeHtml(row.monitor)}">${
    escapeHtml(row.entry)
  }</a></td><td><span class="${escapeHtml(row.stateClass)}">${
    escapeHtml(row.state)
  }</span></td><td>${escapeHtml(row.lastAnswer)}</td><td class="${row.loadClass}">${
    escapeHtml(row.load)
  }</td><td class="num">${escapeHtml(row.simulations)}</td><td class="num">${
    escapeHtml(row.freeSlots)
  }</td></tr>`;
}

function totalRowHtml(t: Totals): string {
  return `<tr class="total"><td></td><td colspan="3">fleet (average load; free slots of ` +
    `available servers):</td><td class="${t.average.className}">${
      escapeHtml(t.average.text)
    }</td><td class="num">${escapeHtml(t.simulations)}</td><td class="num">${
      escapeHtml(t.freeSlots)
    }</td></tr>`;
}

function linesSection(id: string, title: string, lines: readonly string[] | undefined): string {
  const items = (lines ?? []).map((line) => `<li>${escapeHtml(line)}</li>`).join("");
  return `<section id="${id}"${lines === undefined ? " hidden" : ""}><h2>${
    escapeHtml(title)
  }</h2><ul class="figures">${items}</ul></section>`;
}

function changesHtml(rows: readonly ChangeRow[]): string {
  const body = rows.map((r) =>
    `<tr><td>${escapeHtml(r.time)}</td><td>${escapeHtml(r.entry)}</td><td>${
      escapeHtml(r.from)
    }</td><td><span class="${escapeHtml(r.toClass)}">${escapeHtml(r.to)}</span></td>` +
    `<td class="load">${escapeHtml(r.load)}</td></tr>`
  ).join("\n");
  return `<p class="none"${rows.length === 0 ? "" : " hidden"}>No change since the start.</p>` +
    `<table${rows.length === 0 ? " hidden" : ""}><thead><tr><th>time (UTC)</th>` +
    `<th>simulation server</th><th>was</th><th>now</th><th>load</th></tr></thead>` +
    `<tbody>\n${body}\n</tbody></table>`;
}

/** The whole monitor page. */
export function monitorPage(input: MonitorInput, startedAt: number): string {
  const data = monitorData(input, { timestamp: [], average: [], servers: [] });
  const rows = data.servers.map(serverRowHtml);
  const n = input.servers.length;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Webots session server</title>
<link rel="stylesheet" href="assets/uPlot.min.css">
<style>
${STYLE}
</style>
<script src="assets/uPlot.iife.min.js" defer></script>
<script src="assets/live_chart.js" defer></script>
<script src="assets/session_monitor.js" defer></script>
</head>
<body>
<h1>Webots session server</h1>
<p>Started ${escapeHtml(formatTime(startedAt))} — all times are UTC. Managing <span id="managed">${
    managedText(n)
  }</span>: ` +
    `<span id="live" class="live-state"></span></p>
<table>
<thead><tr><th>#</th><th>simulation server</th><th>state</th><th>last answer (UTC)</th>` +
    `<th>load</th><th>simulations</th><th>free slots</th></tr></thead>
<tbody id="servers">
${rows.join("\n")}
</tbody>
<tbody id="totals">
${totalRowHtml(data.totals)}
</tbody>
</table>
${linesSection("leases", "Slot leases", data.leases)}
${linesSection("queue", "Queue", data.queue)}
${linesSection("discovery", "Discovery (DNS)", data.discovery)}
${chartFigure(input.servers, input.thresholds)}
<h2>Last changes</h2>
<div id="changes">
${changesHtml(data.changes)}
</div>
</body>
</html>
`;
}
