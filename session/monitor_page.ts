/**
 * The session server's `/monitor` page: one row per simulation server with its load, and the
 * average over the servers that answer. Self-contained HTML (inline style only), every value
 * escaped.
 *
 * @module
 */
import { escapeHtml } from "../shared/http.ts";
import { monitorUrl, type UrlMode } from "../shared/urls.ts";
import { LOAD_THRESHOLD, type ServerView } from "./fleet.ts";
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
export function formatStartTime(date: Date): string {
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

/** Average load of the servers that answer, or undefined when none does. */
export function averageLoad(servers: readonly ServerView[]): number | undefined {
  const loads = servers.flatMap((s) => s.state.kind === "up" ? [s.state.load] : []);
  if (loads.length === 0) return undefined;
  return loads.reduce((a, b) => a + b, 0) / loads.length;
}

const STYLE = `body{font-family:sans-serif;margin:2em}
table{border-collapse:collapse}
th,td{border:1px solid #999;padding:.3em .8em;text-align:left}
td.load{text-align:right}
.full{color:#c00}
tr.average td{font-weight:bold}`;

/** The whole monitor page. */
export function monitorPage(
  servers: readonly ServerView[],
  startedAt: Date,
  mode: UrlMode,
): string {
  const rows = servers.map((server, i) => {
    const state = server.state;
    const cell = state.kind === "up"
      ? `<td class="load${state.load >= LOAD_THRESHOLD ? " full" : ""}">${
        escapeHtml(pythonFloat(state.load))
      }%</td>`
      : `<td class="load">N/A</td>`;
    return `<tr><td>${i + 1}</td><td><a href="${escapeHtml(monitorUrl(server.entry, mode))}">${
      escapeHtml(server.entry)
    }</a></td>${cell}</tr>`;
  });
  const average = averageLoad(servers);
  const averageCell = average === undefined
    ? `<td class="load">N/A</td>`
    : `<td class="load${average >= LOAD_THRESHOLD ? " full" : ""}">${
      escapeHtml(formatG(average))
    }%</td>`;
  const n = servers.length;
  return `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>Webots simulation server</title>
<style>
${STYLE}
</style>
</head>
<body>
<h1>Webots session server</h1>
<p>Started on ${escapeHtml(formatStartTime(startedAt))}</p>
<p>Managing ${n} simulation server${n === 1 ? "" : "s"}:</p>
<table class="bordered">
<thead><tr><th>#</th><th>simulation server</th><th>load</th></tr></thead>
<tbody>
${rows.join("\n")}
<tr class="average"><td></td><td>average:</td>${averageCell}</tr>
</tbody>
</table>
</body>
</html>
`;
}
