/**
 * The simulation server's admin API, behind `adminGate` (shared/admin.ts) in server.ts:
 *
 * - `GET /admin/sessions`: the sessions as JSON (id, client address, state, release, world, age,
 *   idle time, port, pid) with the drain state;
 * - `DELETE /admin/sessions/<id>`: ends that session cleanly (the browser gets `error:` and a
 *   normal close); 404 for an unknown id;
 * - `POST /admin/drain`: starts draining (`drainTimeout`); `POST /admin/undrain` calls it off
 *   (409 when not draining or after SIGTERM).
 *
 * None of them reads a body.
 *
 * @module
 */
import { adminJson, type AdminRoute } from "../shared/admin.ts";
import type { Clock } from "../shared/clock.ts";
import { methodNotAllowed, requestPath } from "../shared/http.ts";
import type { Logger } from "../shared/log.ts";
import type { ClientSession } from "./client_session.ts";
import type { Drain } from "./drain.ts";

/** What the admin routes read and act on. */
export interface AdminRoutesDeps {
  readonly sessions: () => Iterable<ClientSession>;
  readonly drain: Drain;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** One session as `GET /admin/sessions` lists it. */
export interface AdminSession {
  readonly id: string;
  readonly address: string;
  readonly state: string;
  readonly release: string | null;
  readonly world: string;
  /** Seconds since the browser connected. */
  readonly age: number;
  /** Seconds the simulation has been paused, 0 while it runs. */
  readonly idle: number;
  readonly port: number | null;
  readonly pid: number | null;
}

const SESSION_PATH = /^\/admin\/sessions\/([^/]+)$/;

function seconds(ms: number): number {
  return Math.round(ms / 100) / 10;
}

/** The drain's state as the admin routes report it. */
function drainState(drain: Drain) {
  const remaining = drain.remainingSeconds();
  return {
    draining: drain.draining,
    remaining: remaining === undefined ? null : seconds(remaining * 1000),
  };
}

/** Builds the admin routes (to be wrapped by `adminGate`). */
export function createAdminRoutes(deps: AdminRoutesDeps): AdminRoute {
  const list = (): AdminSession[] => {
    const now = deps.clock.now();
    return [...deps.sessions()].map((session) => {
      const info = session.info();
      return {
        id: info.id,
        address: info.remote,
        state: info.state,
        release: info.release ?? null,
        world: info.world,
        age: seconds(now - info.startedAt),
        idle: info.idleSince === undefined ? 0 : seconds(now - info.idleSince),
        port: info.port ?? null,
        pid: info.pid ?? null,
      };
    });
  };

  return async (request) => {
    const path = requestPath(request.url);
    if (path === "/admin/sessions") {
      if (request.method !== "GET") return methodNotAllowed("GET");
      return adminJson({ ...drainState(deps.drain), sessions: list() });
    }
    const match = path.match(SESSION_PATH);
    if (match) {
      if (request.method !== "DELETE") return methodNotAllowed("DELETE");
      const id = decodeURIComponent(match[1]!);
      const session = [...deps.sessions()].find((s) => s.id === id && !s.closed);
      if (session === undefined) return adminJson({ error: `no session ${id}` }, 404);
      deps.logger.info({ client: id }, "admin: ending a session");
      await session.end(
        "ended by an administrator",
        "ended by the server's administrator",
        "admin",
      );
      return adminJson({ ended: id });
    }
    if (path === "/admin/drain") {
      if (request.method !== "POST") return methodNotAllowed("POST");
      deps.drain.start();
      return adminJson(drainState(deps.drain));
    }
    if (path === "/admin/undrain") {
      if (request.method !== "POST") return methodNotAllowed("POST");
      const refusal = deps.drain.undrain();
      if (refusal !== undefined) {
        return adminJson({ error: refusal, ...drainState(deps.drain) }, 409);
      }
      return adminJson(drainState(deps.drain));
    }
    return adminJson({ error: "no such admin route" }, 404);
  };
}
