/**
 * Shared set-up of the project-preparation tests: temp folders for projectsDir, keyDir and
 * instancesDir, a validated config, and a logger that keeps its lines in memory.
 *
 * @module
 */
import { join } from "node:path";
import { validateConfig } from "../../shared/config.ts";
import type { Logger } from "../../shared/log.ts";
import { type SimulationConfig, simulationSchema } from "../../simulation/config.ts";
import type { ProjectDeps } from "../../simulation/projects.ts";

/** A logged line. */
export interface LogLine {
  readonly level: string;
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

/** A Logger that records lines in `lines`. */
export function memoryLogger(lines: LogLine[] = []): Logger & { lines: LogLine[] } {
  const at =
    (level: string, bound: Record<string, unknown>) =>
    (fields: Record<string, unknown>, message: string) =>
      lines.push({ level, fields: { ...bound, ...fields }, message });
  const make = (bound: Record<string, unknown>): Logger & { lines: LogLine[] } => ({
    lines,
    debug: at("debug", bound),
    info: at("info", bound),
    warn: at("warn", bound),
    error: at("error", bound),
    child: (fields) => make({ ...bound, ...fields }),
    close: () => Promise.resolve(),
  });
  return make({});
}

/** A temp workspace with the three folders. */
export interface Workspace extends AsyncDisposable {
  readonly root: string;
  readonly projectsDir: string;
  readonly keyDir: string;
  readonly instancesDir: string;
  /** Builds the config for this workspace, with extra keys. */
  config(extra?: Record<string, unknown>): SimulationConfig;
  /** Deps with the real fetch and a memory logger. */
  deps(extra?: Record<string, unknown>): ProjectDeps & { logger: ReturnType<typeof memoryLogger> };
  /** Writes files (path → content) under `dir`, creating folders. */
  write(dir: string, files: Record<string, string>): Promise<void>;
  /** Names in instancesDir (empty when every instance was removed). */
  instances(): Promise<string[]>;
  /** A fresh, empty instance folder, as a Webots run hands it to project preparation. */
  folder(): Promise<string>;
  /** Removes a prepared project's instance folder, as the run's `stop()` does. */
  remove(project: { readonly dir: string }): Promise<void>;
  /** Names of the instance folders that hold anything. */
  filled(): Promise<string[]>;
}

/** Creates a workspace; dispose it to remove everything. */
export async function workspace(): Promise<Workspace> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "projects_test_" }));
  const projectsDir = join(root, "projects");
  const keyDir = join(root, "keys");
  const instancesDir = join(root, "instances");
  await Deno.mkdir(projectsDir);
  await Deno.mkdir(keyDir);
  const config = (extra: Record<string, unknown> = {}) =>
    validateConfig(
      simulationSchema,
      {
        projectsDir,
        keyDir,
        instancesDir,
        port: 2000,
        downloadTimeout: 10,
        ...extra,
      },
      "test",
      { root, vars: {}, tmpDir: root },
    );
  return {
    root,
    projectsDir,
    keyDir,
    instancesDir,
    config,
    deps: (extra = {}) => ({ config: config(extra), fetch, logger: memoryLogger() }),
    async write(dir, files) {
      for (const [path, content] of Object.entries(files)) {
        const full = join(dir, path);
        await Deno.mkdir(join(full, ".."), { recursive: true });
        await Deno.writeTextFile(full, content);
      }
    },
    async instances() {
      const names: string[] = [];
      try {
        for await (const entry of Deno.readDir(instancesDir)) names.push(entry.name);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
      return names.sort();
    },
    async folder() {
      const dir = join(instancesDir, crypto.randomUUID());
      await Deno.mkdir(dir, { recursive: true });
      return dir;
    },
    async remove(project) {
      await Deno.remove(project.dir, { recursive: true });
    },
    async filled() {
      const names: string[] = [];
      try {
        for await (const entry of Deno.readDir(instancesDir)) {
          const inside = await Array.fromAsync(Deno.readDir(join(instancesDir, entry.name)));
          if (inside.length > 0) names.push(entry.name);
        }
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
      return names.sort();
    },
    async [Symbol.asyncDispose]() {
      await Deno.remove(root, { recursive: true });
    },
  };
}
