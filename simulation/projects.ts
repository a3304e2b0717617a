/**
 * Project preparation for one simulation: fills a given, empty instance folder with a copy of the
 * project (`init`: a folder of `projectsDir`, optionally overlaid with the user's saved project
 * from the website; `start`: a GitHub archive or a `file://` folder inside one of `fileRoots`) and
 * checks the world; `reset controller`. Every client-supplied name is validated (`names.ts`,
 * `world_url.ts`). The folder belongs to its Webots run (`webots_run.ts`), which removes it,
 * also after a failed preparation.
 *
 * Layout: the instance folder holds the project folder `<project name>/` (with `worlds/`,
 * `controllers/`, and `host.txt` for `init`).
 *
 * @module
 */
import { basename, join } from "node:path";
import type { InitFields } from "../shared/protocol.ts";
import type { Logger } from "../shared/log.ts";
import type { SimulationConfig } from "./config.ts";
import { ClientError } from "./client_error.ts";
import { copyTree, isInside } from "./copy_tree.ts";
import { fetchGithubProject } from "./github_project.ts";
import {
  checkRelativePath,
  checkResetPath,
  checkWorldName,
  parseSiteHost,
  quote,
} from "./names.ts";
import type { OnProgress } from "./progress.ts";
import { checkKeyTransport, downloadSiteProject, readSiteKey } from "./site_project.ts";
import { checkRepositoryLists, type FileWorld, parseStartUrl } from "./world_url.ts";

export { ClientError };

/** One simulation's project copy. */
export interface Project {
  /** The instance folder it was prepared in. */
  readonly dir: string;
  /** Folder holding worlds/ and controllers/ (a subfolder of dir). */
  readonly projectDir: string;
  /** Absolute path of the .wbt inside projectDir/worlds/, checked to exist. */
  readonly worldFile: string;
  /** The folder the project was copied from (init and file://), the source of `reset controller`. */
  readonly source: string | undefined;
}

/** What project preparation needs. */
export interface ProjectDeps {
  readonly config: SimulationConfig;
  readonly fetch: typeof fetch;
  readonly logger: Logger;
}

/** Project preparation as a session uses it. */
export interface Projects {
  /** `prepareInit` into `dir`, telling `onProgress` its steps. */
  prepareInit(
    init: InitFields,
    dir: string,
    signal: AbortSignal,
    onProgress?: OnProgress,
  ): Promise<{ project: Project; controllerEdit: boolean }>;
  /** `prepareStart` into `dir`, telling `onProgress` its steps. */
  prepareStart(
    url: string,
    dir: string,
    signal: AbortSignal,
    onProgress?: OnProgress,
  ): Promise<Project>;
  /** `resetController`. */
  resetController(project: Project, path: string): Promise<void>;
}

/** Project preparation bound to the server's config, `fetch` and logger. */
export function createProjects(deps: ProjectDeps): Projects {
  return {
    prepareInit: (init, dir, signal, onProgress) =>
      prepareInit(init, dir, deps, signal, onProgress),
    prepareStart: (url, dir, signal, onProgress) =>
      prepareStart(url, dir, deps, signal, onProgress),
    resetController: (project, path) => resetController(project, path, deps),
  };
}

/**
 * Prepares an `init` project: validates the fields, copies `<projectsDir>/<app>`, writes
 * `host.txt`, and when `user1Id` is set downloads the user's project from the site (which needs a
 * key in `keyDir` and https). `controllerEdit` is granted to own or anonymous simulations.
 */
export async function prepareInit(
  init: InitFields,
  dir: string,
  deps: ProjectDeps,
  signal?: AbortSignal,
  onProgress?: OnProgress,
): Promise<{ project: Project; controllerEdit: boolean }> {
  const { config } = deps;
  const appSegments = checkRelativePath(init.app, "project");
  const world = checkWorldName(init.world);
  const site = parseSiteHost(init.host);
  let key: string | undefined;
  if (init.user1Id !== "") {
    checkKeyTransport(site);
    key = await readSiteKey(config.keyDir, site);
    if (key === undefined) throw new ClientError(`No key for: ${site.bareHost}`);
  }
  const source = await projectSource(config.projectsDir, join(config.projectsDir, ...appSegments));
  if (source === undefined) throw new ClientError(`Project ${quote(init.app)} does not exist.`);
  const project = await fill(dir, deps, async () => {
    const projectDir = join(dir, appSegments[appSegments.length - 1]!);
    onProgress?.({ step: "copying" });
    await copyTree(source, projectDir, { logger: deps.logger, signal });
    await Deno.writeTextFile(join(projectDir, "host.txt"), init.host);
    if (key !== undefined) {
      await downloadSiteProject(site, key, init, projectDir, {
        fetch: deps.fetch,
        logger: deps.logger,
        downloadTimeout: config.downloadTimeout,
        maxDownloadSize: config.maxDownloadSize,
      }, signal);
    }
    return { projectDir, world, source };
  });
  const controllerEdit = init.user1Authentication !== "" || init.user1Id === "";
  return { project, controllerEdit };
}

/**
 * Prepares a `start` project from a `webots://github.com/…`, `https://github.com/…/blob/…` or
 * `file:///…` URL, after the repository lists of the config.
 */
