/**
 * The client side of the simulation benchmarks: `/client` sockets that wait for `webots:`, the
 * stand-in's record of each run, the 1 ms watch of a run's clean-up, and sessions run one after
 * the other.
 *
 * @module
 */
import { join, relative } from "node:path";
import {
  isAlive,
  type SimulationFixture,
  type WebotsRecord,
} from "../tests/helpers/simulation_fixture.ts";

/** Field 22 of `/proc/<pid>/stat` (start time in clock ticks), or undefined when it is gone. */
function startTime(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/**
 * The stand-ins the bench saw started and not yet saw reaped, with their start times, for a
 * last-resort clean-up after a failed run. A run spawns thousands of processes and pids wrap
 * (`pid_max` is 32,768 here): a pid is only signalled while it still has the start time it had.
 */
export class StandIns {
  readonly #live = new Map<number, string>();

  /** Records a running stand-in. */
  add(pid: number): void {
    const started = startTime(pid);
    if (started !== undefined) this.#live.set(pid, started);
  }

  /** Forgets a stand-in seen reaped. */
  gone(pid: number): void {
    this.#live.delete(pid);
  }

  /** SIGKILL to each recorded stand-in that is still the same process. */
  killLeftovers(): void {
    for (const [pid, started] of this.#live) {
      if (startTime(pid) !== started || !isAlive(pid)) continue;
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone meanwhile */ }
    }
    this.#live.clear();
  }
}

/** The project (under the fixture's projects folder) and world every session starts. */
export const PROJECT = "bench/small";
export const WORLD = "small.wbt";
/** The `webots:` reply; group 1 is the streaming port. */
export const WEBOTS_URL = /^webots:wss?:\/\/[^/]+:(\d+)/;
/** How long a `start` may wait for its `webots:` reply. */
export const REPLY_TIMEOUT_MS = 60_000;
const CLEANUP_TIMEOUT_MS = 15_000;

/** One measured session: client-side times (performance.now) and what it ran. */
export interface Measured {
  sendEpoch: number;
  replyEpoch: number;
  startMs: number;
  port: number;
  pid: number;
  folder: string;
  closeEpoch: number;
  cleanup?: Cleanup;
}

/** Milliseconds after the close until each part of the clean-up was seen. */
export interface Cleanup {
  exitedMs: number;
  reapedMs: number;
  folderMs: number;
  totalMs: number;
}

/** A `/client` socket whose first `webots:` (or `error:`) reply is awaited. */
export interface BenchSocket {
  readonly socket: WebSocket;
  readonly reply: Promise<{ text: string; at: number }>;
  readonly closed: Promise<void>;
}

export function openSocket(url: string): Promise<BenchSocket> {
  const socket = new WebSocket(url);
  let settle: (r: { text: string; at: number }) => void;
  let fail: (e: Error) => void;
  const reply = new Promise<{ text: string; at: number }>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  reply.catch(() => {}); // Awaited later, or not at all when opening fails.
  const closed = new Promise<void>((resolve) => socket.addEventListener("close", () => resolve()));
  socket.onmessage = (event) => {
    const at = performance.now();
    const text = String(event.data);
    if (text.startsWith("webots:")) settle({ text, at });
    else if (text.startsWith("error:")) fail(new Error(`server replied ${text}`));
  };
  socket.addEventListener("close", () => fail(new Error("socket closed before webots:")));
  return new Promise((resolve, reject) => {
    socket.onopen = () => resolve({ socket, reply, closed });
    socket.onerror = () => reject(new Error(`cannot connect to ${url}`));
  });
}

