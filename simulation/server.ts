/**
 * The simulation server's routes: `/client` (one WebSocket per browser, one simulation each),
 * `/load`, `/monitor`, `/monitor/data` (its live figures as JSON) and `/assets/…` (the page's
 * scripts). Messages are parsed here, once, at the socket edge.
 *
 * @module
 */
import type { Assets } from "../shared/assets.ts";
import type { Logger } from "../shared/log.ts";
import {
  cachedResponses,
  type ConnInfo,
  getOnly,
  guard,
  type Handler,
  html,
  type HttpRequest,
  isWebSocketUpgrade,
  json,
  notFound,
  requestPath,
  text,
} from "../shared/http.ts";
import { closedByHeartbeat } from "../shared/heartbeat.ts";
import { adminGate } from "../shared/admin.ts";
import { createRegistry, type MetricsRegistry, metricsRoute } from "../shared/metrics.ts";
import { createReadiness, type Readiness } from "../shared/readiness.ts";
import { type ServerWebSocket, upgradeWebSocket } from "../shared/websocket.ts";
import { CLOSE_CODE } from "../shared/websocket_frames.ts";
import { LOAD_STATE_HEADER, parseClientMessage, ProtocolError } from "../shared/protocol.ts";
import { type SlotFigures, slotHeaders } from "../shared/load_headers.ts";
import { hostWithoutPort } from "../shared/urls.ts";
import { ClientSession, type SessionDeps } from "./client_session.ts";
import type { SimulationConfig } from "./config.ts";
import type { SessionCounts } from "./metrics.ts";
import { type LoadStatus, usedSlots } from "./load.ts";
import { exportDrainMetrics, exportSessionMetrics } from "./metrics_export.ts";
import { createAdminRoutes } from "./admin_routes.ts";
import { createDrain, type Drain } from "./drain.ts";
import { createAdmission } from "./admission.ts";

/** What the routes need besides the session dependencies. */
export interface SimulationServerDeps
  extends Omit<SessionDeps, "onChange" | "config" | "starts" | "admit" | "ended"> {
  readonly config: SimulationConfig;
  /** The current load, as `/load` reports it. */
  readonly load: () => number;
  /** The monitor page for the current sessions and what `/load` answers. */
  readonly monitorPage: (sessions: readonly ClientSession[], status: LoadStatus) => string;
  /** The monitor page's live data (`/monitor/data`), to be sent as JSON. */
  readonly monitorData: (sessions: readonly ClientSession[], status: LoadStatus) => unknown;
  /** The page assets served under `/assets/`. */
  readonly assets: Assets;
  /** Called when a session starts, changes or ends. */
  readonly onChange?: () => void;
  /** Makes a session id; unique within a run. */
  readonly newId: () => string;
  /** Where this server's metrics go (`/metrics`); default: a registry of its own. */
  readonly registry?: MetricsRegistry;
}

/** A running simulation server: its request handler and its sessions. */
export interface SimulationServer {
  readonly handler: Handler;
  /** Sessions with a live `/client` socket or still cleaning up. */
  readonly sessions: ReadonlySet<ClientSession>;
  /** Running and idle Webots counts for `/load` and snapshots. */
  counts(): SessionCounts;
  /** `/ready`'s state: not ready once shutting down; the drain feature sets `draining`. */
  readonly readiness: Readiness;
  /** Draining: `POST /admin/drain`, and SIGTERM with `drainTimeout` (`drain.drainThenStop`). */
  readonly drain: Drain;
  /** Ends every session (Webots stopped, folders removed) and closes their sockets with 1001. */
  shutdown(): Promise<void>;
}

/**
 * Where a drain will tell the slot leases (issue 10, lease branch) to refuse new leases while
 * draining (`true`) and take them again (`false`). No leases exist on this branch yet: the lease
 * module wires itself in here.
 */
export function refuseNewLeases(_draining: boolean): void {
}

/** `/load`'s headers without the slot figures. */
const LOAD_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-type": "text/plain; charset=utf-8",
});

/**
 * `/load`'s answers, prepared once per distinct set of headers: it is polled by every session
 * server, and its headers (slots, simulations, draining) change only when a session does.
 */
function loadResponses(): (load: string, draining: boolean, slots: SlotFigures) => Response {
  const byHeaders = new Map<string, (body: string) => Response>();
  return (load, draining, slots) => {
    const key = `${draining} ${slots.used}/${slots.max} ${slots.simulations}`;
    let respond = byHeaders.get(key);
    if (respond === undefined) {
      // Bounded by the session counts a server can reach; cleared should it ever grow.
      if (byHeaders.size >= 256) byHeaders.clear();
      respond = cachedResponses({
        headers: {
          ...LOAD_HEADERS,
          ...slotHeaders(slots),
          // While draining: 100, which keeps any session server away, and the state header.
          ...(draining ? { [LOAD_STATE_HEADER]: "draining" } : {}),
        },
      });
      byHeaders.set(key, respond);
    }
    return respond(load);
  };
}

