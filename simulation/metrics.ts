/**
 * The simulation server's monitoring: a snapshot of the machine's figures every second (the last
 * 600, i.e. 10 minutes, kept for `/monitor`), appended to `monitor.csv`, and the load `/load`
 * reports.
 *
 * Helper programs (`nvidia-smi`, `cat /proc/net/dev`) run at most once at a time; a snapshot waits
 * for them at most `probeBudgetMs` and otherwise uses their previous reading. When one is absent or
 * fails its figures are 0, the failure is logged once, and it is retried after `probeRetryMs`.
 *
 * `/load` takes the CPU and GPU figures averaged over the last `loadWindow` seconds of snapshots
 * (`steadyFigures`) and the slot share from the session counts at the moment it is asked.
 *
 * @module
 */
import type { Logger } from "../shared/log.ts";
import type { SimulationConfig } from "./config.ts";
import type { RunCommand } from "./command_runner.ts";
import { type GpuSummary, readGpus } from "./gpu.ts";
import { computeLoad, steadyFigures } from "./load.ts";
import { type MonitorCsv, monitorCsvPath, openMonitorCsv } from "./monitor_csv.ts";
import { networkRates, type NetworkReading, readNetwork } from "./network.ts";
import { createProbe } from "./probe.ts";
import type { SessionCounts, Snapshot } from "./snapshot.ts";
import {
  createCpuSampler,
  diskPercent,
  memoryPercent,
  osString,
  realSystemSources,
  swapPercent,
  type SystemSources,
} from "./system_stats.ts";

export type { SessionCounts, Snapshot } from "./snapshot.ts";
export { computeLoad, steadyFigures } from "./load.ts";

/** Timer functions, injectable so that tests can fire snapshots themselves. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

/** What the metrics need. */
export interface MetricsDeps {
  config: Pick<
    SimulationConfig,
    | "logDir"
    | "monitorLogEnabled"
    | "maxConnections"
    | "nvidiaSmiPath"
    | "instancesDir"
    | "loadWindow"
  >;
  logger: Logger;
  /** Milliseconds since the epoch. */
  now: () => number;
  runCommand: RunCommand;
  /** Default: the real system APIs. */
  system?: SystemSources;
  /** Default: the global timers. */
  timers?: Timers;
  /** Milliseconds between snapshots (default 1000). */
  intervalMs?: number;
  /** Longest wait for a helper program per snapshot, ms (default 800). */
  probeBudgetMs?: number;
  /** Pause before running a failed helper program again, ms (default 60 000). */
  probeRetryMs?: number;
  /** Snapshots kept (default 600). */
  historySize?: number;
  /** The `cat` used to read `/proc/net/dev` (default `/usr/bin/cat`). */
  catPath?: string;
  /** Called with each new snapshot (e.g. to push it to live charts). */
  onSnapshot?: (snapshot: Snapshot) => void;
}

/** The host as the monitor page describes it. */
export interface HostInfo {
  hostname: string;
  /** `Linux <distro> <version> <codename>`. */
  os: string;
  /** Kernel release. */
  kernel: string;
  cpuModel: string;
  /** Logical cores. */
  cpuCores: number;
  /** Undefined when `nvidia-smi` has not answered. */
  gpu: { name: string; count: number; memoryTotalGB: number } | undefined;
  ramTotalGB: number;
  swapTotalGB: number;
}

/** The running monitor. */
export interface Metrics {
  /** Takes a snapshot now and then every `intervalMs`; opens `monitor.csv` when enabled. */
  start(counts: () => SessionCounts): void;
  /** Stops the timer and helper programs and closes `monitor.csv`. */
  stop(): Promise<void>;
  /** Oldest first, at most `historySize`. */
  readonly history: readonly Snapshot[];
  /**
   * The figures of the last `loadWindow` seconds (`steadyFigures`) with the session counts of
   * this moment, through `computeLoad`.
   */
  load(): number;
  /** The figures `load()` judges by (`steadyFigures`); undefined before the first snapshot. */
  loadFigures(): Snapshot | undefined;
  hostInfo(): HostInfo;
  /** Takes one snapshot now (the timer's job; exposed for tests). Calls overlapping one share it. */
  takeSnapshot(): Promise<Snapshot>;
}

const GB = 1e9;
const toGB = (bytes: number) => Math.round((bytes / GB) * 10) / 10;

