/**
 * The last 10 minutes of the session server's polls, for the live chart of `/monitor`: at most one
 * sample per second (a later result within the same second replaces it), each with the load of
 * every simulation server (null when it does not answer) and their average.
 *
 * The session server records after every poll result, up to one per server per round: a sample
 * is computed only once its second is over (or the chart asks), so that a round of 1,000 polls
 * costs one pass over the servers per second rather than one per poll.
 *
 * @module
 */
import { answeredLoad, averageLoad, type ServerView } from "./load_rules.ts";

/** One column per series, uPlot's shape: `timestamp` (s), `average`, then one per server. */
export interface LoadColumns {
  timestamp: number[];
  average: (number | null)[];
  /** `servers[i]` is the load of the i-th configured server. */
  servers: (number | null)[][];
}

/** The history. */
export interface LoadHistory {
  /**
   * Records the servers' current states at `nowMs`. `servers` is kept until the sample is taken:
   * the caller must not change it afterwards (the fleet's `servers()` is a fresh copy each time).
   */
  record(servers: readonly ServerView[], nowMs: number): void;
  /** The samples of the last `spanS` seconds, oldest first. */
  columns(): LoadColumns;
  /** Forgets every sample (the list of servers changed). */
  clear(): void;
}

interface Sample {
  readonly time: number;
  readonly loads: readonly (number | null)[];
  readonly average: number | null;
}

/** Creates an empty history keeping `spanS` seconds (default 600). */
export function createLoadHistory(spanS = 600): LoadHistory {
  const samples: Sample[] = [];
  /** The last record, not yet made a sample. */
  let pending: { time: number; servers: readonly ServerView[] } | undefined;
  const take = () => {
    if (pending === undefined) return;
    const { time, servers } = pending;
    pending = undefined;
    const loads = servers.map((s) => answeredLoad(s.state) ?? null);
    const sample = { time, loads, average: averageLoad(servers) ?? null };
    if (samples.at(-1)?.time === time) samples[samples.length - 1] = sample;
    else samples.push(sample);
    const oldest = samples.findIndex((s) => s.time > time - spanS);
    samples.splice(0, oldest === -1 ? samples.length : oldest);
  };
  return {
    record(servers, nowMs) {
      const time = Math.floor(nowMs / 1000);
      // A later record within the same second replaces the pending one, as it would the sample.
      if (pending !== undefined && pending.time !== time) take();
      pending = { time, servers };
    },
    clear() {
      samples.length = 0;
      pending = undefined;
    },
    columns() {
      take();
      const width = Math.max(0, ...samples.map((s) => s.loads.length));
      return {
        timestamp: samples.map((s) => s.time),
        average: samples.map((s) => s.average),
        servers: Array.from({ length: width }, (_, i) => samples.map((s) => s.loads[i] ?? null)),
      };
    },
  };
}
