/**
 * The gate of both servers' admin API (`/admin/…`): off (404, as if the routes did not exist)
 * unless `adminToken` is configured; on, every request must carry `Authorization: Bearer <token>`.
 * A missing or wrong token gets 401 and one warning line that names the method, the path and the
 * remote address, never what was sent as a token. Tokens are compared in constant time (both are
 * hashed first, so neither their content nor their length shows in the time taken).
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { KeySpec } from "./config.ts";
import type { ConnInfo, HttpRequest } from "./http_request.ts";
import { notFound, requestPath } from "./http.ts";
import type { Logger } from "./log.ts";

/** The config key `adminToken`, the same on both servers. */
export const ADMIN_TOKEN_KEY = {
  type: "string",
  check: (value: unknown) =>
    typeof value === "string" && value.length < 16
      ? "must be at least 16 characters long (a random secret)"
      : undefined,
  doc:
    "Turns the admin API (`/admin/…`) on: requests must send `Authorization: Bearer <adminToken>` (at least 16 characters). Unset: the admin routes answer 404.",
} as const satisfies KeySpec;

/** Answers an admin request that passed the gate. */
export type AdminRoute = (
  request: HttpRequest,
  info: ConnInfo,
) => Response | Promise<Response>;

/**
 * Wraps the admin routes: without a token configured every admin path is 404; with one, requests
 * without the right bearer token get 401 and a log line, the others reach `route`.
 */
export function adminGate(
  token: string | undefined,
  logger: Logger,
  route: AdminRoute,
): AdminRoute {
  if (token === undefined) return () => notFound();
  const expected = digest(token);
  return (request, info) => {
    const sent = bearerToken(request.headers.get("authorization"));
    if (sent === undefined || !timingSafeEqual(digest(sent), expected)) {
      logger.warn({
        method: request.method,
        path: requestPath(request.url),
        remote: (info.remoteAddr as Deno.NetAddr).hostname,
        token: sent === undefined ? "missing" : "wrong",
      }, "admin request refused");
      return new Response("Unauthorized\n", {
        status: 401,
        headers: {
          "content-type": "text/plain; charset=utf-8",
          "www-authenticate": 'Bearer realm="admin"',
          "cache-control": "no-store",
        },
      });
    }
    return route(request, info);
  };
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | null): string | undefined {
  const match = header?.match(/^\s*Bearer\s+(\S+)\s*$/i);
  return match?.[1];
}

/** A JSON answer of the admin API (never cached). */
export function adminJson(value: unknown, status = 200): Response {
  return new Response(JSON.stringify(value, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
  });
}

function digest(value: string): Uint8Array {
  return createHash("sha256").update(value).digest();
}
