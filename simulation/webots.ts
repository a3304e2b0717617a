/**
 * The Webots command line (as an argv array: no shell, no whitespace splitting) of the chosen
 * installation, in its release's dialect, optionally wrapped in firejail, and its environment. `webots_run.ts` starts it.
 *
 * @module
 */
import { join, relative, resolve } from "node:path";
import type { SimulationConfig } from "./config.ts";
import type { WebotsInstallation } from "./webots_installations.ts";

/** The config keys the command line depends on. */
export type WebotsCommandConfig = Pick<
  SimulationConfig,
  | "webotsHome"
  | "sandbox"
  | "firejailPath"
  | "keyDir"
  | "sslKey"
  | "multimediaServer"
  | "multimediaStream"
>;

/** What one Webots run needs besides the config. */
export interface WebotsLaunch {
  /** The instance folder: Webots' working folder, and the only place it may write when jailed. */
  readonly instanceDir: string;
  /** Absolute path of the world file. */
  readonly worldFile: string;
  /** The streaming port. */
  readonly port: number;
  /** The view mode the client sent, if any. */
  readonly mode: "x3d" | "mjpeg" | undefined;
  /** Own or anonymous `init` simulation: the editor may save controllers. */
  readonly controllerEdit: boolean;
  /** The installation the world runs on: its binary and its release's dialect. */
  readonly installation: WebotsInstallation;
}

/**
 * Webots' arguments (the binary not included), in the dialect of the installation's release
 * (`webots_dialect.ts`).
 */
export function webotsArgs(
  config: WebotsCommandConfig,
  launch: WebotsLaunch,
  ssl: boolean,
): string[] {
  return launch.installation.dialect.args({
    worldFile: launch.worldFile,
    port: launch.port,
    mode: launch.mode,
    controllerEdit: launch.controllerEdit,
    multimediaServer: config.multimediaServer,
    multimediaStream: config.multimediaStream,
    ssl,
  });
}

/**
 * The firejail options that confine Webots: everything read-only (Webots reads its installation
 * and system libraries), the instance folder writable, a private throw-away /tmp (in which the
 * instance folder and the Webots installation stay visible when they live there, other instances
 * do not), no capabilities
 * and no new privileges (so a root Webots cannot remount), and the site keys and TLS key hidden.
 */
export function firejailArgs(
  config: WebotsCommandConfig,
  instanceDir: string,
  webotsHome: string = config.webotsHome,
): string[] {
  const dir = resolve(instanceDir);
  const args = ["--quiet", "--noprofile", "--nonewprivs", "--caps.drop=all", "--private-tmp"];
  if (isInside(dir, "/tmp")) args.push(`--whitelist=${dir}`);
  // Webots itself must stay visible when it is installed under /tmp; a whitelisted folder escapes
  // --read-only=/, so it is made read-only by name.
  const home = resolve(webotsHome);
  const homeInTmp = isInside(home, "/tmp");
  if (homeInTmp) args.push(`--whitelist=${home}`);
  args.push("--read-only=/");
  if (homeInTmp) args.push(`--read-only=${home}`);
  args.push(`--read-write=${dir}`, `--blacklist=${config.keyDir}`);
  if (config.sslKey !== undefined) args.push(`--blacklist=${config.sslKey}`);
  args.push("--");
  return args;
}

function isInside(path: string, folder: string): boolean {
  const rel = relative(folder, path);
  return rel !== "" && !rel.startsWith("..") && !rel.startsWith("/");
}

/** The program and argv that start Webots, wrapped in firejail when `sandbox` is `firejail`. */
export function webotsCommand(
  config: WebotsCommandConfig,
  launch: WebotsLaunch,
  ssl: boolean,
): { command: string; args: string[] } {
  const webots = join(launch.installation.home, "webots");
  const args = webotsArgs(config, launch, ssl);
  if (config.sandbox === "firejail") {
    return {
      command: config.firejailPath,
      args: [
        ...firejailArgs(config, launch.instanceDir, launch.installation.home),
        webots,
        ...args,
      ],
    };
  }
  return { command: webots, args };
}

/** Webots' extra environment: the display (`:0` when unset) and firejailed controllers. */
export function webotsEnv(env: { DISPLAY?: string | undefined }): Record<string, string> {
  return { DISPLAY: env.DISPLAY || ":0", WEBOTS_FIREJAIL_CONTROLLERS: "1" };
}
