/**
 * The simulation server's Prometheus metrics (`GET /metrics`): sessions by state, starts and their
 * outcomes, the start-to-ready time, Webots processes, WebSocket clients, slots, and `/load` with
 * the figures it is made of. (`metrics.ts` is the machine-figures sampler these partly read.)
 *
 * Counts of live things are read when `/metrics` is rendered, from the server's own sets; events
 * (a start, a failure, a ready) are recorded by the session through `StartEvents` as they happen.
 *
 * @module
 */
import { counter, gauge, histogram, type MetricsRegistry } from "../shared/metrics.ts";
import type { SessionState } from "./client_session.ts";
import { LEASE_REFUSALS, type LeaseEvents } from "./leases.ts";
import { round1, type SessionCounts, type Snapshot } from "./snapshot.ts";

/** Why a start failed before Webots was ready. Every one exists at 0 from the start. */
export const START_FAILURE_REASONS = [
  /** Every slot (streaming port) is taken. */
  "no_slot",
  /** No Webots installation on this server. */
  "no_webots",
  /** The project could not be prepared: bad name or URL, download failed, world missing. */
  "project",
  /** The world's Webots release is missing, malformed or not installed. */
  "release",
  /** The instances folder could not store the run (read-only or full). */
  "storage",
  /** Webots did not get ready within `startTimeout`. */
  "start_timeout",
  /** Webots exited before it was ready. */
  "webots_exited",
  /** A fault of the server (not the client's input): the log has the stack. */
  "internal",
] as const;

/** One of `START_FAILURE_REASONS`. */
export type StartFailureReason = typeof START_FAILURE_REASONS[number];

/** What a session tells the metrics about its start; each start ends in exactly one outcome. */
export interface StartEvents {
  /** An `init` or `start` message was accepted: a start begins. */
  requested(): void;
  /** Webots is ready (`webots:` sent), `seconds` after the start began. */
  ready(seconds: number): void;
  /** The start failed (`error:` sent). */
  failed(reason: StartFailureReason): void;
  /** The browser left (or the server shut down) before Webots was ready. */
  abandoned(): void;
}

/** Start events nobody records (sessions built without a registry). */
export const IGNORED_START_EVENTS: StartEvents = {
  requested() {},
  ready() {},
  failed() {},
  abandoned() {},
};

/** `webots_simulation_sessions`' states: the session's, with `closed` read as still cleaning up. */
const SESSION_STATES = ["waiting", "preparing", "starting", "running", "closing"] as const;

/** Seconds from a start request to `webots:`: a local world takes ~1 s, a download much longer. */
export const START_BUCKETS: readonly number[] = [0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120];

/** What the session metrics read at render time. */
export interface SessionSources {
  /** Sessions with a live `/client` socket or still cleaning up. */
  readonly sessions: () => Iterable<{ readonly state: SessionState }>;
  /** Open `/client` WebSockets. */
  readonly clients: () => number;
  /** Webots processes, running and idle. */
  readonly counts: () => SessionCounts;
}

function stateLabel(state: SessionState): typeof SESSION_STATES[number] {
  return state === "closed" ? "closing" : state;
}

/** Registers the session metrics on `registry`; returns what sessions record their starts with. */
export function exportSessionMetrics(
  registry: MetricsRegistry,
  sources: SessionSources,
): StartEvents {
  gauge(registry, {
    name: "webots_simulation_sessions",
    help: "Browser sessions on /client, by state (closing: Webots being stopped, folder removed).",
    labels: { state: SESSION_STATES },
    read: (metric) => {
      const counts = new Map<string, number>(SESSION_STATES.map((s) => [s, 0]));
      for (const { state } of sources.sessions()) {
        const label = stateLabel(state);
        counts.set(label, (counts.get(label) ?? 0) + 1);
      }
      for (const [state, count] of counts) metric.set({ state }, count);
    },
  });
  gauge(registry, {
    name: "webots_simulation_websocket_clients",
    help: "Open /client WebSockets.",
    read: (metric) => metric.set(sources.clients()),
  });
  gauge(registry, {
    name: "webots_simulation_webots_processes",
    help: "Webots processes, by state (idle: paused or not yet told to run).",
    labels: { state: ["running", "idle"] },
    read: (metric) => {
      const { running, idle } = sources.counts();
      metric.set({ state: "running" }, running);
      metric.set({ state: "idle" }, idle);
    },
  });
  const starts = counter(registry, {
    name: "webots_simulation_starts_total",
    help: "Simulation starts begun (an init or start message accepted).",
  });
  const failures = counter(registry, {
    name: "webots_simulation_start_failures_total",
    help: "Simulation starts that failed before Webots was ready, by reason.",
    labels: { reason: START_FAILURE_REASONS },
  });
  const abandoned = counter(registry, {
    name: "webots_simulation_starts_abandoned_total",
    help: "Simulation starts given up because the browser left or the server shut down first.",
  });
  const startTime = histogram(registry, {
    name: "webots_simulation_start_duration_seconds",
    help: "Time from a start request to Webots being ready (webots: sent), in seconds.",
    buckets: START_BUCKETS,
  });
  return {
    requested: () => starts.inc(),
    ready: (seconds) => startTime.observe(seconds),
    failed: (reason) => failures.inc({ reason }),
    abandoned: () => abandoned.inc(),
  };
}

