/**
 * The Webots command line (reference §3.6, as an argv array: no shell, no whitespace splitting),
 * its environment, its launch (optionally inside firejail), and the bookkeeping that lets a
 * restarted server end the Webots its previous run left behind — and only those.
 *
 * @module
 */
import { join, relative, resolve } from "node:path";
import type { Logger } from "../shared/log.ts";
import type { SimulationConfig } from "./config.ts";
import type { ChildProcessHandle, Spawner } from "./process.ts";

/** What one Webots run needs besides the config. */
export interface WebotsLaunch {
  /** The instance folder: Webots' working folder, and the only place it may write when jailed. */
  readonly instanceDir: string;
  /** Absolute path of the world file. */
  readonly worldFile: string;
  /** The streaming port. */
  readonly port: number;
  /** The view mode the client sent, if any. */
  readonly mode: "x3d" | "mjpeg" | undefined;
  /** Own or anonymous `init` simulation: the editor may save controllers. */
  readonly controllerEdit: boolean;
}

/** Webots' arguments, exactly as the reference builds them (the binary not included). */
export function webotsArgs(config: SimulationConfig, launch: WebotsLaunch, ssl: boolean): string[] {
  const stream = [`port=${launch.port}`, "monitorActivity"];
  if (launch.mode !== undefined) stream.push(`mode=${launch.mode}`);
  if (launch.controllerEdit) stream.push("controllerEdit");
  if (config.multimediaServer !== undefined) {
    stream.push(`multimediaServer=${streamValue("multimediaServer", config.multimediaServer)}`);
  }
  if (config.multimediaStream !== undefined) {
    stream.push(`multimediaStream=${streamValue("multimediaStream", config.multimediaStream)}`);
  }
  if (ssl) stream.push("ssl");
  const args = ["--batch", "--mode=pause"];
  // MJPEG streams what the window renders, so only then must Webots render visibly.
  if (launch.mode !== "mjpeg") args.push("--minimize", "--no-rendering");
  // The quotes stay in the argument: Webots strips them itself (reference §3.6).
  args.push(`--stream="${stream.join(";")}"`, launch.worldFile);
  return args;
}

