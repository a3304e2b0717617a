/**
 * Which simulation servers the fleet polls: the `host:port` entries of `simulationServers` as
 * written, plus what the DNS entries (`dns:<name>:<port>`, `dns+srv:<name>`, session/dns.ts)
 * resolve to, kept in config order.
 *
 * Each DNS entry is looked up at once and then every `intervalMs` (the poll period, but never
 * more often than the minimum interval), one lookup in flight per entry, each bounded by
 * `timeoutMs`. A lookup that answers replaces that entry's servers: those that appear join, those
 * that are gone leave, each logged once and reported (`onChange`). A lookup that fails (timeout,
 * unreachable name server) keeps the servers known, so that a DNS hiccup never empties the fleet;
 * the failure is logged when it starts and when it ends. An entry not yet resolved contributes no
 * server.
 *
 * With no DNS entry nothing is looked up and the list is the config's, as before.
 *
 * @module
 */
import { type Clock, every } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import { hostAndPort, type UrlMode } from "../shared/urls.ts";
import { parseServerSource, type Resolver, type ServerSource, type ServiceRecord } from "./dns.ts";

/** A server found (or lost) through a DNS entry. */
export interface Membership {
  /** The fleet entry: `host:port` (or `host/port` with port rewriting). */
  readonly entry: string;
  /** The `simulationServers` entry it came from, e.g. `dns:sim.example:2000`. */
  readonly source: string;
}

/** How one DNS entry stands, for `/monitor` and the admin API. */
export interface SourceStatus {
  readonly source: string;
  /** Servers it gives now (the last answer's, kept while lookups fail). */
  readonly servers: number;
  /** When it last answered (ms since the epoch). */
  readonly resolvedAt: number | undefined;
  /** Why the lookups fail, while they do. */
  readonly error: string | undefined;
}

