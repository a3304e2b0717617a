/**
 * The session server: routes (`/session`, `/` WebSocket feed and home page, `/load`, `/monitor`,
 * `/monitor/data`, `/assets/…`) on top of the polling fleet, the availability hub, the load
 * history and the notifier.
 *
 * @module
 */
import {
  cachedResponses,
  type ConnInfo,
  CORS_HEADERS,
  getOnly,
  guard,
  type Handler,
  html,
  type HttpRequest,
  isGetOrHead,
  isWebSocketUpgrade,
  json,
  methodNotAllowed,
  notFound,
  requestPath,
  text,
} from "../shared/http.ts";
import type { Assets } from "../shared/assets.ts";
import type { Clock } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import { createRegistry, type MetricsRegistry, metricsRoute } from "../shared/metrics.ts";
import { createReadiness, type Readiness } from "../shared/readiness.ts";
import { upgradeWebSocket } from "../shared/websocket.ts";
import { NO_SERVER_AVAILABLE } from "../shared/protocol.ts";
import { checkUrl, simulationServerWsUrl, type UrlMode } from "../shared/urls.ts";
import { createAvailabilityHub } from "./availability.ts";
import type { SessionConfig } from "./config.ts";
import { createFleet } from "./fleet.ts";
import { homePage } from "./home_page.ts";
import { createLoadHistory } from "./load_history.ts";
import { exportSessionServerMetrics } from "./metrics.ts";
import { averageLoad, chooseServer, isAvailable } from "./load_rules.ts";
import { monitorData, monitorPage } from "./monitor_page.ts";
import { createNotifier, type MailSettings } from "./notify.ts";
import { createWaitQueue, type Grant } from "./queue.ts";
import type { HubSocket } from "./availability.ts";

/** Collaborators of the session server. */
export interface SessionDeps {
  readonly config: SessionConfig;
  readonly logger: Logger;
  readonly fetch: typeof fetch;
  /** Poll period and timeout, broadcast slices, the monitor's start time and load history. */
  readonly clock: Clock;
  /** E-mail settings, when notifications survived the startup sanity check. */
  readonly mail: MailSettings | undefined;
  /** The pages' scripts and styles, served under `/assets/`. */
  readonly assets: Assets;
  /** Where this server's metrics go (`/metrics`); default: a registry of its own. */
  readonly registry?: MetricsRegistry;
  /**
   * Reserves a slot for the head of the queue; default: the server `GET /session` would name, at
   * most once per simulation server until a poll begun after that grant has answered.
   */
  readonly grant?: Grant;
}

/** A session server: a request handler plus its lifecycle. */
export interface SessionServer {
  readonly handler: Handler;
  /** Starts polling; `port` is the port actually listened on (for e-mail links). */
  start(port: number): void;
  /** Closes subscribers with 1001, stops polling, waits for e-mails in flight. */
  shutdown(): Promise<void>;
  /** `/ready`'s state: not ready once shutting down; the drain feature sets `draining`. */
  readonly readiness: Readiness;
}

/** `GET /session`'s headers: HTML, as the reference, and its CORS headers. Built once. */
const SESSION_INIT: ResponseInit = Object.freeze({
  headers: Object.freeze({ "content-type": "text/html; charset=utf-8", ...CORS_HEADERS }),
});
const OPTIONS_INIT: ResponseInit = Object.freeze({ status: 204, headers: CORS_HEADERS });

/**
 * Largest message a subscriber of `/` may send, in bytes: it is sent `1`/`0` and says at most
 * `{"queue": {}}` (anything else is logged and ignored), so a small JSON message is the most it
 * needs; a larger one closes its socket with 1009 before it is held in memory.
 */
export const SUBSCRIBER_MAX_MESSAGE = 4096;

/**
 * Time a page granted a server without a lease has to open `<url>/client` and start Webots before
 * that server's load is trusted again for the next page (`GET /session` has no such hold).
 */
export const GRANT_HOLD_MS = 3000;

