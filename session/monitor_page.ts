/**
 * The session server's `/monitor` page: one row per simulation server with its state and load,
 * the average over the servers that answer, and a chart of the last 10 minutes of loads; and the
 * same as JSON for `/monitor/data`.
 *
 * The table is rendered on the server, so the page works without JavaScript; with it,
 * `assets/session_monitor.js` polls `monitor/data` and keeps the table and the uPlot chart live.
 * Every value is escaped; nothing is loaded from another origin.
 *
 * @module
 */
import { escapeHtml } from "../shared/http.ts";
import { monitorUrl, type UrlMode } from "../shared/urls.ts";
import {
  answeredLoad,
  averageLoad,
  isFull,
  type LoadThresholds,
  type ServerState,
  type ServerView,
  standingOf,
} from "./load_rules.ts";
import type { LoadColumns } from "./load_history.ts";
import { pythonFloat } from "./notify.ts";

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

/** Local time as the reference prints it: `Friday, November 21, 2026 at 06:03:09`. */
function formatStartTime(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[date.getDay()]}, ${MONTHS[date.getMonth()]} ${
    pad(date.getDate())
  }, ${date.getFullYear()} at ${pad(date.getHours())}:${pad(date.getMinutes())}:${
    pad(date.getSeconds())
  }`;
}

/** Python's `%g`: six significant digits, no trailing zeros. */
function formatG(value: number): string {
  return String(Number(value.toPrecision(6)));
}

/** How a row shows a server's state: its word and the class of its coloured badge. */
function stateBadge(state: ServerState): { text: string; className: string } {
  const standing = standingOf(state);
  switch (standing) {
    case "available":
    case "full":
      return { text: standing, className: `state state-${standing}` };
    case "down":
      return { text: "not responding", className: "state state-down" };
    case "unknown":
      return { text: "not polled yet", className: "state state-down" };
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
  /** e.g. `12.5%` or `N/A`. */
  load: string;
  /** `load` or `load full`. */
  loadClass: string;
}

function serverRows(servers: readonly ServerView[], mode: UrlMode): ServerRow[] {
  return servers.map(({ entry, state }) => {
    const badge = stateBadge(state);
    const load = answeredLoad(state);
    return {
      entry,
      monitor: monitorUrl(entry, mode),
      state: badge.text,
      stateClass: badge.className,
      load: load === undefined ? "N/A" : `${pythonFloat(load)}%`,
      // Red exactly while the server is full, band included (load_rules.ts `nextState`).
      loadClass: standingOf(state) === "full" ? "load full" : "load",
    };
  });
}

function averageCell(
  servers: readonly ServerView[],
  thresholds: LoadThresholds,
): { text: string; className: string } {
  const average = averageLoad(servers);
  return average === undefined ? { text: "N/A", className: "load" } : {
    text: `${formatG(average)}%`,
    className: isFull(average, thresholds) ? "load full" : "load",
  };
}

/** What `/monitor/data` answers. */
export interface MonitorData {
  servers: ServerRow[];
  average: { text: string; className: string };
  /** Chart columns: `timestamp`, `average`, and `s<i>` for the i-th server. */
  history: Record<string, (number | null)[]>;
}

/** The page's live parts as data for `/monitor/data`. */
export function monitorData(
  servers: readonly ServerView[],
  history: LoadColumns,
  mode: UrlMode,
  thresholds: LoadThresholds,
): MonitorData {
  const columns: Record<string, (number | null)[]> = {
    timestamp: history.timestamp,
    average: history.average,
  };
  history.servers.forEach((loads, i) => (columns[`s${i}`] = loads));
  return {
    servers: serverRows(servers, mode),
    average: averageCell(servers, thresholds),
    history: columns,
  };
}

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"];

function chartFigure(servers: readonly ServerView[]): string {
  const series = [
    { key: "average", label: "average", color: "#222", width: 2.5 },
    ...servers.map((s, i) => ({
      key: `s${i}`,
      label: s.entry,
      color: PALETTE[i % PALETTE.length]!,
    })),
  ];
  return `<figure data-chart="load" data-unit="%" data-max="100" ` +
    `data-series="${escapeHtml(JSON.stringify(series))}">` +
    `<figcaption>Load of the last 10 minutes (%) <span id="live" class="live-state"></span>` +
    `</figcaption>` +
    `<noscript><p class="none">The chart needs JavaScript.</p></noscript></figure>`;
}

const STYLE = `body{font-family:sans-serif;margin:2em;max-width:1100px}
table{border-collapse:collapse}
th,td{border:1px solid #999;padding:.3em .8em;text-align:left}
td.load{text-align:right}
.full{color:#c00}
tr.average td{font-weight:bold}
.state{padding:.1em .5em;border-radius:.8em;color:#fff;white-space:nowrap}
.state-available{background:#2e7d32}.state-full{background:#c62828}.state-down{background:#757575}
figure{margin:1.5em 0}figcaption{font-weight:600;margin-bottom:.3em}
.live-chart{background:#fafafa;border:1px solid #ddd}
.u-legend{font-size:.85em}.u-legend th,.u-legend td{border:0;padding:.1em .3em}
.live-state{font-size:.8em;color:#666;margin-left:.5em}.live-state.stale{color:#c00}`;

/** The whole monitor page. */
export function monitorPage(
  servers: readonly ServerView[],
  startedAt: Date,
  mode: UrlMode,
  thresholds: LoadThresholds,
): string {
  const rows = serverRows(servers, mode).map((row, i) =>
    `<tr><td>${i + 1}</td><td><a href="${escapeHtml(row.monitor)}">${
      escapeHtml(row.entry)
    }</a></td><td><span class="${escapeHtml(row.stateClass)}">${
      escapeHtml(row.state)
    }</span></td><td class="${row.loadClass}">${escapeHtml(row.load)}</td></tr>`
  );
  const average = averageCell(servers, thresholds);
  const n = servers.length;
  return `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Webots simulation server</title>
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
<p>Started on ${escapeHtml(formatStartTime(startedAt))}</p>
<p>Managing ${n} simulation server${n === 1 ? "" : "s"}:</p>
<table class="bordered">
<thead><tr><th>#</th><th>simulation server</th><th>state</th><th>load</th></tr></thead>
<tbody id="servers">
${rows.join("\n")}
<tr class="average"><td></td><td colspan="2">average:</td><td class="${average.className}">${
    escapeHtml(average.text)
  }</td></tr>
</tbody>
</table>
${chartFigure(servers)}
</body>
</html>
`;
}
