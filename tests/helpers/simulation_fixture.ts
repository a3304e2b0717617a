/**
 * A simulation server under test: temp folders for projects, keys, instances and logs, the
 * stand-in Webots (tests/fakes/webots) recording what it was started with, and the real server
 * process started through the launcher.
 *
 * @module
 */
import { join } from "node:path";
import { freePortRange, ROOT, type ServerProcess, startServer } from "./server_process.ts";

/** The stand-in Webots folder, used as `webotsHome`. */
export const FAKE_WEBOTS_HOME: string = join(ROOT, "tests", "fakes", "webots");

/** What the stand-in records about one run (`<record dir>/<pid>.json`). */
export interface WebotsRecord {
  pid: number;
  args: string[];
  env: Record<string, string | undefined>;
  childPids: number[];
}

/** A started simulation server and its folders. */
export interface SimulationFixture {
  readonly server: ServerProcess;
  readonly dir: string;
  readonly projectsDir: string;
  readonly instancesDir: string;
  readonly keyDir: string;
  readonly logDir: string;
  readonly recordDir: string;
  /** `ws://127.0.0.1:<port>/client`. */
  readonly clientUrl: string;
  /** Records of every Webots the stand-in ran so far. */
  records(): Promise<WebotsRecord[]>;
  /** Folders currently in the instances folder. */
  instances(): Promise<string[]>;
  /** Stops the server and removes the temp folder. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options: config keys to add or override, and world files to create. */
export interface FixtureOptions {
  readonly config?: Record<string, unknown>;
  /** `project path → { world file name → content }` created under projectsDir. */
  readonly worlds?: Record<string, Record<string, string>>;
  readonly maxConnections?: number;
  /**
   * A folder to use, and keep, instead of a new temp folder: starting again with the same `dir`
   * (and `port`) restarts the same server, with the same config file.
   */
  readonly dir?: string;
  /** Environment added for the server (and so for the stand-ins it runs). */
  readonly env?: Record<string, string>;
}

/** Writes a project: `worlds/<name>` files and a controller `controllers/c/c.py`. */
export async function writeProject(
  projectDir: string,
  worlds: Record<string, string>,
): Promise<void> {
  await Deno.mkdir(join(projectDir, "worlds"), { recursive: true });
  await Deno.mkdir(join(projectDir, "controllers", "c"), { recursive: true });
  for (const [name, content] of Object.entries(worlds)) {
    await Deno.writeTextFile(join(projectDir, "worlds", name), content);
  }
  await Deno.writeTextFile(join(projectDir, "controllers", "c", "c.py"), "print('original')\n");
}

/** True while a process with this pid exists (and is not a zombie we could still signal). */
export function isAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Field 3 is the state; Z = zombie (dead, waiting to be reaped by its parent).
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z";
  } catch {
    return false;
  }
}

/** True when something (file, folder, symlink) exists at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Polls `condition` every 20 ms until it holds or `timeoutMs` passes. */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Creates the folders, writes the config and starts the server. */
export async function startSimulationServer(
  options: FixtureOptions = {},
): Promise<SimulationFixture> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "simulation-test-" });
  const projectsDir = join(dir, "projects");
  const instancesDir = join(dir, "instances");
  const keyDir = join(dir, "keys");
  const logDir = join(dir, "log");
  const recordDir = join(dir, "records");
  for (const d of [projectsDir, instancesDir, keyDir, logDir, recordDir]) {
    await Deno.mkdir(d, { recursive: true });
  }
  const worlds = options.worlds ?? { "robots/demo": { "demo.wbt": "#VRML_SIM R2021b utf8\n" } };
  for (const [project, files] of Object.entries(worlds)) {
    await writeProject(join(projectsDir, project), files);
  }
  const maxConnections = options.maxConnections ?? 10;
  const port = freePortRange(maxConnections);
  let server: ServerProcess;
  try {
    server = await startServer("simulation", {
      port,
      maxConnections,
      webotsHome: FAKE_WEBOTS_HOME,
      projectsDir,
      instancesDir,
      keyDir,
      logDir,
      nvidiaSmiPath: join(ROOT, "tests", "fakes", "nvidia-smi"),
      // Tests and the benchmark read the log as JSON lines.
      logFormat: "json",
      ...options.config,
    }, { dir, env: { FAKE_WEBOTS_RECORD_DIR: recordDir, ...options.env } });
  } catch (error) {
    if (ownDir) await Deno.remove(dir, { recursive: true });
    throw error;
  }
  return {
    server,
    dir,
    projectsDir,
    instancesDir,
    keyDir,
    logDir,
    recordDir,
    clientUrl: `ws://127.0.0.1:${server.port}/client`,
    async records() {
      const out: WebotsRecord[] = [];
      for await (const entry of Deno.readDir(recordDir)) {
        if (!entry.name.endsWith(".json")) continue;
        try {
          out.push(JSON.parse(await Deno.readTextFile(join(recordDir, entry.name))));
        } catch {
          // Being written right now.
        }
      }
      return out;
    },
    async instances() {
      const out: string[] = [];
      for await (const entry of Deno.readDir(instancesDir)) {
        if (entry.isDirectory && !entry.name.startsWith(".")) out.push(entry.name);
      }
      return out;
    },
    async [Symbol.asyncDispose]() {
      await server.stop();
      if (ownDir) await Deno.remove(dir, { recursive: true });
    },
  };
}

/** The `start` message for a `file://` world of the fixture's projects. */
export function startFile(
  fixture: SimulationFixture,
  project: string,
  world: string,
  mode?: string,
) {
  const url = `file://${join(fixture.projectsDir, project, "worlds", world)}`;
  return JSON.stringify({ start: mode ? { url, mode } : { url } });
}
