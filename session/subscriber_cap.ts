/**
 * How many WebSockets `/` may hold at once (`maxSubscribers`). Every socket is a descriptor: a
 * server that lets subscribers take them all can no longer open a poll's connection, and the fleet
 * drops out of rotation for everyone. Past the cap an upgrade is refused with 503, so that a flood
 * of subscribers (a class opening the page at once, or an attacker) never starves the polls.
 *
 * The cap is a config key rather than read from the process's limit: the session server may not
 * read `/proc/self/limits` under its scoped permissions (Deno asks for `--allow-all` there), and
 * the operator who sets `LimitNOFILE=` knows the figure (README, "Subscribers and open files").
 * The refusals are logged once when they start and once when a subscriber is accepted again.
 *
 * @module
 */
import type { Logger } from "../shared/log.ts";

/** Descriptors to keep free besides two per simulation server (poll and lease request). */
export const RESERVED_DESCRIPTORS = 256;

/** The cap for `maxSubscribers` (0: none). */
export function subscriberCap(maxSubscribers: number): number | undefined {
  return maxSubscribers > 0 ? maxSubscribers : undefined;
}

/** `maxSubscribers` for an open-files limit and a fleet size, as the README advises. */
export function advisedMaxSubscribers(openFiles: number, servers: number): number {
  return Math.max(1, openFiles - RESERVED_DESCRIPTORS - 2 * servers);
}

/** Decides each upgrade of `/` and logs the start and end of a run of refusals. */
export interface SubscriberGate {
  /** Whether one more subscriber may join `open` others. */
  admit(open: number): boolean;
}

/** A gate reading the cap at each upgrade (a reload may change it). */
export function createSubscriberGate(
  cap: () => number | undefined,
  logger: Logger,
): SubscriberGate {
  let refusing = false;
  return {
    admit(open) {
      const limit = cap();
      if (limit === undefined || open < limit) {
        if (refusing) {
          refusing = false;
          logger.info({ subscribers: open, limit }, "subscribers accepted again");
        }
        return true;
      }
      if (!refusing) {
        refusing = true;
        logger.warn(
          { subscribers: open, limit },
          `subscribers at their limit (${limit}): new ones are refused with 503 until some leave`,
        );
      }
      return false;
    },
  };
}
