/**
 * Live reconfiguration of the session server (SIGHUP, `POST /admin/reload`): the config file is
 * read and validated again by the same code as at start, compared with the running config, and
 * either applied or refused as a whole.
 *
 * - Keys in `LIVE_KEYS` take effect at once (`apply` gets the new config).
 * - Any other key that changed "needs a restart": it keeps its running value, and the answer and
 *   the log name it.
 * - A file that does not validate, or a change that needs an access the process was not started
 *   with (the launcher derives `--allow-read`/`--allow-write` from the config at start: a new
 *   certificate or log folder outside them), is refused with the reason; the running config stays.
 *
 * Reloads run one at a time: a SIGHUP during an admin reload waits for it.
 *
 * @module
 */
import type { Logger } from "../shared/log.ts";
import type { SessionConfig } from "./config.ts";

/**
 * Keys a reload applies at once. Other keys need a restart. A feature whose state must survive a
 * reload (subscribers, queued pages, leases) keeps it in its own module and reads the settings it
 * needs from the config it is handed (`apply`), so adding its keys here is all it takes.
 */
export const LIVE_KEYS: readonly (keyof SessionConfig)[] = [
  "simulationServers",
  "fullAt",
  "availableAt",
  "loadRefresh",
  "loadTimeout",
  "server",
  "administrator",
  "mailServer",
  "mailServerPort",
  "mailSender",
  "mailSenderUser",
  "mailSenderPassword",
  "heartbeatTimeout",
  "adminToken",
  "allowedOrigins",
  // The queue reads its settings at each join: a reload applies to the next page that asks.
  "queueMax",
  "queueTimeout",
  "queuePerAddress",
  // Discovery re-reads them at once (session/discovery.ts `reconfigure`).
  "nameServer",
  "dnsMinInterval",
  // Read at each upgrade of `/`.
  "maxSubscribers",
];

/** A path the process would need, with the access it needs. */
export interface PathAccess {
  readonly key: string;
  readonly path: string;
  readonly access: "read" | "write";
}

/** Tells whether the process may access a path (at start: `Deno.permissions.querySync`). */
export type AccessCheck = (need: PathAccess) => boolean;

/** How a reload ended. */
export type ReloadResult =
  | {
    readonly outcome: "applied" | "unchanged";
    /** Keys now in effect with their new value. */
    readonly changed: readonly string[];
    /** Keys that changed in the file but keep their running value until a restart. */
    readonly needsRestart: readonly string[];
  }
  | { readonly outcome: "refused"; readonly reason: string };

/** The plan for a new config: what to apply, or why not. */
export type ReloadPlan =
  | {
    readonly ok: true;
    /** The config to run with: the file's live keys, the running values of the others. */
    readonly config: SessionConfig;
    readonly changed: readonly string[];
    readonly needsRestart: readonly string[];
  }
  | { readonly ok: false; readonly reason: string };

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The paths a config makes the process read or write (beyond the code and the config file). */
export function pathsNeeded(config: SessionConfig): PathAccess[] {
  const needs: PathAccess[] = [{ key: "logDir", path: config.logDir, access: "write" }];
  if (config.sslCertificate !== undefined) {
    needs.push({ key: "sslCertificate", path: config.sslCertificate, access: "read" });
  }
  if (config.sslKey !== undefined) {
    needs.push({ key: "sslKey", path: config.sslKey, access: "read" });
  }
  return needs;
}

/** Compares the running config with a validated new one: what to apply, or why it is refused. */
export function planReload(
  running: SessionConfig,
  next: SessionConfig,
  mayAccess: AccessCheck,
): ReloadPlan {
  const before = running as Record<string, unknown>;
  const after = next as Record<string, unknown>;
  for (const need of pathsNeeded(next)) {
    if (same(before[need.key], need.path) || mayAccess(need)) continue;
    return {
      ok: false,
      reason: `key "${need.key}" names ${need.path}, which this process may not ${need.access} ` +
        `(its permissions were derived from the config at start): restart the server to use it`,
    };
  }
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  const live = new Set<string>(LIVE_KEYS);
  const changed: string[] = [];
  const needsRestart: string[] = [];
  const config: Record<string, unknown> = { ...before };
  for (const key of keys) {
    if (same(before[key], after[key])) continue;
    if (live.has(key)) {
      changed.push(key);
      if (after[key] === undefined) delete config[key];
      else config[key] = after[key];
    } else {
      needsRestart.push(key);
    }
  }
  return { ok: true, config: config as SessionConfig, changed, needsRestart };
}

/** What a reloader needs. */
export interface ReloaderDeps {
  /** Reads and validates the config file (the code used at start); throws with the reason. */
  readonly read: () => Promise<SessionConfig>;
  readonly mayAccess: AccessCheck;
  /** The running config. */
  readonly current: () => SessionConfig;
  /** Puts a new config in effect (only the live keys differ from the running one). */
  readonly apply: (config: SessionConfig, changed: readonly string[]) => void;
  readonly logger: Logger;
  /** Hears each outcome (metrics). */
  readonly onOutcome?: (outcome: ReloadResult["outcome"]) => void;
}

/** Reloads the config on demand. */
export interface Reloader {
  /** Reads the file again and applies it, or refuses it; `trigger` is logged (`SIGHUP`, `admin`). */
  reload(trigger: string): Promise<ReloadResult>;
}

/** Creates a reloader; reloads never overlap. */
export function createReloader(deps: ReloaderDeps): Reloader {
  let last: Promise<unknown> = Promise.resolve();

  const run = async (trigger: string): Promise<ReloadResult> => {
    let result: ReloadResult;
    try {
      const plan = planReload(deps.current(), await deps.read(), deps.mayAccess);
      if (!plan.ok) {
        result = { outcome: "refused", reason: plan.reason };
      } else {
        if (plan.changed.length > 0) deps.apply(plan.config, plan.changed);
        result = {
          outcome: plan.changed.length > 0 ? "applied" : "unchanged",
          changed: plan.changed,
          needsRestart: plan.needsRestart,
        };
      }
    } catch (error) {
      result = {
        outcome: "refused",
        reason: error instanceof Error ? error.message : String(error),
      };
    }
    if (result.outcome === "refused") {
      deps.logger.error(
        { trigger, reason: result.reason },
        `config reload refused, the running config stays: ${result.reason}`,
      );
    } else {
      deps.logger.info(
        { trigger, changed: result.changed, needsRestart: result.needsRestart },
        result.outcome === "applied" ? "config reloaded" : "config reloaded: nothing changed",
      );
      if (result.needsRestart.length > 0) {
        deps.logger.warn(
          { trigger, needsRestart: result.needsRestart },
          `config reload: ${
            result.needsRestart.join(", ")
          } keep their running value until a restart`,
        );
      }
    }
    deps.onOutcome?.(result.outcome);
    return result;
  };

  return {
    reload(trigger) {
      const next = last.then(() => run(trigger));
      last = next;
      return next;
    },
  };
}
