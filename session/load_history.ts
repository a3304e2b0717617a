/**
 * The last 10 minutes of the session server's polls, for the live chart of `/monitor`: at most one
 * sample per second (a later result within the same second replaces it), each with the load of
 * every simulation server (null when it does not answer) and their average.
 *
 * Samples remember which server each load belongs to, so a server that joins or leaves (a reload,
 * DNS discovery) neither mislabels nor erases the others' series.
 *
 * The session server records after every poll result, up to one per server per round: a sample
 * is computed only once its second is over (or the chart asks), so that a round of 1,000 polls
 * costs one pass over the servers per second rather than one per poll. A sample is one typed
 * array of loads (NaN for none) and a reference to its servers' list, shared with the samples
 * before it while the list stays the same: 600 samples of 1,000 servers hold about 5 MB and no
 * object per load, which keeps the garbage collector's work (and `/session`'s latency) flat.
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

/** A list of servers and where each one's load sits in a sample. */
interface Roster {
  readonly entries: readonly string[];
  readonly index: ReadonlyMap<string, number>;
}

interface Sample {
  readonly time: number;
  readonly roster: Roster;
  /** `loads[i]` is the load of `roster.entries[i]`; NaN when it did not answer. */
  readonly loads: Float64Array;
  readonly average: number | null;
}

const sameEntries = (roster: Roster, servers: readonly ServerView[]) =>
  roster.entries.length === servers.length &&
  servers.every((s, i) => s.entry === roster.entries[i]);

/** Creates an empty history keeping `spanS` seconds (default 600). */
export function createLoadHistory(spanS = 600): LoadHistory {
  const samples: Sample[] = [];
  /** The last record, not yet made a sample. */
  let pending: { time: number; servers: readonly ServerView[] } | undefined;
  let roster: Roster = { entries: [], index: new Map() };
  const take = () => {
    if (pending === undefined) return;
    const { time, servers } = pending;
    pending = undefined;
    if (!sameEntries(roster, servers)) {
      const entries = servers.map((s) => s.entry);
      roster = { entries, index: new Map(entries.map((e, i) => [e, i])) };
    }
    const loads = new Float64Array(servers.length);
    servers.forEach((s, i) => (loads[i] = answeredLoad(s.state) ?? NaN));
    const sample = { time, roster, loads, average: averageLoad(servers) ?? null };
    if (samples.at(-1)?.time === time) samples[samples.length - 1] = sample;
    else samples.push(sample);
    const oldest = samples.findIndex((s) => s.time > time - spanS);
    samples.splice(0, oldest === -1 ? samples.length : oldest);
  };
  const loadOf = (sample: Sample, entry: string): number | null => {
    const i = sample.roster.index.get(entry);
    const load = i === undefined ? NaN : sample.loads[i]!;
    return Number.isNaN(load) ? null : load;
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
        servers: entries.map((entry) => samples.map((s) => loadOf(s, entry))),
      };
    },
  };
}
