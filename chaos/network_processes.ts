/**
 * The processes of the network-fault campaign: the real session server on the host, a real
 * simulation server (stand-in Webots) and a TCP proxy inside each namespace. Each is started from
 * an argv (prefixed with `ip netns exec <ns>` for the namespace ones), waited for until it prints
 * its ready line, and stopped by pid: SIGTERM, then SIGKILL after a grace period.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { terminate } from "../tests/helpers/terminate.ts";

/** The project root. */
export const ROOT: string = resolve(import.meta.dirname ?? ".", "..");

/** A started process. */
export interface Started {
  readonly pid: number;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Writes one line to its stdin (only when started with `stdin: true`). */
  send(line: string): Promise<void>;
  /** Resolves when its output matches `pattern` after `from` characters (rejects at `timeoutMs`). */
  waitOutput(pattern: RegExp, timeoutMs: number, from?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, SIGKILL after `graceMs`; resolves once it exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `argv` and waits for `ready` in its output. */
export async function startProcess(
  argv: readonly string[],
  ready: RegExp,
  options: { stdin?: boolean; timeoutMs?: number; cwd?: string } = {},
): Promise<Started> {
  const [cmd, ...args] = argv;
  const child = new Deno.Command(cmd!, {
    args,
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: "1" },
    stdin: options.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  let wake = () => {};
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      output += text;
      wake();
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status.then(async (s) => {
    await pumps;
    wake();
    return s;
  });
  let exited = false;
  status.then(() => (exited = true));
  const writer = options.stdin ? child.stdin.getWriter() : undefined;

  const waitOutput = (pattern: RegExp, timeoutMs: number, from = 0) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const timer = setTimeout(() => {
        wake = () => {};
        reject(
          new Error(`no ${pattern} within ${timeoutMs} ms from ${argv.join(" ")}:\n${output}`),
        );
      }, timeoutMs);
      wake = () => {
        const match = output.slice(from).match(pattern);
        if (match || exited) {
          clearTimeout(timer);
          wake = () => {};
          if (match) resolve(match);
          else reject(new Error(`${argv.join(" ")} exited:\n${output}`));
        }
      };
      wake();
    });

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 5000) =>
    stopping ??= (async () => {
      await writer?.close().catch(() => {});
      await terminate(child, status, graceMs);
    })();

  const started: Started = {
    pid: child.pid,
    output: () => output,
    async send(line) {
      if (!writer) throw new Error("started without stdin");
      await writer.write(new TextEncoder().encode(`${line}\n`));
    },
    waitOutput,
    stop,
  };
  try {
    await waitOutput(ready, options.timeoutMs ?? 30_000);
  } catch (error) {
    await stop(1000);
    throw error;
  }
  return started;
}

/** The argv that runs a server through its launcher, as `deno task <server>` does. */
export function serverArgv(server: "session" | "simulation", configFile: string): string[] {
  const deno = Deno.execPath();
  return [
    deno,
    "run",
    "--allow-read",
    "--allow-env",
    `--allow-run=${deno}`,
    join(ROOT, server, "launch.ts"),
    configFile,
  ];
}

/** The argv of the slow/lossy proxy. */
export function proxyArgv(listenPort: number, targetPort: number): string[] {
  return [
    Deno.execPath(),
    "run",
    "--allow-net",
    join(ROOT, "chaos", "tcp_proxy.ts"),
    String(listenPort),
    String(targetPort),
  ];
}
