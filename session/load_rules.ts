/**
 * The session server's load rules, in one place: what the session server knows about a
 * simulation server, when a server is full, which server `GET /session` hands out, and the average
 * that `/load`, `/monitor` and the load history show.
 *
 * ```ts
 * import { chooseServer } from "./load_rules.ts";
 * chooseServer([
 *   { entry: "a:2000", state: { kind: "up", load: 40 } },
 *   { entry: "b:2000", state: { kind: "up", load: 10 } },
 * ]); // "b:2000"
 * ```
 *
 * @module
 */

/** A simulation server at or above this load takes no new client (reference `LOAD_THRESHOLD`). */
export const LOAD_THRESHOLD = 99;

/** Why a server counts as not responding. */
export type DownReason = "refused" | "timeout" | "status" | "body";

/** What the session server knows about one simulation server. */
export type ServerState =
  | { readonly kind: "unknown" }
  | { readonly kind: "up"; readonly load: number }
  | { readonly kind: "down"; readonly reason: DownReason; readonly detail: string };

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

/** True when a load leaves no room for a new client. */
export function isFull(load: number): boolean {
  return load >= LOAD_THRESHOLD;
}

/** The standing of a server in `state`. */
export function standingOf(state: ServerState): Standing {
  switch (state.kind) {
    case "unknown":
    case "down":
      return state.kind;
    case "up":
      return isFull(state.load) ? "full" : "available";
    default:
      return state satisfies never;
  }
}

/** True when a server takes new clients (it answered, with a load below the threshold). */
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
