/**
 * The fleet of simulation servers: polls each one's `/load` on a fixed period, keeps its state,
 * and reports state transitions (down, up again, full, available again). Whether an answering
 * server is full is decided by `nextState` (load_rules.ts) from its load and its state before.
 *
 * Each server is polled independently: a result is applied as soon as it arrives, a slow or dead
 * server never delays the others, and a server whose previous poll is still in flight is skipped
 * for that round. Nothing here blocks request handling. A round starts its polls at a steady pace
 * (`pollsPerStep`: 1,000 servers over 2 s, up to 25 at once), not all in the same instant.
 *
 * A reload reconfigures the fleet in place (`reconfigure`): the servers, the period, the timeout
 * and the thresholds change without losing what is known of the servers that stay.
 *
 * @module
 */
import { type Clock, every } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import { loadUrl, type UrlMode } from "../shared/urls.ts";
import type { LoadProbe } from "./load_probe.ts";
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
  /** Polls one server's `/load` (session/load_probe.ts). */
  readonly probe: LoadProbe;
  readonly logger: Logger;
  /** Drives the poll period and the pace of a round (the probe keeps each poll's timeout). */
  readonly clock: Clock;
  readonly refreshMs: number;
  readonly timeoutMs: number;
  /** When a server becomes full and available again (`fullAt`, `availableAt`). */
  readonly thresholds: LoadThresholds;
  /**
   * Called after any server's state changed (availability may have changed): with the server
   * whose poll result was just applied, or with nothing after a reconfigure (any may have changed).
   */
  readonly onUpdate: (changed?: ServerView) => void;
  readonly onTransition: (transition: Transition) => void;
  /** Hears each poll's outcome and how long it took, in seconds (`/metrics`). */
  readonly onPoll?: (entry: string, outcome: PollOutcome, seconds: number) => void;
}

/** What a reload may change in a running fleet (see `Fleet.reconfigure`). */
export interface FleetSettings {
  readonly entries: readonly string[];
  readonly refreshMs: number;
  readonly timeoutMs: number;
  readonly thresholds: LoadThresholds;
}

/** One server as the admin API shows it: its state plus when it was last polled and answered. */
export interface ServerDetail extends ServerView {
  /** The `/load` URL polled. */
  readonly url: string;
  /** When its last poll ended (ms since the epoch), whatever the outcome. */
  readonly polledAt: number | undefined;
  /** When it last answered a load (ms since the epoch). */
  readonly answeredAt: number | undefined;
  readonly pollInFlight: boolean;
}

/** The polling fleet. */
export interface Fleet {
  /** Current state of every server, in config order. */
  servers(): readonly ServerView[];
  /** Every server with its poll times, in config order. */
  details(): readonly ServerDetail[];
  /**
   * Applies new settings without a restart: servers still listed keep their state, removed ones
   * leave at once (their poll in flight is aborted and its result dropped), added ones start
   * unknown and are polled from the next round; a new period restarts the rounds.
   */
  reconfigure(settings: FleetSettings): void;
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
  // Draining is the operator's doing, not a load: no "full" mail when it starts, no "available
  // again" when it ends; a server that comes out of a drain really full is reported as full.
  if (now === "draining") {
    return was === "down" ? { kind: "working-again", entry, load: after.load } : undefined;
  }
  if (was === "draining") {
    return now === "full" ? { kind: "full", entry, load: after.load } : undefined;
  }
  if (was === "down") return { kind: "working-again", entry, load: after.load };
  if (was === now) return undefined;
  return { kind: now === "full" ? "full" : "available-again", entry, load: after.load };
}

/** A round starts its polls in steps this far apart (see {@link pollsPerStep}). */
export const ROUND_STEP_MS = 50;

/** Polls a round starts per step, at the least: 500 a second. */
export const POLLS_PER_STEP = 25;

/**
 * How many polls a round starts at each step: {@link POLLS_PER_STEP}, or more when `servers`
 * polls at that pace would take longer than half of `refreshMs`. A fleet of 1,000 is polled over
 * 2 s of each period instead of all at once: the session server's CPU (and the other processes of
 * its machine) see a steady trickle instead of a burst every period, and simulation servers
 * polled by several session servers are not polled in lockstep. Up to 25 servers are all polled
 * at the round's start, as before; each server is still polled once per period, at the same place
 * in it.
 */
export function pollsPerStep(servers: number, refreshMs: number): number {
  const steps = Math.max(1, Math.floor(refreshMs / 2 / ROUND_STEP_MS));
  return Math.max(POLLS_PER_STEP, Math.ceil(servers / steps));
}

interface Slot {
  readonly entry: string;
  /** Its place in the config order (in `views`). */
  index: number;
  readonly url: string;
  state: ServerState;
  inFlight: Promise<void> | undefined;
  /** Aborts its poll in flight when it leaves or polling stops. */
  abort: AbortController | undefined;
  /** A round came while the poll was in flight: poll again as soon as it ends. */
  due: boolean;
  polledAt: number | undefined;
  answeredAt: number | undefined;
  /** Removed by a reload: its results are dropped, it is never polled again. */
  removed: boolean;
}

