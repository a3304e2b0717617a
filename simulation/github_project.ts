/**
 * The `start` flow's download of a project from GitHub: one ZIP archive over HTTPS from
 * codeload.github.com's format `<base>/<user>/<repo>/zip/<ref>` (no svn, no git binary), of which
 * only the project folder (the parent of `worlds/`) is unpacked.
 *
 * @module
 */
import type { Logger } from "../shared/log.ts";
import { ClientError } from "./client_error.ts";
import type { OnProgress } from "./progress.ts";
import { download, DownloadError } from "./download.ts";
import type { GithubWorld } from "./world_url.ts";
import { extractZip, listZipEntries, ZipError } from "./zip.ts";

/** What a GitHub download needs. */
export interface GithubDeps {
  readonly fetch: typeof fetch;
  readonly logger: Logger;
  readonly githubArchiveBase: string;
  readonly downloadTimeout: number;
  readonly maxDownloadSize: number;
  /** Told the download's progress and the start of unpacking. */
  readonly onProgress?: OnProgress | undefined;
}

/** `<user>/<repo>@<ref>` as people write it (`refs/heads/` and `refs/tags/` left out). */
export function archiveLabel(world: GithubWorld): string {
  return `${world.user}/${world.repo}@${world.ref.replace(/^refs\/(heads|tags)\//, "")}`;
}

/** The archive URL of a GitHub world. */
export function archiveUrl(base: string, world: GithubWorld): string {
  return `${base.replace(/\/+$/, "")}/${world.user}/${world.repo}/zip/${world.ref}`;
}

/**
 * Downloads the archive and unpacks `<top>/<folder…>/` as `projectDir`. Archives hold one top
 * folder (`<repo>-<ref>/`, whose exact name GitHub derives from the ref), so it is taken from the
 * archive instead of guessed. Symlinks in the archive are left out (logged).
 */
export async function fetchGithubProject(
  world: GithubWorld,
  projectDir: string,
  deps: GithubDeps,
  signal?: AbortSignal,
): Promise<void> {
  const what = `${world.user}/${world.repo} at ${world.ref}`;
  const url = archiveUrl(deps.githubArchiveBase, world);
  deps.logger.info({ url }, "downloading GitHub archive");
  let status: number;
  let body: Uint8Array;
  try {
    ({ status, body } = await download(url, {}, {
      fetch: deps.fetch,
      timeoutSeconds: deps.downloadTimeout,
      maxBytes: deps.maxDownloadSize,
      signal,
      onProgress: deps.onProgress &&
        ((received, total) =>
          deps.onProgress?.({ step: "downloading", source: archiveLabel(world), received, total })),
    }));
  } catch (error) {
    if (error instanceof DownloadError) {
      throw new ClientError(`Cannot download ${what}: ${error.message}`, { cause: error });
    }
    throw error;
  }
  if (status !== 200) throw new ClientError(`Cannot download ${what}: HTTP ${status}`);
  deps.onProgress?.({ step: "unpacking" });
  try {
    const entries = listZipEntries(body);
    const top = entries[0]?.name.split("/")[0] ?? "";
    if (top === "" || !entries.every((e) => e.name.startsWith(`${top}/`))) {
      throw new ZipError("not a GitHub archive (expected one top folder)");
    }
    const prefix = `${[top, ...world.folder].join("/")}/`;
    const result = await extractZip(body, projectDir, {
      maxSize: deps.maxDownloadSize,
      symlinks: "skip",
      select: (name) => name.startsWith(prefix) ? name.slice(prefix.length) : undefined,
      executable: (_path, entry) => ((entry.unixMode ?? 0) & 0o100) !== 0,
      onSkip: (name, kind) => deps.logger.warn({ url, entry: name, kind }, "entry left out"),
      signal,
    });
    if (result.files === 0) {
      throw new ClientError(`Folder ${world.folder.join("/") || "/"} not found in ${what}`);
    }
    deps.logger.info({ url, ...result }, "GitHub project unpacked");
  } catch (error) {
    if (error instanceof ZipError) {
      throw new ClientError(`Cannot unpack ${what}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}
