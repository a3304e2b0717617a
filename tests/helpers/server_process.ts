/**
 * Starts a real server as a child process the way `deno task session|simulation` does (through
 * the launcher, with the derived permissions), waits for its start line, and stops it.
 *
 * @module
 */
import { join, resolve } from "node:path";

/** The project root. */
export const ROOT: string = resolve(import.meta.dirname ?? ".", "..", "..");

/** A running server. */
export interface ServerProcess {
  /** The port from the start line. */
  readonly port: number;
  /** `http://127.0.0.1:<port>` (or https). */
  readonly baseUrl: string;
  /** The launcher's pid (the server is its child). */
  readonly pid: number;
  /** Everything the process printed so far (stdout and stderr interleaved). */
  output(): string;
  /** SIGTERM (or `signal`), then waits for the exit. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /** Resolves when the process exits. */
  readonly status: Promise<Deno.CommandStatus>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of `startServer`. */
export interface StartOptions {
  /** Folder for the config file; defaults to a new temp folder. */
  readonly dir?: string;
  readonly env?: Record<string, string>;
  /** Milliseconds to wait for the start line (default 20 s). */
  readonly timeoutMs?: number;
  /**
   * A command the launcher runs under, given the launcher's command line as its last arguments
   * (e.g. `unshare` and a shell that makes mounts, then `exec "$@"`).
   */
  readonly wrap?: readonly string[];
}

/** Runs the launcher with `args` and returns its exit status and output (for config errors). */
export async function runLauncher(
  server: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: launcherArgs(server, args),
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

function launcherArgs(server: string, args: string[]): string[] {
  return [
    "run",
    "--allow-read",
    "--allow-env",
    `--allow-run=${Deno.execPath()}`,
    join(ROOT, server, "launch.ts"),
    ...args,
  ];
}

/** Writes `config` to a file and starts `server` with it; throws with the output if it fails. */
export async function startServer(
  server: "session" | "simulation",
  config: Record<string, unknown>,
  options: StartOptions = {},
): Promise<ServerProcess> {
  // A folder made here is this server's: removed when it stops (or fails to start).
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: `${server}-test-` });
  const removeOwnDir = async () => {
    if (ownDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const configFile = join(dir, `${server}.json`);
  await Deno.writeTextFile(configFile, JSON.stringify(config, null, 2));
  const [program, ...prefix] = [...options.wrap ?? [], Deno.execPath()];
  const child = new Deno.Command(program!, {
    args: [...prefix, ...launcherArgs(server, [configFile])],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  let resolvePort: (port: number) => void;
  const portPromise = new Promise<number>((r) => (resolvePort = r));
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      output += chunk;
      const match = output.match(/server running on port (\d+) \((no SSL|SSL)\)/);
      if (match) resolvePort(Number(match[1]));
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status.then(async (s) => {
    await pumps;
    return s;
  });
  const timeoutMs = options.timeoutMs ?? 20_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const port = await Promise.race([
    portPromise,
    status.then((s) => {
      throw new Error(`${server} server exited (${s.code}) before listening:\n${output}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${server} server did not start in ${timeoutMs} ms:\n${output}`)),
        timeoutMs,
      );
    }),
  ]).catch(async (error) => {
    clearTimeout(timer);
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await status;
    await removeOwnDir();
    throw error;
  });
  clearTimeout(timer);
  const ssl = /running on port \d+ \(SSL\)/.test(output);
  let stopped: Promise<Deno.CommandStatus> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    stopped ??= (async () => {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      const result = await status;
      await removeOwnDir();
      return result;
    })();
    return stopped;
  };
  const started: ServerProcess = {
    port,
    baseUrl: `${ssl ? "https" : "http"}://127.0.0.1:${port}`,
    pid: child.pid,
    output: () => output,
    stop,
    status,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
  startedInTest?.push(started);
  return started;
}

/** The servers the running `serverTest` started (tests in one file run one at a time). */
let startedInTest: ServerProcess[] | undefined;

/**
 * `Deno.test` for process-level tests: every server `startServer` starts during `fn` is stopped
 * (and its exit awaited) when `fn` ends, whatever happens, and its output is printed only when
 * `fn` fails, so a green run stays quiet and a red one shows what the server said.
 */
export function serverTest(
  definition: string | {
    name: string;
    ignore?: boolean;
    fn: (t: Deno.TestContext) => Promise<void>;
  },
  testFn?: (t: Deno.TestContext) => Promise<void>,
): void {
  const { name, ignore = false, fn } = typeof definition === "string"
    ? { name: definition, fn: testFn! }
    : definition;
  Deno.test({ name, ignore }, async (t) => {
    const started: ServerProcess[] = [];
    startedInTest = started;
    const printOutput = async () => {
      await Promise.all(started.map((server) => server.stop()));
      for (const server of started) {
        console.error(
          `--- output of the server started by "${name}" (launcher pid ${server.pid}) ---`,
        );
        console.error(server.output());
      }
    };
    // A failed step does not throw: the context the test gets tells when one fails.
    let stepFailed = false;
    const step = (async (...args: unknown[]) => {
      const passed = await (t.step as (...a: unknown[]) => Promise<boolean>)(...args);
      if (!passed) stepFailed = true;
      return passed;
    }) as Deno.TestContext["step"];
    const context: Deno.TestContext = Object.create(t, { step: { value: step } });
    try {
      await fn(context);
      if (stepFailed) await printOutput();
    } catch (error) {
      await printOutput();
      throw error;
    } finally {
      startedInTest = undefined;
      await Promise.all(started.map((server) => server.stop()));
    }
  });
}

/** A TCP port that was free a moment ago (bound on 0.0.0.0, then released). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * A free port `p` such that `p+1 … p+count` are free too (for the simulation server, whose Webots
 * instances stream on the ports after its own).
 */
export function freePortRange(count: number): number {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    const held: Deno.Listener[] = [];
    try {
      for (let p = base; p <= base + count; p++) {
        held.push(Deno.listen({ hostname: "0.0.0.0", port: p }));
      }
      return base;
    } catch {
      // Some port in the range is taken: try another base.
    } finally {
      for (const l of held) l.close();
    }
  }
  throw new Error(`no free range of ${count + 1} ports`);
}

/** The server process a launcher started (its only child). */
export function serverPid(launcherPid: number): number {
  const children = Deno.readTextFileSync(`/proc/${launcherPid}/task/${launcherPid}/children`)
    .trim().split(/\s+/).filter(Boolean).map(Number);
  if (children.length !== 1) throw new Error(`launcher ${launcherPid} children: ${children}`);
  return children[0]!;
}
