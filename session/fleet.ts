/**
 * The fleet of simulation servers: polls each one's `/load` on a fixed period, keeps its state,
 * and reports state transitions (down, up again, full, available again). Whether an answering
 * server is full is decided by `nextState` (load_rules.ts) from its load and its state before.
 *
 * Each server is polled independently: a result is applied as soon as it arrives, a slow or dead
 * server never delays the others, and a server whose previous poll is still in flight is skipped
 * for that round. Nothing here blocks request handling.
 *
 * @module
 */
import { type Clock, every } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import { loadUrl, type UrlMode } from "../shared/urls.ts";
import {
  type DownReason,
  type LoadThresholds,
  nextState,
  type PollOutcome,
  type ServerState,
  type ServerView,
  standingOf,
} from "./load_rules.ts";

/** A change worth telling the administrator about. */
export type Transition =
  | { readonly kind: "not-responding"; readonly entry: string; readonly reason: DownReason }
  | { readonly kind: "working-again"; readonly entry: string; readonly load: number }
  | { readonly kind: "full"; readonly entry: string; readonly load: number }
  | { readonly kind: "available-again"; readonly entry: string; readonly load: number };

/** Collaborators and settings of the fleet. */
export interface FleetDeps {
  readonly entries: readonly string[];
  readonly mode: UrlMode;
  readonly fetch: typeof fetch;
  readonly logger: Logger;
  /** Drives the poll period and the poll timeout. */
  readonly clock: Clock;
  readonly refreshMs: number;
  readonly timeoutMs: number;
  /** When a server becomes full and available again (`fullAt`, `availableAt`). */
  readonly thresholds: LoadThresholds;
  /** Called after any server's state changed (availability may have changed). */
  readonly onUpdate: () => void;
  readonly onTransition: (transition: Transition) => void;
  /** Hears each poll's outcome and how long it took, in seconds (`/metrics`). */
  readonly onPoll?: (entry: string, outcome: PollOutcome, seconds: number) => void;
}

/** The polling fleet. */
export interface Fleet {
  /** Current state of every server, in config order. */
  servers(): readonly ServerView[];
  /** Starts polling: a first round at once, then one every `refreshMs`. */
  start(): void;
  /** Stops polling and aborts polls in flight. */
  stop(): Promise<void>;
}

/**
 * The transition from `before` to `after`, if any. The first result after startup (`unknown`)
 * is not a transition, except a server that does not answer, which the administrator must hear
 * about.
 */
export function transitionOf(
  entry: string,
  before: ServerState,
  after: ServerState,
): Transition | undefined {
  const was = standingOf(before);
  const now = standingOf(after);
  if (after.kind === "down") {
    return was === "down" ? undefined : { kind: "not-responding", entry, reason: after.reason };
  }
  if (after.kind !== "up" || was === "unknown") return undefined;
  if (was === "down") return { kind: "working-again", entry, load: after.load };
  if (was === now) return undefined;
  return { kind: now === "full" ? "full" : "available-again", entry, load: after.load };
}

/** Parses a `/load` body: a finite number, as Python's `float()` would accept it minus nan/inf. */
export function parseLoad(body: string): number | undefined {
  const trimmed = body.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : undefined;
}

interface Slot {
  readonly entry: string;
  readonly url: string;
  state: ServerState;
  inFlight: Promise<void> | undefined;
  abort: AbortController | undefined;
  /** A round came while the poll was in flight: poll again as soon as it ends. */
  due: boolean;
}

/** Creates the fleet; polling starts with `start()`. */
export function createFleet(deps: FleetDeps): Fleet {
  const slots: Slot[] = deps.entries.map((entry) => ({
    entry,
    url: loadUrl(entry, deps.mode),
    state: { kind: "unknown" },
    inFlight: undefined,
    abort: undefined,
    due: false,
  }));
  let stopRounds: (() => void) | undefined;
  let stopped = false;

  const apply = (slot: Slot, outcome: PollOutcome) => {
    if (stopped) return;
    const before = slot.state;
    const state = nextState(before, outcome, deps.thresholds);
    slot.state = state;
    const transition = transitionOf(slot.entry, before, state);
    if (transition) deps.onTransition(transition);
    deps.onUpdate();
  };

  const query = async (slot: Slot, abort: AbortController): Promise<PollOutcome> => {
    const timer = deps.clock.setTimeout(() => abort.abort(), deps.timeoutMs);
    try {
      const response = await deps.fetch(slot.url, { signal: abort.signal });
      const body = await response.text();
      if (response.status !== 200) {
        return { kind: "down", reason: "status", detail: `HTTP ${response.status}` };
      }
      const load = parseLoad(body);
      if (load === undefined) {
        return { kind: "down", reason: "body", detail: `not a number: ${body.slice(0, 40)}` };
      }
      return { kind: "up", load };
    } catch (error) {
      if (abort.signal.aborted) {
        return { kind: "down", reason: "timeout", detail: `no answer in ${deps.timeoutMs} ms` };
      }
      return { kind: "down", reason: "refused", detail: String(error) };
    } finally {
      deps.clock.clearTimeout(timer);
    }
  };

  const poll = (slot: Slot) => {
    if (stopped) return;
    if (slot.inFlight) {
      // Skipping the round for good would leave a server that hung polled only every other
      // round when loadTimeout ≥ loadRefresh (the timeout and the round fall due together): a
      // restored server would wait a whole extra period to be seen.
      slot.due = true;
      return;
    }
    slot.due = false;
    const abort = new AbortController();
    slot.abort = abort;
    const began = deps.clock.now();
    slot.inFlight = query(slot, abort).then((state) => {
      slot.inFlight = undefined;
      slot.abort = undefined;
      deps.onPoll?.(slot.entry, state, (deps.clock.now() - began) / 1000);
      if (state.kind === "down") {
        deps.logger.debug(
          { entry: slot.entry, reason: state.reason, detail: state.detail },
          "poll failed",
        );
      }
      apply(slot, state);
    }).catch((error) => {
      // onTransition/onUpdate threw: log it once here so that polling goes on (reference bug 13).
      slot.inFlight = undefined;
      deps.logger.error({ entry: slot.entry, err: error }, "applying a poll result failed");
    }).finally(() => {
      if (slot.due) poll(slot);
    });
  };

  const round = () => {
    for (const slot of slots) poll(slot);
  };

  return {
    servers: () => slots.map(({ entry, state }) => ({ entry, state })),
    start() {
      if (stopRounds !== undefined || stopped) return;
      round();
      stopRounds = every(deps.clock, deps.refreshMs, round);
    },
    async stop() {
      stopped = true;
      stopRounds?.();
      for (const slot of slots) slot.abort?.abort();
      await Promise.all(slots.map((slot) => slot.inFlight));
    },
  };
}
