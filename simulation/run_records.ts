/**
 * Crash-recovery records of Webots runs, and the start-up reaping that uses them.
 *
 * Each run has one record, `<instancesDir>/.webots-runs/<run id>.json`, written before its
 * instance folder is created and removed after the folder: `{owner: {port, config}, instanceDir,
 * marker, pid, startTime, bootId}` (the last three once Webots is spawned; `marker` is the run's
 * `WEBOTS_SERVER_RUN` value, see `run_processes.ts`). The record lives outside the instance
 * folders because a jailed Webots may write its own folder and could forge a pid there.
 *
 * Reaping at start-up touches only records whose owner is this server (same port and same
 * absolute config path). A record with a marker has every process of its run ended by marker
 * (TERM, the grace period, KILL in rounds until none is left), also when the Webots leader is
 * already dead, and also when the server died between the spawn and the recording of the pid. A
 * record without a marker (older layout) has its process group ended only when the pid is
 * provably the same process (same boot id, same start time in `/proc/<pid>/stat`). Then the
 * instance folder (only inside `instancesDir`) and the record are removed. Other owners' records,
 * folders without a record of ours, and the files of the old layout (`.webots-pids/`, marker
 * files) are never touched.
 *
 * Every process call (reading `/proc`, signalling) goes through the injected command runner, and
 * every wait through the injected clock.
 *
 * Limits, by design: for a record without a marker, a Webots whose leader had already exited
 * before the reaping (its controllers living on) cannot be proven ours and is not signalled.
 *
 * @module
 */
import { join, relative, resolve } from "node:path";
import { type Clock, sleep } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import type { RunCommand } from "./command_runner.ts";
import { isMarker, type RunProcesses } from "./run_processes.ts";

/** The server a run belongs to. */
export interface ServerIdentity {
  /** The server's own port. */
  readonly port: number;
  /** Absolute path of its config file. */
  readonly config: string;
}

/** What identifies a process across pid reuse. */
export interface ProcessIdentity {
  /** Field 22 of `/proc/<pid>/stat`: clock ticks after boot. */
  readonly startTime: string;
  /** `/proc/sys/kernel/random/boot_id`. */
  readonly bootId: string;
}

/** One run's record. */
export interface RunRecord {
  readonly owner: ServerIdentity;
  readonly instanceDir: string;
  /** The run's `WEBOTS_SERVER_RUN` value (absent in records of the older layout). */
  readonly marker?: string;
  readonly pid?: number;
  readonly startTime?: string;
  readonly bootId?: string;
}

