/**
 * Seeded randomness for the chaos campaign: the same seed gives the same faults, in the same
 * order, with the same sizes and delays, so a failing run can be replayed with `--seed`.
 *
 * ```ts
 * import { createRandom } from "./random.ts";
 * const random = createRandom(42);
 * random.int(1, 6); // the same number on every run with seed 42
 * ```
 *
 * @module
 */

/** A seeded source of random choices. */
export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  /** One element of `items` (not empty). */
  pick<T>(items: readonly T[]): T;
  /** A new array with the elements of `items` in a random order. */
  shuffle<T>(items: readonly T[]): T[];
  /** `length` random bytes. */
  bytes(length: number): Uint8Array;
}

/** mulberry32: small, fast and good enough to choose faults; not for secrets. */
export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  return {
    next,
    int,
    pick: (items) => items[int(0, items.length - 1)]!,
    shuffle(items) {
      const out = [...items];
      for (let i = out.length - 1; i > 0; i--) {
        const j = int(0, i);
        [out[i], out[j]] = [out[j]!, out[i]!];
      }
      return out;
    },
    bytes(length) {
      const out = new Uint8Array(length);
      for (let i = 0; i < length; i++) out[i] = int(0, 255);
      return out;
    },
  };
}
