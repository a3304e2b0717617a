/**
 * The per-session cost while the simulation server holds many sessions (issue 11): sessions
 * started and closed one at a time on an idle server, and the same while `held` other sessions
 * (each a running stand-in Webots with its folder, record and port) stay open, in alternating
 * blocks of the same run, so that both see the same machine.
 *
 * A block: `samples / blocks` single sessions on the idle server; then `held` sessions opened a
 * few at a time (not a burst: a burst measures queueing); then as many single sessions as before,
 * one at a time, beside them; then the held ones closed and their clean-up awaited. The held
 * stand-ins are checked alive after each loaded block (none may have ended under the measure).
 *
 * The client's and the server's CPU time over each kind of block tell which side was busy: the
 * client (this process) only waits for a reply and polls two paths every 1 ms.
 *
 * @module
 */
import { isAlive, type SimulationFixture } from "../tests/helpers/simulation_fixture.ts";
import {
  type BenchSocket,
  instanceFolder,
  type Measured,
  openSocket,
  REPLY_TIMEOUT_MS,
  sequential,
  type StandIns,
  startMessage,
  takeRecord,
  watchCleanup,
  WEBOTS_URL,
  within,
} from "./simulation_client.ts";
import { machineCpuSeconds } from "./wrk.ts";

/** Options of the held-sessions comparison. */
export interface HeldOptions {
  /** Sessions held open beside the measured one. */
  readonly held: number;
  /** Measured sessions per mode (idle, loaded). */
  readonly samples: number;
  /** Idle/loaded alternations the samples are split into. */
  readonly blocks: number;
  /** Held sessions opened at the same time while ramping up. */
  readonly rampBatch?: number;
  /** The server's pid (not the launcher's), for its CPU time. */
  readonly serverPid: number;
  readonly deadline: number;
  /** The stand-ins running, for the bench's last-resort clean-up. */
  readonly pids: StandIns;
  readonly progress: (line: string) => void;
  /** Called after each block, all its sessions closed (to read the server's log before it rotates). */
  readonly afterBlock?: () => Promise<void>;
}

/** CPU seconds used over the measured blocks of one mode, and their wall time. */
export interface CpuShare {
  readonly wallSeconds: number;
  /** This process (the load generator): user + system. */
  readonly clientCpuSeconds: number;
  /** The server, with the helpers it ran and reaped (`ps`, `cat`, `grep`, `kill`). */
  readonly serverCpuSeconds: number;
  /** Every core's busy time (`/proc/stat`): the rest is other work on the machine. */
  readonly machineCpuSeconds: number;
}

/** What the comparison measured. */
export interface HeldResult {
  readonly idle: Measured[];
  readonly loaded: Measured[];
  readonly idleCpu: CpuShare;
  readonly loadedCpu: CpuShare;
  /** Milliseconds to open all held sessions, per block. */
  readonly rampUpMs: number[];
  /** Milliseconds from closing all held sessions to all of them cleaned up, per block. */
  readonly rampDownMs: number[];
  /** Held stand-ins found alive after each loaded block (each must equal `held`). */
  readonly heldAliveAfter: number[];
  /** Server CPU per wall second while holding them, nothing else happening (1 s, block 1). */
  readonly heldIdleServerCpuShare: number;
}

/** Linux's USER_HZ: the unit of the times in `/proc/<pid>/stat`. */
const TICKS_PER_SECOND = 100;

/** utime + stime (+ cutime + cstime with `children`) of a process, in seconds. */
function cpuSeconds(pid: number | "self", children: boolean): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  const own = (f[11] ?? 0) + (f[12] ?? 0);
  return (own + (children ? (f[13] ?? 0) + (f[14] ?? 0) : 0)) / TICKS_PER_SECOND;
}

/** Wall, client and server time from here to the returned function's call. */
function cpuMeter(serverPid: number) {
  const wall = performance.now();
  const client = cpuSeconds("self", false);
  const server = cpuSeconds(serverPid, true);
  const machine = machineCpuSeconds().busy;
  return (): CpuShare => ({
    wallSeconds: (performance.now() - wall) / 1000,
    clientCpuSeconds: cpuSeconds("self", false) - client,
    serverCpuSeconds: cpuSeconds(serverPid, true) - server,
    machineCpuSeconds: machineCpuSeconds().busy - machine,
  });
}

function addCpu(a: CpuShare, b: CpuShare): CpuShare {
  return {
    wallSeconds: a.wallSeconds + b.wallSeconds,
    clientCpuSeconds: a.clientCpuSeconds + b.clientCpuSeconds,
    serverCpuSeconds: a.serverCpuSeconds + b.serverCpuSeconds,
    machineCpuSeconds: a.machineCpuSeconds + b.machineCpuSeconds,
  };
}

