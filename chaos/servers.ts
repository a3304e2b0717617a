/**
 * The real servers of the campaign, each a process started through the launcher the way
 * `deno task simulation|session` does, on free loopback ports (never 1999/2000), with its own
 * folders for config, projects, instances, logs and the stand-in Webots' records.
 *
 * Every simulation server carries `CHAOS_CAMPAIGN=<id>` in its environment: every process it
 * starts inherits it, which is how the leftover scan finds them from outside.
 *
 * @module
 */
import { join } from "node:path";
import {
  freePort,
  freePortRange,
  ROOT,
  type ServerProcess,
  startServer,
} from "../tests/helpers/server_process.ts";
import { onlyChild } from "./leftovers.ts";

/** The stand-in Webots folder, used as `webotsHome`. */
export const FAKE_WEBOTS_HOME: string = join(ROOT, "tests", "fakes", "webots");

/** What the stand-in records about one run (`<record dir>/<pid>.json`). */
export interface WebotsRecord {
  readonly pid: number;
  readonly args: readonly string[];
  readonly childPids: readonly number[];
  /** Written by the stand-in once it knows `#fake escaped-children`; absent before. */
  readonly escapedPids?: readonly number[];
}

/** Timings of the simulation servers the campaign runs. */
export interface SimulationTimings {
  readonly startTimeout: number;
  readonly killTimeout: number;
  readonly heartbeatTimeout: number;
}

/** A simulation server of the campaign and its folders. */
export interface SimServer {
  readonly dir: string;
  readonly projectsDir: string;
  readonly instancesDir: string;
  readonly recordDir: string;
  readonly logDir: string;
  readonly port: number;
  readonly maxConnections: number;
  readonly timings: SimulationTimings;
  /** `CHAOS_CAMPAIGN=<id>`, in the environment of the server and all it starts. */
  readonly envMarker: string;
  readonly process: ServerProcess;
  /** The server itself (the launcher's child). */
  readonly serverPid: number;
  readonly baseUrl: string;
  readonly clientUrl: string;
  /** Every record the stand-in wrote so far. */
  records(): WebotsRecord[];
  /** The `start` message of world `name` in the `chaos` project. */
  startMessage(name: string): string;
  /** Writes world `name` of the `chaos` project with `#fake` directives. */
  writeWorld(name: string, directives: readonly string[]): void;
}

/** Creates the folders of a simulation server under `dir` (kept across restarts). */
function prepare(dir: string) {
  const projectsDir = join(dir, "projects");
  const folders = {
    projectsDir,
    instancesDir: join(dir, "instances"),
    recordDir: join(dir, "records"),
    logDir: join(dir, "log"),
    keyDir: join(dir, "keys"),
  };
  for (const folder of Object.values(folders)) Deno.mkdirSync(folder, { recursive: true });
  Deno.mkdirSync(join(projectsDir, "chaos", "worlds"), { recursive: true });
  Deno.mkdirSync(join(projectsDir, "chaos", "controllers", "c"), { recursive: true });
  Deno.writeTextFileSync(join(projectsDir, "chaos", "controllers", "c", "c.py"), "print('c')\n");
  return folders;
}

/**
 * Starts a simulation server in `dir` (created if needed); with the same `dir` and `port` it is
 * the same server again (same config file), as after a restart.
 */
export async function startSimServer(options: {
  dir: string;
  campaign: string;
  timings: SimulationTimings;
  maxConnections: number;
  port?: number;
}): Promise<SimServer> {
  const folders = prepare(options.dir);
  const port = options.port ?? freePortRange(options.maxConnections);
  const envMarker = `CHAOS_CAMPAIGN=${options.campaign}`;
  const process = await startServer("simulation", {
    port,
    maxConnections: options.maxConnections,
    webotsHome: FAKE_WEBOTS_HOME,
    projectsDir: folders.projectsDir,
    instancesDir: folders.instancesDir,
    keyDir: folders.keyDir,
    logDir: folders.logDir,
    nvidiaSmiPath: join(ROOT, "tests", "fakes", "nvidia-smi"),
    logFormat: "json",
    startTimeout: options.timings.startTimeout,
    killTimeout: options.timings.killTimeout,
    heartbeatTimeout: options.timings.heartbeatTimeout,
  }, {
    dir: options.dir,
    env: {
      FAKE_WEBOTS_RECORD_DIR: folders.recordDir,
      CHAOS_CAMPAIGN: options.campaign,
    },
  });
  const serverPid = onlyChild(process.pid);
  if (serverPid === undefined) {
    await process.stop("SIGKILL");
    throw new Error(`cannot tell the simulation server's pid (launcher ${process.pid})`);
  }
  return {
    ...folders,
    dir: options.dir,
    port,
    maxConnections: options.maxConnections,
    timings: options.timings,
    envMarker,
    process,
    serverPid,
    baseUrl: process.baseUrl,
    clientUrl: `ws://127.0.0.1:${port}/client`,
    records() {
      const out: WebotsRecord[] = [];
      for (const entry of Deno.readDirSync(folders.recordDir)) {
        if (!entry.name.endsWith(".json")) continue;
        try {
          out.push(JSON.parse(Deno.readTextFileSync(join(folders.recordDir, entry.name))));
        } catch { /* being written */ }
      }
      return out;
    },
    startMessage(name) {
      const url = `file://${join(folders.projectsDir, "chaos", "worlds", name)}`;
      return JSON.stringify({ start: { url } });
    },
    writeWorld(name, directives) {
      Deno.writeTextFileSync(
        join(folders.projectsDir, "chaos", "worlds", name),
        `#VRML_SIM R2021b utf8\n${directives.map((d) => `#fake ${d}\n`).join("")}`,
      );
    },
  };
}

/** A session server of the campaign. */
export interface SessionServerProcess {
  readonly process: ServerProcess;
  readonly serverPid: number;
  readonly baseUrl: string;
  readonly wsUrl: string;
  readonly logFile: string;
  /** The JSON lines of its log so far. */
  logLines(): Record<string, unknown>[];
}

/** Starts a session server in `dir` in front of `simulationServers`. */
export async function startSessionServer(options: {
  dir: string;
  simulationServers: readonly string[];
  loadRefresh: number;
  loadTimeout: number;
  heartbeatTimeout: number;
}): Promise<SessionServerProcess> {
  const logDir = join(options.dir, "log");
  Deno.mkdirSync(logDir, { recursive: true });
  const process = await startServer("session", {
    port: freePort(),
    simulationServers: options.simulationServers,
    loadRefresh: options.loadRefresh,
    loadTimeout: options.loadTimeout,
    heartbeatTimeout: options.heartbeatTimeout,
    logDir,
    logFormat: "json",
  }, { dir: options.dir });
  const serverPid = onlyChild(process.pid);
  if (serverPid === undefined) {
    await process.stop("SIGKILL");
    throw new Error(`cannot tell the session server's pid (launcher ${process.pid})`);
  }
  const logFile = join(logDir, "session", "output.log");
  return {
    process,
    serverPid,
    baseUrl: process.baseUrl,
    wsUrl: process.baseUrl.replace(/^http/, "ws") + "/",
    logFile,
    logLines() {
      let text = "";
      try {
        text = Deno.readTextFileSync(logFile);
      } catch {
        return [];
      }
      const out: Record<string, unknown>[] = [];
      for (const line of text.split("\n")) {
        if (!line.trim()) continue;
        try {
          out.push(JSON.parse(line));
        } catch { /* a line being written */ }
      }
      return out;
    },
  };
}
