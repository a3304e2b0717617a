/**
 * Which config files a CONFIG argument names, with the same rule as `server.sh`: a name means
 * `config/<server>/<name>.json`; a path to a `.json` file in a `session/` or `simulation/` folder
 * means that file for that server and the same-named file in the sibling folder for the other.
 *
 * @module
 */
import { basename, dirname, isAbsolute, join, resolve } from "node:path";

/** The servers, in the order they start (the simulation server first, as the Webots guide says). */
export const SERVERS = ["simulation", "session"] as const;

/** One of the two servers. */
export type ServerName = typeof SERVERS[number];

/** The config file of each server that has one. */
export type ConfigFiles = Partial<Record<ServerName, string>>;

/** Where to look: the project root and the directory relative paths are relative to. */
export interface ConfigPlace {
  readonly root: string;
  readonly cwd: string;
  readonly exists: (path: string) => boolean;
}

/** Resolves CONFIG (default `default`); throws an `Error` that explains when it names nothing. */
export function resolveConfigs(config: string | undefined, place: ConfigPlace): ConfigFiles {
  const name = config ?? "default";
  const files: ConfigFiles = {};
  if (!name.endsWith(".json")) {
    for (const server of SERVERS) {
      const file = join(place.root, "config", server, `${name}.json`);
      if (place.exists(file)) files[server] = file;
    }
    if (Object.keys(files).length === 0) {
      throw new Error(
        `No config named ${name} (config/session/${name}.json, config/simulation/${name}.json)`,
      );
    }
    return files;
  }
  const path = isAbsolute(name) ? name : resolve(place.cwd, name);
  const folder = basename(dirname(path));
  if (folder !== "session" && folder !== "simulation") {
    throw new Error(`Config ${name} must lie in a folder named session or simulation`);
  }
  for (const server of SERVERS) {
    const file = join(dirname(dirname(path)), server, basename(path));
    if (place.exists(file)) files[server] = file;
  }
  if (files[folder] === undefined) throw new Error(`No config file ${name}`);
  return files;
}

/** `exists` for `ConfigPlace`: true for a readable regular file. */
export function fileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
