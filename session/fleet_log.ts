/**
 * What the session server's `/monitor` remembers of the fleet beyond its current states: when
 * each simulation server last answered, the slot figures it sent with its last answer
 * (shared/load_headers.ts), and the last changes of standing with their times.
 *
 * The changes are the standings' (load_rules.ts `standingOf`), so the list also shows a server
 * starting or ending a drain, which is not mailed. A server's first answer after startup is not a
 * change, except a server that does not answer at all.
 *
 * @module
 */
import type { SlotFigures } from "../shared/load_headers.ts";
import {
  answeredLoad,
  type PollOutcome,
  type ServerView,
  type Standing,
  standingOf,
} from "./load_rules.ts";

/** Changes kept for the page, newest first. */
export const CHANGES_KEPT = 20;

/** A server found or lost through DNS. */
export type Membership = "joined" | "left";

/** One change of standing, or a server joining or leaving. */
export interface StandingChange {
  /** Milliseconds since the epoch. */
  readonly at: number;
  readonly entry: string;
  /** `absent` before a server joined. */
  readonly from: Standing | "absent";
  readonly to: Standing | Membership;
  /** The load it answered, when it answered. */
  readonly load: number | undefined;
  /** The `simulationServers` entry a joining or leaving server came from (`dns:…`). */
  readonly via?: string;
}

/** What the log knows of one server. */
export interface ServerRecord {
  /** When it last answered a load (ms since the epoch). */
  readonly answeredAt: number | undefined;
  /** The slot figures of its last answer; undefined when it sent none (a stock server). */
  readonly slots: SlotFigures | undefined;
}

/** The fleet's log. */
export interface FleetLog {
  /** A poll of `entry` ended with `outcome` at `now` (the fleet's `onPoll`). */
  polled(entry: string, outcome: PollOutcome, now: number): void;
  /**
   * The fleet's whole list after a change of it (a reload): records standing changes and forgets
   * the servers no longer listed.
   */
  updated(servers: readonly ServerView[], now: number): void;
  /** `entry` joined or left the fleet through the DNS entry `via` (before the fleet's update). */
  membership(entry: string, how: Membership, via: string, now: number): void;
  /**
   * One server's state after its poll result was applied (the fleet's `onUpdate`): records its
   * standing change, if any, at the cost of that one server whatever the size of the fleet.
   */
  changed(server: ServerView, now: number): void;
  /** What is known of `entry`. */
  record(entry: string): ServerRecord;
  /** The last changes, newest first. */
  changes(): readonly StandingChange[];
}

const NOTHING: ServerRecord = Object.freeze({ answeredAt: undefined, slots: undefined });

/** Creates an empty log. */
export function createFleetLog(): FleetLog {
  const records = new Map<string, ServerRecord>();
  const standings = new Map<string, Standing>();
  const changes: StandingChange[] = [];
  /** Records `entry`'s standing; false when it is not a change to list. */
  const note = ({ entry, state }: ServerView, now: number): boolean => {
    const to = standingOf(state);
    const from = standings.get(entry) ?? "unknown";
    if (from === to) return false;
    standings.set(entry, to);
    if (from === "unknown" && to !== "down") return false;
    changes.unshift({ at: now, entry, from, to, load: answeredLoad(state) });
    return true;
  };
  return {
    polled(entry, outcome, now) {
      if (outcome.kind !== "up") return;
      records.set(entry, { answeredAt: now, slots: outcome.slots });
    },
    updated(servers, now) {
      const listed = new Set<string>();
      for (const server of servers) {
        listed.add(server.entry);
        note(server, now);
      }
      changes.splice(CHANGES_KEPT);
      // A server taken out of the list (a reload) is forgotten; its past changes stay listed.
      for (const entry of [...standings.keys()]) {
        if (listed.has(entry)) continue;
        standings.delete(entry);
        records.delete(entry);
      }
    },
    membership(entry, how, via, now) {
      const from = how === "joined" ? "absent" : standings.get(entry) ?? "unknown";
      changes.unshift({ at: now, entry, from, to: how, load: undefined, via });
      changes.splice(CHANGES_KEPT);
    },
    changed(server, now) {
      if (note(server, now)) changes.splice(CHANGES_KEPT);
    },
    record: (entry) => records.get(entry) ?? NOTHING,
    changes: () => changes,
  };
}