/** What the load metrics read at render time. */
export interface LoadSources {
  /** `/load`'s answer. */
  readonly load: () => number;
  /** The figures `/load` is computed from (averaged over `loadWindow`); undefined before any. */
  readonly figures: () => Snapshot | undefined;
  /** Webots processes, whose slot share is part of the load. */
  readonly counts: () => SessionCounts;
  /** Slots (streaming ports) held by open runs, Webots started or not. */
  readonly slotsInUse: () => number;
  readonly maxConnections: number;
}

/** The parts of `/load`, by the `part` label: `/load` is their maximum. */
const LOAD_PARTS = ["slots", "cpu", "memory", "swap", "gpu_compute", "gpu_memory"] as const;

/** Registers `/load`, its parts and the slots on `registry`. */
export function exportLoadMetrics(registry: MetricsRegistry, sources: LoadSources): void {
  gauge(registry, {
    name: "webots_simulation_load_percent",
    help: "The load /load answers (0-100): the largest of its parts.",
    read: (metric) => metric.set(sources.load()),
  });
  gauge(registry, {
    name: "webots_simulation_load_part_percent",
    help: "The parts /load is the maximum of: slot share of Webots processes, CPU and GPU " +
      "averaged over loadWindow, memory and swap now.",
    labels: { part: LOAD_PARTS },
    read: (metric) => {
      const f = sources.figures();
      const { running, idle, reserved = 0 } = sources.counts();
      const max = sources.maxConnections;
      const used = running + idle + reserved;
      const parts: Record<typeof LOAD_PARTS[number], number> = {
        slots: max > 0 ? round1((used / max) * 100) : (used > 0 ? 100 : 0),
        cpu: round1(f?.cpu ?? 0),
        memory: round1(f?.memory ?? 0),
        swap: round1(f?.swap ?? 0),
        gpu_compute: round1(f?.gpuCompute ?? 0),
        gpu_memory: round1(f?.gpuMemory ?? 0),
      };
      for (const part of LOAD_PARTS) metric.set({ part }, parts[part]);
    },
  });
  gauge(registry, {
    name: "webots_simulation_slots",
    help: "Simulation slots (maxConnections), used by open runs or free.",
    labels: { state: ["used", "free"] },
    read: (metric) => {
      const used = Math.min(sources.maxConnections, sources.slotsInUse());
      metric.set({ state: "used" }, used);
      metric.set({ state: "free" }, sources.maxConnections - used);
    },
  });
}

/** Why the server ended a session itself (besides failures and the `timeout` limit). */
export const SERVER_END_REASONS = [
  /** The drain deadline (`drainTimeout`) passed with the session still running. */
  "drain_deadline",
  /** The simulation stayed paused for `idleTimeout` seconds. */
  "idle_limit",
  /** An operator ended it (`DELETE /admin/sessions/<id>`). */
  "admin",
] as const;

/** One of `SERVER_END_REASONS`. */
export type ServerEndReason = typeof SERVER_END_REASONS[number];

/** What the drain metrics read at render time. */
export interface DrainSources {
  /** True while the server drains. */
  readonly draining: () => boolean;
}

/** Registers the drain gauge and the server-ended counter; returns what records an end. */
export function exportDrainMetrics(
  registry: MetricsRegistry,
  sources: DrainSources,
): (reason: ServerEndReason) => void {
  gauge(registry, {
    name: "webots_simulation_draining",
    help: "1 while the server drains (no new sessions, /load 100), else 0.",
    read: (metric) => metric.set(sources.draining() ? 1 : 0),
  });
  const ended = counter(registry, {
    name: "webots_simulation_sessions_ended_total",
    help: "Sessions the server ended itself, by reason: drain deadline, idle limit, admin.",
    labels: { reason: SERVER_END_REASONS },
  });
  return (reason) => ended.inc({ reason });
}

/** Registers the slot-lease metrics (all at 0 until leases are on); returns their event sink. */
export function exportLeaseMetrics(
  registry: MetricsRegistry,
  outstanding: () => number,
): LeaseEvents {
  const granted = counter(registry, {
    name: "webots_simulation_leases_granted_total",
    help: "Slot leases granted to a session server.",
  });
  const used = counter(registry, {
    name: "webots_simulation_leases_used_total",
    help: "Slot leases taken by a browser's /lease/<token>/client socket.",
  });
  const expired = counter(registry, {
    name: "webots_simulation_leases_expired_total",
    help: "Slot leases not taken within leaseTimeout (their slot freed).",
  });
  const refused = counter(registry, {
    name: "webots_simulation_leases_refused_total",
    help: "Lease requests refused, by reason (unauthorized: without the secret).",
    labels: { reason: LEASE_REFUSALS },
  });
  gauge(registry, {
    name: "webots_simulation_leases_outstanding",
    help: "Slot leases granted and not yet taken or expired (each holds a slot).",
    read: (metric) => metric.set(outstanding()),
  });
  return {
    granted: () => granted.inc(),
    used: () => used.inc(),
    expired: () => expired.inc(),
    refused: (reason) => refused.inc({ reason }),
  };
}
