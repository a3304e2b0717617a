/**
 * Process control behind one small interface: spawn a program in its own process group, read its
 * merged output as lines, signal the whole group, and stop it with SIGTERM → SIGKILL escalation
 * (`stopProcessGroup`, on an injected clock).
 *
 * The server runs with run access to a few named binaries only, and Deno refuses
 * `Deno.kill(-pgid)` without unscoped `--allow-run`; so a group is signalled by running
 * `/usr/bin/kill -s SIG -- -PGID` through the one command runner. Every child is spawned
 * `detached` (setsid: its pgid is its pid), which is what makes the group — Webots, `webots-bin`,
 * its controllers — one target. Descendants that leave the group (setsid, setpgid) are found and
 * ended by the run's marker instead (`run_processes.ts`, used by `webots_run.ts`).
 *
 * @module
 */
import { type Clock, sleep } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import { parseWebotsLine } from "../shared/protocol.ts";
import type { RunCommand } from "./command_runner.ts";
import { type LineKind, LineQueue } from "./line_queue.ts";
import { LineSplitter, MAX_LINE_BYTES } from "./line_splitter.ts";

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
   * full pipe. A line longer than `MAX_LINE_BYTES` is cut (its head is kept, one warning is
   * logged); unread lines are buffered, and beyond `MAX_BUFFERED_LINES` other lines are dropped
   * and runs of `.` coalesced while `open` and mode lines are kept (see `LineQueue`).
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
  const output = new LineQueue({
    classify: webotsLineKind,
    onDropped: (dropped) =>
      logger.warn({ dropped }, "output came faster than it was read: lines dropped"),
  });
  const readers = [child.stdout.getReader(), child.stderr.getReader()];
  const pumping = Promise.all([
    pump(readers[0]!, "stdout", output, logger),
    pump(readers[1]!, "stderr", output, logger),
  ]).then(() => output.end());

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

/** How the output queue treats a Webots line once it lags: see `LineQueue`. */
function webotsLineKind(line: string): LineKind {
  switch (parseWebotsLine(line).kind) {
    case "open":
    case "mode":
      return "keep";
    case "activity":
      return "activity";
    case "other":
      return "other";
  }
}

/** Reads one pipe into `output`: bytes scanned once, lines capped at `MAX_LINE_BYTES`. */
async function pump(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  stream: "stdout" | "stderr",
  output: LineQueue,
  logger: Logger,
) {
  const splitter = new LineSplitter({
    onCut: ({ keptBytes, droppedBytes }) =>
      logger.warn(
        { stream, keptBytes, droppedBytes, maxLineBytes: MAX_LINE_BYTES },
        "output line too long: cut",
      ),
  });
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const line of splitter.push(value)) output.push(line);
    }
  } catch {
    // Cancelled, or the pipe broke: the output ends here.
  }
  for (const line of splitter.end()) output.push(line);
}