const NO_CPU: CpuShare = {
  wallSeconds: 0,
  clientCpuSeconds: 0,
  serverCpuSeconds: 0,
  machineCpuSeconds: 0,
};

/** A held session: its socket and what it runs. */
interface Held {
  readonly client: BenchSocket;
  readonly pid: number;
  readonly folder: string;
}

/** Opens `count` sessions, `batch` at a time, each waited for until it replied `webots:`. */
async function openHeld(
  fixture: SimulationFixture,
  count: number,
  batch: number,
  options: HeldOptions,
): Promise<Held[]> {
  const held: Held[] = [];
  try {
    while (held.length < count) {
      const n = Math.min(batch, count - held.length);
      const opened = await Promise.allSettled(
        Array.from({ length: n }, async () => {
          const client = await within(
            openSocket(fixture.clientUrl),
            10_000,
            "connect",
            options.deadline,
          );
          try {
            client.socket.send(startMessage(fixture));
            const reply = await within(
              client.reply,
              REPLY_TIMEOUT_MS,
              "webots: reply",
              options.deadline,
            );
            const record = await takeRecord(fixture, Number(reply.text.match(WEBOTS_URL)?.[1]));
            options.pids.add(record.pid);
            return { client, pid: record.pid, folder: instanceFolder(fixture, record) };
          } catch (error) {
            client.socket.close();
            throw error;
          }
        }),
      );
      for (const result of opened) if (result.status === "fulfilled") held.push(result.value);
      const failed = opened.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
    return held;
  } catch (error) {
    await closeHeld(held, options.deadline, options.pids).catch(() => {});
    throw error;
  }
}

/** Closes every held session at once and waits until each is reaped and its folder removed. */
async function closeHeld(
  held: readonly Held[],
  deadline: number,
  pids: StandIns,
): Promise<number> {
  const since = performance.now();
  for (const h of held) h.client.socket.close();
  const cleanups = await watchCleanup(held, since, deadline);
  for (const h of held) pids.gone(h.pid);
  await within(Promise.all(held.map((h) => h.client.closed)), 10_000, "held closed", deadline);
  return Math.max(0, ...cleanups.map((c) => c.totalMs));
}

const rounded = (x: number) => Math.round(x * 10) / 10;

/** Runs the comparison (see the module doc); every held session is closed when it returns. */
export async function heldComparison(
  fixture: SimulationFixture,
  options: HeldOptions,
): Promise<HeldResult> {
  const { held: count, samples, blocks, deadline, pids, progress } = options;
  const batch = options.rampBatch ?? 5;
  const idle: Measured[] = [];
  const loaded: Measured[] = [];
  let idleCpu = NO_CPU;
  let loadedCpu = NO_CPU;
  const rampUpMs: number[] = [];
  const rampDownMs: number[] = [];
  const heldAliveAfter: number[] = [];
  let heldIdleServerCpuShare = NaN;
  for (let block = 0; block < blocks; block++) {
    // The last block takes what the division leaves.
    const n = block < blocks - 1
      ? Math.floor(samples / blocks)
      : samples - Math.floor(samples / blocks) * (blocks - 1);
    let meter = cpuMeter(options.serverPid);
    idle.push(...await sequential(fixture, n, deadline, pids, () => {}));
    idleCpu = addCpu(idleCpu, meter());

    const rampStart = performance.now();
    const held = await openHeld(fixture, count, batch, options);
    try {
      rampUpMs.push(rounded(performance.now() - rampStart));
      if (block === 0) {
        const quiet = cpuMeter(options.serverPid);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const share = quiet();
        heldIdleServerCpuShare = share.serverCpuSeconds / share.wallSeconds;
      }
      meter = cpuMeter(options.serverPid);
      loaded.push(...await sequential(fixture, n, deadline, pids, () => {}));
      loadedCpu = addCpu(loadedCpu, meter());
      const alive = held.filter((h) => isAlive(h.pid)).length;
      heldAliveAfter.push(alive);
      // The measure is only what it says while all of them ran.
      if (alive < count) throw new Error(`${count - alive} held stand-ins ended during a block`);
    } finally {
      rampDownMs.push(rounded(await closeHeld(held, deadline, pids)));
    }
    await options.afterBlock?.();
    progress(`  block ${block + 1}/${blocks}: ${n} idle + ${n} beside ${count} held sessions`);
  }
  return {
    idle,
    loaded,
    idleCpu,
    loadedCpu,
    rampUpMs,
    rampDownMs,
    heldAliveAfter,
    heldIdleServerCpuShare,
  };
}