/** Creates the session server; nothing runs until `start`. */
export function createSessionServer(deps: SessionDeps): SessionServer {
  const { config, logger } = deps;
  const mode: UrlMode = {
    ssl: config.sslCertificate !== undefined && config.sslKey !== undefined,
    portRewrite: config.portRewrite,
  };
  const startedAt = new Date(deps.clock.now());
  const thresholds = { fullAt: config.fullAt, availableAt: config.availableAt };
  let port = config.port;
  const history = createLoadHistory();
  const registry = deps.registry ?? createRegistry();
  const readiness = createReadiness();
  const recorded = exportSessionServerMetrics(registry, {
    entries: config.simulationServers,
    servers: () => fleet.servers(),
    subscribers: () => hub.size,
    queued: () => queue.length,
  });
  /**
   * The queue's grant until session/grant.ts (leases) is wired: today's choice. Nothing is
   * reserved and a slot shows in `/load` only once the page's Webots runs, so a server granted to
   * a page is not granted again before a poll begun {@link GRANT_HOLD_MS} after that grant has
   * answered: at most one page per server in that time.
   */
  const grantedAt = new Map<string, number>();
  const pollGrant: Grant = () => {
    const entry = chooseServer(fleet.servers().filter((s) => !grantedAt.has(s.entry)));
    if (entry === undefined) return Promise.resolve(undefined);
    grantedAt.set(entry, deps.clock.now());
    return Promise.resolve(simulationServerWsUrl(entry, mode));
  };
  const queue = createWaitQueue<HubSocket>({
    clock: deps.clock,
    logger,
    grant: deps.grant ?? pollGrant,
    settings: () => ({
      max: config.queueMax,
      timeoutMs: config.queueTimeout * 1000,
      perAddress: config.queuePerAddress,
    }),
    retryMs: config.loadRefresh * 1000,
    recorder: recorded.queue,
  });
  const hub = createAvailabilityHub(logger, deps.clock, queue);
  /** `GET /session`'s body for the fleet's current state; no server is known before a poll. */
  let sessionAnswer = NO_SERVER_AVAILABLE;
  const notifier = createNotifier({
    logger,
    mail: deps.mail,
    checkUrl: () => checkUrl(config.server, port, mode),
  });
  const fleet = createFleet({
    entries: config.simulationServers,
    mode,
    fetch: deps.fetch,
    logger,
    clock: deps.clock,
    refreshMs: config.loadRefresh * 1000,
    timeoutMs: config.loadTimeout * 1000,
    thresholds,
    onUpdate: () => {
      const servers = fleet.servers();
      // Kept here rather than chosen per request: `/session` is the hot path, polls are rare.
      const entry = chooseServer(servers);
      sessionAnswer = entry === undefined
        ? NO_SERVER_AVAILABLE
        : simulationServerWsUrl(entry, mode);
      history.record(servers, deps.clock.now());
      hub.set(servers.some((s) => isAvailable(s.state)));
      if (entry !== undefined) queue.kick();
    },
    onTransition: (transition) => notifier.notify(transition),
    onPoll: (entry, outcome, seconds) => {
      recorded.polled(entry, outcome, seconds);
      // A poll begun long enough after a grant shows the granted page's slot.
      const began = deps.clock.now() - seconds * 1000;
      const granted = grantedAt.get(entry);
      if (granted !== undefined && granted + GRANT_HOLD_MS <= began) grantedAt.delete(entry);
    },
  });
  let shuttingDown = false;
  const sessionResponse = cachedResponses(SESSION_INIT);

  const session = (request: HttpRequest): Response => {
    if (isGetOrHead(request)) {
      if (sessionAnswer === NO_SERVER_AVAILABLE) recorded.answeredNone();
      else recorded.answeredServer();
      return sessionResponse(sessionAnswer);
    }
    if (request.method === "OPTIONS") return new Response(null, OPTIONS_INIT);
    return methodNotAllowed("GET, HEAD, OPTIONS");
  };

  const root = getOnly((request: HttpRequest, info: ConnInfo): Response => {
    if (!isWebSocketUpgrade(request)) {
      return html(homePage(new URL(request.url).searchParams.get("url") ?? ""));
    }
    if (shuttingDown) return text("Shutting down\n", { status: 503 });
    // The request's headers are gone once upgraded.
    const host = request.headers.get("host") ?? "";
    const address = (info.remoteAddr as Deno.NetAddr).hostname;
    const { socket, response } = upgradeWebSocket(request, {
      maxMessageSize: SUBSCRIBER_MAX_MESSAGE,
      heartbeatTimeout: config.heartbeatTimeout,
      clock: deps.clock,
      onListenerError: (error) => logger.error({ err: error, host }, "subscriber socket failed"),
    });
    if (socket !== undefined) hub.add(socket, host, address);
    return response;
  });

  const load = getOnly(() => text(String(averageLoad(fleet.servers()) ?? -1)));
  const monitor = getOnly(() => html(monitorPage(fleet.servers(), startedAt, mode, thresholds)));
  const data = getOnly(() =>
    json(monitorData(fleet.servers(), history.columns(), mode, thresholds))
  );
  const metrics = metricsRoute(registry);

  return {
    handler: guard(logger, (request, info) => {
      switch (requestPath(request.url)) {
        case "/session":
          return session(request);
        case "/":
          return root(request, info);
        case "/load":
          return load(request);
        case "/monitor":
          return monitor(request);
        case "/monitor/data":
          return data(request);
        case "/metrics":
          return metrics(request);
        case "/health":
          return readiness.health(request);
        case "/ready":
          return readiness.readyRoute(request);
        default:
          return deps.assets.respond(request) ?? notFound();
      }
    }),
    start(listenPort) {
      port = listenPort;
      fleet.start();
    },
    readiness,
    async shutdown() {
      shuttingDown = true;
      readiness.shuttingDown();
      logger.info({ subscribers: hub.size, queued: queue.length }, "shutting down");
      queue.stop();
      await Promise.all([hub.closeAll(1001, "server shutting down", 2000), fleet.stop()]);
      await notifier.idle();
    },
  };
}
