/**
 * The session server: routes (`/session`, `/` WebSocket feed and home page, `/load`, `/monitor`,
 * `/monitor/data`, `/assets/…`, the admin API under `/admin/`) on top of the polling fleet, the
 * availability hub, the load history and the notifier. A reload of the config (session/reload.ts)
 * reconfigures these in place; `allowedOrigins` guards the feed's upgrades and `/session`'s CORS.
 * Discovery (session/discovery.ts) decides which servers the fleet polls: the config's hosts plus
 * what its DNS entries give, joining and leaving while the server runs.
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
import { adminGate } from "../shared/admin.ts";
import {
  corsHeadersFor,
  createOriginPolicy,
  type OriginPolicy,
  originRefusal,
  preparedCorsResponses,
} from "../shared/origins.ts";
import { NO_SERVER_AVAILABLE } from "../shared/protocol.ts";
import { checkUrl, simulationServerWsUrl, type UrlMode } from "../shared/urls.ts";
import { createAvailabilityHub } from "./availability.ts";
import type { SessionConfig } from "./config.ts";
import { createFleet } from "./fleet.ts";
import { fetchLoadProbe, type LoadProbe } from "./load_probe.ts";
import { createDiscovery, type DiscoverySettings } from "./discovery.ts";
import { createDnsResolver, type NameServer, parseNameServer, type Resolver } from "./dns.ts";
import { homePage } from "./home_page.ts";
import { createLoadHistory } from "./load_history.ts";
import { exportReservationMetrics, exportSessionServerMetrics } from "./metrics.ts";
import { createGrant, type Grant } from "./grant.ts";
import { averageLoad, chooseServer, isAvailable } from "./load_rules.ts";
import { type FleetExtras, monitorData, type MonitorInput, monitorPage } from "./monitor_page.ts";
import { createFleetLog } from "./fleet_log.ts";
import { createNotifier, type MailSettings } from "./notify.ts";
import { sessionAdminRoutes } from "./admin_routes.ts";
import { type AccessCheck, createReloader, type ReloadResult } from "./reload.ts";
import { createWaitQueue } from "./queue.ts";
import { createSubscriberGate, subscriberCap } from "./subscriber_cap.ts";
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
  /** The lease secret (`leaseSecret` or the content of `leaseSecretFile`): slot leases on. */
  readonly leaseSecret?: string;
  /**
   * Reads and validates the config file again (SIGHUP, `POST /admin/reload`); without it a reload
   * is refused.
   */
  readonly readConfig?: () => Promise<SessionConfig>;
  /** Whether the process may read or write a path a new config names (default: yes). */
  readonly mayAccess?: AccessCheck;
  /** The e-mail settings of a reloaded config; without it a reload keeps the running ones. */
  readonly mailFor?: (config: SessionConfig) => MailSettings | undefined;
  /**
   * Reserves a slot for the head of the queue; default: the server `GET /session` would name, at
   * most once per simulation server until a poll begun after that grant has answered.
   */
  readonly grant?: Grant;
  /**
   * The resolver the DNS entries of `simulationServers` are looked up with, for a `nameServer`
   * (undefined: the system's); default: `Deno.resolveDns`.
   */
  readonly resolverFor?: (nameServer: NameServer | undefined) => Resolver;
  /**
   * Polls one simulation server's `/load` (main.ts: in a Worker, session/poll_worker_probe.ts);
   * default: `fetch` in this thread.
   */
  readonly loadProbe?: LoadProbe;
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
  /**
   * With a lease secret: reserves a slot in the fleet and gives the URL to hand out
   * (`…/lease/<token>`), or undefined when no server granted one. Undefined without a secret.
   */
  readonly grant: Grant | undefined;
  /** Re-reads the config file and applies what can change live (SIGHUP, `POST /admin/reload`). */
  reload(trigger: string): Promise<ReloadResult>;
}

