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
import { createRegistry, type MetricsRegistry, metricsRoute } from "../shared/metrics.ts";
import { createReadiness, type Readiness } from "../shared/readiness.ts";
import { type ServerWebSocket, upgradeWebSocket } from "../shared/websocket.ts";
import { CLOSE_CODE } from "../shared/websocket_frames.ts";
import { parseClientMessage, ProtocolError } from "../shared/protocol.ts";
import { hostWithoutPort } from "../shared/urls.ts";
import { ClientSession, type SessionDeps } from "./client_session.ts";
import type { SimulationConfig } from "./config.ts";
import type { SessionCounts } from "./metrics.ts";
import { exportSessionMetrics } from "./metrics_export.ts";

/** What the routes need besides the session dependencies. */
export interface SimulationServerDeps extends Omit<SessionDeps, "onChange" | "config" | "starts"> {
  readonly config: SimulationConfig;
  /** The current load, as `/load` reports it. */
  readonly load: () => number;
  /** The monitor page for the current sessions. */
  readonly monitorPage: (sessions: readonly ClientSession[]) => string;
  /** The monitor page's live data (`/monitor/data`), to be sent as JSON. */
  readonly monitorData: (sessions: readonly ClientSession[]) => unknown;
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
  /** Ends every session (Webots stopped, folders removed) and closes their sockets with 1001. */
  shutdown(): Promise<void>;
}

/** `/load`'s headers, built once: it is polled by every session server. */
const LOAD_INIT: ResponseInit = Object.freeze({
  headers: Object.freeze({ "content-type": "text/plain; charset=utf-8" }),
});

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
  const sessionDeps: SessionDeps = { ...deps, onChange: () => deps.onChange?.(), starts };

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
      void session.close(reason).finally(() => sessions.delete(session));
    };
    socket.onerror = () => {
      // Followed by close; nothing to do here.
    };
    return response;
  };

  const loadResponse = cachedResponses(LOAD_INIT);
  const load = getOnly(() => loadResponse(String(deps.load())));
  const monitor = getOnly(() => html(deps.monitorPage([...sessions])));
  const monitorData = getOnly(() => json(deps.monitorData([...sessions])));
  const metrics = metricsRoute(registry);

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
        return deps.assets.respond(request) ?? notFound();
    }
  });

  return {
    handler,
    sessions,
    counts,
    readiness,
    async shutdown() {
      shuttingDown = true;
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