/** Creates the monitor; nothing runs until `start`. */
export function createMetrics(deps: MetricsDeps): Metrics {
  const { config, logger, now } = deps;
  const system = deps.system ?? realSystemSources();
  const timers: Timers = deps.timers ?? {
    setTimeout: (callback, ms) => setTimeout(callback, ms),
    clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
  };
  const intervalMs = deps.intervalMs ?? 1000;
  const budgetMs = deps.probeBudgetMs ?? 800;
  const retryMs = deps.probeRetryMs ?? 60_000;
  const historySize = deps.historySize ?? 600;
  // One snapshot per interval: the window in snapshots, at least the latest one.
  const windowCount = Math.max(1, Math.round((config.loadWindow * 1000) / intervalMs));
  const log = logger.child({ component: "metrics" });

  const gpuProbe = createProbe<GpuSummary>({
    name: "gpu",
    read: (signal) => readGpus(deps.runCommand, config.nvidiaSmiPath, signal),
    logger: log,
    now,
    retryMs,
    failureMessage: "GPU figures unavailable, reported as 0",
    recoveryMessage: "GPU figures available again",
  });
  const networkProbe = createProbe<NetworkReading>({
    name: "network",
    read: (signal) => readNetwork(deps.runCommand, now, signal, deps.catPath),
    logger: log,
    now,
    retryMs,
    failureMessage: "Network figures unavailable, reported as 0",
    recoveryMessage: "Network figures available again",
  });
  const cpuSample = createCpuSampler(system);

  const history: Snapshot[] = [];
  /** `steadyFigures` of the history, brought up to date with each snapshot. */
  let loadFigures: Snapshot | undefined;
  let counts: () => SessionCounts = () => ({ running: 0, idle: 0 });
  let lastLoad: {
    snapshot: Snapshot | undefined;
    running: number;
    idle: number;
    reserved: number;
    value: number;
  } = {
    snapshot: undefined,
    running: -1,
    idle: -1,
    reserved: -1,
    value: 0,
  };
  let csv: MonitorCsv | undefined;
  let timer: unknown;
  let started = false;
  let stopped = false;
  let current: Promise<Snapshot> | undefined;
  let lastGpu: GpuSummary | undefined;
  let previousNetwork: NetworkReading | undefined;
  let lastRates = { sent: 0, received: 0 };
  let diskFailing = false;
  let os: string | undefined;

  const disk = async (): Promise<number> => {
    try {
      const value = await diskPercent(system, [config.instancesDir, config.logDir]);
      diskFailing = false;
      return value;
    } catch (error) {
      if (!diskFailing) {
        log.warn({ err: String(error) }, `Disk figure unavailable, reported as 0: ${error}`);
      }
      diskFailing = true;
      return 0;
    }
  };

  const rates = (reading: NetworkReading | undefined) => {
    if (!reading) {
      previousNetwork = undefined;
      lastRates = { sent: 0, received: 0 };
    } else if (reading !== previousNetwork) {
      lastRates = previousNetwork
        ? networkRates(previousNetwork, reading)
        : { sent: 0, received: 0 };
      previousNetwork = reading;
    }
    return lastRates;
  };

  const compute = async (): Promise<Snapshot> => {
    const [gpu, network, diskUsed] = await Promise.all([
      gpuProbe.sample(budgetMs),
      networkProbe.sample(budgetMs),
      disk(),
    ]);
    if (gpu) lastGpu = gpu;
    const memory = system.memory();
    const net = rates(network);
    const { running, idle, reserved } = counts();
    const snapshot: Snapshot = {
      timestamp: Math.floor(now() / 1000),
      webotsRunning: running,
      webotsIdle: idle,
      cpu: cpuSample(),
      memory: memoryPercent(memory),
      gpuCompute: gpu?.compute ?? 0,
      gpuMemoryLoad: gpu?.memoryLoad ?? 0,
      gpuMemory: gpu?.memory ?? 0,
      swap: swapPercent(memory),
      disk: diskUsed,
      networkSent: net.sent,
      networkReceived: net.received,
      ...(reserved === undefined ? {} : { reserved }),
    };
    history.push(snapshot);
    if (history.length > historySize) history.splice(0, history.length - historySize);
    loadFigures = steadyFigures(history, windowCount);
    csv?.append(snapshot);
    deps.onSnapshot?.(snapshot);
    return snapshot;
  };

  const takeSnapshot = (): Promise<Snapshot> => {
    current ??= compute().finally(() => {
      current = undefined;
    });
    return current;
  };

  const tick = async () => {
    timer = undefined;
    const began = now();
    try {
      await takeSnapshot();
    } catch (error) {
      log.error({ err: error }, "snapshot failed");
    }
    if (!stopped) timer = timers.setTimeout(tick, Math.max(0, intervalMs - (now() - began)));
  };

  return {
    start(countsFn) {
      if (started) return;
      started = true;
      counts = countsFn;
      if (config.monitorLogEnabled) csv = openMonitorCsv(monitorCsvPath(config.logDir), log);
      timer = timers.setTimeout(tick, 0);
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) timers.clearTimeout(timer);
      timer = undefined;
      await Promise.all([gpuProbe.stop(), networkProbe.stop()]);
      await current?.catch(() => undefined);
      await csv?.close();
    },
    get history() {
      return history;
    },
    load() {
      const figures = loadFigures;
      // Read at every call: a simulation that starts or ends shows in the very next `/load`.
      const { running, idle, reserved = 0 } = counts();
      // `/load` is polled hard and its inputs change about once a second: compute on change.
      if (
        figures === undefined || figures !== lastLoad.snapshot || running !== lastLoad.running ||
        idle !== lastLoad.idle || reserved !== lastLoad.reserved
      ) {
        const snapshot = figures ?? emptySnapshot(Math.floor(now() / 1000));
        lastLoad = {
          snapshot: figures,
          running,
          idle,
          reserved,
          value: computeLoad(snapshot, { running, idle, reserved }, config.maxConnections),
        };
      }
      return lastLoad.value;
    },
    loadFigures: () => loadFigures,
    hostInfo() {
      const cpus = system.cpus();
      const memory = system.memory();
      os ??= osString(system.osReleaseFile());
      return {
        hostname: system.hostname(),
        os,
        kernel: system.osRelease(),
        cpuModel: cpus[0]?.model ?? "unknown",
        cpuCores: cpus.length,
        gpu: lastGpu
          ? { name: lastGpu.name, count: lastGpu.count, memoryTotalGB: lastGpu.memoryTotalGB }
          : undefined,
        ramTotalGB: toGB(memory.total),
        swapTotalGB: toGB(memory.swapTotal),
      };
    },
    takeSnapshot,
  };
}

/** A snapshot of zeros at `timestamp`. */
export function emptySnapshot(timestamp: number): Snapshot {
  return {
    timestamp,
    webotsRunning: 0,
    webotsIdle: 0,
    cpu: 0,
    memory: 0,
    gpuCompute: 0,
    gpuMemoryLoad: 0,
    gpuMemory: 0,
    swap: 0,
    disk: 0,
    networkSent: 0,
    networkReceived: 0,
  };
}