/** What the records need. */
export interface RunRecordsDeps {
  readonly instancesDir: string;
  readonly owner: ServerIdentity;
  /** Runs `cat` and `kill`. */
  readonly runCommand: RunCommand;
  /** `/usr/bin/cat`: Deno may not read `/proc` itself without `--allow-all`. */
  readonly catBinary: string;
  /** `/usr/bin/kill`: Deno may not signal a process group without unscoped `--allow-run`. */
  readonly killBinary: string;
  /** Ends the processes of a run by its marker. */
  readonly processes: RunProcesses;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** What `reap` did. */
export interface ReapReport {
  /** Recorded pids whose process group was ended. */
  readonly killed: number[];
  /** Recorded pids that were gone or now belong to another process: not signalled. */
  readonly gone: number[];
  /** Pids found by their run's marker and ended (the recorded leader included, if alive). */
  readonly ended: number[];
  /** Instance folders removed. */
  readonly removedFolders: string[];
}

/** The records of one server. */
export interface RunRecords {
  /** Writes (or rewrites) the record of run `id`; atomic. */
  write(id: string, record: RunRecord): Promise<void>;
  /** Removes the record of run `id`; never throws. */
  remove(id: string): Promise<void>;
  /** The identity of a live process, or undefined when it is gone (or a zombie). */
  identity(pid: number): Promise<ProcessIdentity | undefined>;
  /** Ends this server's leftover runs (see the module doc); `graceMs` between TERM and KILL. */
  reap(graceMs: number): Promise<ReapReport>;
}

/** The folder of the records. */
export const RECORDS_FOLDER = ".webots-runs";

const BOOT_ID = "/proc/sys/kernel/random/boot_id";
/** How often a leftover's leader is checked while it is given time to end. */
const POLL_MS = 50;

/** Creates the records of the server `deps.owner`. */
export function createRunRecords(deps: RunRecordsDeps): RunRecords {
  const folder = join(deps.instancesDir, RECORDS_FOLDER);
  const file = (id: string) => join(folder, `${id}.json`);
  const instancesRoot = resolve(deps.instancesDir);
  const log = deps.logger.child({ component: "runs" });

  const cat = async (path: string): Promise<string | undefined> => {
    const out = await deps.runCommand(deps.catBinary, [path]);
    return out.success ? out.stdout : undefined;
  };
  // The boot id never changes while this server runs: read it once.
  let bootIdRead: Promise<string | undefined> | undefined;
  const bootId = () => {
    bootIdRead ??= cat(BOOT_ID).then((id) => {
      if (id === undefined) bootIdRead = undefined; // try again next time
      return id?.trim();
    });
    return bootIdRead;
  };
  const identity = async (pid: number): Promise<ProcessIdentity | undefined> => {
    const [stat, boot] = await Promise.all([cat(`/proc/${pid}/stat`), bootId()]);
    const fields = stat === undefined ? undefined : statFields(stat);
    // fields[0] is field 3 (state: Z for an exited, unreaped process); fields[19] is field 22.
    const startTime = fields?.[0] === "Z" ? undefined : fields?.[19];
    if (startTime === undefined || boot === undefined) return undefined;
    return { startTime, bootId: boot };
  };
  const signal = (pid: number, name: "TERM" | "KILL") =>
    deps.runCommand(deps.killBinary, ["-s", name, "--", `-${pid}`]);
  const isOurs = (record: RunRecord) =>
    record.owner.port === deps.owner.port && record.owner.config === deps.owner.config;

  /** Polls (the old leader is not our child: there is no exit event) until it is gone. */
  const endsWithin = async (pid: number, startTime: string, graceMs: number) => {
    const deadline = deps.clock.now() + graceMs;
    while (true) {
      const now = await identity(pid);
      if (now === undefined || now.startTime !== startTime) return true;
      if (deps.clock.now() >= deadline) return false;
      await sleep(deps.clock, Math.min(POLL_MS, deadline - deps.clock.now()));
    }
  };

  const reapOne = async (record: RunRecord, graceMs: number, report: ReapReport) => {
    const { pid, startTime, marker } = record;
    if (marker !== undefined) {
      // The leader is reported as before; its run is ended by marker whether it lives or not.
      if (pid !== undefined && startTime !== undefined) {
        const now = await identity(pid);
        const alive = now !== undefined && now.startTime === startTime &&
          now.bootId === record.bootId;
        (alive ? report.killed : report.gone).push(pid);
      }
      const ended = await deps.processes.end(marker, graceMs);
      const pids = [...new Set([...ended.termed, ...ended.killed])];
      report.ended.push(...pids);
      if (pids.length > 0) {
        log.warn(
          { pid, ended: pids, graceful: ended.graceful },
          "ended a run left by a previous run",
        );
      }
    } else if (pid !== undefined && startTime !== undefined) {
      const now = await identity(pid);
      if (now !== undefined && now.startTime === startTime && now.bootId === record.bootId) {
        await signal(pid, "TERM");
        const ended = await endsWithin(pid, startTime, graceMs);
        // The leader may be gone while members that ignore TERM live on: KILL the group anyway.
        await signal(pid, "KILL");
        report.killed.push(pid);
        log.warn({ pid, ended }, "ended a Webots left by a previous run");
      } else {
        report.gone.push(pid);
      }
    }
    const dir = resolve(record.instanceDir);
    if (isInside(dir, instancesRoot)) {
      try {
        await Deno.remove(dir, { recursive: true });
        report.removedFolders.push(dir);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
  };
  return {
    async write(id, record) {
      await Deno.mkdir(folder, { recursive: true });
      const temporary = `${file(id)}.tmp`;
      try {
        await Deno.writeTextFile(temporary, JSON.stringify(record));
        await Deno.rename(temporary, file(id));
      } catch (error) {
        // A full disk can create the file and refuse its bytes: leave nothing behind.
        await Deno.remove(temporary).catch(() => {});
        throw error;
      }
    },
    async remove(id) {
      await Deno.remove(file(id)).catch(() => {});
    },
    identity,
    async reap(graceMs) {
      const report: ReapReport = { killed: [], gone: [], ended: [], removedFolders: [] };
      let entries: Deno.DirEntry[] = [];
      try {
        entries = await Array.fromAsync(Deno.readDir(folder));
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
      // In parallel: each leftover may take up to graceMs to end.
      await Promise.all(entries.map(async (entry) => {
        if (!entry.isFile || !entry.name.endsWith(".json")) return;
        const path = join(folder, entry.name);
        const record = parseRecord(await Deno.readTextFile(path).catch(() => ""));
        // A torn or foreign record is left alone: it may be another server's, half written.
        if (record === undefined || !isOurs(record)) return;
        try {
          await reapOne(record, graceMs, report);
          await Deno.remove(path).catch(() => {});
        } catch (error) {
          log.error({ record: entry.name, err: String(error) }, "cannot reap a leftover run");
        }
      }));
      return report;
    },
  };
}

/** Fields 3… of a /proc/<pid>/stat line; the command name (field 2) may hold spaces and ')'. */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

function isInside(path: string, folder: string): boolean {
  const rel = relative(folder, path);
  return rel !== "" && !rel.startsWith("..") && !rel.startsWith("/");
}

/** A record read from disk, or undefined when it does not have the expected shape. */
export function parseRecord(text: string): RunRecord | undefined {
  try {
    const value = JSON.parse(text);
    const owner = value?.owner;
    if (
      typeof owner?.port !== "number" || typeof owner?.config !== "string" ||
      typeof value.instanceDir !== "string"
    ) return undefined;
    const spawned = Number.isInteger(value.pid) && value.pid > 1 &&
      typeof value.startTime === "string" && typeof value.bootId === "string";
    return {
      owner: { port: owner.port, config: owner.config },
      instanceDir: value.instanceDir,
      ...(isMarker(value.marker) ? { marker: value.marker } : {}),
      ...(spawned ? { pid: value.pid, startTime: value.startTime, bootId: value.bootId } : {}),
    };
  } catch {
    return undefined;
  }
}
