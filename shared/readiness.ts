/**
 * `GET /health` and `GET /ready`, for load balancers and orchestrators.
 *
 * - `/health`: 200 `ok` as long as the process serves requests at all (a liveness probe).
 * - `/ready`: 200 `ready` while the server takes new sessions; 503 with the reason (`shutting
 *   down`, `draining`) once it does not. The server calls `shuttingDown()` when a signal arrives;
 *   the drain feature calls `setDraining(true)` / `setDraining(false)`.
 *
 * Both are GET/HEAD only and never cached.
 *
 * @module
 */
import type { HttpRequest } from "./http_request.ts";
import { isGetOrHead, methodNotAllowed } from "./http.ts";
import { NO_STORE } from "./metrics.ts";

/** Whether a server takes new sessions, and its `/health` and `/ready` answers. */
export interface Readiness {
  /** True while new sessions are taken. */
  readonly ready: boolean;
  /** Why new sessions are refused, or undefined while ready. */
  readonly reason: "shutting down" | "draining" | undefined;
  /** The server is shutting down: not ready, for good. */
  shuttingDown(): void;
  /** Draining starts (`true`) or is called off (`false`). */
  setDraining(draining: boolean): void;
  /** `GET /health`. */
  health(request: HttpRequest): Response;
  /** `GET /ready`. */
  readyRoute(request: HttpRequest): Response;
}

function plain(body: string, status: number, request: HttpRequest): Response {
  return new Response(request.method === "HEAD" ? null : body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": NO_STORE },
  });
}

/** A server's readiness: ready until told otherwise. */
export function createReadiness(): Readiness {
  let shutting = false;
  let draining = false;
  const reason = () => shutting ? "shutting down" : draining ? "draining" : undefined;
  return {
    get ready() {
      return reason() === undefined;
    },
    get reason() {
      return reason();
    },
    shuttingDown() {
      shutting = true;
    },
    setDraining(on) {
      draining = on;
    },
    health(request) {
      if (!isGetOrHead(request)) return methodNotAllowed("GET, HEAD");
      return plain("ok\n", 200, request);
    },
    readyRoute(request) {
      if (!isGetOrHead(request)) return methodNotAllowed("GET, HEAD");
      const why = reason();
      return why === undefined ? plain("ready\n", 200, request) : plain(`${why}\n`, 503, request);
    },
  };
}
