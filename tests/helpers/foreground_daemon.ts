/**
 * A daemon (Apache, nginx) run in the foreground by a test, with its configs and runtime files in
 * a temp folder that the returned handle owns: started, waited for until it serves, stopped by
 * its pid (SIGTERM, then SIGKILL after a grace period), its folder removed. Used by the reverse-
 * proxy tests (tests/e2e/proxy/proxy_process.ts) and the load balancer of the several-session-
 * servers test (tests/helpers/nginx_balancer.ts).
 *
 * @module
 */
import { join } from "node:path";
import { terminate } from "./terminate.ts";

/** A running daemon. */
export interface ForegroundDaemon {
  readonly pid: number;
  /** Its stdout/stderr and `<dir>/error.log`, for a failure message. */
  output(): Promise<string>;
  /** SIGTERM (SIGKILL after `graceMs`), waits for the exit, removes the folder; idempotent. */
  stop(graceMs?: number): Promise<Deno.CommandStatus>;
}

/** What to run and how to know it serves. */
export interface DaemonSpec {
  /** Its name in messages, e.g. `nginx`. */
  readonly name: string;
  /** The temp folder of its files; the daemon's handle removes it (also when it fails to start). */
  readonly dir: string;
  /** The program and its arguments. */
  readonly command: readonly string[];
  /** What to install when the program cannot be run, e.g. `apt-get install -y nginx`. */
  readonly install: string;
  /** Resolves true once it serves. */
  readonly ready: () => Promise<boolean>;
  readonly timeoutMs?: number;
}

/**
 * Starts the daemon and resolves once `ready()` holds; throws with its output (and leaves nothing
 * behind) when it exits first or is not ready within `timeoutMs` (default 20 s).
 */
export async function startForegroundDaemon(spec: DaemonSpec): Promise<ForegroundDaemon> {
  const { name, dir } = spec;
  const timeoutMs = spec.timeoutMs ?? 20_000;
  let child: Deno.ChildProcess;
  try {
    const [program, ...args] = spec.command;
    child = new Deno.Command(program!, {
      args,
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw new Error(`cannot start ${name} (${spec.install}?)`, { cause: error });
  }
  let text = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text += chunk;
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status.then(async (s) => {
    await pumps;
    return s;
  });
  let exited = false;
  void status.then(() => (exited = true));
  const output = async () => {
    let log = "";
    try {
      log = await Deno.readTextFile(join(dir, "error.log"));
    } catch {
      // Not written (yet).
    }
    return `${name} output:\n${text}\n${name} error log:\n${log}`;
  };
  let stopped: Promise<Deno.CommandStatus> | undefined;
  const stop = (graceMs = 10_000) => {
    stopped ??= (async () => {
      const result = await terminate(child, status, graceMs);
      await Deno.remove(dir, { recursive: true });
      return result;
    })();
    return stopped;
  };
  const deadline = Date.now() + timeoutMs;
  try {
    while (!(await spec.ready())) {
      if (exited) throw new Error(`${name} exited before serving`);
      if (Date.now() > deadline) throw new Error(`${name} did not serve in ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    const said = await output();
    await stop(2_000);
    throw new Error(`${error instanceof Error ? error.message : error}\n${said}`);
  }
  return { pid: child.pid, output, stop };
}
