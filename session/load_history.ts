/**
 * The last 10 minutes of the session server's polls, for the live chart of `/monitor`: at most one
 * sample per second (a later result within the same second replaces it), each with the load of
 * every simulation server (null when it does not answer) and their average.
 *
 * Samples remember each server's load by its entry, so a server that joins or leaves (a reload,
 * DNS discovery) neither mislabels nor erases the others' series.
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
  /** `servers[i]` is the load of the i-th server asked for (`columns(entries)`). */
  servers: (number | null)[][];
}

/** The history. */
export interface LoadHistory {
  /**
   * Records the servers' current states at `nowMs`. `servers` is kept until the sample is taken:
   * the caller must not change it afterwards (the fleet's `servers()` is a fresh copy each time).
   */
  record(servers: readonly ServerView[], nowMs: number): void;
  /** The samples of the last `spanS` seconds, oldest first, with a series for each of `entries`. */
  columns(entries: readonly string[]): LoadColumns;
}

interface Sample {
  readonly time: number;
  readonly loads: ReadonlyMap<string, number | null>;
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
    const loads = new Map(servers.map((s) => [s.entry, answeredLoad(s.state) ?? null]));
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
    columns(entries) {
      take();
      return {
        timestamp: samples.map((s) => s.time),
        average: samples.map((s) => s.average),
        servers: entries.map((entry) => samples.map((s) => s.loads.get(entry) ?? null)),
      };
    },
  };
}
