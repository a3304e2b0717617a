/**
 * Runs a short helper program (`nvidia-smi`, `cat /proc/net/dev`, `kill`) and collects its output,
 * with a hard time limit so that a hung helper can never pile up nor outlive its caller: at the
 * limit (or when the caller aborts) it gets SIGTERM, and SIGKILL if it is still there `graceMs`
 * later, since a helper stuck in a driver call may well ignore SIGTERM. Once it has exited, its
 * output pipes are read for `graceMs` at most: a child the helper left behind holding them cannot
 * hold up the caller (that child itself is not ended: the helpers run here start none).
 *
 * @module
 */
import { type Clock, systemClock } from "../shared/clock.ts";

/** The outcome of a helper run. */
export interface CommandResult {
  success: boolean;
  stdout: string;
  stderr?: string;
  /** Set when the run was ended for exceeding the time limit: the limit in milliseconds. */
  timedOutAfterMs?: number;
}

/** Runs `cmd args`; rejects only when the program cannot be started (absent, not permitted). */
export type RunCommand = (
  cmd: string,
  args: string[],
  options?: { signal?: AbortSignal },
) => Promise<CommandResult>;

/** Options of `createCommandRunner`. */
export interface CommandRunnerOptions {
  /** Environment added to the inherited one. */
  readonly env?: Record<string, string>;
  /** The child is ended after this many milliseconds (default 10 s). */
  readonly timeoutMs?: number;
  /** Milliseconds between SIGTERM and SIGKILL when a child is ended (default 1 s). */
  readonly graceMs?: number;
  /** Times the limit (default: the system clock). */
  readonly clock?: Clock;
}

/** The real `RunCommand`, on `Deno.Command`. */
export function createCommandRunner(options: CommandRunnerOptions = {}): RunCommand {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const graceMs = options.graceMs ?? 1000;
  const clock = options.clock ?? systemClock;
  return async (cmd, args, { signal } = {}) => {
    const child = new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      ...(options.env ? { env: options.env } : {}),
    }).spawn();
    let timedOut = false;
    let killTimer: unknown;
    const send = (name: Deno.Signal) => {
      try {
        child.kill(name);
      } catch {
        // Already exited.
      }
    };
    const end = () => {
      if (killTimer !== undefined) return;
      send("SIGTERM");
      killTimer = clock.setTimeout(() => send("SIGKILL"), graceMs);
    };
    const limit = clock.setTimeout(() => {
      timedOut = true;
      end();
    }, timeoutMs);
    signal?.addEventListener("abort", end, { once: true });
    if (signal?.aborted) end();
    const stdout = collect(child.stdout);
    const stderr = collect(child.stderr);
    let pipesTimer: unknown;
    try {
      const status = await child.status;
      // The pipes close when the helper exits, unless a child of its own still holds them: wait
      // for them a grace period at most, then keep what came.
      await Promise.race([
        Promise.all([stdout.done, stderr.done]),
        new Promise<void>((resolve) => (pipesTimer = clock.setTimeout(resolve, graceMs))),
      ]);
      await Promise.all([stdout.cancel(), stderr.cancel()]);
      return {
        success: status.success && !timedOut,
        stdout: stdout.text(),
        stderr: stderr.text(),
        ...(timedOut ? { timedOutAfterMs: timeoutMs } : {}),
      };
    } finally {
      if (pipesTimer !== undefined) clock.clearTimeout(pipesTimer);
      clock.clearTimeout(limit);
      if (killTimer !== undefined) clock.clearTimeout(killTimer);
      signal?.removeEventListener("abort", end);
    }
  };
}

/** Reads a pipe to its end in the background; `cancel()` stops early and waits for the reader. */
function collect(stream: ReadableStream<Uint8Array>) {
  const chunks: Uint8Array[] = [];
  const reader = stream.getReader();
  const done = (async () => {
    try {
      for (let read = await reader.read(); !read.done; read = await reader.read()) {
        chunks.push(read.value);
      }
    } catch {
      // Cancelled, or the pipe broke: keep what came.
    }
  })();
  return {
    done,
    async cancel() {
      await reader.cancel().catch(() => {});
      await done;
    },
    text: () => {
      const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const chunk of chunks) {
        bytes.set(chunk, at);
        at += chunk.length;
      }
      return new TextDecoder().decode(bytes);
    },
  };
}
