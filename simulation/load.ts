/**
 * The load figure `/load` reports and the session server compares across simulation servers.
 *
 * @module
 */
import { round1, type SessionCounts, type Snapshot } from "./snapshot.ts";

/**
 * The server's load in percent, 0–100, rounded to one decimal:
 *
 *     load = max( (running + idle + reserved) / maxConnections × 100,
 *                 cpu %, memory %, swap %, GPU compute %, GPU memory used % )
 *
 * Every live Webots process holds one of the `maxConnections` slots whether it runs or is paused,
 * so a server whose slots are all taken reports 100 even when its machine is quiet. Only
 * percentages of a capacity take part: raw client counts and network MB/s have no upper bound and
 * would make a busy but healthy server look full (the reference took the maximum over every
 * column, so 99 open sockets or 99 MB/s read as 99 %). Sockets without a Webots process hold no
 * slot. Disk use and the GPU memory controller's activity are left out: a full disk does not
 * refuse simulations, and memory-controller activity is already bounded by compute. NaN figures
 * count as 0.
 */
export function computeLoad(s: Snapshot, counts: SessionCounts, maxConnections: number): number {
  const parts = loadParts(s, counts, maxConnections);
  const figures = LOAD_PARTS.map((part) => parts[part]);
  return Math.min(100, Math.max(0, round1(Math.max(...figures))));
}

/**
 * Slots taken: every live Webots process, running or paused, and every slot a lease holds (a
 * lease not used yet, or a leased session whose Webots is not running yet: leases.ts).
 */
export function usedSlots(counts: SessionCounts): number {
  return Math.max(0, counts.running) + Math.max(0, counts.idle) +
    Math.max(0, counts.reserved ?? 0);
}

/** The figures `computeLoad` takes the maximum of, in the order the monitor shows them. */
export const LOAD_PARTS = ["slots", "cpu", "memory", "swap", "gpuCompute", "gpuMemory"] as const;

/** One of the figures the load is made of. */
export type LoadPart = typeof LOAD_PARTS[number];

/** Each part of the load in percent (NaN counted as 0), before the maximum is taken. */
export function loadParts(
  s: Snapshot,
  counts: SessionCounts,
  maxConnections: number,
): Record<LoadPart, number> {
  const used = usedSlots(counts);
  const slots = maxConnections > 0 ? (used / maxConnections) * 100 : (used > 0 ? 100 : 0);
  const finite = (v: number) => Number.isFinite(v) ? v : 0;
  return {
    slots: finite(slots),
    cpu: finite(s.cpu),
    memory: finite(s.memory),
    swap: finite(s.swap),
    gpuCompute: finite(s.gpuCompute),
    gpuMemory: finite(s.gpuMemory),
  };
}

/**
 * The figures `/load` judges the machine by: the latest snapshot, with its CPU and GPU figures
 * replaced by their mean over the last `count` snapshots (fewer while the history is shorter).
 * Undefined before the first snapshot.
 *
 * CPU and GPU utilisation are rates that swing from second to second (a world loading, a
 * controller compiling): one busy second must not make a server look full. Memory and swap are
 * levels, taken as they are now: they do not spike and fall back within seconds, and a machine
 * out of memory is out of it now.
 */
export function steadyFigures(history: readonly Snapshot[], count: number): Snapshot | undefined {
  const latest = history.at(-1);
  if (latest === undefined || count <= 1) return latest;
  const window = history.slice(-count);
  const mean = (figure: (s: Snapshot) => number) =>
    window.reduce((sum, s) => sum + (Number.isFinite(figure(s)) ? figure(s) : 0), 0) /
    window.length;
  return {
    ...latest,
    cpu: mean((s) => s.cpu),
    gpuCompute: mean((s) => s.gpuCompute),
    gpuMemoryLoad: mean((s) => s.gpuMemoryLoad),
    gpuMemory: mean((s) => s.gpuMemory),
  };
}

/** What `/load` answers now and why, for the monitor page. */
export interface LoadStatus {
  /** The figure `/load` answers (100 while draining). */
  readonly load: number;
  readonly draining: boolean;
  /** Seconds left until the drain's deadline, while draining. */
  readonly drainRemainingS: number | undefined;
  readonly counts: SessionCounts;
  readonly maxConnections: number;
}
