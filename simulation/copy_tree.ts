/**
 * Asynchronous recursive copy of a project folder into an instance folder.
 *
 * Only regular files and folders are copied. A symlink is followed only when its real target lies
 * inside the project (its content is then copied, so the copy holds no symlinks); symlinks that
 * point outside, dangling ones, cycles and special files are left out and logged. Each file copy
 * is one asynchronous call, so a large project never blocks the event loop.
 *
 * @module
 */
import { join, sep } from "node:path";
import type { Logger } from "../shared/log.ts";

/** Whether `path` is `root` or lies inside it (both absolute and normalised). */
export function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** What `copyTree` needs. */
export interface CopyOptions {
  readonly logger: Logger;
  readonly signal?: AbortSignal | undefined;
}

/** Files copied at once. */
const PARALLEL = 8;

/** Copies the folder `source` to `dest` (created; its parent must exist). */
export async function copyTree(source: string, dest: string, options: CopyOptions): Promise<void> {
  const root = await Deno.realPath(source);
  await copyFolder(root, dest, new Set([root]), root, options);
}

async function copyFolder(
  from: string,
  to: string,
  ancestors: ReadonlySet<string>,
  root: string,
  options: CopyOptions,
): Promise<void> {
  options.signal?.throwIfAborted();
  await Deno.mkdir(to);
  const files: [string, string][] = [];
  const folders: [string, string][] = [];
  for await (const entry of Deno.readDir(from)) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isFile) files.push([source, target]);
    else if (entry.isDirectory) folders.push([source, target]);
    else if (entry.isSymlink) {
      let real: string;
      try {
        real = await Deno.realPath(source);
      } catch {
        options.logger.warn({ path: source }, "dangling symlink left out of the copy");
        continue;
      }
      if (!isInside(root, real)) {
        options.logger.warn({ path: source }, "symlink out of the project left out of the copy");
        continue;
      }
      const info = await Deno.stat(real);
      if (info.isFile) files.push([real, target]);
      else if (info.isDirectory) folders.push([real, target]);
    } else {
      options.logger.warn({ path: source }, "special file left out of the copy");
    }
  }
  for (let i = 0; i < files.length; i += PARALLEL) {
    options.signal?.throwIfAborted();
    await Promise.all(files.slice(i, i + PARALLEL).map(([s, t]) => Deno.copyFile(s, t)));
  }
  for (const [source, target] of folders) {
    // `source` is a real path here only for followed symlinks; real paths detect cycles.
    const real = await Deno.realPath(source);
    if (ancestors.has(real)) {
      options.logger.warn({ path: source }, "symlink cycle left out of the copy");
      continue;
    }
    await copyFolder(real, target, new Set([...ancestors, real]), root, options);
  }
}
