/**
 * Runs a short helper program (`nvidia-smi`, `cat /proc/net/dev`, `kill`) and collects its output,
 * with a hard time limit so that a hung helper can never pile up nor outlive its caller: at the
 * limit (or when the caller aborts) it gets SIGTERM, and SIGKILL if it is still there `graceMs`
 * later, since a helper stuck in a driver call may well ignore SIGTERM.
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
    try {
      const out = await child.output();
      const decoder = new TextDecoder();
      return {
        success: out.success && !timedOut,
        stdout: decoder.decode(out.stdout),
        stderr: decoder.decode(out.stderr),
        ...(timedOut ? { timedOutAfterMs: timeoutMs } : {}),
      };
    } finally {
      clock.clearTimeout(limit);
      if (killTimer !== undefined) clock.clearTimeout(killTimer);
      signal?.removeEventListener("abort", end);
    }
  };
}
