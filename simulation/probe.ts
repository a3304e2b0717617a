/**
 * A periodic reading taken by a helper program, made safe to call every second: at most one run at
 * a time, a bounded wait, a pause after a failure, and one log line per change of health.
 *
 * @module
 */
import type { Logger } from "../shared/log.ts";

/** What a probe needs. */
export interface ProbeOptions<T> {
  /** Short name in log fields, e.g. `gpu`. */
  readonly name: string;
  /** Takes one reading; throws when none can be had. */
  readonly read: (signal: AbortSignal) => Promise<T>;
  readonly logger: Logger;
  /** Milliseconds clock. */
  readonly now: () => number;
  /** After a failure, no new run for this many milliseconds. */
  readonly retryMs: number;
  /** Logged (warn) when the probe starts failing; the reason follows after `: `. */
  readonly failureMessage: string;
  /** Logged (info) when it works again after failing. */
  readonly recoveryMessage: string;
}

/** A probe. */
export interface Probe<T> {
  /**
   * Starts a run unless one is under way or the probe is pausing after a failure, waits for it
   * at most `budgetMs`, and returns the latest good reading (undefined after a failure).
   */
  sample(budgetMs: number): Promise<T | undefined>;
  /** Aborts a run under way and waits for it. */
  stop(): Promise<void>;
}

/** Creates a probe. */
export function createProbe<T>(options: ProbeOptions<T>): Probe<T> {
  const controller = new AbortController();
  let last: T | undefined;
  let healthy: boolean | undefined;
  let retryAt = -Infinity;
  let inFlight: Promise<void> | undefined;

  const run = async () => {
    try {
      last = await options.read(controller.signal);
      if (healthy === false) options.logger.info({ probe: options.name }, options.recoveryMessage);
      healthy = true;
    } catch (error) {
      last = undefined;
      retryAt = options.now() + options.retryMs;
      if (controller.signal.aborted) return;
      if (healthy !== false) {
        const reason = error instanceof Error ? error.message : String(error);
        options.logger.warn(
          { probe: options.name, err: reason },
          `${options.failureMessage}: ${reason}`,
        );
      }
      healthy = false;
    } finally {
      inFlight = undefined;
    }
  };

  return {
    async sample(budgetMs) {
      if (controller.signal.aborted) return last;
      if (!inFlight && options.now() >= retryAt) inFlight = run();
      const current = inFlight;
      if (current) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const budget = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, budgetMs);
        });
        try {
          await Promise.race([current, budget]);
        } finally {
          clearTimeout(timer);
        }
      }
      return last;
    },
    async stop() {
      controller.abort();
      await inFlight;
    },
  };
}
