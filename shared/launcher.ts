/**
 * The generic launcher behind `deno task session` and `deno task simulation`.
 *
 * Permissions depend on the config (the Webots binary, the folders, the ports), which a static
 * permission set in deno.json cannot know. So a launcher reads and validates the config, derives
 * the narrowest flags from it, and runs the server's `main.ts` in a child Deno with the server's
 * named permission set plus those flags. Signals are forwarded; the exit status is the server's.
 * Each server passes its own specifics in (`session/launch.ts`, `simulation/launch.ts`): this
 * module knows no server.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { isAbsolute, join, resolve } from "node:path";
import { type ConfigEnv, ConfigError, type ConfigOf, loadConfig, type Schema } from "./config.ts";
import { WATCH_STDIN_FLAG } from "./serve.ts";

/** What a server hands the launcher. */
export interface LaunchSpec<S extends Schema> {
  /** The server's name: its folder, its permission set in deno.json, its `deno task`. */
  readonly name: string;
  /** The project root: relative config paths and the default config resolve against it. */
  readonly root: string;
  readonly schema: S;
  /** The environment the config's defaults are computed from. */
  readonly env: () => ConfigEnv;
  /** `deno run` flags that add to the server's permission set, derived from its config. */
  readonly permissions: (
    config: ConfigOf<S>,
    context: { root: string; configFile: string },
  ) => string[];
  /** The server's entry point (`<root>/<name>/main.ts`). */
  readonly main: string;
}

/** Usage text of `deno task <server>`. */
export function usage(server: string): string {
  return `Usage: deno task ${server} [CONFIG]

Starts the Webots ${server} server.

  CONFIG      path of a JSON config file (comments allowed);
              default: config/${server}/default.json
  -h, --help  print this help

See README.md for every config key.`;
}

/** Resolves the CONFIG argument: relative to the directory `deno task` was started from. */
export function resolveConfigPath(root: string, server: string, arg: string | undefined): string {
  if (arg === undefined) return join(root, "config", server, "default.json");
  if (isAbsolute(arg)) return arg;
  return resolve(Deno.env.get("INIT_CWD") ?? Deno.cwd(), arg);
}

/** Validates the config, runs the server in a child Deno and returns its exit status. */
export async function launch<S extends Schema>(
  spec: LaunchSpec<S>,
  args: string[],
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { help: { type: "boolean", short: "h" } },
    });
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : error}\n\n${usage(spec.name)}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(usage(spec.name));
    return 0;
  }
  if (parsed.positionals.length > 1) {
    console.error("Too many arguments.");
    return 2;
  }
  const configFile = resolveConfigPath(spec.root, spec.name, parsed.positionals[0]);
  let config;
  try {
    // The one place the warnings are printed: the server validates the same file again, silently.
    config = await loadConfig(spec.schema, configFile, spec.env(), (line) => console.error(line));
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      return 1;
    }
    throw error;
  }
  const flags = spec.permissions(config, { root: spec.root, configFile });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", `-P=${spec.name}`, ...flags, spec.main, configFile, WATCH_STDIN_FLAG],
    cwd: spec.root,
    // Never written to: when this launcher dies, even by SIGKILL, the server sees the end of its
    // stdin and shuts down instead of running orphaned.
    stdin: "piped",
  }).spawn();
  const forward = (signal: Deno.Signal) => () => {
    try {
      child.kill(signal);
    } catch {
      // The child has already exited.
    }
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  const listeners = signals.map((signal) => [signal, forward(signal)] as const);
  for (const [signal, listener] of listeners) Deno.addSignalListener(signal, listener);
  const status = await child.status;
  for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  return status.signal ? 128 + (status.signal === "SIGKILL" ? 9 : 15) : status.code;
}
