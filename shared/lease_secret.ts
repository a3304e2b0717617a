/**
 * The secret both servers share for slot leases (`leaseSecret`, or `leaseSecretFile` holding it):
 * the config keys, the file read at start, and the check of a request's `Authorization: Bearer`
 * header. The secret never leaves this module's callers: it is not logged, not shown on a page,
 * and no error message quotes it.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { bearerToken } from "./admin.ts";
import type { KeySpec } from "./config.ts";

/** Shortest accepted secret: a random string, not a password. */
const MIN_SECRET = 16;

function secretCheck(value: unknown): string | undefined {
  return typeof value === "string" && value.length < MIN_SECRET
    ? `must be at least ${MIN_SECRET} characters long (a random secret)`
    : undefined;
}

/** `leaseSecret` and `leaseSecretFile`, the same on both servers. */
export const LEASE_SECRET_KEYS = {
  leaseSecret: {
    type: "string",
    check: secretCheck,
    doc:
      'Turns slot leases on (see "Slot leases"): the secret the session server sends as `Authorization: Bearer <leaseSecret>` when it reserves a slot (at least 16 characters; the same on both servers). Unset (and no `leaseSecretFile`): no leases, as before.',
  },
  leaseSecretFile: {
    type: "string",
    path: true,
    check: (value, earlier) =>
      value !== undefined && earlier.leaseSecret !== undefined
        ? 'and "leaseSecret" are both set; keep one of them'
        : undefined,
    doc:
      "A file holding the lease secret (read once at start, surrounding white space dropped), in place of `leaseSecret`, so that the config file can be shown without it.",
  },
} as const satisfies Record<string, KeySpec>;

/** Thrown when the secret file cannot be used; the message names the file, never its content. */
export class LeaseSecretError extends Error {
  override name = "LeaseSecretError";
}

/**
 * The configured secret: `leaseSecret`, else the content of `leaseSecretFile` (trimmed), else
 * undefined (leases off).
 */
export async function readLeaseSecret(
  config: { readonly leaseSecret?: string; readonly leaseSecretFile?: string },
  readTextFile: (path: string) => Promise<string> = Deno.readTextFile,
): Promise<string | undefined> {
  if (config.leaseSecret !== undefined) return config.leaseSecret;
  if (config.leaseSecretFile === undefined) return undefined;
  let text: string;
  try {
    text = await readTextFile(config.leaseSecretFile);
  } catch (error) {
    throw new LeaseSecretError(
      `cannot read leaseSecretFile ${config.leaseSecretFile}: ${(error as Error).name}`,
    );
  }
  const secret = text.trim();
  const problem = secretCheck(secret);
  if (problem !== undefined) {
    throw new LeaseSecretError(
      `the secret in leaseSecretFile ${config.leaseSecretFile} ${problem}`,
    );
  }
  return secret;
}

/** Whether an `Authorization` header carries `secret` as its bearer token (constant time). */
export function carriesSecret(authorization: string | null, secret: string): boolean {
  const sent = bearerToken(authorization);
  return sent !== undefined && timingSafeEqual(digest(sent), digest(secret));
}

function digest(value: string): Uint8Array {
  return createHash("sha256").update(value).digest();
}