/** Builds the simulation server. */
export function createSimulationServer(deps: SimulationServerDeps): SimulationServer {
  const sessions = new Set<ClientSession>();
  const sockets = new Map<ClientSession, ServerWebSocket>();
  const logger: Logger = deps.logger;
  let shuttingDown = false;

  const counts = (): SessionCounts => {
    let running = 0;
    let idle = 0;
    for (const session of sessions) {
      if (!session.hasWebots) continue;
      if (session.idle) idle++;
      else running++;
    }
    return { running, idle };
  };

  const registry = deps.registry ?? createRegistry();
  const readiness = createReadiness();
  const starts = exportSessionMetrics(registry, {
    sessions: () => sessions,
    clients: () => sockets.size,
    counts,
  });
  const drain = createDrain({
    timeoutSeconds: deps.config.drainTimeout,
    clock: deps.clock,
    logger,
    sessions: () => sessions,
    onDraining: (draining) => {
      readiness.setDraining(draining);
      refuseNewLeases(draining);
    },
  });
  const ended = exportDrainMetrics(registry, { draining: () => drain.draining });
  const admit = createAdmission({
    sessions: () => sessions,
    maxSessionsPerAddress: deps.config.maxSessionsPerAddress,
    shuttingDown: () => shuttingDown,
    draining: () => drain.draining,
  });
  const sessionDeps: SessionDeps = {
    ...deps,
    onChange: () => {
      deps.onChange?.();
      drain.changed();
    },
    starts,
    admit,
    ended,
  };

  const openClient = (request: HttpRequest, info: ConnInfo): Response => {
    if (shuttingDown) return text("Server is shutting down\n", { status: 503 });
    // Neither the remote address nor the headers can be read once the request is upgraded.
    const remote = (info.remoteAddr as Deno.NetAddr).hostname;
    const host = hostWithoutPort(request.headers.get("host") ?? "localhost");
    // A message larger than maxMessageSize bytes closes the socket with 1009 while it arrives.
    const { socket, response } = upgradeWebSocket(request, {
      maxMessageSize: deps.config.maxMessageSize,
      heartbeatTimeout: deps.config.heartbeatTimeout,
      clock: deps.clock,
      onListenerError: (error) => logger.error({ err: error, remote }, "client socket failed"),
    });
    if (socket === undefined) return response;
    const session = new ClientSession(deps.newId(), socket, host, remote, sessionDeps);
    sessions.add(session);
    sockets.set(session, socket);
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") {
        session.reject("binary messages are not supported");
        return;
      }
      try {
        void session.handle(parseClientMessage(event.data));
      } catch (error) {
        if (error instanceof ProtocolError) session.reject(error.message);
        else throw error;
      }
    };
    socket.onclose = (event) => {
      sockets.delete(session);
      const reason = closedByHeartbeat(event)
        ? "no answer to ping"
        : event.code === CLOSE_CODE.TOO_BIG
        ? "message too large"
        : "browser left";
      void session.close(reason).finally(() => {
        sessions.delete(session);
        drain.changed();
      });
    };
    socket.onerror = () => {
      // Followed by close; nothing to do here.
    };
    return response;
  };

  /** What `/load` answers now: the figure, the drain state and the session counts. */
  const loadStatus = (): LoadStatus => {
    const draining = drain.draining;
    return {
      load: draining ? 100 : deps.load(),
      draining,
      drainRemainingS: drain.remainingSeconds(),
      counts: counts(),
      maxConnections: deps.config.maxConnections,
    };
  };
  const loadResponse = loadResponses();
  const load = getOnly(() => {
    const status = loadStatus();
    const { running, idle } = status.counts;
    return loadResponse(String(status.load), status.draining, {
      used: usedSlots(status.counts),
      max: status.maxConnections,
      simulations: running + idle,
    });
  });
  const monitor = getOnly(() => html(deps.monitorPage([...sessions], loadStatus())));
  const monitorData = getOnly(() => json(deps.monitorData([...sessions], loadStatus())));
  const metrics = metricsRoute(registry);
  const admin = adminGate(
    deps.config.adminToken,
    logger,
    createAdminRoutes({ sessions: () => sessions, drain, clock: deps.clock, logger }),
  );

  const handler = guard(logger, (request, info) => {
    switch (requestPath(request.url)) {
      case "/client":
        if (!isWebSocketUpgrade(request)) {
          return text("This is a WebSocket endpoint\n", {
            status: 426,
            headers: { upgrade: "websocket" },
          });
        }
        return openClient(request, info);
      case "/load":
        return load(request);
      case "/monitor":
        return monitor(request);
      case "/monitor/data":
        return monitorData(request);
      case "/metrics":
        return metrics(request);
      case "/health":
        return readiness.health(request);
      case "/ready":
        return readiness.readyRoute(request);
      default:
        if (requestPath(request.url).startsWith("/admin/")) return admin(request, info);
        return deps.assets.respond(request) ?? notFound();
    }
  });

  return {
    handler,
    sessions,
    counts,
    readiness,
    drain,
    async shutdown() {
      shuttingDown = true;
      drain.stop();
      readiness.shuttingDown();
      await Promise.all([...sessions].map(async (session) => {
        await session.close("server shutting down");
        try {
          sockets.get(session)?.close(1001, "server shutting down");
        } catch {
          // Already closed.
        }
      }));
    },
  };
}
