/**
 * The session server's Prometheus metrics (`GET /metrics`): each simulation server's state and
 * load, the polls of `/load` (outcomes and durations), `GET /session` answers by outcome, the
 * availability feed's subscribers, slot reservations (lease requests by outcome, durations),
 * reloads of the config by outcome, refused upgrades of `/`, and DNS discovery (servers each DNS
 * entry gives, whether its lookups fail, servers joining and leaving).
 *
 * States, loads and subscribers are read when `/metrics` is rendered; polls and answers are
 * recorded as they happen, through the recorder this returns.
 *
 * @module
 */
import { counter, gauge, histogram, type MetricsRegistry } from "../shared/metrics.ts";
import type { QueueRecorder } from "./queue.ts";
import { answeredLoad, type PollOutcome, type ServerView, standingOf } from "./load_rules.ts";
import { RESERVATION_OUTCOMES, type ReservationEvents } from "./grant.ts";
import type { SourceStatus } from "./discovery.ts";

/** A simulation server's state as the metrics name it. */
const SERVER_STATES = ["available", "full", "draining", "not_responding", "unknown"] as const;

/** How a poll of `/load` ended: a load (`ok`), or why not. */
const POLL_OUTCOMES = ["ok", "refused", "timeout", "status", "body"] as const;

/** How a reload of the config ended (SIGHUP or `POST /admin/reload`). */
export const RELOAD_OUTCOMES = ["applied", "unchanged", "refused"] as const;

/** Why a WebSocket upgrade on `/` was refused. */
export const REFUSED_UPGRADE_REASONS = [
  "origin",
  "shutting_down",
  "handshake",
  "capacity",
] as const;

/** Seconds a poll of `/load` takes: a few ms on a LAN, up to `loadTimeout` when it hangs. */
export const POLL_BUCKETS: readonly number[] = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** What the metrics read at render time. */
export interface SessionMetricsSources {
  /** The configured simulation servers (label values, created up front). */
  readonly entries: readonly string[];
  readonly servers: () => readonly ServerView[];
  /** Open subscribers of the availability feed. */
  readonly subscribers: () => number;
  /** Pages waiting in the queue. */
  readonly queued: () => number;
  /** The DNS entries of `simulationServers` and how they stand (discovery.ts). */
  readonly dns: () => readonly SourceStatus[];
}

/** What the session server records as it happens. */
export interface SessionMetrics {
  /** A poll of `entry`'s `/load` ended with `outcome` after `seconds`. */
  polled(entry: string, outcome: PollOutcome, seconds: number): void;
  /** `GET /session` handed out a server's URL. */
  answeredServer(): void;
  /** `GET /session` answered that no server is available. */
  answeredNone(): void;
  /** A reload of the config ended this way. */
  reloaded(outcome: typeof RELOAD_OUTCOMES[number]): void;
  /** A WebSocket upgrade on `/` was refused for this reason. */
  refusedUpgrade(reason: typeof REFUSED_UPGRADE_REASONS[number]): void;
  /**
   * The configured servers changed (a reload): the series of removed servers go, those of added
   * ones are created at 0.
   */
  serversChanged(before: readonly string[], after: readonly string[]): void;
  /** A server joined or left the fleet through DNS. */
  membership(change: "joined" | "left"): void;
  /** What the queue reports: outcomes and the time to a grant. */
  readonly queue: QueueRecorder;
}

/** How a page's time in the queue ended, as the metrics name it. */
const QUEUE_OUTCOMES = ["granted", "timeout", "full", "limit", "left"] as const;

/** Seconds a page waits in the queue before a grant: from at once to the longest sessions. */
export const QUEUE_WAIT_BUCKETS: readonly number[] = [
  1,
  5,
  15,
  30,
  60,
  120,
  300,
  600,
  1200,
  1800,
  3600,
];

function stateOf(view: ServerView): typeof SERVER_STATES[number] {
  const standing = standingOf(view.state);
  return standing === "down" ? "not_responding" : standing;
}

