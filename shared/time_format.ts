/**
 * The one way the monitor pages write a moment: UTC, ISO date, 24-hour clock —
 * `2026-11-21 06:03:09`. The pages say once that times are UTC, and their charts
 * (shared/web/live_chart.js) label their time axes with the clock part of the same form, so a time
 * in a table can be found on a chart whatever the server's or the browser's time zone.
 *
 * @module
 */

/** `YYYY-MM-DD HH:MM:SS` in UTC for `ms` since the epoch. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace("T", " ");
}

/** A duration in whole seconds as the pages write it: `42 s`, `3 min 05 s`, `2 h 07 min`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h > 0) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m > 0) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${s} s`;
}

/** A percentage as every cell of the pages writes it: one decimal, `7.0%`, `99.5%`. */
export function formatPercent(value: number): string {
  return `${value.toFixed(1)}%`;
}
