/**
 * A clock for in-process tests: time stands still until the test advances it, and timers fire in
 * due order as it does. Nothing waits on the wall clock.
 *
 * @module
 */
import type { Clock, TimerId } from "../../shared/clock.ts";

interface Pending {
  readonly id: number;
  readonly due: number;
  readonly callback: () => void;
}

/** A manually driven clock. */
export class FakeClock implements Clock {
  #now: number;
  #nextId = 1;
  #pending: Pending[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): TimerId {
    const id = this.#nextId++;
    this.#pending.push({ id, due: this.#now + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(id: TimerId): void {
    this.#pending = this.#pending.filter((p) => p.id !== id);
  }

  /** Timers not yet fired. */
  get pendingCount(): number {
    return this.#pending.length;
  }

  /**
   * Moves time forward by `ms`, firing each timer that falls due, in order of due time (then of
   * creation), with the clock set to its due time. Settles pending promise callbacks before and
   * after each timer, so that async code reacting to a timer runs before the next one fires.
   */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await flush();
    while (true) {
      const next = this.#pending
        .filter((p) => p.due <= end)
        .sort((a, b) => a.due - b.due || a.id - b.id)[0];
      if (next === undefined) break;
      this.#pending = this.#pending.filter((p) => p !== next);
      this.#now = next.due;
      next.callback();
      await flush();
    }
    this.#now = end;
    await flush();
  }
}

/**
 * Lets promise callbacks and already-due macrotasks run (real I/O that resolves at once, such as
 * a fake fetch's response, included).
 */
export async function flush(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}