/** Registers the session server's metrics on `registry`. */
export function exportSessionServerMetrics(
  registry: MetricsRegistry,
  sources: SessionMetricsSources,
): SessionMetrics {
  const server = sources.entries;
  const state = gauge(registry, {
    name: "webots_session_simulation_server_state",
    help: "1 for the state each simulation server is in, 0 for the others.",
    labels: { server, state: SERVER_STATES },
    read: (metric) => {
      for (const view of sources.servers()) {
        const now = stateOf(view);
        for (const state of SERVER_STATES) {
          metric.set({ server: view.entry, state }, state === now ? 1 : 0);
        }
      }
    },
  });
  const load = gauge(registry, {
    name: "webots_session_simulation_server_load_percent",
    help: "The load each simulation server last answered on /load; NaN while it does not answer.",
    labels: { server },
    read: (metric) => {
      for (const view of sources.servers()) {
        metric.set({ server: view.entry }, answeredLoad(view.state) ?? NaN);
      }
    },
  });
  const polls = counter(registry, {
    name: "webots_session_polls_total",
    help: "Polls of the simulation servers' /load, by outcome (ok: a load was answered).",
    labels: { server, outcome: POLL_OUTCOMES },
  });
  const pollTime = histogram(registry, {
    name: "webots_session_poll_duration_seconds",
    help: "Time a poll of a simulation server's /load took, whatever its outcome, in seconds.",
    labels: { server },
    buckets: POLL_BUCKETS,
  });
  const answers = counter(registry, {
    name: "webots_session_answers_total",
    help: "GET /session answers, by outcome (server: a URL handed out; none: none available).",
    labels: { outcome: ["server", "none"] },
  });
  gauge(registry, {
    name: "webots_session_subscribers",
    help: "Pages subscribed to the availability feed (WebSocket /).",
    read: (metric) => metric.set(sources.subscribers()),
  });
  const reloads = counter(registry, {
    name: "webots_session_config_reloads_total",
    help: "Reloads of the config file (SIGHUP or POST /admin/reload), by outcome.",
    labels: { outcome: RELOAD_OUTCOMES },
  });
  const refused = counter(registry, {
    name: "webots_session_upgrades_refused_total",
    help: "WebSocket upgrades on / refused, by reason (origin: not in allowedOrigins; capacity: " +
      "maxSubscribers reached).",
    labels: { reason: REFUSED_UPGRADE_REASONS },
  });
  gauge(registry, {
    name: "webots_session_queue_length",
    help: "Pages waiting in the queue of the availability feed.",
    read: (metric) => metric.set(sources.queued()),
  });
  const queueOutcomes = counter(registry, {
    name: "webots_session_queue_outcomes_total",
    help:
      "Queue requests by outcome (granted: handed a slot; timeout: waited queueTimeout; full: queueMax reached; limit: queuePerAddress reached; left: closed while waiting).",
    labels: { outcome: QUEUE_OUTCOMES },
  });
  const queueWaits = histogram(registry, {
    name: "webots_session_queue_wait_seconds",
    help: "Time a page waited in the queue before it was granted a slot, in seconds.",
    buckets: QUEUE_WAIT_BUCKETS,
  });
  // The DNS entries may change with a reload: their series are rebuilt at each render.
  const dnsSources = sources.dns().map((s) => s.source);
  gauge(registry, {
    name: "webots_session_dns_servers",
    help: "Simulation servers each DNS entry of simulationServers gives now (kept while its " +
      "lookups fail).",
    labels: { source: dnsSources },
    read: (metric) => {
      metric.reset();
      for (const s of sources.dns()) metric.set({ source: s.source }, s.servers);
    },
  });
  gauge(registry, {
    name: "webots_session_dns_lookup_failing",
    help: "1 while the lookups of a DNS entry of simulationServers fail (timeout, unreachable " +
      "name server), else 0.",
    labels: { source: dnsSources },
    read: (metric) => {
      metric.reset();
      for (const s of sources.dns()) {
        metric.set({ source: s.source }, s.error === undefined ? 0 : 1);
      }
    },
  });
  const memberships = counter(registry, {
    name: "webots_session_dns_membership_changes_total",
    help: "Simulation servers that joined or left the fleet through DNS.",
    labels: { change: ["joined", "left"] },
  });
  // `/session` is the hot path: the children are looked up once, not per request.
  const servedServer = answers.labels({ outcome: "server" });
  const servedNone = answers.labels({ outcome: "none" });
  return {
    polled(entry, outcome, seconds) {
      polls.inc({ server: entry, outcome: outcome.kind === "up" ? "ok" : outcome.reason });
      pollTime.observe({ server: entry }, seconds);
    },
    answeredServer: () => servedServer.inc(),
    answeredNone: () => servedNone.inc(),
    reloaded: (outcome) => reloads.inc({ outcome }),
    refusedUpgrade: (reason) => refused.inc({ reason }),
    serversChanged(before, after) {
      for (const entry of before) {
        if (after.includes(entry)) continue;
        for (const s of SERVER_STATES) state.remove({ server: entry, state: s });
        load.remove({ server: entry });
        for (const outcome of POLL_OUTCOMES) polls.remove({ server: entry, outcome });
        pollTime.remove({ server: entry });
      }
      for (const entry of after) {
        if (before.includes(entry)) continue;
        for (const s of SERVER_STATES) state.set({ server: entry, state: s }, 0);
        load.set({ server: entry }, 0);
        for (const outcome of POLL_OUTCOMES) polls.inc({ server: entry, outcome }, 0);
        (pollTime as unknown as { zero(labels: Record<string, string>): void }).zero({
          server: entry,
        });
      }
    },
    membership: (change) => memberships.inc({ change }),
    queue: {
      outcome: (outcome) => queueOutcomes.inc({ outcome }),
      waited: (seconds) => queueWaits.observe(seconds),
    },
  };
}

/** Registers the slot-reservation metrics (all at 0 until leases are on); returns their sink. */
export function exportReservationMetrics(registry: MetricsRegistry): ReservationEvents {
  const attempts = counter(registry, {
    name: "webots_session_lease_requests_total",
    help: "Lease requests to simulation servers, by outcome (refused: full or draining; " +
      "unauthorized: the secrets differ).",
    labels: { outcome: RESERVATION_OUTCOMES },
  });
  const reservations = histogram(registry, {
    name: "webots_session_reservation_duration_seconds",
    help: "Time GET /session spent reserving a slot (every server asked until one granted a " +
      "lease, or none did), by result, in seconds.",
    labels: { result: ["granted", "none"] },
    buckets: POLL_BUCKETS,
  });
  return {
    attempt: (outcome) => attempts.inc({ outcome }),
    reservation: (seconds, granted) =>
      reservations.observe({ result: granted ? "granted" : "none" }, seconds),
  };
}
