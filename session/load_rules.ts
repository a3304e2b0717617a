/**
 * The session server's load rules, in one place: what the session server knows about a
 * simulation server, when a server is full, which server `GET /session` hands out, and the average
 * that `/load`, `/monitor` and the load history show.
 *
 * A server becomes full when its load reaches `fullAt` and is available again only once it falls
 * below `availableAt` (`nextState`): a load that wavers inside the band between the two changes
 * nothing, so one busy machine does not flap the availability feed, the e-mails and `/session`.
 * Every reader (the feed, `/session`, the e-mails, `/monitor`) takes the standing from the state
 * this produces, never from a load figure of its own.
 *
 * ```ts
 * import { chooseServer } from "./load_rules.ts";
 * chooseServer([
 *   { entry: "a:2000", state: { kind: "up", load: 40, full: false } },
 *   { entry: "b:2000", state: { kind: "up", load: 10, full: false } },
 * ]); // "b:2000"
 * ```
 *
 * @module
 */

/** A simulation server at or above this load takes no new client (reference `LOAD_THRESHOLD`). */
export const LOAD_THRESHOLD = 99;

/** When a server becomes full and when it is available again (config `fullAt`, `availableAt`). */
export interface LoadThresholds {
  /** A load at or above it makes a server full. */
  readonly fullAt: number;
  /** A full server is available again only with a load below it (below `fullAt`). */
  readonly availableAt: number;
}

/** The defaults: full at the reference's threshold, available again below 90. */
export const DEFAULT_THRESHOLDS: LoadThresholds = Object.freeze({
  fullAt: LOAD_THRESHOLD,
  availableAt: 90,
});

/** Why a server counts as not responding. */
export type DownReason = "refused" | "timeout" | "status" | "body";

/** What the session server knows about one simulation server. */
export type ServerState =
  | { readonly kind: "unknown" }
  /** It answered `load`; `full` is decided by `nextState`. */
  | { readonly kind: "up"; readonly load: number; readonly full: boolean }
  | { readonly kind: "down"; readonly reason: DownReason; readonly detail: string };

/** What one poll of a server's `/load` found: the load it answered, or why it did not answer. */
export type PollOutcome =
  | { readonly kind: "up"; readonly load: number }
  | Extract<ServerState, { kind: "down" }>;

/** One simulation server as configured, with its current state. */
export interface ServerView {
  readonly entry: string;
  readonly state: ServerState;
}

/**
 * How a server stands for new clients: not polled yet, not responding, answering but full, or
 * answering with room left. Transitions and the monitor's badge are both read from this.
 */
export type Standing = "unknown" | "down" | "full" | "available";

/** True when a load alone makes a server full (`fullAt` reached), whatever it was before. */
export function isFull(load: number, thresholds: LoadThresholds): boolean {
  return load >= thresholds.fullAt;
}

/**
 * The state of a server after a poll: full from `fullAt` on, and once full, until the load is
 * below `availableAt`. A server that was not answering before (or not polled yet) has no standing
 * to keep, so its first answer is judged on `fullAt` alone, as without the band.
 */
export function nextState(
  before: ServerState,
  outcome: PollOutcome,
  thresholds: LoadThresholds,
): ServerState {
  if (outcome.kind === "down") return outcome;
  const { load } = outcome;
  const wasFull = before.kind === "up" && before.full;
  const full = wasFull ? load >= thresholds.availableAt : isFull(load, thresholds);
  return { kind: "up", load, full };
}

/** The standing of a server in `state`. */
export function standingOf(state: ServerState): Standing {
  switch (state.kind) {
    case "unknown":
    case "down":
      return state.kind;
    case "up":
      return state.full ? "full" : "available";
    default:
      return state satisfies never;
  }
}

/** True when a server takes new clients (it answered, and is not full). */
export function isAvailable(state: ServerState): state is Extract<ServerState, { kind: "up" }> {
  return standingOf(state) === "available";
}

/** The load a server answered, or undefined when it has not (unknown or down). */
export function answeredLoad(state: ServerState): number | undefined {
  return state.kind === "up" ? state.load : undefined;
}

/** The entry `GET /session` hands out: least load among available servers, ties to config order. */
export function chooseServer(servers: readonly ServerView[]): string | undefined {
  let best: string | undefined;
  let least = Infinity;
  for (const { entry, state } of servers) {
    if (isAvailable(state) && state.load < least) {
      least = state.load;
      best = entry;
    }
  }
  return best;
}

/** Average load of the servers that answer, or undefined when none does. */
export function averageLoad(servers: readonly ServerView[]): number | undefined {
  let sum = 0;
  let count = 0;
  for (const { state } of servers) {
    const load = answeredLoad(state);
    if (load === undefined) continue;
    sum += load;
    count++;
  }
  return count === 0 ? undefined : sum / count;
}
