/**
 * The session server's admin API, behind `adminGate` (shared/admin.ts):
 *
 * - `GET /admin/servers`: every configured simulation server, in config order, with what the
 *   session server knows of it: its standing (`available`, `full`, `not responding`, `unknown`
 *   before its first poll), its last load, when it last answered and was last polled, and why it
 *   does not answer when it does not.
 * - `POST /admin/reload`: re-reads the config file, as SIGHUP does (session/reload.ts): 200 with
 *   the keys that changed and those that need a restart, or 400 with the reason the file was
 *   refused.
 *
 * @module
 */
import { adminJson, type AdminRoute } from "../shared/admin.ts";
import { methodNotAllowed, notFound, requestPath } from "../shared/http.ts";
import type { ServerDetail } from "./fleet.ts";
import { answeredLoad, type Standing, standingOf } from "./load_rules.ts";
import type { ReloadResult } from "./reload.ts";

/** What the admin routes read and do. */
export interface SessionAdminDeps {
  readonly servers: () => readonly ServerDetail[];
  readonly reload: () => Promise<ReloadResult>;
}

const STANDING_NAMES = {
  unknown: "unknown",
  down: "not responding",
  full: "full",
  available: "available",
  draining: "draining",
} as const satisfies Record<Standing, string>;

const iso = (ms: number | undefined) => ms === undefined ? null : new Date(ms).toISOString();

/** One server as `GET /admin/servers` shows it. */
export function serverEntry(server: ServerDetail): Record<string, unknown> {
  const { state } = server;
  return {
    entry: server.entry,
    loadUrl: server.url,
    state: state.kind,
    standing: STANDING_NAMES[standingOf(state)],
    load: answeredLoad(state) ?? null,
    lastAnswer: iso(server.answeredAt),
    lastPoll: iso(server.polledAt),
    pollInFlight: server.pollInFlight,
    ...(state.kind === "down" ? { problem: { reason: state.reason, detail: state.detail } } : {}),
  };
}

/** The admin routes (to be wrapped in `adminGate`). */
export function sessionAdminRoutes(deps: SessionAdminDeps): AdminRoute {
  return async (request) => {
    switch (requestPath(request.url)) {
      case "/admin/servers":
        if (request.method !== "GET" && request.method !== "HEAD") {
          return methodNotAllowed("GET, HEAD");
        }
        return adminJson({ servers: deps.servers().map(serverEntry) });
      case "/admin/reload": {
        if (request.method !== "POST") return methodNotAllowed("POST");
        const result = await deps.reload();
        return result.outcome === "refused"
          ? adminJson({ outcome: "refused", reason: result.reason }, 400)
          : adminJson(result);
      }
      default:
        return notFound();
    }
  };
}
