/**
 * The headers our simulation servers add to `/load` so that a session server can show more than
 * the one number: how many simulations a server runs and how many of its slots are taken.
 *
 * - `x-webots-slots: <used>/<max>`: slots taken (a Webots running or paused) out of
 *   `maxConnections`;
 * - `x-webots-simulations: <n>`: Webots processes running or paused.
 *
 * The body stays the number the reference's session server reads; stock session servers ignore
 * both headers, and a stock simulation server sends neither (its row then shows "—").
 *
 * ```ts
 * import { parseSlotHeaders, slotHeaders } from "./load_headers.ts";
 * const headers = new Headers(slotHeaders({ used: 2, max: 5, simulations: 2 }));
 * parseSlotHeaders(headers); // { used: 2, max: 5, simulations: 2 }
 * ```
 *
 * @module
 */

/** `x-webots-slots: <used>/<max>`. */
export const SLOTS_HEADER = "x-webots-slots";
/** `x-webots-simulations: <n>`. */
export const SIMULATIONS_HEADER = "x-webots-simulations";

/** What a simulation server says of its slots. */
export interface SlotFigures {
  /** Slots taken. */
  readonly used: number;
  /** Slots in all (`maxConnections`). */
  readonly max: number;
  /** Webots processes running or paused. */
  readonly simulations: number;
}

/** The two headers for `figures`, as a header record. */
export function slotHeaders(figures: SlotFigures): Record<string, string> {
  return {
    [SLOTS_HEADER]: `${figures.used}/${figures.max}`,
    [SIMULATIONS_HEADER]: String(figures.simulations),
  };
}

const SLOTS = /^(\d{1,9})\/(\d{1,9})$/;
const COUNT = /^\d{1,9}$/;

/**
 * The figures in a `/load` answer's headers, or undefined when either header is missing or not
 * of its form (a stock simulation server, or something else answering): never a guess.
 */
export function parseSlotHeaders(headers: Headers): SlotFigures | undefined {
  const slots = headers.get(SLOTS_HEADER)?.trim().match(SLOTS);
  const simulations = headers.get(SIMULATIONS_HEADER)?.trim();
  if (!slots || simulations === undefined || !COUNT.test(simulations)) return undefined;
  return { used: Number(slots[1]), max: Number(slots[2]), simulations: Number(simulations) };
}