export async function prepareStart(
  url: string,
  dir: string,
  deps: ProjectDeps,
  signal?: AbortSignal,
  onProgress?: OnProgress,
): Promise<Project> {
  const { config } = deps;
  const world = parseStartUrl(url);
  checkRepositoryLists(url, world, config);
  if (world.kind === "file") {
    const source = await fileProjectSource(config.fileRoots, world);
    return await fill(dir, deps, async () => {
      const projectDir = join(dir, basename(world.projectPath));
      onProgress?.({ step: "copying" });
      await copyTree(source, projectDir, { logger: deps.logger, signal });
      return { projectDir, world: world.world, source };
    });
  }
  return await fill(dir, deps, async () => {
    const projectDir = join(dir, world.folder[world.folder.length - 1] ?? world.repo);
    await fetchGithubProject(world, projectDir, {
      fetch: deps.fetch,
      logger: deps.logger,
      githubArchiveBase: config.githubArchiveBase,
      downloadTimeout: config.downloadTimeout,
      maxDownloadSize: config.maxDownloadSize,
      onProgress,
    }, signal);
    return { projectDir, world: world.world, source: undefined };
  });
}

/**
 * Restores `controllers/<dir>/<file>` of an instance from the folder it was copied from. GitHub
 * projects keep no pristine copy, so they get a ClientError.
 */
export async function resetController(
  project: Project,
  path: string,
  deps: ProjectDeps,
): Promise<void> {
  const [dir, file] = checkResetPath(path);
  if (project.source === undefined) {
    throw new ClientError("reset controller is not available for GitHub projects");
  }
  const missing = () => new ClientError(`Cannot reset ${quote(path)}: no such controller file`);
  const sourceRoot = await Deno.realPath(project.source);
  let from: string;
  try {
    from = await Deno.realPath(join(project.source, "controllers", dir, file));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw missing();
    throw error;
  }
  if (!isInside(sourceRoot, from) || !(await Deno.stat(from)).isFile) throw missing();
  // The running simulation may have changed the copy (even planted symlinks): the target folder
  // must really be inside the project, and the file is replaced by rename, never written through.
  const targetDir = join(project.projectDir, "controllers", dir);
  await Deno.mkdir(targetDir, { recursive: true });
  const realTargetDir = await Deno.realPath(targetDir);
  if (!isInside(await Deno.realPath(project.projectDir), realTargetDir)) {
    throw new ClientError(`Cannot reset ${quote(path)}: the controller folder was replaced`);
  }
  const temporary = join(realTargetDir, `.${file}.reset-${crypto.randomUUID()}`);
  try {
    await Deno.copyFile(from, temporary);
    await Deno.rename(temporary, join(realTargetDir, file));
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
  deps.logger.info({ dir: project.dir, path }, "controller reset");
}

/** The real path of `folder` when it is a folder inside `projectsDir` (or another root). */
async function projectSource(projectsDir: string, folder: string): Promise<string | undefined> {
  try {
    const root = await Deno.realPath(projectsDir);
    const real = await Deno.realPath(folder);
    if (!isInside(root, real) || !(await Deno.stat(real)).isDirectory) return undefined;
    return real;
  } catch (error) {
    if (
      error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory ||
      error instanceof Deno.errors.NotCapable
    ) {
      return undefined;
    }
    throw error;
  }
}

/**
 * The real path of a `file://` world's project folder, when the world and its project folder lie
 * in one of `roots` (`fileRoots`): symlinks resolved, and both inside the root the URL names.
 */
async function fileProjectSource(roots: readonly string[], world: FileWorld): Promise<string> {
  const outside = new ClientError("The world file must lie in the projects folder of this server");
  for (const root of roots) {
    const source = await sourceInRoot(root, world, outside);
    if (source !== undefined) return source;
  }
  throw outside;
}

async function sourceInRoot(
  root: string,
  world: FileWorld,
  outside: ClientError,
): Promise<string | undefined> {
  const realRoot = await Deno.realPath(root).catch(() => undefined);
  // Checked before touching the file system: outside the roots the server may not even be
  // allowed to read (`.` and `..` segments were refused by the parser).
  if (realRoot === undefined || !(isInside(root, world.path) || isInside(realRoot, world.path))) {
    return undefined;
  }
  let realWorld: string;
  try {
    realWorld = await Deno.realPath(world.path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      throw new ClientError(`${world.world} does not exist.`);
    }
    if (error instanceof Deno.errors.NotCapable) throw outside;
    throw error;
  }
  if (!isInside(realRoot, realWorld)) return undefined;
  return await projectSource(root, world.projectPath);
}

interface Built {
  readonly projectDir: string;
  readonly world: string;
  readonly source: string | undefined;
}

/** Fills the instance folder `dir` with `build` and checks that the world exists. */
async function fill(
  dir: string,
  deps: ProjectDeps,
  build: () => Promise<Built>,
): Promise<Project> {
  const built = await build();
  const worldFile = join(built.projectDir, "worlds", built.world);
  const info = await Deno.lstat(worldFile).catch(() => undefined);
  if (!info?.isFile) throw new ClientError(`${built.world} does not exist.`);
  deps.logger.info({ dir, worldFile }, "project ready");
  return { dir, projectDir: built.projectDir, worldFile, source: built.source };
}