function streamValue(key: string, value: string): string {
  if (/[;"]/.test(value)) throw new Error(`${key} must not contain ';' or '"': ${value}`);
  return value;
}

/**
 * The firejail options that confine Webots: everything read-only (Webots reads its installation
 * and system libraries), the instance folder writable, a private throw-away /tmp (in which the
 * instance folder and the Webots installation stay visible when they live there, other instances
 * do not), no capabilities
 * and no new privileges (so a root Webots cannot remount), and the site keys and TLS key hidden.
 */
export function firejailArgs(config: SimulationConfig, instanceDir: string): string[] {
  const dir = resolve(instanceDir);
  const args = ["--quiet", "--noprofile", "--nonewprivs", "--caps.drop=all", "--private-tmp"];
  if (isInside(dir, "/tmp")) args.push(`--whitelist=${dir}`);
  // Webots itself must stay visible when it is installed under /tmp; a whitelisted folder escapes
  // --read-only=/, so it is made read-only by name.
  const home = resolve(config.webotsHome);
  const homeInTmp = isInside(home, "/tmp");
  if (homeInTmp) args.push(`--whitelist=${home}`);
  args.push("--read-only=/");
  if (homeInTmp) args.push(`--read-only=${home}`);
  args.push(`--read-write=${dir}`, `--blacklist=${config.keyDir}`);
  if (config.sslKey !== undefined) args.push(`--blacklist=${config.sslKey}`);
  args.push("--");
  return args;
}

function isInside(path: string, folder: string): boolean {
  const rel = relative(folder, path);
  return rel !== "" && !rel.startsWith("..") && !rel.startsWith("/");
}

/** The program and argv that start Webots, wrapped in firejail when `sandbox` is `firejail`. */
export function webotsCommand(
  config: SimulationConfig,
  launch: WebotsLaunch,
  ssl: boolean,
): { command: string; args: string[] } {
  const webots = join(config.webotsHome, "webots");
  const args = webotsArgs(config, launch, ssl);
  if (config.sandbox === "firejail") {
    return {
      command: config.firejailPath,
      args: [...firejailArgs(config, launch.instanceDir), webots, ...args],
    };
  }
  return { command: webots, args };
}

/** Webots' extra environment: the display (`:0` when unset) and firejailed controllers. */
export function webotsEnv(env: { DISPLAY?: string | undefined }): Record<string, string> {
  return { DISPLAY: env.DISPLAY || ":0", WEBOTS_FIREJAIL_CONTROLLERS: "1" };
}

/**
 * Starts Webots in the instance folder. With a registry, the run is recorded until it exits so
 * that a restarted server can end it (`WebotsRegistry.reapLeftovers`).
 */
export function launchWebots(
  spawner: Spawner,
  config: SimulationConfig,
  launch: WebotsLaunch,
  ssl: boolean,
  display: string | undefined,
  registry?: WebotsRegistry,
): ChildProcessHandle {
  const { command, args } = webotsCommand(config, launch, ssl);
  const handle = spawner.spawn(command, args, {
    env: webotsEnv({ DISPLAY: display }),
    cwd: launch.instanceDir,
  });
  if (registry === undefined) return handle;
  const recorded = registry.record(handle.pid, launch.instanceDir);
  const status = handle.status.then(async (exit) => {
    await recorded;
    await registry.forget(handle.pid);
    return exit;
  });
  return {
    pid: handle.pid,
    lines: handle.lines,
    status,
    stop: (g) => handle.stop(g).then(() => status),
  };
}

/** Records of running Webots, kept in files so that they survive a crash of the server. */
export interface WebotsRegistry {
  /** Records a Webots run by pid, start time and boot; never throws (failures are logged). */
  record(pid: number, instanceDir: string): Promise<void>;
  /** Removes the record of an exited run. */
  forget(pid: number): Promise<void>;
  /**
   * Ends the recorded runs of a previous server that are provably still the same processes,
   * removes their instance folders and the records; returns what was done.
   */
  reapLeftovers(graceMs: number): Promise<ReapReport>;
}

/** What `reapLeftovers` found. */
export interface ReapReport {
  /** Pids whose process group was ended. */
  readonly killed: number[];
  /** Pids that were gone or now belong to another process. */
  readonly gone: number[];
  /** Instance folders removed. */
  readonly removedDirs: string[];
}

/** What the registry needs. */
export interface RegistryDeps {
  /** Records go to `<instancesDir>/.webots-pids/<pid>.json`. */
  readonly instancesDir: string;
  /** `/usr/bin/cat`: reads `/proc/<pid>/stat` (Deno itself may not read /proc without -A). */
  readonly catBinary: string;
  /** `/usr/bin/kill`. */
  readonly killBinary: string;
  readonly logger: Logger;
}

interface RunRecord {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: clock ticks after boot; with the boot id, unique per process. */
  startTime: string;
  bootId: string;
  instanceDir: string;
}

/**
 * Creates the registry. Identity rule: a recorded pid is ours only while the same boot is running
 * and `/proc/<pid>/stat` shows the recorded start time; the pid is the process-group id, which
 * Linux never hands out again while that leader lives. Anything else is left alone.
 */
export function createWebotsRegistry(deps: RegistryDeps): WebotsRegistry {
  const folder = join(deps.instancesDir, ".webots-pids");
  const file = (pid: number) => join(folder, `${pid}.json`);
  const cat = async (path: string): Promise<string | undefined> => {
    const out = await new Deno.Command(deps.catBinary, {
      args: [path],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : undefined;
  };
  // The boot id never changes while this server runs: read it once (one `cat` less per launch).
  let bootIdRead: Promise<string | undefined> | undefined;
  const readBootId = () => {
    bootIdRead ??= cat(BOOT_ID).then((id) => {
      if (id === undefined) bootIdRead = undefined; // try again next time
      return id;
    });
    return bootIdRead;
  };
  const identity = async (pid: number) => {
    const [stat, bootId] = await Promise.all([cat(`/proc/${pid}/stat`), readBootId()]);
    const fields = stat === undefined ? undefined : statFields(stat);
    // fields[0] is field 3 (state: Z for an exited, unreaped process); fields[19] is field 22.
    const startTime = fields?.[0] === "Z" ? undefined : fields?.[19];
    if (startTime === undefined || bootId === undefined) return undefined;
    return { startTime, bootId: bootId.trim() };
  };
  const signal = (pid: number, name: string) =>
    new Deno.Command(deps.killBinary, {
      args: ["-s", name, "--", `-${pid}`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();

  return {
    async record(pid, instanceDir) {
      try {
        const id = await identity(pid);
        if (id === undefined) return; // Already exited.
        await Deno.mkdir(folder, { recursive: true });
        const record: RunRecord = { pid, ...id, instanceDir: resolve(instanceDir) };
        await Deno.writeTextFile(file(pid), JSON.stringify(record));
      } catch (error) {
        deps.logger.error({ pid, err: String(error) }, "cannot record the Webots process");
      }
    },
    async forget(pid) {
      await Deno.remove(file(pid)).catch(() => {});
    },
    async reapLeftovers(graceMs) {
      const killed: number[] = [];
      const gone: number[] = [];
      const removedDirs: string[] = [];
      let entries: Deno.DirEntry[] = [];
      try {
        entries = await Array.fromAsync(Deno.readDir(folder));
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
      for (const entry of entries) {
        const path = join(folder, entry.name);
        const record = parseRecord(await Deno.readTextFile(path).catch(() => ""));
        if (record === undefined) {
          await Deno.remove(path).catch(() => {});
          continue;
        }
        const now = await identity(record.pid);
        const ours = now !== undefined && now.startTime === record.startTime &&
          now.bootId === record.bootId;
        if (ours) {
          await signal(record.pid, "TERM");
          if (!await exitsWithin(record, graceMs, identity)) await signal(record.pid, "KILL");
          killed.push(record.pid);
          deps.logger.warn({ pid: record.pid }, "ended a Webots left by a previous run");
        } else {
          gone.push(record.pid);
        }
        if (isInside(record.instanceDir, resolve(deps.instancesDir))) {
          await Deno.remove(record.instanceDir, { recursive: true }).catch(() => {});
          removedDirs.push(record.instanceDir);
        }
        await Deno.remove(path).catch(() => {});
      }
      return { killed, gone, removedDirs };
    },
  };
}

const BOOT_ID = "/proc/sys/kernel/random/boot_id";

/** Fields 3… of a /proc/<pid>/stat line; the command name (field 2) may hold spaces and ')'. */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

function parseRecord(text: string): RunRecord | undefined {
  try {
    const value = JSON.parse(text);
    if (
      Number.isInteger(value.pid) && value.pid > 1 && typeof value.startTime === "string" &&
      typeof value.bootId === "string" && typeof value.instanceDir === "string"
    ) return value as RunRecord;
  } catch {
    // A torn write: ignore the record.
  }
  return undefined;
}

/** Polls (the old leader is not our child, so there is no exit event) until it is gone. */
async function exitsWithin(
  record: RunRecord,
  graceMs: number,
  identity: (pid: number) => Promise<{ startTime: string } | undefined>,
): Promise<boolean> {
  const deadline = Date.now() + graceMs;
  while (true) {
    const now = await identity(record.pid);
    if (now === undefined || now.startTime !== record.startTime) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
