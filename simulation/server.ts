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
  methodNotAllowed,
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
import { hostWithoutPort, webotsStreamUrl } from "../shared/urls.ts";
import { carriesSecret } from "../shared/lease_secret.ts";
import { formatError } from "../shared/protocol.ts";
import { createLeases, type HeldSlot, type Leases } from "./leases.ts";
import type { PortPool } from "./ports.ts";
import { createOriginPolicy, originRefusal } from "../shared/origins.ts";
import { ClientSession, type SessionDeps } from "./client_session.ts";
import type { SimulationConfig } from "./config.ts";
import type { SessionCounts } from "./metrics.ts";
import { type LoadStatus, usedSlots } from "./load.ts";
import { exportDrainMetrics, exportLeaseMetrics, exportSessionMetrics } from "./metrics_export.ts";
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
  /**
   * Slot leases, on when a secret is configured: the secret (`leaseSecret` or the content of
   * `leaseSecretFile`) and the streaming-port pool whose ports leases hold.
   */
  readonly lease?: { readonly secret: string; readonly ports: PortPool };
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
  /**
   * The slot leases, when a secret is configured: `leases.setRefusing("draining")` makes lease
   * requests answer 503 with that reason (the drain feature calls it).
   */
  readonly leases: Leases | undefined;
  /** Ends every session (Webots stopped, folders removed) and closes their sockets with 1001. */
  shutdown(): Promise<void>;
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

/** `/lease/<token>/client`: a browser's socket that comes with a slot lease. */
const LEASED_CLIENT = /^\/lease\/([A-Za-z0-9_-]{1,64})\/client$/;

/** The close code of a socket refused for want of a valid lease. */
const POLICY_VIOLATION = 1008;

function webSocketOnly(): Response {
  return text("This is a WebSocket endpoint\n", { status: 426, headers: { upgrade: "websocket" } });
}

/** An answer to a lease request: never cached, never shown to a browser. */
function leaseJson(value: unknown, status: number): Response {
  return new Response(JSON.stringify(value) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
  });
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
    let reserved = 0;
    for (const session of sessions) {
      if (!session.hasWebots) {
        // A leased session holds its slot from the start, not only once Webots runs.
        if (session.leased && session.state !== "closed") reserved++;
        continue;
      }
      if (session.idle) idle++;
      else running++;
    }
    if (leases === undefined) return { running, idle };
    return { running, idle, reserved: reserved + leases.outstanding };
  };

  const registry = deps.registry ?? createRegistry();
  const readiness = createReadiness();
  const origins = createOriginPolicy(deps.config.allowedOrigins);
  const starts = exportSessionMetrics(registry, {
    sessions: () => sessions,
    clients: () => sockets.size,
    counts,
  });
  const leaseEvents = exportLeaseMetrics(registry, () => leases?.outstanding ?? 0);
  const leases: Leases | undefined = deps.lease === undefined ? undefined : createLeases({
    ports: deps.lease.ports,
    clock: deps.clock,
    timeoutSeconds: deps.config.leaseTimeout,
    logger,
    events: { ...leaseEvents, expired: () => (leaseEvents.expired(), deps.onChange?.()) },
  });
  const mode = { ssl: deps.ssl, portRewrite: deps.config.portRewrite };
  const drain = createDrain({
    timeoutSeconds: deps.config.drainTimeout,
    clock: deps.clock,
    logger,
    sessions: () => sessions,
    onDraining: (draining) => {
      readiness.setDraining(draining);
      leases?.setRefusing(draining ? "draining" : undefined);
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

  /** `POST /lease`: reserves a slot for a browser the caller (a session server) sends here. */
  const requestLease = (request: HttpRequest, info: ConnInfo): Response => {
    if (leases === undefined || deps.lease === undefined) return notFound();
    if (request.method !== "POST") return methodNotAllowed("POST");
    if (!carriesSecret(request.headers.get("authorization"), deps.lease.secret)) {
      leaseEvents.refused("unauthorized");
      logger.warn(
        { remote: (info.remoteAddr as Deno.NetAddr).hostname },
        "lease request without the secret refused",
      );
      return leaseJson({ error: "unauthorized" }, 401);
    }
    if (shuttingDown) leases.setRefusing("shutting_down");
    const outcome = leases.request();
    if (outcome.kind === "refused") return leaseJson({ error: outcome.reason }, 503);
    deps.onChange?.();
    const host = hostWithoutPort(request.headers.get("host") ?? "localhost");
    const url = `${webotsStreamUrl(host, deps.config.port, mode)}/lease/${outcome.token}`;
    return leaseJson({ token: outcome.token, url, expiresIn: outcome.expiresIn }, 200);
  };

  /** Accepts the upgrade only to say why the socket is refused, then closes it. */
  const refuseClient = (request: HttpRequest, reason: string): Response => {
    const { socket, response } = upgradeWebSocket(request, {
      maxMessageSize: deps.config.maxMessageSize,
      heartbeatTimeout: deps.config.heartbeatTimeout,
      clock: deps.clock,
    });
    if (socket === undefined) return response;
    socket.onopen = () => {
      socket.send(formatError(reason));
      socket.close(POLICY_VIOLATION, reason);
    };
    return response;
  };

  const openClient = (request: HttpRequest, info: ConnInfo, token?: string): Response => {
    if (shuttingDown) return text("Server is shutting down\n", { status: 503 });
    const origin = origins.refused(request);
    if (origin !== undefined) {
      logger.warn(
        {
          origin,
          path: requestPath(request.url),
          remote: (info.remoteAddr as Deno.NetAddr).hostname,
        },
        "WebSocket refused: origin not in allowedOrigins",
      );
      return originRefusal();
    }
    let slot: HeldSlot | undefined;
    if (token !== undefined) {
      slot = leases?.take(token);
      if (slot === undefined) {
        logger.info(
          { remote: (info.remoteAddr as Deno.NetAddr).hostname },
          "client with an unknown, used or expired lease refused",
        );
        return refuseClient(request, "this simulation slot lease is unknown, used or expired");
      }
    } else if (deps.config.requireLease) {
      logger.info(
        { remote: (info.remoteAddr as Deno.NetAddr).hostname },
        "client without a lease refused",
      );
      return refuseClient(request, "this server only takes clients sent by its session server");
    }
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
    if (socket === undefined) {
      slot?.release();
      return response;
    }
    const session = new ClientSession(deps.newId(), socket, host, remote, sessionDeps, slot);
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
    const path = requestPath(request.url);
    switch (path) {
      case "/client":
        if (!isWebSocketUpgrade(request)) return webSocketOnly();
        return openClient(request, info);
      case "/lease":
        return requestLease(request, info);
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
      default: {
        if (path.startsWith("/admin/")) return admin(request, info);
        const token = leases === undefined ? undefined : LEASED_CLIENT.exec(path)?.[1];
        if (token !== undefined) {
          if (!isWebSocketUpgrade(request)) return webSocketOnly();
          return openClient(request, info, token);
        }
        return deps.assets.respond(request) ?? notFound();
      }
    }
  });

  return {
    handler,
    sessions,
    counts,
    readiness,
    drain,
    leases,
    async shutdown() {
      shuttingDown = true;
      drain.stop();
      leases?.setRefusing("shutting_down");
      leases?.clear();
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
