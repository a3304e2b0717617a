/**
 * One Webots run, owned from end to end: the streaming port, the instance folder (handed to
 * project preparation to fill), the crash-recovery record, the Webots process (optionally in
 * firejail), its process group and every descendant carrying the run's marker (see
 * `run_processes.ts`), also those that left the group or the session. `stop()` releases all of
 * them, exactly once, whatever ends the run: the browser leaving, Webots exiting, a failure, a
 * shutdown, or a preparation that failed or was aborted half-way.
 *
 * Order of acquisition: port, record (with the run's marker, without a pid), folder, process (the
 * record then gets its pid); release runs the other way round, so that a crash at any point
 * leaves a record that the next start of the same server reaps (`run_records.ts`).
 *
 * @module
 */
import { join } from "node:path";
import type { Clock } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import { ClientError, NoSlotError } from "./client_error.ts";
import type { SimulationConfig } from "./config.ts";
import type { PortPool } from "./ports.ts";
import type { ChildProcessHandle, Spawner } from "./process.ts";
import { MARKER_VARIABLE, newMarker, type RunProcesses } from "./run_processes.ts";
import type { RunRecords, ServerIdentity } from "./run_records.ts";
import { webotsCommand, type WebotsCommandConfig, webotsEnv } from "./webots.ts";
import type { Readiness } from "./webots_dialect.ts";
import type { WebotsInstallations } from "./webots_installations.ts";

/** How to start Webots on a prepared project. */
export interface WebotsStart {
  /** Absolute path of the world file, inside the run's folder. */
  readonly worldFile: string;
  /** The view mode the client sent, if any. */
  readonly mode: "x3d" | "mjpeg" | undefined;
  /** Own or anonymous `init` simulation: the editor may save controllers. */
  readonly controllerEdit: boolean;
}

/** A started Webots as the session sees it: its output and its end. */
export interface WebotsProcess {
  readonly pid: number;
  /** stdout and stderr merged, as lines; one consumer. */
  readonly lines: AsyncIterable<string>;
  /** Resolves when Webots and its process group are gone. */
  readonly status: Promise<Deno.CommandStatus>;
  /** The release of the installation it runs on. */
  readonly release: string;
  /** Which stdout line means ready, in that release's dialect. */
  readonly readiness: Readiness;
}

/** One run: a port and an instance folder from `open`, then a Webots from `start`. */
export interface WebotsRun {
  readonly id: string;
  /** The instance folder, empty when the run is opened: project preparation fills it. */
  readonly dir: string;
  /** The streaming port. */
  readonly port: number;
  /** Webots' pid once started. */
  readonly pid: number | undefined;
  /**
   * Picks the installation for the world (a ClientError when its header is missing or malformed,
   * or its release is refused), starts Webots in the folder and records its pid. Throws after
   * `stop()` or a second call. `onChosen` hears the release before Webots is spawned.
   */
  start(launch: WebotsStart, onChosen?: (release: string) => void): Promise<WebotsProcess>;
  /**
   * Stops Webots, its process group and every other process carrying the run's marker (SIGTERM,
   * SIGKILL after `killTimeout` until none is left), removes the folder and the record, releases
   * the port. Idempotent; resolves with Webots' exit status, if started.
   */
  stop(): Promise<Deno.CommandStatus | undefined>;
}

/** Opens runs. */
export interface WebotsRuns {
  /**
   * Acquires a port, writes the record and creates the folder. Throws a ClientError when Webots
   * is not installed or no slot is left; nothing is then held. The run logs through `logger`
   * (the browser session's, so that its lines carry the client's id), else the factory's.
   * `heldPort` is a port already taken from the pool (a slot lease's): the run uses it instead of
   * acquiring one and owns it from then on, released by `stop()` or by a failed open.
   */
  open(logger?: Logger, heldPort?: number): Promise<WebotsRun>;
}

