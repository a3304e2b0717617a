/**
 * Process control behind one small interface: spawn a program in its own process group, read its
 * merged output as lines, signal the whole group, and stop it with SIGTERM → SIGKILL escalation
 * (`stopProcessGroup`, on an injected clock).
 *
 * The server runs with run access to a few named binaries only, and Deno refuses
 * `Deno.kill(-pgid)` without unscoped `--allow-run`; so a group is signalled by running
 * `/usr/bin/kill -s SIG -- -PGID` through the one command runner. Every child is spawned
 * `detached` (setsid: its pgid is its pid), which is what makes the group — Webots, `webots-bin`,
 * its controllers — one target.
 *
 * @module
 */
import { type Clock, sleep } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import type { RunCommand } from "./command_runner.ts";

/** Environment and working folder of a spawned program. */
export interface SpawnOptions {
  /** Added to the server's own environment. */
  readonly env: Record<string, string>;
  readonly cwd: string;
}

/** A running program and its process group. */
export interface ChildProcessHandle {
  readonly pid: number;
  /**
   * stdout and stderr merged, split into lines (no trailing `\n` / `\r`), ends at EOF. One
   * consumer. The pipes are drained whether or not anyone iterates, so Webots never stalls on a
   * full pipe; unread lines are buffered (the oldest are dropped beyond `MAX_BUFFERED_LINES`).
   */
  readonly lines: AsyncIterable<string>;
  /**
   * Resolves when the process has exited, its group has been SIGKILLed (no grandchild survives
   * the leader) and its output has ended.
   */
  readonly status: Promise<Deno.CommandStatus>;
  /**
   * Sends `signal` to the whole process group. Does nothing once the leader has exited and the
   * group was killed (its id may then be handed out again). `stopProcessGroup` escalates.
   */
  signalGroup(signal: GroupSignal): Promise<void>;
}

/** The signals a process group gets. */
export type GroupSignal = "TERM" | "KILL";

/** Starts programs. */
export interface Spawner {
  /** Starts `command` with `args` (no shell); throws an Error naming `command` if it cannot. */
  spawn(command: string, args: readonly string[], options: SpawnOptions): ChildProcessHandle;
}

/** What the real spawner needs. */
export interface SpawnerDeps {
  /** The `kill` binary used to signal process groups, normally `/usr/bin/kill`. */
  readonly killBinary: string;
  /** Runs `kill`: the one path for short helper programs. */
  readonly runCommand: RunCommand;
  /** Times the output drain after the group was killed. */
  readonly clock: Clock;
  readonly logger: Logger;
}

/** Unread lines kept per process before the oldest are dropped. */
export const MAX_BUFFERED_LINES = 10_000;

/** How long output may go on after the group was killed before the pipes are closed anyway. */
const OUTPUT_DRAIN_MS = 2_000;

/** Creates the spawner that runs real processes. */
export function createSpawner(deps: SpawnerDeps): Spawner {
  return {
    spawn(command, args, options) {
      let child: Deno.ChildProcess;
      try {
        child = new Deno.Command(command, {
          args: [...args],
          cwd: options.cwd,
          env: options.env,
          clearEnv: false,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          detached: true,
        }).spawn();
      } catch (error) {
        throw new Error(`Cannot start ${command}: ${describe(error)}`, { cause: error });
      }
      return supervise(child, command, deps);
    },
  };
}

function describe(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  return error instanceof Error ? error.message : String(error);
}

