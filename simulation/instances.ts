/**
 * Instance folders: `<instancesDir>/<id>/`, one per simulation, each created with a marker file so
 * that cleaning up at startup removes only this server's own leftovers.
 *
 * The marker records the server's port: two simulation servers on one machine (different ports)
 * may share `instancesDir`, and one must not delete the other's live instances when it starts.
 * Folders without a marker, or with another port's marker, are never touched.
 *
 * @module
 */
import { join } from "node:path";
import type { Logger } from "../shared/log.ts";

/** Name of the marker file at the top of every instance folder. */
export const MARKER = ".webots-server-instance";

const MARKER_KIND = "webots-simulation-server-instance";

/** A freshly created, empty (except for the marker) instance folder. */
export interface InstanceFolder {
  readonly id: string;
  readonly dir: string;
}

/** Creates a new instance folder with a never-reused id. */
export async function createInstanceFolder(
  instancesDir: string,
  port: number,
): Promise<InstanceFolder> {
  await Deno.mkdir(instancesDir, { recursive: true });
  const id = crypto.randomUUID();
  const dir = join(instancesDir, id);
  await Deno.mkdir(dir);
  const marker = { kind: MARKER_KIND, port, pid: Deno.pid, created: new Date().toISOString() };
  await Deno.writeTextFile(join(dir, MARKER), `${JSON.stringify(marker)}\n`, { createNew: true });
  return { id, dir };
}

/** Removes a folder recursively (symlinks inside are removed, not followed); never throws. */
export async function removeFolder(dir: string, logger: Logger): Promise<void> {
  try {
    await Deno.remove(dir, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      logger.warn({ dir, err: String(error) }, "cannot remove instance folder");
    }
  }
}

async function markerPort(dir: string): Promise<number | undefined> {
  try {
    const info = await Deno.lstat(join(dir, MARKER));
    if (!info.isFile || info.size > 4096) return undefined;
    const marker = JSON.parse(await Deno.readTextFile(join(dir, MARKER)));
    return marker?.kind === MARKER_KIND && typeof marker.port === "number"
      ? marker.port
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Removes the instance folders a previous run of this server (same port) left in `instancesDir`.
 * Returns how many were removed.
 */
export async function removeLeftovers(
  instancesDir: string,
  port: number,
  logger: Logger,
): Promise<number> {
  const leftovers: string[] = [];
  try {
    for await (const entry of Deno.readDir(instancesDir)) {
      if (!entry.isDirectory) continue;
      const dir = join(instancesDir, entry.name);
      if (await markerPort(dir) === port) leftovers.push(dir);
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return 0;
    throw error;
  }
  for (const dir of leftovers) await removeFolder(dir, logger);
  if (leftovers.length > 0) {
    logger.info({ instancesDir, count: leftovers.length }, "removed leftover instance folders");
  }
  return leftovers.length;
}
