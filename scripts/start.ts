/**
 * `deno task start [CONFIG]`: both servers in the foreground, the simulation server first, each
 * output line prefixed with `[simulation]` or `[session]`. SIGINT (Ctrl-C), SIGTERM and SIGHUP
 * are forwarded to both launchers, which forward them to the servers, which stop their Webots.
 * Exit status: 0 after a clean stop, non-zero when a server fails to start or exits on its own
 * (the other one is then stopped too).
 *
 * @module
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  type ConfigFiles,
  fileExists,
  resolveConfigs,
  type ServerName,
  SERVERS,
} from "./configs.ts";

/** The project root. */
export const ROOT: string = resolve(import.meta.dirname ?? ".", "..");

/** The line every server prints once it listens. */
const START_LINE = /server running on port \d+ \((no SSL|SSL)\)/;

/** What `runServers` needs. */
export interface RunOptions {
  readonly root: string;
  readonly files: ConfigFiles;
  /** The Deno binary that runs the launchers. */
  readonly deno: string;
  /** Receives every output line, already prefixed. */
  readonly print: (line: string) => void;
}

/** The launcher's command line, the same as `deno task <server> <file>` runs. */
export function launcherArgs(root: string, deno: string, server: ServerName, file: string) {
  return [
    "run",
    "--allow-read",
    "--allow-env",
    `--allow-run=${deno}`,
    join(root, server, "launch.ts"),
    file,
  ];
}

interface Running {
  readonly server: ServerName;
  readonly child: Deno.ChildProcess;
  /** Resolves true once the start line is seen, false if the process ends first. */
  readonly started: Promise<boolean>;
  /** The exit status, once every output line has been printed. */
  readonly status: Promise<Deno.CommandStatus>;
}

function spawn(options: RunOptions, server: ServerName, file: string): Running {
  const child = new Deno.Command(options.deno, {
    args: launcherArgs(options.root, options.deno, server, file),
    cwd: options.root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let markStarted: (started: boolean) => void = () => {};
  const started = new Promise<boolean>((r) => (markStarted = r));
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let rest = "";
    const emit = (line: string) => {
      options.print(`[${server}] ${line.replace(/\r$/, "")}`);
      if (START_LINE.test(line)) markStarted(true);
    };
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop() ?? "";
      lines.forEach(emit);
    }
    if (rest) emit(rest);
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status.then(async (s) => {
    await pumps;
    markStarted(false);
    return s;
  });
  return { server, child, started, status };
}

function signal(running: Running, sig: Deno.Signal): void {
  try {
    running.child.kill(sig);
  } catch {
    // Already exited.
  }
}

/**
 * Starts the configured servers in order, each once the one before listens, and waits for all of
 * them; returns the exit status for the whole.
 */
export async function runServers(options: RunOptions): Promise<number> {
  const running: Running[] = [];
  let stopSignal: Deno.Signal | undefined;
  let stopRequested: () => void = () => {};
  const stopped = new Promise<void>((r) => (stopRequested = r));
  const handlers = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((sig) => {
    const handler = () => {
      stopSignal ??= sig;
      for (const r of running) signal(r, sig);
      stopRequested();
    };
    Deno.addSignalListener(sig, handler);
    return [sig, handler] as const;
  });
  try {
    for (const server of SERVERS) {
      const file = options.files[server];
      if (file === undefined || stopSignal) continue;
      const r = spawn(options, server, file);
      running.push(r);
      const ok = await Promise.race([r.started, stopped.then(() => true)]);
      if (!ok) {
        options.print(`[start] the ${server} server failed to start; stopping`);
        for (const other of running) signal(other, "SIGTERM");
        await Promise.all(running.map((x) => x.status));
        return 1;
      }
    }
    // Whichever ends first: a stop signal, or a server exiting on its own.
    const first = await Promise.race([
      stopped.then(() => undefined),
      ...running.map((r) => r.status.then((status) => ({ r, status }))),
    ]);
    if (first !== undefined && !stopSignal) {
      options.print(
        `[start] the ${first.r.server} server exited (${first.status.code}); stopping the others`,
      );
      for (const r of running) signal(r, "SIGTERM");
      await Promise.all(running.map((r) => r.status));
      return first.status.code || 1;
    }
    const statuses = await Promise.all(running.map((r) => r.status));
    return statuses.find((s) => s.code !== 0)?.code ?? 0;
  } finally {
    for (const [sig, handler] of handlers) Deno.removeSignalListener(sig, handler);
  }
}

/** Usage text of `deno task start`. */
export const USAGE = `Usage: deno task start [CONFIG]

Runs the simulation server, then the session server, in the foreground; Ctrl-C stops both.
CONFIG is a name (config/<server>/<CONFIG>.json, default: default) or the path of a .json file in
a session/ or simulation/ folder (the same rule as server.sh).`;

/** Parses the command line, resolves the configs and runs; returns the exit status. */
export async function main(args: string[], print = console.log): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { help: { type: "boolean", short: "h" } },
    });
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : error}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    print(USAGE);
    return 0;
  }
  if (parsed.positionals.length > 1) {
    console.error(`Too many arguments.\n\n${USAGE}`);
    return 2;
  }
  let files;
  try {
    files = resolveConfigs(parsed.positionals[0], {
      root: ROOT,
      cwd: Deno.env.get("INIT_CWD") ?? Deno.cwd(),
      exists: fileExists,
    });
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 2;
  }
  return await runServers({ root: ROOT, files, deno: Deno.execPath(), print });
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