/** What runs need. */
export interface WebotsRunsDeps {
  readonly config:
    & Pick<SimulationConfig, "instancesDir" | "killTimeout" | "maxConnections">
    & WebotsCommandConfig;
  /** The installations found at start; each world's header picks one. */
  readonly installations: WebotsInstallations;
  /** The server the records name as owner. */
  readonly owner: ServerIdentity;
  readonly ssl: boolean;
  /** `DISPLAY` of the server's environment. */
  readonly display: string | undefined;
  readonly ports: PortPool;
  readonly spawner: Spawner;
  /** Finds and ends the processes of a run by its marker. */
  readonly processes: RunProcesses;
  readonly records: RunRecords;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** `<webotsHome>/webots`. */
function webotsBinary(webotsHome: string): string {
  return join(webotsHome, "webots");
}

/** Whether `<webotsHome>/webots` is an executable file. */
export async function webotsInstalled(webotsHome: string): Promise<boolean> {
  try {
    const info = await Deno.stat(webotsBinary(webotsHome));
    return info.isFile && ((info.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Whether any of these folders holds an executable `webots`. */
async function someInstalled(homes: readonly string[]): Promise<boolean> {
  for (const home of homes) if (await webotsInstalled(home)) return true;
  return false;
}

/** The line the server prints at start when Webots is missing. */
export function noWebotsNotice(webotsHome: string): string {
  return `No Webots found at ${webotsBinary(webotsHome)}: simulations cannot start; ` +
    "`deno task demo` runs the whole flow with a stand-in Webots.";
}

/** Creates the run factory. */
export function createWebotsRuns(deps: WebotsRunsDeps): WebotsRuns {
  const { config } = deps;
  return {
    async open(logger = deps.logger, heldPort) {
      const homes = deps.installations.list.map((i) => i.home);
      if (!await someInstalled(homes)) {
        if (heldPort !== undefined) deps.ports.release(heldPort);
        throw new ClientError(
          `Webots is not installed on this server (no ${
            webotsBinary(homes[0] ?? config.webotsHome)
          })`,
        );
      }
      const port = heldPort ?? deps.ports.acquire();
      if (port === undefined) {
        throw new NoSlotError(
          `no simulation slot left on this server (${config.maxConnections} in use)`,
        );
      }
      const id = crypto.randomUUID();
      const marker = newMarker();
      const dir = join(config.instancesDir, id);
      const log = logger.child({ run: id, port });
      try {
        await deps.records.write(id, { owner: deps.owner, instanceDir: dir, marker });
        await Deno.mkdir(dir, { recursive: true });
      } catch (error) {
        await removeFolder(dir, log);
        await deps.records.remove(id);
        deps.ports.release(port);
        throw error;
      }
      log.debug({ dir }, "run opened");
      return new Run(id, dir, port, marker, deps, log);
    },
  };
}

class Run implements WebotsRun {
  #handle: ChildProcessHandle | undefined;
  #recording: Promise<void> = Promise.resolve();
  #stopping: Promise<Deno.CommandStatus | undefined> | undefined;

  constructor(
    readonly id: string,
    readonly dir: string,
    readonly port: number,
    private readonly marker: string,
    private readonly deps: WebotsRunsDeps,
    private readonly log: Logger,
  ) {}

  get pid(): number | undefined {
    return this.#handle?.pid;
  }

  async start(
    launch: WebotsStart,
    onChosen?: (release: string) => void,
  ): Promise<WebotsProcess> {
    if (this.#stopping !== undefined) throw new Error("the run is stopped");
    if (this.#handle !== undefined) throw new Error("Webots is already started");
    const installation = await this.deps.installations.forWorld(launch.worldFile);
    if (this.#stopping !== undefined) throw new Error("the run is stopped");
    this.log.info(
      { release: installation.release, webotsHome: installation.home },
      "Webots release chosen",
    );
    onChosen?.(installation.release);
    const { command, args } = webotsCommand(this.deps.config, {
      instanceDir: this.dir,
      port: this.port,
      ...launch,
      installation,
    }, this.deps.ssl);
    const handle = this.deps.spawner.spawn(command, args, {
      // Every descendant that keeps its environment carries the marker: that is how it is found.
      env: { ...webotsEnv({ DISPLAY: this.deps.display }), [MARKER_VARIABLE]: this.marker },
      cwd: this.dir,
    });
    this.#handle = handle;
    this.#recording = this.#record(handle.pid);
    await this.#recording;
    return {
      pid: handle.pid,
      lines: handle.lines,
      status: handle.status,
      release: installation.release,
      readiness: installation.dialect.readiness,
    };
  }

  stop(): Promise<Deno.CommandStatus | undefined> {
    this.#stopping ??= this.#release();
    return this.#stopping;
  }

  async #record(pid: number) {
    try {
      const identity = await this.deps.records.identity(pid);
      // Gone already, or being stopped (the record is about to be removed): nothing to record.
      if (identity === undefined || this.#stopping !== undefined) return;
      await this.deps.records.write(this.id, {
        owner: this.deps.owner,
        instanceDir: this.dir,
        marker: this.marker,
        pid,
        ...identity,
      });
    } catch (error) {
      this.log.error({ pid, err: String(error) }, "cannot record the Webots process");
    }
  }

  async #release(): Promise<Deno.CommandStatus | undefined> {
    const handle = this.#handle;
    let status: Deno.CommandStatus | undefined;
    if (handle !== undefined) {
      const ended = await this.deps.processes.end(
        this.marker,
        this.deps.config.killTimeout * 1000,
        { pgid: handle.pid, signal: (s) => handle.signalGroup(s), exited: handle.status },
      );
      status = await handle.status;
      this.log.info(
        {
          pid: handle.pid,
          code: status.code,
          signal: status.signal,
          ...(ended.survivors.length > 0 ? { survivors: ended.survivors } : {}),
        },
        "Webots stopped",
      );
    }
    await removeFolder(this.dir, this.log);
    await this.#recording;
    await this.deps.records.remove(this.id);
    this.deps.ports.release(this.port);
    return status;
  }
}

/** Removes a folder recursively (symlinks inside are removed, not followed); never throws. */
async function removeFolder(dir: string, logger: Logger): Promise<void> {
  try {
    await Deno.remove(dir, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      logger.warn({ dir, err: String(error) }, "cannot remove instance folder");
    }
  }
}