function supervise(child: Deno.ChildProcess, command: string, deps: SpawnerDeps) {
  const pid = child.pid;
  const logger = deps.logger.child({ pid });
  logger.debug({ command }, "process started");
  const output = new LineQueue();
  const readers = [child.stdout, child.stderr].map((stream) => stream.getReader());
  const pumping = Promise.all(readers.map((reader) => pump(reader, output))).then(() =>
    output.end()
  );

  let groupGone = false;
  const signalGroup = async (signal: GroupSignal) => {
    if (groupGone) return;
    await groupSignal(deps, pid, signal, child);
  };
  const status = (async () => {
    const exit = await child.status;
    // Controllers and other grandchildren must not outlive Webots.
    await groupSignal(deps, pid, "KILL", child);
    groupGone = true;
    const drainLimit = new AbortController();
    const drained = await Promise.race([
      pumping.then(() => true),
      sleep(deps.clock, OUTPUT_DRAIN_MS, drainLimit.signal).then(() => false, () => true),
    ]);
    drainLimit.abort();
    if (!drained) {
      // Something outside the group still holds the pipes; stop reading them.
      logger.warn({}, "output still open after the process group was killed; closing it");
      await Promise.all(readers.map((reader) => reader.cancel().catch(() => {})));
      await pumping;
    }
    logger.debug({ code: exit.code, signal: exit.signal }, "process exited");
    return exit;
  })();

  return { pid, lines: output, status, signalGroup } satisfies ChildProcessHandle;
}

/**
 * Sends `signal` to process group `pgid` through the kill binary. A group that no longer exists
 * is not an error. If the kill binary cannot run, falls back to signalling the leader alone.
 */
async function groupSignal(
  deps: SpawnerDeps,
  pgid: number,
  signal: GroupSignal,
  leader: Deno.ChildProcess,
): Promise<void> {
  try {
    // Exit status 1 means "No such process": the whole group is already gone.
    await deps.runCommand(deps.killBinary, ["-s", signal, "--", `-${pgid}`]);
  } catch {
    try {
      leader.kill(`SIG${signal}`);
    } catch {
      // The leader has already exited.
    }
  }
}

/**
 * Stops a process group: SIGTERM, then up to `graceMs` on `clock` for the process to end, then
 * SIGKILL to the group. Resolves with the exit status once the process is gone.
 */
export async function stopProcessGroup(
  handle: ChildProcessHandle,
  graceMs: number,
  clock: Clock,
  logger: Logger,
): Promise<Deno.CommandStatus> {
  await handle.signalGroup("TERM");
  const grace = new AbortController();
  const ended = await Promise.race([
    handle.status.then(() => true),
    sleep(clock, graceMs, grace.signal).then(() => false, () => true),
  ]);
  grace.abort();
  if (!ended) {
    logger.warn({ pid: handle.pid, graceMs }, "process ignored SIGTERM; sending SIGKILL");
    await handle.signalGroup("KILL");
  }
  return await handle.status;
}

async function pump(reader: ReadableStreamDefaultReader<Uint8Array>, output: LineQueue) {
  const decoder = new TextDecoder();
  let partial = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      partial += decoder.decode(value, { stream: true });
      const parts = partial.split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) output.push(stripCr(line));
    }
  } catch {
    // Cancelled, or the pipe broke: the output ends here.
  }
  partial += decoder.decode();
  if (partial !== "") output.push(stripCr(partial));
}

function stripCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

/** A single-consumer queue of lines that ends once `end()` is called and the buffer is empty. */
class LineQueue implements AsyncIterable<string> {
  #buffer: string[] = [];
  #ended = false;
  #abandoned = false;
  #waiting: ((result: IteratorResult<string>) => void) | undefined;

  push(line: string): void {
    if (this.#abandoned) return;
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      waiting({ value: line, done: false });
      return;
    }
    if (this.#buffer.length >= MAX_BUFFERED_LINES) this.#buffer.shift();
    this.#buffer.push(line);
  }

  end(): void {
    this.#ended = true;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<string> {
    return {
      next: () => {
        const line = this.#buffer.shift();
        if (line !== undefined) return Promise.resolve({ value: line, done: false });
        if (this.#ended || this.#abandoned) {
          return Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve) => this.#waiting = resolve);
      },
      return: () => {
        // The consumer stopped listening; keep draining the pipes but drop what comes.
        this.#abandoned = true;
        this.#buffer = [];
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
