/**
 * Launcher behind `deno task session` and `deno task simulation`.
 *
 * Permissions depend on the config (the Webots binary, the folders, the ports), which a static
 * permission set in deno.json cannot know. So the launcher reads and validates the config, derives
 * the narrowest flags from it, and runs the server's `main.ts` in a child Deno with the named
 * permission set plus those flags. Signals are forwarded; the exit status is the server's.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { isAbsolute, join, resolve } from "node:path";
import { type ConfigEnv, ConfigError, loadConfig, type Schema } from "./config.ts";
import { WATCH_STDIN_FLAG } from "./serve.ts";
import { sessionSchema } from "../session/config.ts";
import { sessionPermissions } from "../session/permissions.ts";
import { simulationSchema } from "../simulation/config.ts";
import { simulationPermissions } from "../simulation/permissions.ts";

/** The project root: relative config paths resolve against it. */
export const PROJECT_ROOT: string = resolve(import.meta.dirname ?? ".", "..");

// deno-lint-ignore no-explicit-any
type PermissionsOf = (config: any, context: { root: string; configFile: string }) => string[];

const SERVERS: Record<string, { schema: Schema; permissions: PermissionsOf }> = {
  session: { schema: sessionSchema, permissions: sessionPermissions },
  simulation: { schema: simulationSchema, permissions: simulationPermissions },
};

/**
 * The environment config defaults are computed from: `HOME` (for `~`), `TMPDIR`, and the extra
 * variables a server's schema reads (the simulation server: `WEBOTS_HOME`).
 */
export function configEnv(extraVars: readonly string[] = ["WEBOTS_HOME"]): ConfigEnv {
  const vars: Record<string, string | undefined> = {};
  for (const name of ["HOME", ...extraVars]) vars[name] = Deno.env.get(name);
  return { root: PROJECT_ROOT, vars, tmpDir: Deno.env.get("TMPDIR") || "/tmp" };
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
export function resolveConfigPath(server: string, arg: string | undefined): string {
  if (arg === undefined) return join(PROJECT_ROOT, "config", server, "default.json");
  if (isAbsolute(arg)) return arg;
  return resolve(Deno.env.get("INIT_CWD") ?? Deno.cwd(), arg);
}

async function main(args: string[]): Promise<number> {
  const [server, ...rest] = args;
  const spec = server === undefined ? undefined : SERVERS[server];
  if (server === undefined || spec === undefined) {
    console.error("Usage: launch.ts session|simulation [CONFIG]");
    return 2;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: { help: { type: "boolean", short: "h" } },
    });
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : error}\n\n${usage(server)}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(usage(server));
    return 0;
  }
  if (parsed.positionals.length > 1) {
    console.error("Too many arguments.");
    return 2;
  }
  const configFile = resolveConfigPath(server, parsed.positionals[0]);
  let config;
  try {
    config = await loadConfig(spec.schema, configFile, configEnv());
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      return 1;
    }
    throw error;
  }
  const flags = spec.permissions(config, { root: PROJECT_ROOT, configFile });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `-P=${server}`,
      ...flags,
      join(PROJECT_ROOT, server, "main.ts"),
      configFile,
      WATCH_STDIN_FLAG,
    ],
    cwd: PROJECT_ROOT,
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

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
