/**
 * The figures the simulation server records once per second, and their column order in
 * `monitor.csv` (the reference's header, kept exactly so that existing tooling still parses it).
 *
 * @module
 */

/** One second's figures. Percentages are 0–100 rounded to 0.1; network figures are MB/s. */
export interface Snapshot {
  /** Seconds since the epoch (integer). */
  timestamp: number;
  /** Simulations whose Webots is running (real-time, fast or step). */
  webotsRunning: number;
  /** Simulations whose Webots exists but is paused or not yet told to run. */
  webotsIdle: number;
  /** CPU use over all cores since the previous snapshot, %. */
  cpu: number;
  /** Memory used (total − available), %. */
  memory: number;
  /** GPU compute utilisation, %. */
  gpuCompute: number;
  /** GPU memory-controller utilisation, %. */
  gpuMemoryLoad: number;
  /** GPU memory used of total, %. */
  gpuMemory: number;
  /** Swap used, %. */
  swap: number;
  /** Used space of the filesystem holding `instancesDir`, %. */
  disk: number;
  /** Bytes sent by all interfaces but `lo` since the previous snapshot, MB/s. */
  networkSent: number;
  /** Bytes received by all interfaces but `lo` since the previous snapshot, MB/s. */
  networkReceived: number;
  /**
   * Slots held by slot leases at that second, when leases are on (not a `monitor.csv` column: the
   * monitor's load chart counts them in the slot share, as `/load` did).
   */
  reserved?: number;
}

/** How many Webots processes the server holds, by state. */
export interface SessionCounts {
  running: number;
  idle: number;
  /** Slots held by slot leases, taken or not, whose Webots has not started (leases.ts). */
  reserved?: number;
}

/** Snapshot fields in `monitor.csv` column order, with the reference's column names. */
export const SNAPSHOT_COLUMNS: readonly (readonly [keyof Snapshot, string])[] = [
  ["timestamp", "Timestamp"],
  ["webotsRunning", "Webots running"],
  ["webotsIdle", "Webots idle"],
  ["cpu", "CPU load"],
  ["memory", "CPU memory"],
  ["gpuCompute", "GPU load compute"],
  ["gpuMemoryLoad", "GPU load memory"],
  ["gpuMemory", "GPU memory"],
  ["swap", "Swap"],
  ["disk", "Disk"],
  ["networkSent", "Network sent"],
  ["networkReceived", "Network received"],
];

/** Rounds to one decimal, mapping NaN and infinities to 0. */
export function round1(value: number): number {
  return Number.isFinite(value) ? Math.round(value * 10) / 10 : 0;
}

/** A percentage rounded to one decimal and clamped to [0, 100]. */
export function percent(part: number, whole: number): number {
  if (!(whole > 0)) return 0;
  return Math.min(100, Math.max(0, round1((part / whole) * 100)));
}
