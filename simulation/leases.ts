/**
 * Slot leases: a session server reserves one of this server's `maxConnections` slots for a browser
 * before it hands out the URL, so that a burst of browsers never lands past the limit.
 *
 * A lease holds a streaming port of the pool (the slot) from the moment it is granted: it counts
 * in `/load` and for `maxConnections` at once. Its token (128 random bits, base64url) is good for
 * one `/lease/<token>/client` socket within `leaseTimeout` seconds. Taking the token hands the
 * held port to the browser's session (`HeldSlot`), which hands it on to its Webots run, so the
 * slot is never free in between; a lease not taken in time gives its port back (expired).
 *
 * @module
 */
import type { Clock, TimerId } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import type { PortPool } from "./ports.ts";

/** Why a lease request is refused with 503. */
export type RefusalReason = "full" | "draining" | "shutting_down";

/** Every reason a lease is refused, including a request without the secret (401). */
export const LEASE_REFUSALS = ["full", "draining", "shutting_down", "unauthorized"] as const;

/** What a lease request gets: a token, or why not. */
export type LeaseOutcome =
  | { readonly kind: "granted"; readonly token: string; readonly expiresIn: number }
  | { readonly kind: "refused"; readonly reason: RefusalReason };

/** What the lease counters hear (`/metrics`). */
export interface LeaseEvents {
  granted(): void;
  used(): void;
  expired(): void;
  refused(reason: (typeof LEASE_REFUSALS)[number]): void;
}

/**
 * A slot taken from a lease, owned by one browser session until it opens its Webots run
 * (`handOver`, the run then owns the port) or ends without one (`release`).
 */
export interface HeldSlot {
  /** The port, now owned by the caller (a Webots run); undefined if already handed over or released. */
  handOver(): number | undefined;
  /** Gives the port back to the pool unless it was handed over; idempotent. */
  release(): void;
}

/** The lease book of a simulation server. */
export interface Leases {
  /** Grants a lease (a port held, a timer running) or says why not. */
  request(): LeaseOutcome;
  /** Takes a token: the slot it held, or undefined for an unknown, used or expired token. */
  take(token: string): HeldSlot | undefined;
  /** Leases granted and not yet taken or expired. */
  readonly outstanding: number;
  /** Refuse new leases with this reason (draining, shutting down); undefined accepts again. */
  setRefusing(reason: RefusalReason | undefined): void;
  /** Ends every outstanding lease (their ports back in the pool); for shutdown. */
  clear(): void;
}

/** Collaborators of the lease book. */
export interface LeasesDeps {
  readonly ports: PortPool;
  readonly clock: Clock;
  /** Seconds a granted lease waits for its socket (`leaseTimeout`). */
  readonly timeoutSeconds: number;
  readonly logger: Logger;
  readonly events?: LeaseEvents;
  /** 16 random bytes per token; injectable for tests of the token's form. */
  readonly randomBytes?: (bytes: Uint8Array) => Uint8Array;
}

interface Lease {
  readonly port: number;
  readonly timer: TimerId;
}

/** Tokens are 16 random bytes (128 bits) written in base64url: 22 characters. */
export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{22}$/;

function newToken(random: (bytes: Uint8Array) => Uint8Array): string {
  const bytes = random(new Uint8Array(16));
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Creates an empty lease book over the server's port pool. */
export function createLeases(deps: LeasesDeps): Leases {
  const leases = new Map<string, Lease>();
  const random = deps.randomBytes ?? ((bytes: Uint8Array) => crypto.getRandomValues(bytes));
  let refusing: RefusalReason | undefined;

  const expire = (token: string) => {
    const lease = leases.get(token);
    if (lease === undefined) return;
    leases.delete(token);
    deps.ports.release(lease.port);
    deps.events?.expired();
    // The token itself is a credential for the slot: log only that one expired.
    deps.logger.info({ port: lease.port, outstanding: leases.size }, "lease expired");
  };

  return {
    request() {
      if (refusing !== undefined) {
        deps.events?.refused(refusing);
        return { kind: "refused", reason: refusing };
      }
      const port = deps.ports.acquire();
      if (port === undefined) {
        deps.events?.refused("full");
        return { kind: "refused", reason: "full" };
      }
      let token = newToken(random);
      while (leases.has(token)) token = newToken(random);
      const timer = deps.clock.setTimeout(() => expire(token), deps.timeoutSeconds * 1000);
      leases.set(token, { port, timer });
      deps.events?.granted();
      deps.logger.debug({ port, outstanding: leases.size }, "lease granted");
      return { kind: "granted", token, expiresIn: deps.timeoutSeconds };
    },
    take(token) {
      const lease = leases.get(token);
      if (lease === undefined) return undefined;
      leases.delete(token);
      deps.clock.clearTimeout(lease.timer);
      deps.events?.used();
      let port: number | undefined = lease.port;
      return {
        handOver() {
          const handed = port;
          port = undefined;
          return handed;
        },
        release() {
          if (port === undefined) return;
          deps.ports.release(port);
          port = undefined;
        },
      };
    },
    get outstanding() {
      return leases.size;
    },
    setRefusing(reason) {
      refusing = reason;
    },
    clear() {
      for (const [token, lease] of leases) {
        deps.clock.clearTimeout(lease.timer);
        deps.ports.release(lease.port);
        leases.delete(token);
      }
    },
  };
}
