/**
 * `allowedOrigins`, on both servers: which web pages may open their WebSockets and read
 * `/session` across origins.
 *
 * Unset (the default), everything is open, as the reference was: every upgrade is taken and
 * `/session` sends `access-control-allow-origin: *`. Set, a WebSocket upgrade whose `Origin` header
 * names another origin is refused with 403, and `/session` reflects an allowed origin
 * (`access-control-allow-origin: <origin>`, `vary: origin`) and sends no CORS header to any
 * other. A request without `Origin` is let through: browsers always send one on a WebSocket
 * upgrade and on a cross-origin fetch, so only non-browser clients (scripts, monitoring, the
 * session server's own polls) come without it, and an `Origin` check protects browsers' users,
 * not the server, from such clients.
 *
 * ```ts
 * import { createOriginPolicy } from "./origins.ts";
 * const policy = createOriginPolicy(["https://example.org"]);
 * policy.refused(new Request("http://x/", { headers: { origin: "https://evil.test" } })); // "https://evil.test"
 * ```
 *
 * @module
 */
import type { KeySpec } from "./config.ts";
import type { HttpRequest } from "./http_request.ts";
import { preparedResponses } from "./http_response.ts";

/** The config key `allowedOrigins`, the same on both servers. */
export const ALLOWED_ORIGINS_KEY = {
  type: "string[]",
  check: (value: unknown) => {
    if (!Array.isArray(value)) return undefined;
    for (const origin of value) {
      const problem = originProblem(String(origin));
      if (problem !== undefined) return problem;
    }
    return undefined;
  },
  doc:
    "Web origins whose pages may open this server's WebSockets, e.g. `[\"https://example.org\"]`: an upgrade with another `Origin` gets 403, and `/session`'s CORS header names the page's origin when allowed (none otherwise). Requests without `Origin` (non-browser clients) are allowed. Unset: open to every origin, as the reference.",
} as const satisfies KeySpec;

/** Why `value` is not an origin as browsers send it (`scheme://host[:port]`), or undefined. */
export function originProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `must list origins such as "https://example.org", got ${JSON.stringify(value)}`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return `must list http or https origins, got ${JSON.stringify(value)}`;
  }
  if (url.origin !== value) {
    return `must list origins as browsers send them (scheme, lower-case host and port only, no path or trailing slash): ${
      JSON.stringify(value)
    } would be ${JSON.stringify(url.origin)}`;
  }
  return undefined;
}

/** The origin rules of one server. */
export interface OriginPolicy {
  /** True when `allowedOrigins` is set (else every origin is allowed, with `*` CORS). */
  readonly restricted: boolean;
  /** The allowed origins (empty when unrestricted). */
  readonly origins: readonly string[];
  /** The request's `Origin` when it is not allowed; undefined when the request may go on. */
  refused(request: HttpRequest): string | undefined;
  /** True when a page of `origin` may be answered (always, when unrestricted). */
  allows(origin: string): boolean;
}

/** The rules for `allowedOrigins` (undefined: open to every origin). */
export function createOriginPolicy(allowed: readonly string[] | undefined): OriginPolicy {
  if (allowed === undefined) {
    return { restricted: false, origins: [], refused: () => undefined, allows: () => true };
  }
  const origins = new Set(allowed);
  return {
    restricted: true,
    origins: [...origins],
    refused(request) {
      const origin = request.headers.get("origin");
      return origin === null || origins.has(origin) ? undefined : origin;
    },
    allows: (origin) => origins.has(origin),
  };
}

/** The 403 answer to an upgrade from a page of another origin. */
export function originRefusal(): Response {
  return new Response("Forbidden: origin not allowed\n", {
    status: 403,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/**
 * The CORS headers for a request under `policy`: `cors` as given (with its `*`) when unrestricted;
 * when restricted, `cors` with the request's own origin and `vary: origin` for an allowed origin,
 * and only `vary: origin` for any other request (or one without `Origin`).
 */
export function corsHeadersFor(
  policy: OriginPolicy,
  origin: string | null,
  cors: Readonly<Record<string, string>>,
): Record<string, string> {
  if (!policy.restricted) return { ...cors };
  if (origin === null || !policy.allows(origin)) return { vary: "origin" };
  return { ...cors, "access-control-allow-origin": origin, vary: "origin" };
}

/**
 * Prepared answers of a hot cross-origin route (`/session`) under a restricted policy: one set of
 * prepared bytes per allowed origin and one without CORS headers, chosen by the request's `Origin`,
 * so that a restricted route still writes bytes serialized once per body.
 */
export function preparedCorsResponses(
  policy: OriginPolicy,
  headers: Readonly<Record<string, string>>,
  cors: Readonly<Record<string, string>>,
): (request: HttpRequest, body: string) => Response {
  const answer = (origin: string | null) =>
    preparedResponses({ headers: { ...headers, ...corsHeadersFor(policy, origin, cors) } });
  if (!policy.restricted) {
    const open = answer(null);
    return (_request, body) => open(body);
  }
  const byOrigin = new Map(policy.origins.map((origin) => [origin, answer(origin)]));
  const other = answer(null);
  return (request, body) => {
    const origin = request.headers.get("origin");
    return ((origin === null ? undefined : byOrigin.get(origin)) ?? other)(body);
  };
}
