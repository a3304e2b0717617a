/**
 * The simulation server's `/load` as its `/monitor` page explains it: the figure session servers
 * read, the parts it is the maximum of (slots, CPU and GPU averaged over `loadWindow`, memory,
 * swap), the slots used and free, the drain; and the same figure over the last 10 minutes, for the
 * "Load (%)" chart, recomputed from the snapshots the way `/load` computes it.
 *
 * @module
 */
import { formatDuration, formatPercent, formatTime } from "../shared/time_format.ts";
import {
  computeLoad,
  type LoadPart,
  loadParts,
  type LoadStatus,
  steadyFigures,
  usedSlots,
} from "./load.ts";
import type { Snapshot } from "./snapshot.ts";

/** One part of the load, as the page shows it. */
export interface LoadPartRow {
  name: string;
  value: string;
  /** How it is measured. */
  note: string;
  /** True for the part the load equals (the largest; none while draining). */
  decides: boolean;
}

/** The top of the page: what `/load` answers and why. */
export interface LoadView {
  /** e.g. `42.0%`. */
  load: string;
  /** `available`, `all slots taken` or `draining`. */
  standing: string;
  /** The badge's class: `state-available`, `state-full` or `state-draining`. */
  standingClass: string;
  parts: LoadPartRow[];
  /** e.g. `2 used, 3 free of maxConnections 5`. */
  slots: string;
  /** While draining: what happens and when; else undefined. */
  drain: string | undefined;
}

const PART_NAMES: Record<LoadPart, string> = {
  slots: "Slots",
  cpu: "CPU",
  memory: "Memory",
  swap: "Swap",
  gpuCompute: "GPU compute",
  gpuMemory: "GPU memory",
};

/** What the load view needs besides the status. */
export interface LoadViewInput {
  readonly status: LoadStatus;
  /** The figures `/load` judges by (`steadyFigures`); undefined before the first snapshot. */
  readonly figures: Snapshot | undefined;
  /** Seconds the CPU and GPU figures are averaged over. */
  readonly loadWindow: number;
  /** The GPU parts are shown only when a GPU was found. */
  readonly hasGpu: boolean;
  /** Milliseconds since the epoch. */
  readonly now: number;
}

/** The load view: `status.load` is what `/load` answered for the same moment. */
export function loadView(input: LoadViewInput): LoadView {
  const { status } = input;
  const used = usedSlots(status.counts);
  const max = status.maxConnections;
  const parts = input.figures === undefined
    ? undefined
    : loadParts(input.figures, status.counts, max);
  const averaged = `mean of the last ${input.loadWindow} s`;
  const notes: Record<LoadPart, string> = {
    slots: `${used} of ${max} taken`,
    cpu: averaged,
    memory: "now",
    swap: "now",
    gpuCompute: averaged,
    gpuMemory: averaged,
  };
  const shown = (Object.keys(PART_NAMES) as LoadPart[])
    .filter((part) => input.hasGpu || (part !== "gpuCompute" && part !== "gpuMemory"));
  const largest = parts === undefined || status.draining
    ? undefined
    : shown.reduce((best, part) => parts[part] > parts[best] ? part : best);
  const drainLeft = status.drainRemainingS ?? 0;
  return {
    load: formatPercent(status.load),
    standing: status.draining ? "draining" : used >= max ? "all slots taken" : "available",
    standingClass: status.draining
      ? "state-draining"
      : used >= max
      ? "state-full"
      : "state-available",
    parts: shown.map((part) => ({
      name: PART_NAMES[part],
      // Before the first snapshot only the slot share is known.
      value: parts === undefined
        ? (part === "slots" ? formatPercent(0) : "—")
        : formatPercent(parts[part]),
      note: notes[part],
      decides: part === largest,
    })),
    slots: `${used} used${
      status.counts.reserved === undefined
        ? ""
        : ` (${status.counts.reserved} held by slot leases, no Webots yet)`
    }, ${Math.max(0, max - used)} free of maxConnections ${max}`,
    drain: status.draining
      ? `Draining: no new simulation starts and /load answers 100; the running ones end in ${
        formatDuration(drainLeft * 1000)
      } (at ${formatTime(input.now + drainLeft * 1000)}) unless they end before.`
      : undefined,
  };
}

/** The chart columns of the load and its averaged parts, one value per snapshot. */
export interface LoadColumns {
  load: number[];
  slots: number[];
  cpuMean: number[];
  gpuComputeMean: number[];
  gpuMemoryMean: number[];
}

/**
 * The load at each snapshot as `/load` computed it then: the window's CPU and GPU means, and the
 * slot share of that second's simulations and leases (a drain's 100 is not shown: it is not a
 * load).
 */
export function loadColumns(
  history: readonly Snapshot[],
  windowCount: number,
  maxConnections: number,
): LoadColumns {
  const columns: LoadColumns = {
    load: [],
    slots: [],
    cpuMean: [],
    gpuComputeMean: [],
    gpuMemoryMean: [],
  };
  history.forEach((snapshot, i) => {
    const figures = steadyFigures(
      history.slice(Math.max(0, i + 1 - windowCount), i + 1),
      windowCount,
    )!;
    const counts = {
      running: snapshot.webotsRunning,
      idle: snapshot.webotsIdle,
      ...(snapshot.reserved === undefined ? {} : { reserved: snapshot.reserved }),
    };
    const parts = loadParts(figures, counts, maxConnections);
    columns.load.push(computeLoad(figures, counts, maxConnections));
    columns.slots.push(Math.round(parts.slots * 10) / 10);
    columns.cpuMean.push(Math.round(parts.cpu * 10) / 10);
    columns.gpuComputeMean.push(Math.round(parts.gpuCompute * 10) / 10);
    columns.gpuMemoryMean.push(Math.round(parts.gpuMemory * 10) / 10);
  });
  return columns;
}
