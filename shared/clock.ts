/**
 * Time as a collaborator: the current time and one-shot timers. Servers take a `Clock` in their
 * deps so that every deadline (poll timeouts, start timeouts, kill escalation, lease expiry) can
 * be driven by a test's fake clock instead of the wall clock.
 *
 * @module
 */

/** An opaque timer handle. */
export type TimerId = unknown;

/** The current time and one-shot timers. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `callback` once after `ms` milliseconds. */
  setTimeout(callback: () => void, ms: number): TimerId;
  /** Cancels a timer; unknown or fired ids are ignored. */
  clearTimeout(id: TimerId): void;
}

/** The wall clock and the runtime's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (id) => clearTimeout(id as number),
};

/** Resolves after `ms` on `clock`; rejects with the signal's reason when aborted first. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clock.clearTimeout(id);
      reject(signal?.reason);
    };
    const id = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Calls `callback` every `ms` milliseconds on `clock` until the returned function is called.
 * The next call is scheduled when the previous one was made (a fixed period, no drift catch-up).
 */
export function every(clock: Clock, ms: number, callback: () => void): () => void {
  let stopped = false;
  let id: TimerId;
  const tick = () => {
    if (stopped) return;
    id = clock.setTimeout(tick, ms);
    callback();
  };
  id = clock.setTimeout(tick, ms);
  return () => {
    stopped = true;
    clock.clearTimeout(id);
  };
}
