/**
 * The Webots installations a server runs worlds on, found at start: the single `webotsHome` (its
 * release read from `resources/version.txt`, or `webotsVersion`), or every folder of
 * `webotsHomes`. Per world, `forWorld` picks the installation: with `webotsHomes` the one the
 * world's `#VRML_SIM <release> utf8` header names, else `webotsVersionFallback` decides; with the
 * single `webotsHome` that one, whatever the header says (as before releases were told apart).
 *
 * @module
 */
import { join } from "node:path";
import { ClientError } from "./client_error.ts";
import type { SimulationConfig } from "./config.ts";
import { dialectFor, type WebotsDialect } from "./webots_dialect.ts";
import {
  compareReleases,
  isKnownRelease,
  NEWEST_RELEASE,
  OLDEST_RELEASE,
  readInstalledRelease,
  readWorldRelease,
} from "./webots_release.ts";

/** One Webots installation. */
export interface WebotsInstallation {
  readonly release: string;
  /** The installation folder; Webots is `<home>/webots`. */
  readonly home: string;
  readonly dialect: WebotsDialect;
}

/** The installations and the rule that picks one per world. */
export interface WebotsInstallations {
  /** Newest first; empty when no Webots is installed at `webotsHome`. */
  readonly list: readonly WebotsInstallation[];
  /**
   * The installation a world runs on. Throws a ClientError when the world's header is missing or
   * malformed (with `webotsHomes`), or its release is not installed and the policy is `refuse`.
   */
  forWorld(worldFile: string): Promise<WebotsInstallation>;
}

/** The installed Webots cannot be used: one line for the operator, the server stops. */
export class WebotsVersionError extends Error {
  override name = "WebotsVersionError";
}

/** An installation of a known release. */
export function installation(release: string, home: string): WebotsInstallation {
  return { release, home, dialect: dialectFor(release) };
}

/** The single installation at `home`: every world runs on it, whatever its header says. */
export function singleInstallation(release: string, home: string): WebotsInstallations {
  return createInstallations([installation(release, home)], {
    byHeader: false,
    fallback: "newest",
  });
}

/** Picks per world among `list` (see the module doc). */
export function createInstallations(
  list: readonly WebotsInstallation[],
  options: { byHeader: boolean; fallback: "newest" | "refuse" },
): WebotsInstallations {
  const sorted = [...list].sort((a, b) => compareReleases(b.release, a.release));
  return {
    list: sorted,
    async forWorld(worldFile) {
      const newest = sorted[0];
      if (newest === undefined) throw new ClientError("Webots is not installed on this server");
      if (!options.byHeader) return newest;
      const release = await readWorldRelease(worldFile);
      const exact = sorted.find((i) => i.release === release);
      if (exact !== undefined) return exact;
      if (options.fallback === "newest") return newest;
      throw new ClientError(
        `this server has no Webots ${release} (installed: ${
          sorted.map((i) => i.release).join(", ")
        })`,
      );
    },
  };
}

/** `<home>/webots`. */
export function webotsBinaryOf(home: string): string {
  return join(home, "webots");
}

/**
 * Finds the installations the config names and their releases. Without `webotsHomes` and without
 * a Webots binary at `webotsHome` the list is empty (no version is needed to run nothing; the
 * missing Webots is reported at start and to clients as before). Throws a WebotsVersionError when
 * a release cannot be known or does not match.
 */
export async function resolveInstallations(
  config: Pick<
    SimulationConfig,
    "webotsHome" | "webotsHomes" | "webotsVersion" | "webotsVersionFallback"
  >,
  isInstalled: (home: string) => Promise<boolean>,
  warn: (message: string) => void,
): Promise<WebotsInstallations> {
  const fallback = config.webotsVersionFallback === "refuse" ? "refuse" : "newest";
  if (config.webotsVersion !== undefined && !isKnownRelease(config.webotsVersion)) {
    throw new WebotsVersionError(
      `webotsVersion "${config.webotsVersion}" is not a release from ${OLDEST_RELEASE} to ${NEWEST_RELEASE} (e.g. "R2021b")`,
    );
  }
  if (config.webotsHomes !== undefined) {
    const list: WebotsInstallation[] = [];
    for (const [release, home] of Object.entries(config.webotsHomes)) {
      if (!isKnownRelease(release)) {
        throw new WebotsVersionError(
          `webotsHomes: "${release}" is not a release from ${OLDEST_RELEASE} to ${NEWEST_RELEASE}`,
        );
      }
      if (!await isInstalled(home)) {
        throw new WebotsVersionError(
          `webotsHomes: no Webots ${release} at ${webotsBinaryOf(home)}`,
        );
      }
      const found = await readInstalledRelease(home);
      if ("problem" in found) {
        warn(`${found.problem}; taken as ${release} (webotsHomes)`);
      } else if (found.release !== release) {
        throw new WebotsVersionError(
          `webotsHomes: ${home} holds Webots ${found.release}, not ${release}`,
        );
      }
      list.push(installation(release, home));
    }
    if (list.length === 0) throw new WebotsVersionError("webotsHomes names no installation");
    return createInstallations(list, { byHeader: true, fallback });
  }
  if (!await isInstalled(config.webotsHome)) {
    return createInstallations([], { byHeader: false, fallback });
  }
  const found = await readInstalledRelease(config.webotsHome);
  if (config.webotsVersion !== undefined) {
    if ("release" in found && found.release !== config.webotsVersion) {
      warn(
        `${config.webotsHome} holds Webots ${found.release}; webotsVersion says ${config.webotsVersion}`,
      );
    }
    return singleInstallation(config.webotsVersion, config.webotsHome);
  }
  if ("problem" in found) {
    throw new WebotsVersionError(`${found.problem} (set webotsVersion to name the release)`);
  }
  return singleInstallation(found.release, config.webotsHome);
}
