/**
 * Test-side views of a run's processes, read straight from `/proc` (tests run with `-A`), so that
 * they do not depend on the server's own scan: the processes carrying a marker, strangers that
 * must survive, and the wait for a set of pids to end.
 *
 * @module
 */
import { join } from "node:path";
import { eventually, isAlive } from "./simulation_fixture.ts";

/** What the stand-in Webots records about one run, escaped children included. */
export interface EscapingRecord {
  pid: number;
  childPids: number[];
  escapedPids: number[];
  env: Record<string, string | undefined>;
}

/** Pids of live processes whose environment holds `WEBOTS_SERVER_RUN=<marker>` exactly. */
export function markedPids(marker: string): number[] {
  const wanted = `WEBOTS_SERVER_RUN=${marker}`;
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    try {
      const environ = new TextDecoder().decode(Deno.readFileSync(`/proc/${pid}/environ`));
      if (environ.split("\0").includes(wanted) && isAlive(pid)) pids.push(pid);
    } catch {
      // Gone, or not readable.
    }
  }
  return pids.sort((a, b) => a - b);
}

/** The markers of the run records in `<instancesDir>/.webots-runs/`. */
export async function recordedMarkers(instancesDir: string): Promise<string[]> {
  const folder = join(instancesDir, ".webots-runs");
  const markers: string[] = [];
  for await (const entry of Deno.readDir(folder)) {
    if (!entry.name.endsWith(".json")) continue;
    const record = JSON.parse(await Deno.readTextFile(join(folder, entry.name)));
    if (typeof record.marker === "string") markers.push(record.marker);
  }
  return markers;
}

/**
 * A `sleep 3600` of the test's own, in a session of its own (like the escaped children), with
 * `env` added to its environment. Disposing of it kills it.
 */
export function stranger(env: Record<string, string> = {}) {
  const child = new Deno.Command("sleep", {
    args: ["3600"],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  return {
    pid: child.pid,
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone (which a test then reports).
      }
      await child.status;
    },
  };
}

/** Waits until every pid has ended; SIGKILL reaches a process a moment after `kill` returns. */
export async function allEnd(pids: readonly number[], timeoutMs = 10_000): Promise<void> {
  for (const pid of pids) await eventually(() => !isAlive(pid), timeoutMs, `${pid} to end`);
}

/** SIGKILLs every pid still alive (clean-up after a failed test). */
export function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      if (isAlive(pid)) Deno.kill(pid, "SIGKILL");
    } catch {
      // Gone in between.
    }
  }
}