/** Creates the fleet; polling starts with `start()`. */
export function createFleet(deps: FleetDeps): Fleet {
  const newSlot = (entry: string, index: number): Slot => ({
    entry,
    index,
    url: loadUrl(entry, deps.mode),
    state: { kind: "unknown" },
    inFlight: undefined,
    abort: undefined,
    due: false,
    polledAt: undefined,
    answeredAt: undefined,
    removed: false,
  });
  let slots: Slot[] = deps.entries.map(newSlot);
  /**
   * `servers()`'s views, in config order. A poll result replaces its own server's view, so that
   * applying one result costs the same with 1,000 servers as with one (a round stays O(servers)).
   */
  let views: ServerView[] = slots.map(({ entry, state }) => ({ entry, state }));
  // Read at each use: a reload may change them.
  let { refreshMs, timeoutMs, thresholds } = deps;
  let stopRounds: (() => void) | undefined;
  let stopped = false;

  const apply = (slot: Slot, outcome: PollOutcome) => {
    if (stopped || slot.removed) return;
    const before = slot.state;
    const state = nextState(before, outcome, thresholds);
    slot.state = state;
    const view = { entry: slot.entry, state };
    views[slot.index] = view;
    const transition = transitionOf(slot.entry, before, state);
    if (transition) deps.onTransition(transition);
    deps.onUpdate(view);
  };

  const poll = (slot: Slot) => {
    if (stopped || slot.removed) return;
    if (slot.inFlight) {
      // Skipping the round for good would leave a server that hung polled only every other
      // round when loadTimeout ≥ loadRefresh (the timeout and the round fall due together): a
      // restored server would wait a whole extra period to be seen.
      slot.due = true;
      return;
    }
    slot.due = false;
    const began = deps.clock.now();
    // One controller per server, aborted only when it leaves or polling stops.
    slot.abort ??= new AbortController();
    slot.inFlight = deps.probe(slot.url, timeoutMs, slot.abort.signal).then((state) => {
      slot.inFlight = undefined;
      slot.polledAt = deps.clock.now();
      if (state.kind === "up") slot.answeredAt = slot.polledAt;
      if (slot.removed) return;
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

  /** The timer of the round being started, while its polls are still being started. */
  let pacer: unknown;
  const stopPacing = () => {
    if (pacer !== undefined) deps.clock.clearTimeout(pacer);
    pacer = undefined;
  };
  const round = () => {
    // A round not yet fully started when the next one comes (after a reload) gives way to it.
    stopPacing();
    const order = slots;
    const perStep = pollsPerStep(order.length, refreshMs);
    let next = 0;
    const step = () => {
      pacer = undefined;
      const end = Math.min(order.length, next + perStep);
      // A slot removed meanwhile by a reload is skipped by `poll`.
      for (; next < end; next++) poll(order[next]!);
      if (next < order.length) pacer = deps.clock.setTimeout(step, ROUND_STEP_MS);
    };
    step();
  };

  /** Removed slots whose poll is still in flight: `stop` waits for them too. */
  const leaving = new Set<Slot>();

  return {
    // A copy: callers may keep it as a snapshot (the load history does).
    servers: () => views.slice(),
    details: () =>
      slots.map((slot) => ({
        entry: slot.entry,
        state: slot.state,
        url: slot.url,
        polledAt: slot.polledAt,
        answeredAt: slot.answeredAt,
        pollInFlight: slot.inFlight !== undefined,
      })),
    reconfigure(settings) {
      if (stopped) return;
      const kept = new Map(slots.map((slot) => [slot.entry, slot]));
      slots = [...new Set(settings.entries)].map((entry, index) => {
        const slot = kept.get(entry) ?? newSlot(entry, index);
        slot.index = index;
        kept.delete(entry);
        return slot;
      });
      views = slots.map(({ entry, state }) => ({ entry, state }));
      for (const slot of kept.values()) {
        slot.removed = true;
        slot.abort?.abort();
        const inFlight = slot.inFlight;
        if (inFlight) {
          leaving.add(slot);
          void inFlight.finally(() => leaving.delete(slot));
        }
      }
      thresholds = settings.thresholds;
      timeoutMs = settings.timeoutMs;
      if (settings.refreshMs !== refreshMs) {
        refreshMs = settings.refreshMs;
        if (stopRounds !== undefined) {
          stopRounds();
          stopRounds = every(deps.clock, refreshMs, round);
        }
      }
      deps.onUpdate();
    },
    start() {
      if (stopRounds !== undefined || stopped) return;
      round();
      stopRounds = every(deps.clock, refreshMs, round);
    },
    async stop() {
      stopped = true;
      stopRounds?.();
      stopPacing();
      const all = [...slots, ...leaving];
      for (const slot of all) slot.abort?.abort();
      await Promise.all(all.map((slot) => slot.inFlight));
    },
  };
}
