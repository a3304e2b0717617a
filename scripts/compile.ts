/**
 * `deno task compile [CONFIG]`: one self-contained executable per server,
 * `dist/webots-session-server` and `dist/webots-simulation-server`, with the permissions the
 * launcher would grant built in (the `session`/`simulation` permission set of deno.json plus the
 * flags derived from CONFIG, default `default`). Run one as `dist/webots-session-server FILE`;
 * its permissions name the folders, ports and programs of the config it was compiled with.
 *
 * `deno compile` downloads its runtime (denort) from dl.deno.land; where that is impossible it
 * fails, and this script says so and how to provide the runtime (`DENORT_BIN`).
 *
 * @module
 */
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../shared/config.ts";
import { sessionConfigEnv, sessionSchema } from "../session/config.ts";
import { sessionPermissions } from "../session/permissions.ts";
import { simulationConfigEnv, simulationSchema } from "../simulation/config.ts";
import { simulationPermissions } from "../simulation/permissions.ts";
import { fileExists, resolveConfigs, type ServerName } from "./configs.ts";
import { ROOT } from "./start.ts";

/** The executable made for `server`. */
export function outputPath(root: string, server: ServerName): string {
  return join(root, "dist", `webots-${server}-server`);
}

/** The permission flags the launcher would add for `server` with `configFile`. */
export async function permissionFlags(server: ServerName, configFile: string): Promise<string[]> {
  const context = { root: ROOT, configFile };
  if (server === "session") {
    return sessionPermissions(
      await loadConfig(sessionSchema, configFile, sessionConfigEnv()),
      context,
    );
  }
  return simulationPermissions(
    await loadConfig(simulationSchema, configFile, simulationConfigEnv()),
    context,
  );
}

/**
 * Modules a server loads as Workers: `deno compile` must be told to include them (it follows only
 * static imports). Without it the session server would log that its poll worker cannot start and
 * poll in its main thread.
 */
const WORKERS: Readonly<Record<ServerName, readonly string[]>> = {
  session: [join(ROOT, "session", "poll_worker.ts")],
  simulation: [],
};

/** `deno compile`'s arguments for `server`. */
export function compileArgs(server: ServerName, flags: string[]): string[] {
  return [
    "compile",
    `--config=${join(ROOT, "deno.json")}`,
    `-P=${server}`,
    ...flags,
    ...WORKERS[server].map((module) => `--include=${module}`),
    "-o",
    outputPath(ROOT, server),
    join(ROOT, server, "main.ts"),
  ];
}

/** Explains a failed compile when the cause is the runtime download. */
export function explainFailure(stderr: string): string | undefined {
  if (!/denort|dl\.deno\.land/.test(stderr)) return undefined;
  return `deno compile must download its runtime (denort ${Deno.version.deno}) from dl.deno.land, ` +
    `and that failed (see above). Where the download works this task works unchanged. Offline, ` +
    `download denort-<target>.zip for ${Deno.version.deno} elsewhere, unzip it and run ` +
    `DENORT_BIN=/path/to/denort deno task compile. Until then run the servers with ` +
    `deno task session|simulation or ./server.sh.`;
}

async function compileOne(server: ServerName, configFile: string): Promise<boolean> {
  const flags = await permissionFlags(server, configFile);
  const args = compileArgs(server, flags);
  console.log(`$ deno ${args.map((a) => relative(ROOT, a) || a).join(" ")}`);
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "inherit",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  await Deno.stderr.write(out.stderr);
  if (out.success) {
    console.log(`Compiled ${relative(ROOT, outputPath(ROOT, server))}`);
    return true;
  }
  console.error(`\nCould not compile the ${server} server.`);
  const why = explainFailure(stderr);
  if (why) console.error(why);
  return false;
}

/** Compiles both servers; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true });
  let files;
  try {
    files = resolveConfigs(positionals[0], { root: ROOT, cwd: Deno.cwd(), exists: fileExists });
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 2;
  }
  await Deno.mkdir(join(ROOT, "dist"), { recursive: true });
  let ok = true;
  for (const server of ["session", "simulation"] as const) {
    const file = files[server];
    if (file === undefined) continue;
    try {
      ok = await compileOne(server, file) && ok;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      console.error(error.message);
      ok = false;
    }
  }
  return ok ? 0 : 1;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