/** Rejects after `ms`, or at the deadline if sooner. */
export function within<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
  deadline: number,
): Promise<T> {
  const wait = Math.max(0, Math.min(ms, deadline - performance.now()));
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out (${wait} ms) waiting for ${what}`)),
        wait,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

/** One turn of the 1 ms polls. */
export const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Polls every 1 ms until every process is reaped (its /proc entry gone) and every folder is
 * removed; returns the clean-up times measured from `since` (performance.now).
 */
export async function watchCleanup(
  targets: readonly { pid: number; folder: string }[],
  since: number,
  deadline: number,
): Promise<Cleanup[]> {
  const seen = targets.map(() => ({ exited: NaN, reaped: NaN, folder: NaN }));
  const limit = Math.min(deadline, since + CLEANUP_TIMEOUT_MS);
  while (true) {
    const now = performance.now() - since;
    let pending = 0;
    targets.forEach(({ pid, folder }, i) => {
      const s = seen[i]!;
      if (Number.isNaN(s.exited) && !isAlive(pid)) s.exited = now;
      if (Number.isNaN(s.reaped) && !exists(`/proc/${pid}`)) s.reaped = now;
      if (Number.isNaN(s.folder) && !exists(folder)) s.folder = now;
      if (Number.isNaN(s.reaped) || Number.isNaN(s.folder)) pending++;
    });
    if (pending === 0) break;
    if (performance.now() > limit) {
      throw new Error(`timed out waiting for ${pending} Webots to be cleaned up`);
    }
    await tick();
  }
  return seen.map((s) => ({
    exitedMs: s.exited,
    reapedMs: s.reaped,
    folderMs: s.folder,
    totalMs: Math.max(s.reaped, s.folder),
  }));
}

/** The stand-in's record for the Webots streaming on `port` (written before it gets ready). */
export async function takeRecord(fixture: SimulationFixture, port: number): Promise<WebotsRecord> {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const record = (await fixture.records()).find((r) =>
      r.args.some((a) => a.startsWith(`--stream="port=${port};`))
    );
    if (record) {
      // Consumed: the next session on this port finds its own.
      await Deno.remove(join(fixture.recordDir, `${record.pid}.json`));
      return record;
    }
    await tick();
  }
  throw new Error(`no stand-in record for port ${port}`);
}

/** The instance folder (first level under instancesDir) of the world file Webots was given. */
export function instanceFolder(fixture: SimulationFixture, record: WebotsRecord): string {
  const world = record.args[record.args.length - 1] ?? "";
  const first = relative(fixture.instancesDir, world).split("/")[0];
  if (!first || first === "..") throw new Error(`world ${world} is not in an instance folder`);
  return join(fixture.instancesDir, first);
}

export function startMessage(fixture: SimulationFixture): string {
  return JSON.stringify({
    start: { url: `file://${join(fixture.projectsDir, PROJECT, "worlds", WORLD)}` },
  });
}

/** A `performance.now()` time as epoch milliseconds (the server log's clock). */
export const epoch = (at: number) => performance.timeOrigin + at;

/** Runs sessions one after the other, each cleaned up before the next. */
export async function sequential(
  fixture: SimulationFixture,
  count: number,
  deadline: number,
  pids: StandIns,
  progress: (line: string) => void,
): Promise<Measured[]> {
  const out: Measured[] = [];
  for (let i = 0; i < count; i++) {
    const client = await within(openSocket(fixture.clientUrl), 10_000, "connect", deadline);
    try {
      const t0 = performance.now();
      client.socket.send(startMessage(fixture));
      const reply = await within(client.reply, REPLY_TIMEOUT_MS, "webots: reply", deadline);
      const port = Number(reply.text.match(WEBOTS_URL)?.[1]);
      const record = await takeRecord(fixture, port);
      pids.add(record.pid);
      const folder = instanceFolder(fixture, record);
      const t1 = performance.now();
      client.socket.close();
      const [cleanup] = await watchCleanup([{ pid: record.pid, folder }], t1, deadline);
      pids.gone(record.pid);
      await within(client.closed, 10_000, "socket close", deadline);
      out.push({
        sendEpoch: epoch(t0),
        replyEpoch: epoch(reply.at),
        startMs: reply.at - t0,
        port,
        pid: record.pid,
        folder,
        closeEpoch: epoch(t1),
        ...(cleanup && { cleanup }),
      });
    } finally {
      client.socket.close();
    }
    if ((i + 1) % 50 === 0) progress(`  ${i + 1}/${count} sequential sessions`);
  }
  return out;
}