/** What a reload may change. */
export interface DiscoverySettings {
  readonly sources: readonly string[];
  readonly resolver: Resolver;
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

/** Collaborators and settings of discovery. */
export interface DiscoveryDeps extends DiscoverySettings {
  readonly mode: UrlMode;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The entries changed after a lookup; `joined`/`left` name the servers that did. */
  readonly onChange: (
    entries: readonly string[],
    joined: readonly Membership[],
    left: readonly Membership[],
  ) => void;
}

/** Discovery of the fleet's servers. */
export interface Discovery {
  /** The servers to poll now, in config order, each once. */
  entries(): readonly string[];
  /** Each DNS entry's standing, in config order. */
  status(): readonly SourceStatus[];
  /**
   * Applies a reload: DNS entries still listed keep their servers, new ones are looked up at
   * once, removed ones are forgotten (no leave is reported: the config changed, not DNS).
   */
  reconfigure(settings: DiscoverySettings): void;
  /** Looks every DNS entry up at once, then every `intervalMs`. */
  start(): void;
  /** Stops the lookups and waits for those in flight to end. */
  stop(): Promise<void>;
}

/** The fleet entry of an address at `port`: IPv6 addresses in brackets. */
export function addressEntry(address: string, port: number, mode: UrlMode): string {
  return hostAndPort(address.includes(":") ? `[${address}]` : address, port, mode);
}

/**
 * The fleet entries of SRV records in order of preference: lowest priority first, then highest
 * weight, then by name; a target of "." (service not offered) and port 0 are left out.
 */
export function serviceEntries(records: readonly ServiceRecord[], mode: UrlMode): string[] {
  return records
    .map((r) => ({ ...r, target: r.target.replace(/\.$/, "").toLowerCase() }))
    .filter((r) => r.target !== "" && r.port !== 0)
    .sort((a, b) =>
      a.priority - b.priority || b.weight - a.weight || a.target.localeCompare(b.target) ||
      a.port - b.port
    )
    .map((r) => hostAndPort(r.target, r.port, mode));
}

/** Addresses in a stable order (IPv4 numerically, then IPv6), so that answers compare equal. */
function sortedAddresses(addresses: readonly string[]): string[] {
  const key = (a: string) =>
    a.includes(":") ? `1${a}` : `0${a.split(".").map((n) => n.padStart(3, "0")).join(".")}`;
  return [...new Set(addresses)].sort((a, b) => key(a).localeCompare(key(b)));
}

interface SourceState {
  readonly source: ServerSource;
  /** The servers of its last answer. */
  servers: readonly string[];
  resolvedAt: number | undefined;
  error: string | undefined;
  lookup: { abort: AbortController; done: Promise<void> } | undefined;
}

function sourcesOf(texts: readonly string[]): ServerSource[] {
  // The config's check refuses wrong DNS forms: a string here would be a bug.
  return texts.map((text) => {
    const source = parseServerSource(text);
    if (typeof source === "string") throw new Error(source);
    return source;
  });
}

/** Creates discovery; nothing is looked up before `start`. */
export function createDiscovery(deps: DiscoveryDeps): Discovery {
  const { clock, logger, mode } = deps;
  let settings: DiscoverySettings = deps;
  let states = sourcesOf(settings.sources).map((source): SourceState => ({
    source,
    servers: [],
    resolvedAt: undefined,
    error: undefined,
    lookup: undefined,
  }));
  let stopRounds: (() => void) | undefined;
  let started = false;
  let stopped = false;
  const leaving = new Set<Promise<void>>();

  const expand = (): string[] => {
    const entries = new Set<string>();
    for (const { source, servers } of states) {
      if (source.kind === "host") entries.add(source.text);
      else for (const entry of servers) entries.add(entry);
    }
    return [...entries];
  };
  /** Which DNS entry each server came from (the first that gives it). */
  const origins = (): Map<string, string> => {
    const map = new Map<string, string>();
    for (const { source, servers } of states) {
      if (source.kind === "host") continue;
      for (const entry of servers) if (!map.has(entry)) map.set(entry, source.text);
    }
    return map;
  };
  let published = expand();

  /** Reports what changed since the last report, if anything did. */
  const publish = (before: Map<string, string>) => {
    const entries = expand();
    const now = new Set(entries);
    const was = new Set(published);
    const after = origins();
    const joined = entries.filter((e) => !was.has(e)).map((entry) => ({
      entry,
      source: after.get(entry) ?? entry,
    }));
    const left = published.filter((e) => !now.has(e)).map((entry) => ({
      entry,
      source: before.get(entry) ?? entry,
    }));
    const reordered = joined.length === 0 && left.length === 0 &&
      entries.some((e, i) => e !== published[i]);
    published = entries;
    if (joined.length === 0 && left.length === 0 && !reordered) return;
    for (const { entry, source } of joined) {
      logger.info({ entry, source }, `simulation server ${entry} joined (${source})`);
    }
    for (const { entry, source } of left) {
      logger.info({ entry, source }, `simulation server ${entry} left (${source})`);
    }
    deps.onChange(entries, joined, left);
  };

  const answer = async (source: ServerSource, signal: AbortSignal): Promise<string[]> => {
    if (source.kind === "dns") {
      const addresses = await settings.resolver.addresses(source.name, signal);
      return sortedAddresses(addresses).map((a) => addressEntry(a, source.port, mode));
    }
    if (source.kind === "srv") {
      return serviceEntries(await settings.resolver.services(source.name, signal), mode);
    }
    return [source.text];
  };

  const look = (state: SourceState) => {
    if (stopped || state.lookup !== undefined || state.source.kind === "host") return;
    const abort = new AbortController();
    const limitMs = settings.timeoutMs;
    const timer = clock.setTimeout(() => abort.abort(), limitMs);
    const done = answer(state.source, abort.signal).then(
      (servers) => {
        if (!states.includes(state) || stopped) return;
        if (state.error !== undefined) {
          logger.info(
            { source: state.source.text, servers: servers.length },
            `DNS lookup of ${state.source.text} answers again`,
          );
        }
        const before = origins();
        state.error = undefined;
        state.resolvedAt = clock.now();
        state.servers = servers;
        publish(before);
      },
      (error) => {
        if (!states.includes(state) || stopped) return;
        const reason = abort.signal.aborted
          ? `no answer in ${limitMs} ms`
          : error instanceof Error
          ? error.message
          : String(error);
        if (state.error === undefined) {
          logger.warn(
            { source: state.source.text, reason, kept: state.servers.length },
            `DNS lookup of ${state.source.text} failed; keeping its ${state.servers.length} known servers`,
          );
        }
        state.error = reason;
      },
    ).catch((error) => {
      // onChange threw: logged once here so that discovery goes on.
      logger.error({ source: state.source.text, err: error }, "applying a DNS answer failed");
    }).finally(() => {
      clock.clearTimeout(timer);
      state.lookup = undefined;
    });
    state.lookup = { abort, done };
  };

  const round = () => {
    for (const state of states) look(state);
  };
  const hasDns = () => states.some((s) => s.source.kind !== "host");
  const schedule = () => {
    stopRounds?.();
    stopRounds = hasDns() ? every(clock, settings.intervalMs, round) : undefined;
  };

  return {
    entries: () => published,
    status: () =>
      states.filter((s) => s.source.kind !== "host").map((s) => ({
        source: s.source.text,
        servers: s.servers.length,
        resolvedAt: s.resolvedAt,
        error: s.error,
      })),
    reconfigure(next) {
      if (stopped) return;
      const kept = new Map(states.map((s) => [s.source.text, s]));
      const intervalChanged = next.intervalMs !== settings.intervalMs;
      const resolverChanged = next.resolver !== settings.resolver;
      settings = next;
      states = sourcesOf(next.sources).map((source) => {
        const state = kept.get(source.text);
        kept.delete(source.text);
        return state ?? {
          source,
          servers: [],
          resolvedAt: undefined,
          error: undefined,
          lookup: undefined,
        };
      });
      for (const gone of kept.values()) {
        if (gone.lookup === undefined) continue;
        gone.lookup.abort.abort();
        const done = gone.lookup.done;
        leaving.add(done);
        void done.finally(() => leaving.delete(done));
      }
      // The reload's own list, without reporting joins or leaves.
      published = expand();
      if (!started) return;
      const scheduled = stopRounds !== undefined;
      if (intervalChanged || resolverChanged || scheduled !== hasDns()) schedule();
      // New entries (and all of them under a new name server) are looked up at once.
      for (const state of states) {
        if (resolverChanged || state.resolvedAt === undefined) look(state);
      }
    },
    start() {
      if (started || stopped) return;
      started = true;
      round();
      schedule();
    },
    async stop() {
      stopped = true;
      stopRounds?.();
      const inFlight = states.flatMap((s) => s.lookup ? [s.lookup] : []);
      for (const lookup of inFlight) lookup.abort.abort();
      await Promise.all([...inFlight.map((l) => l.done), ...leaving]);
    },
  };
}
