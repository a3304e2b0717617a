/**
 * Draining the simulation server: taking it out of service without cutting running simulations.
 *
 * While draining, no new session starts (`admit` refuses), `/load` answers 100, `/ready` 503, and
 * each running client is told `shutdownTimeout: <seconds left>`. Sessions go on until they end
 * or the deadline (`drainTimeout` after the drain began) passes; then the rest are ended cleanly.
 * An operator's drain (`POST /admin/drain`) can be called off (`undrain`) before its deadline;
 * the drain a SIGTERM starts (`drainThenStop`) cannot, and resolves once nothing runs any more so
 * that the process can exit.
 *
 * The drain owns its deadline timer; `stop()` cancels it.
 *
 * @module
 */
import { type Clock, sleep } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import type { ClientSession } from "./client_session.ts";

/** What the drain reads and tells. */
export interface DrainDeps {
  /** Seconds from the start of a drain to its deadline (`drainTimeout`). */
  readonly timeoutSeconds: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The server's live sessions. */
  readonly sessions: () => Iterable<ClientSession>;
  /** Told when draining starts (`true`) or is called off (`false`): readiness, leases. */
  readonly onDraining: (draining: boolean) => void;
}

/** Why `undrain` did nothing. */
export type UndrainRefusal = "not draining" | "stopping";

/** The drain state of one server. */
export interface Drain {
  /** True while draining. */
  readonly draining: boolean;
  /** Seconds left until the deadline, or undefined when not draining. */
  remainingSeconds(): number | undefined;
  /** Starts draining (an operator's drain); a drain already running keeps its deadline. */
  start(): void;
  /** Calls an operator's drain off; refused after a SIGTERM or when not draining. */
  undrain(): UndrainRefusal | undefined;
  /** Drains for good (SIGTERM): resolves once no session holds a simulation any more. */
  drainThenStop(): Promise<void>;
  /** The sessions changed: the SIGTERM drain checks whether it is done. */
  changed(): void;
  /** Cancels the deadline timer (the server shuts down). */
  stop(): void;
}

/** A session still using the server: one whose simulation is being prepared, runs or is ending. */
function holdsSimulation(session: ClientSession): boolean {
  return session.state !== "waiting";
}

/** Creates the drain state of a server; not draining until `start` or `drainThenStop`. */
export function createDrain(deps: DrainDeps): Drain {
  let deadline: number | undefined;
  let deadlineTimer: AbortController | undefined;
  let final = false;
  let drained: (() => void) | undefined;
  let whenDrained: Promise<void> | undefined;

  const remaining = () =>
    deadline === undefined ? undefined : Math.max(0, (deadline - deps.clock.now()) / 1000);

  const endAll = () => {
    deps.logger.info({}, "drain deadline reached: ending the remaining sessions");
    for (const session of deps.sessions()) {
      if (session.closed) continue;
      void session.end(
        "drain deadline reached",
        "the server is shutting down: simulation ended",
        holdsSimulation(session) ? "drain_deadline" : undefined,
      );
    }
  };

  const check = () => {
    if (drained === undefined) return;
    for (const session of deps.sessions()) if (holdsSimulation(session)) return;
    drained();
    drained = undefined;
  };

  const begin = () => {
    if (deadline !== undefined) return;
    deadline = deps.clock.now() + deps.timeoutSeconds * 1000;
    deps.logger.info({ drainTimeout: deps.timeoutSeconds }, "Draining");
    deps.onDraining(true);
    for (const session of deps.sessions()) session.warnShutdown(deps.timeoutSeconds);
    const timer = new AbortController();
    deadlineTimer = timer;
    sleep(deps.clock, deps.timeoutSeconds * 1000, timer.signal).then(endAll, () => {});
  };

  return {
    get draining() {
      return deadline !== undefined;
    },
    remainingSeconds: remaining,
    start: begin,
    undrain() {
      if (final) return "stopping";
      if (deadline === undefined) return "not draining";
      deadlineTimer?.abort();
      deadlineTimer = undefined;
      deadline = undefined;
      deps.logger.info({}, "Drain called off");
      deps.onDraining(false);
      return undefined;
    },
    drainThenStop() {
      final = true;
      whenDrained ??= new Promise<void>((resolve) => {
        drained = resolve;
      });
      begin();
      check();
      return whenDrained;
    },
    changed: check,
    stop() {
      deadlineTimer?.abort();
      deadlineTimer = undefined;
    },
  };
}
