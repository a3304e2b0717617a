/**
 * Runs a short helper program (`nvidia-smi`, `cat /proc/net/dev`) and collects its output, with a
 * hard time limit so that a hung helper can never pile up.
 *
 * @module
 */
import { type Clock, systemClock } from "../shared/clock.ts";

/** The outcome of a helper run. */
export interface CommandResult {
  success: boolean;
  stdout: string;
  stderr?: string;
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
  /** The child is killed after this many milliseconds (default 10 s). */
  readonly timeoutMs?: number;
  /** Times the limit (default: the system clock). */
  readonly clock?: Clock;
}

/** The real `RunCommand`, on `Deno.Command`. */
export function createCommandRunner(options: CommandRunnerOptions = {}): RunCommand {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const clock = options.clock ?? systemClock;
  return async (cmd, args, { signal } = {}) => {
    const limit = new AbortController();
    const timer = clock.setTimeout(() => limit.abort(), timeoutMs);
    const combined = signal ? AbortSignal.any([signal, limit.signal]) : limit.signal;
    try {
      const out = await new Deno.Command(cmd, {
        args,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: combined,
        ...(options.env ? { env: options.env } : {}),
      }).output();
      const decoder = new TextDecoder();
      return {
        success: out.success,
        stdout: decoder.decode(out.stdout),
        stderr: decoder.decode(out.stderr),
      };
    } finally {
      clock.clearTimeout(timer);
    }
  };
}
