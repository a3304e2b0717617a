/**
 * Slot reservation for `GET /session` (and for a queued page's `session: <url>`): asks the
 * simulation servers, least loaded first, for a slot lease (`POST /lease` with the shared secret)
 * and answers the first lease granted as the URL the stock client extends with `/client`:
 * `ws://host:port/lease/<token>` (or `wss://host/port/lease/<token>` with port rewriting).
 *
 * A server that refuses (full, draining), does not answer within the timeout or is down is
 * passed over for the next-best one within the same call. One that answered "full" is skipped by
 * later calls until the next poll would have seen it free again, so that a burst does not ask a
 * full server once per browser. Among equally loaded servers the first one asked rotates, which
 * spreads a burst over the fleet instead of queueing it at one machine.
 *
 * @module
 */
import type { Clock } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import { leasedSessionUrl, leaseRequestUrl, type UrlMode } from "../shared/urls.ts";
import { isAvailable, type ServerView } from "./load_rules.ts";

/** What one lease request to one simulation server came to. */
export const RESERVATION_OUTCOMES = [
  "granted",
  "refused",
  "unauthorized",
  "timeout",
  "unreachable",
  "bad_answer",
] as const;

/** One of `RESERVATION_OUTCOMES`. */
export type ReservationOutcome = typeof RESERVATION_OUTCOMES[number];

/** What the reservation metrics hear. */
export interface ReservationEvents {
  /** One lease request to one server ended with `outcome`. */
  attempt(outcome: ReservationOutcome): void;
  /** One reservation (one `grant()` call) took `seconds`, with or without a lease at the end. */
  reservation(seconds: number, granted: boolean): void;
}

/** Collaborators of `createGrant`. */
export interface GrantDeps {
  /** The fleet's current standing (from the polls). */
  readonly servers: () => readonly ServerView[];
  readonly mode: UrlMode;
  /** The lease secret, sent as `Authorization: Bearer <secret>`. */
  readonly secret: string;
  readonly fetch: typeof fetch;
  readonly clock: Clock;
  /** How long one server has to answer a lease request. */
  readonly timeoutMs: number;
  /** How long a server that answered "full" is skipped (the poll period). */
  readonly fullForMs: number;
  readonly logger: Logger;
  readonly events?: ReservationEvents;
}

/** Reserves a slot somewhere in the fleet: the URL to hand out, or undefined when none granted one. */
export type Grant = () => Promise<string | undefined>;

/** A token as the simulation servers make them (base64url); anything else is a bad answer. */
const TOKEN = /^[A-Za-z0-9_-]{22,64}$/;

/** Creates the reservation function over the fleet's standing. */
export function createGrant(deps: GrantDeps): Grant {
  const fullUntil = new Map<string, number>();
  let rotation = 0;

  /** Available servers, least loaded first; ties start at a rotating position. */
  const candidates = (): string[] => {
    const now = deps.clock.now();
    const servers = deps.servers();
    const start = rotation++ % Math.max(1, servers.length);
    const ranked: { entry: string; load: number; order: number }[] = [];
    servers.forEach(({ entry, state }, index) => {
      if (!isAvailable(state)) return;
      if ((fullUntil.get(entry) ?? -Infinity) > now) return;
      const order = (index - start + servers.length) % servers.length;
      ranked.push({ entry, load: state.load, order });
    });
    ranked.sort((a, b) => a.load - b.load || a.order - b.order);
    return ranked.map((r) => r.entry);
  };

  const ask = async (entry: string): Promise<
    { outcome: ReservationOutcome; token?: string; detail?: string }
  > => {
    const abort = new AbortController();
    const timer = deps.clock.setTimeout(() => abort.abort(), deps.timeoutMs);
    try {
      const response = await deps.fetch(leaseRequestUrl(entry, deps.mode), {
        method: "POST",
        headers: { authorization: `Bearer ${deps.secret}` },
        signal: abort.signal,
      });
      const body = await response.text();
      if (response.status === 401) return { outcome: "unauthorized" };
      if (response.status === 503) {
        const reason = parseField(body, "error") ?? "unknown";
        if (reason === "full") fullUntil.set(entry, deps.clock.now() + deps.fullForMs);
        return { outcome: "refused", detail: reason };
      }
      const token = response.status === 200 ? parseField(body, "token") : undefined;
      if (token === undefined || !TOKEN.test(token)) {
        return { outcome: "bad_answer", detail: `HTTP ${response.status}` };
      }
      return { outcome: "granted", token };
    } catch (error) {
      if (abort.signal.aborted) return { outcome: "timeout" };
      return { outcome: "unreachable", detail: (error as Error).name };
    } finally {
      deps.clock.clearTimeout(timer);
    }
  };

  return async () => {
    const began = deps.clock.now();
    for (const entry of candidates()) {
      const { outcome, token, detail } = await ask(entry);
      deps.events?.attempt(outcome);
      if (token !== undefined) {
        deps.events?.reservation((deps.clock.now() - began) / 1000, true);
        return leasedSessionUrl(entry, deps.mode, token);
      }
      const log = outcome === "refused" ? deps.logger.debug : deps.logger.warn;
      log.call(deps.logger, { entry, outcome, detail }, "slot lease not granted");
    }
    deps.events?.reservation((deps.clock.now() - began) / 1000, false);
    return undefined;
  };
}

function parseField(body: string, field: string): string | undefined {
  try {
    const value = (JSON.parse(body) as Record<string, unknown>)[field];
    return typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}