/** `GET /session`'s headers: HTML, as the reference, and its CORS headers. Built once. */
const SESSION_HEADERS = Object.freeze({ "content-type": "text/html; charset=utf-8" });
const SESSION_INIT: ResponseInit = Object.freeze({
  headers: Object.freeze({ ...SESSION_HEADERS, ...CORS_HEADERS }),
});
const OPTIONS_INIT: ResponseInit = Object.freeze({ status: 204, headers: CORS_HEADERS });
/** A leased answer is good once: no cache may hand it to a second browser. */
const LEASED_INIT: ResponseInit = Object.freeze({
  headers: Object.freeze({
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    ...CORS_HEADERS,
  }),
});

/** How many served pages the average wait on `/monitor` is taken over. */
const LAST_WAITS = 20;

/** The longest a lease request may take before the next server is asked, in milliseconds. */
const LEASE_REQUEST_MAX_MS = 2000;

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
  const { logger } = deps;
  /**
   * The running config. A reload replaces it (only its live keys change): everything that reads a
   * live setting reads it from here when it needs it. The state that must survive a reload (the
   * hub's subscribers, the fleet's known states) lives in modules a reload reconfigures, never
   * rebuilds.
   */
  let config = deps.config;
  const mode: UrlMode = {
    ssl: config.sslCertificate !== undefined && config.sslKey !== undefined,
    portRewrite: config.portRewrite,
  };
  const startedAt = deps.clock.now();
  const thresholdsOf = (c: SessionConfig) => ({ fullAt: c.fullAt, availableAt: c.availableAt });
  let thresholds = thresholdsOf(config);
  let port = config.port;
  let mail = deps.mail;
  const history = createLoadHistory();
  const fleetLog = createFleetLog();
  const registry = deps.registry ?? createRegistry();
  const readiness = createReadiness();
  /** One resolver per `nameServer` value: a new one makes discovery look every name up again. */
  let resolver: { nameServer: string | undefined; resolver: Resolver } | undefined;
  const resolverOf = (c: SessionConfig): Resolver => {
    if (resolver === undefined || resolver.nameServer !== c.nameServer) {
      const parsed = c.nameServer === undefined ? undefined : parseNameServer(c.nameServer);
      // The config's check refuses a wrong nameServer.
      const nameServer = typeof parsed === "string" ? undefined : parsed;
      resolver = {
        nameServer: c.nameServer,
        resolver: (deps.resolverFor ?? createDnsResolver)(nameServer),
      };
    }
    return resolver.resolver;
  };
  const discoverySettings = (c: SessionConfig): DiscoverySettings => ({
    sources: c.simulationServers,
    resolver: resolverOf(c),
    intervalMs: Math.max(c.loadRefresh, c.dnsMinInterval) * 1000,
    timeoutMs: c.loadTimeout * 1000,
  });
  const discovery = createDiscovery({
    ...discoverySettings(config),
    mode,
    clock: deps.clock,
    logger,
    onChange: (entries, joined, left) => {
      const now = deps.clock.now();
      for (const [how, servers] of [["joined", joined], ["left", left]] as const) {
        for (const { entry, source } of servers) {
          fleetLog.membership(entry, how, source, now);
          recorded.membership(how);
        }
      }
      setEntries(entries);
    },
  });
  /** The servers the fleet polls (and the metrics label), as discovery last gave them. */
  let polled = discovery.entries();
  const setEntries = (entries: readonly string[]) => {
    recorded.serversChanged(polled, entries);
    polled = entries;
    fleet.reconfigure({
      entries,
      refreshMs: config.loadRefresh * 1000,
      timeoutMs: config.loadTimeout * 1000,
      thresholds,
    });
  };
  const recorded = exportSessionServerMetrics(registry, {
    entries: polled,
    servers: () => fleet.servers(),
    subscribers: () => hub.size,
    queued: () => queue.length,
    dns: () => discovery.status(),
  });
  /**
   * The queue's grant without slot leases: today's choice. Nothing is reserved and a slot shows in
   * `/load` only once the page's Webots runs, so a server granted to a page is not granted again
   * before a poll begun {@link GRANT_HOLD_MS} after that grant has answered: at most one page per
   * server in that time. With leases the queue reserves a slot exactly as `GET /session` does.
   */
  const grantedAt = new Map<string, number>();
  /** The waits of the last served pages, for `/monitor`. */
  const lastWaits: number[] = [];
  const pollGrant: Grant = () => {
    const entry = chooseServer(fleet.servers().filter((s) => !grantedAt.has(s.entry)));
    if (entry === undefined) return Promise.resolve(undefined);
    grantedAt.set(entry, deps.clock.now());
    return Promise.resolve(simulationServerWsUrl(entry, mode));
  };
  const queue = createWaitQueue<HubSocket>({
    clock: deps.clock,
    logger,
    // `grant` (leases) is created further down; the queue calls this only once pages join.
    grant: deps.grant ?? (() => (grant ?? pollGrant)()),
    settings: () => ({
      max: config.queueMax,
      timeoutMs: config.queueTimeout * 1000,
      perAddress: config.queuePerAddress,
    }),
    retryMs: config.loadRefresh * 1000,
    recorder: {
      outcome: recorded.queue.outcome,
      waited(seconds) {
        recorded.queue.waited(seconds);
        lastWaits.push(seconds);
        if (lastWaits.length > LAST_WAITS) lastWaits.shift();
      },
    },
  });
  const hub = createAvailabilityHub(logger, deps.clock, queue);
  /** `GET /session`'s body for the fleet's current state; no server is known before a poll. */
  let sessionAnswer = NO_SERVER_AVAILABLE;
  const notifier = createNotifier({
    logger,
    get mail() {
      return mail;
    },
    checkUrl: () => checkUrl(config.server, port, mode),
  });
  const fleet = createFleet({
    entries: polled,
    mode,
    probe: deps.loadProbe ?? fetchLoadProbe(deps.fetch, deps.clock),
    logger,
    clock: deps.clock,
    refreshMs: config.loadRefresh * 1000,
    timeoutMs: config.loadTimeout * 1000,
    thresholds,
    onUpdate: (changed) => {
      // Called after every poll result: with 1,000 servers, what is done here runs 1,000 times a
      // round, so nothing here may cost more than one pass over the servers without allocating.
      const servers = fleet.servers();
      // Kept here rather than chosen per request: `/session` is the hot path, polls are rare.
      const entry = chooseServer(servers);
      sessionAnswer = entry === undefined
        ? NO_SERVER_AVAILABLE
        : simulationServerWsUrl(entry, mode);
      history.record(servers, deps.clock.now());
      if (changed === undefined) fleetLog.updated(servers, deps.clock.now());
      else fleetLog.changed(changed, deps.clock.now());
      hub.set(servers.some((s) => isAvailable(s.state)));
      if (entry !== undefined) queue.kick();
    },
    onTransition: (transition) => notifier.notify(transition),
    onPoll: (entry, outcome, seconds) => {
      recorded.polled(entry, outcome, seconds);
      fleetLog.polled(entry, outcome, deps.clock.now());
      // A poll begun long enough after a grant shows the granted page's slot.
      const began = deps.clock.now() - seconds * 1000;
      const granted = grantedAt.get(entry);
      if (granted !== undefined && granted + GRANT_HOLD_MS <= began) grantedAt.delete(entry);
    },
  });
  let shuttingDown = false;
  // With `allowedOrigins` unset (the default) `/session` is answered exactly as before.
  const sessionResponse = cachedResponses(SESSION_INIT);
  const reservations = exportReservationMetrics(registry);
  const grant: Grant | undefined = deps.leaseSecret === undefined ? undefined : createGrant({
    servers: () => fleet.servers(),
    mode,
    secret: deps.leaseSecret,
    fetch: deps.fetch,
    clock: deps.clock,
    timeoutMs: Math.min(config.loadTimeout * 1000, LEASE_REQUEST_MAX_MS),
    fullForMs: config.loadRefresh * 1000,
    logger,
    events: reservations,
  });
  let origins: OriginPolicy = createOriginPolicy(config.allowedOrigins);
  const restrictedSession = (policy: OriginPolicy) =>
    policy.restricted ? preparedCorsResponses(policy, SESSION_HEADERS, CORS_HEADERS) : undefined;
  let restrictedResponse = restrictedSession(origins);

  /** `GET /session` with leases: a slot reserved first, its URL answered. */
  const leasedSession = async (request: HttpRequest, reserve: Grant): Promise<Response> => {
    const refused = origins.refused(request);
    if (refused !== undefined) {
      // A page of another origin could not read the answer: no slot is held for it.
      recorded.answeredNone();
      return new Response(NO_SERVER_AVAILABLE, {
        headers: { ...SESSION_HEADERS, ...corsHeadersFor(origins, refused, CORS_HEADERS) },
      });
    }
    const url = await reserve();
    if (url === undefined) {
      recorded.answeredNone();
      return restrictedResponse === undefined
        ? sessionResponse(NO_SERVER_AVAILABLE)
        : restrictedResponse(request, NO_SERVER_AVAILABLE);
    }
    recorded.answeredServer();
    if (!origins.restricted) return new Response(url, LEASED_INIT);
    return new Response(url, {
      headers: {
        ...SESSION_HEADERS,
        "cache-control": "no-store",
        ...corsHeadersFor(origins, request.headers.get("origin"), CORS_HEADERS),
      },
    });
  };

  const session = (request: HttpRequest): Response | Promise<Response> => {
    // A HEAD reserves nothing: its answer has no body to carry a lease.
    if (grant !== undefined && request.method === "GET") return leasedSession(request, grant);
    if (isGetOrHead(request)) {
      if (sessionAnswer === NO_SERVER_AVAILABLE) recorded.answeredNone();
      else recorded.answeredServer();
      return restrictedResponse === undefined
        ? sessionResponse(sessionAnswer)
        : restrictedResponse(request, sessionAnswer);
    }
    if (request.method === "OPTIONS") {
      if (!origins.restricted) return new Response(null, OPTIONS_INIT);
      const headers = corsHeadersFor(origins, request.headers.get("origin"), CORS_HEADERS);
      return new Response(null, { status: 204, headers });
    }
    return methodNotAllowed("GET, HEAD, OPTIONS");
  };

  /** Refuses an upgrade from a page of another origin: 403 and one log line. */
  const refuseOrigin = (request: HttpRequest, path: string): Response | undefined => {
    const origin = origins.refused(request);
    if (origin === undefined) return undefined;
    logger.warn(
      { origin, path, host: request.headers.get("host") ?? "" },
      "WebSocket refused: origin not in allowedOrigins",
    );
    recorded.refusedUpgrade("origin");
    return originRefusal();
  };

  const subscriberGate = createSubscriberGate(
    () => subscriberCap(config.maxSubscribers),
    logger,
  );
  const root = getOnly((request: HttpRequest, info: ConnInfo): Response => {
    if (!isWebSocketUpgrade(request)) {
      return html(homePage(new URL(request.url).searchParams.get("url") ?? ""));
    }
    if (shuttingDown) {
      recorded.refusedUpgrade("shutting_down");
      return text("Shutting down\n", { status: 503 });
    }
    const refused = refuseOrigin(request, "/");
    if (refused !== undefined) return refused;
    if (!subscriberGate.admit(hub.size)) {
      recorded.refusedUpgrade("capacity");
      return text("Too many subscribers\n", { status: 503 });
    }
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
    else recorded.refusedUpgrade("handshake");
    return response;
  });

  const load = getOnly(() => text(String(averageLoad(fleet.servers()) ?? -1)));
  /**
   * What the slot leases and the queue report for `/monitor`; each section of the page shows only
   * once its part is filled. With leases on, the slots they hold are what our simulation servers
   * count as used beyond their simulations (`x-webots-slots` minus `x-webots-simulations`). The
   * queue (issue 10, queue feature) fills `queue` from session/queue.ts.
   */
  const extras = (): FleetExtras => {
    const headJoinedAt = queue.headJoinedAt;
    const estimateS = queue.estimate(queue.length + 1);
    if (config.queueMax === 0) return { ...leased(), ...dnsSources() };
    const waiting = {
      queue: {
        length: queue.length,
        ...(headJoinedAt === undefined
          ? {}
          : { longestWaitS: Math.round((deps.clock.now() - headJoinedAt) / 1000) }),
        ...(estimateS === undefined ? {} : { estimateS }),
        ...(lastWaits.length === 0 ? {} : {
          averageWaitS: Math.round(lastWaits.reduce((a, b) => a + b, 0) / lastWaits.length),
        }),
      },
    };
    return { ...waiting, ...leased(), ...dnsSources() };
  };
  /** How the DNS entries stand; nothing when there are none. */
  const dnsSources = (): FleetExtras => {
    const sources = discovery.status();
    return sources.length === 0 ? {} : { discovery: sources };
  };
  /** The slots leases hold, as our simulation servers report them; nothing without leases. */
  const leased = (): FleetExtras => {
    if (grant === undefined) return {};
    let outstanding = 0;
    for (const { entry, state } of fleet.servers()) {
      const slots = state.kind === "up" ? fleetLog.record(entry).slots : undefined;
      if (slots !== undefined) outstanding += Math.max(0, slots.used - slots.simulations);
    }
    return { leases: { outstanding } };
  };
  const monitorInput = (): MonitorInput => ({
    servers: fleet.servers(),
    log: fleetLog,
    mode,
    thresholds,
    extras: extras(),
  });
  const monitor = getOnly(() => html(monitorPage(monitorInput(), startedAt)));
  const data = getOnly(() => {
    const input = monitorInput();
    return json(monitorData(input, history.columns(input.servers.map((s) => s.entry))));
  });
  const metrics = metricsRoute(registry);

  /** Puts a reloaded config in effect; only its live keys differ from the running one. */
  const apply = (next: SessionConfig, changed: readonly string[]) => {
    config = next;
    thresholds = thresholdsOf(next);
    if (changed.some((key) => key.startsWith("mail") || key === "administrator")) {
      mail = deps.mailFor ? deps.mailFor(next) : mail;
    }
    if (changed.includes("allowedOrigins")) {
      origins = createOriginPolicy(next.allowedOrigins);
      restrictedResponse = restrictedSession(origins);
    }
    if (changed.includes("adminToken")) admin = gate();
    discovery.reconfigure(discoverySettings(next));
    setEntries(discovery.entries());
  };
  const reloader = createReloader({
    read: deps.readConfig ??
      (() => Promise.reject(new Error("this server was started without a config file"))),
    mayAccess: deps.mayAccess ?? (() => true),
    current: () => config,
    apply,
    logger,
    onOutcome: (outcome) => recorded.reloaded(outcome),
  });
  const gate = () =>
    adminGate(
      config.adminToken,
      logger,
      sessionAdminRoutes({
        servers: () => fleet.details(),
        reload: () => reloader.reload("admin"),
      }),
    );
  let admin = gate();

  return {
    handler: guard(logger, (request, info) => {
      const path = requestPath(request.url);
      switch (path) {
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
          if (path.startsWith("/admin/")) return admin(request, info);
          return deps.assets.respond(request) ?? notFound();
      }
    }),
    start(listenPort) {
      port = listenPort;
      fleet.start();
      discovery.start();
    },
    readiness,
    grant,
    reload: (trigger) => reloader.reload(trigger),
    async shutdown() {
      shuttingDown = true;
      readiness.shuttingDown();
      logger.info({ subscribers: hub.size, queued: queue.length }, "shutting down");
      queue.stop();
      await Promise.all([
        hub.closeAll(1001, "server shutting down", 2000),
        fleet.stop(),
        discovery.stop(),
      ]);
      await notifier.idle();
    },
  };
}
