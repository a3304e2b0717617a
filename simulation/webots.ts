/**
 * The Webots command line (reference §3.6, as an argv array: no shell, no whitespace splitting),
 * optionally wrapped in firejail, and its environment. `webots_run.ts` starts it.
 *
 * @module
 */
import { join, relative, resolve } from "node:path";
import type { SimulationConfig } from "./config.ts";

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
}

/** Webots' arguments, exactly as the reference builds them (the binary not included). */
export function webotsArgs(
  config: WebotsCommandConfig,
  launch: WebotsLaunch,
  ssl: boolean,
): string[] {
  const stream = [`port=${launch.port}`, "monitorActivity"];
  if (launch.mode !== undefined) stream.push(`mode=${launch.mode}`);
  if (launch.controllerEdit) stream.push("controllerEdit");
  if (config.multimediaServer !== undefined) {
    stream.push(`multimediaServer=${streamValue("multimediaServer", config.multimediaServer)}`);
  }
  if (config.multimediaStream !== undefined) {
    stream.push(`multimediaStream=${streamValue("multimediaStream", config.multimediaStream)}`);
  }
  if (ssl) stream.push("ssl");
  const args = ["--batch", "--mode=pause"];
  // MJPEG streams what the window renders, so only then must Webots render visibly.
  if (launch.mode !== "mjpeg") args.push("--minimize", "--no-rendering");
  // The quotes stay in the argument: Webots strips them itself (reference §3.6).
  args.push(`--stream="${stream.join(";")}"`, launch.worldFile);
  return args;
}

function streamValue(key: string, value: string): string {
  if (/[;"]/.test(value)) throw new Error(`${key} must not contain ';' or '"': ${value}`);
  return value;
}

/**
 * The firejail options that confine Webots: everything read-only (Webots reads its installation
 * and system libraries), the instance folder writable, a private throw-away /tmp (in which the
 * instance folder and the Webots installation stay visible when they live there, other instances
 * do not), no capabilities
 * and no new privileges (so a root Webots cannot remount), and the site keys and TLS key hidden.
 */
export function firejailArgs(config: WebotsCommandConfig, instanceDir: string): string[] {
  const dir = resolve(instanceDir);
  const args = ["--quiet", "--noprofile", "--nonewprivs", "--caps.drop=all", "--private-tmp"];
  if (isInside(dir, "/tmp")) args.push(`--whitelist=${dir}`);
  // Webots itself must stay visible when it is installed under /tmp; a whitelisted folder escapes
  // --read-only=/, so it is made read-only by name.
  const home = resolve(config.webotsHome);
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
  const webots = join(config.webotsHome, "webots");
  const args = webotsArgs(config, launch, ssl);
  if (config.sandbox === "firejail") {
    return {
      command: config.firejailPath,
      args: [...firejailArgs(config, launch.instanceDir), webots, ...args],
    };
  }
  return { command: webots, args };
}

/** Webots' extra environment: the display (`:0` when unset) and firejailed controllers. */
export function webotsEnv(env: { DISPLAY?: string | undefined }): Record<string, string> {
  return { DISPLAY: env.DISPLAY || ":0", WEBOTS_FIREJAIL_CONTROLLERS: "1" };
}
