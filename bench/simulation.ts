/**
 * Benchmark of the simulation server (issues #3 and 11): the real server process (through the
 * launcher) with a stand-in Webots (bench/fast_webots.c, else tests/fakes/webots) and a small
 * `file://` project.
 *
 * It measures, over real WebSockets on 127.0.0.1:
 * - `start` sent → `webots:` received, over sequential sessions;
 * - socket closed → Webots process gone (reaped) and instance folder removed, polled every 1 ms;
 * - the same one session at a time on an idle server and beside `held` open sessions (issue 11,
 *   `simulation_held.ts`), in alternating blocks, with the CPU each side used;
 * - many sessions started at once: all replied, distinct ports, all closed and cleaned up;
 * - the stand-in's own start-up (spawn → ready line), the floor under the first figure;
 * - a per-phase breakdown, from the server's log timestamps against the client's clock.
 *
 * Run alone with `deno run -A bench/simulation.ts`; `deno task bench` runs it with the others.
 *
 * @module
 */
import { join } from "node:path";
import {
  FAKE_WEBOTS_HOME,
  type SimulationFixture,
  startSimulationServer,
} from "../tests/helpers/simulation_fixture.ts";
import { quietPortRange } from "../tests/helpers/quiet_ports.ts";
import {
  type Cleanup,
  epoch,
  instanceFolder,
  type Measured,
  openSocket,
  PROJECT,
  REPLY_TIMEOUT_MS,
  sequential,
  StandIns,
  startMessage,
  takeRecord,
  watchCleanup,
  WEBOTS_URL,
  within,
  WORLD,
} from "./simulation_client.ts";
import { type CpuShare, heldComparison, type HeldResult } from "./simulation_held.ts";
import { summarize, type Summary } from "./stats.ts";
import { childPid } from "./proc_stats.ts";

/** Options of the simulation benchmark. */
export interface SimulationBenchOptions {
  /** Sequential sessions measured (default 200), after `warmup` unmeasured ones (default 5). */
  readonly sessions?: number;
  readonly warmup?: number;
  /**
   * Sessions started at once (default 100), and sessions held open while single ones are
   * measured beside them (`held`, default the same).
   */
  readonly concurrent?: number;
  readonly held?: number;
  /**
   * Sessions measured per mode (idle, beside the held ones) in the held comparison (default
   * 1,000: its p99 is then the 10th worst, not the 2nd, so that a moment of other work on a
   * shared machine does not decide it), in `heldBlocks` idle/loaded alternations (default 20).
   */
  readonly heldSamples?: number;
  readonly heldBlocks?: number;
  /** Direct spawns of the stand-in to measure its own start-up (default 20). */
  readonly standInRuns?: number;
  /** The whole benchmark fails after this many milliseconds (default 10 minutes). */
  readonly deadlineMs?: number;
  /** Progress lines (default: none). */
  readonly progress?: (line: string) => void;
}

/** Starts `count` sessions at once, then closes them all at once. */
async function concurrent(
  fixture: SimulationFixture,
  count: number,
  deadline: number,
  pids: StandIns,
) {
  const clients = await within(
    Promise.all(Array.from({ length: count }, () => openSocket(fixture.clientUrl))),
    30_000,
    "connections",
    deadline,
  );
  try {
    const message = startMessage(fixture);
    const sentAt = clients.map((client) => {
      const at = performance.now();
      client.socket.send(message);
      return at;
    });
    const replies = await within(
      Promise.all(clients.map((c) => c.reply)),
      REPLY_TIMEOUT_MS,
      `${count} webots: replies`,
      deadline,
    );
    const first = Math.min(...sentAt);
    const allRepliedMs = Math.max(...replies.map((r) => r.at)) - first;
    const ports = replies.map((r) => Number(r.text.match(WEBOTS_URL)?.[1]));
    const records = await Promise.all(ports.map((port) => takeRecord(fixture, port)));
    for (const r of records) pids.add(r.pid);
    const targets = records.map((r) => ({ pid: r.pid, folder: instanceFolder(fixture, r) }));
    const closeAt = performance.now();
    for (const client of clients) client.socket.close();
    const cleanups = await watchCleanup(targets, closeAt, deadline);
    for (const target of targets) pids.gone(target.pid);
    await within(Promise.all(clients.map((c) => c.closed)), 10_000, "sockets closed", deadline);
    const measured: Measured[] = replies.map((r, i) => ({
      sendEpoch: epoch(sentAt[i]!),
      replyEpoch: epoch(r.at),
      startMs: r.at - sentAt[i]!,
      port: ports[i]!,
      pid: records[i]!.pid,
      folder: targets[i]!.folder,
      closeEpoch: epoch(closeAt),
      ...(cleanups[i] && { cleanup: cleanups[i] }),
    }));
    return {
      measured,
      allRepliedMs,
      distinctPorts: new Set(ports).size,
      allCleanedMs: Math.max(...cleanups.map((c) => c.totalMs)),
    };
  } finally {
    for (const client of clients) client.socket.close();
  }
}

/** Spawns the stand-in directly `runs` times: spawn → ready line, and SIGTERM → exit. */
async function standInStartup(dir: string, runs: number, webotsHome: string) {
  const world = join(dir, "standalone.wbt");
  await Deno.writeTextFile(world, "#VRML_SIM R2021b utf8\n");
  const ready: number[] = [];
  const exit: number[] = [];
  for (let i = 0; i < runs; i++) {
    const port = freeLoopbackPort();
    const t0 = performance.now();
    const child = new Deno.Command(join(webotsHome, "webots"), {
      args: ["--batch", "--mode=pause", `--stream="port=${port};monitorActivity"`, world],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.getReader();
    try {
      await within(reader.read(), 30_000, "stand-in ready line", Infinity);
      ready.push(performance.now() - t0);
    } finally {
      const t1 = performance.now();
      child.kill("SIGTERM");
      await child.status;
      exit.push(performance.now() - t1);
      await reader.cancel();
    }
  }
  return { readyMs: summarize(ready), sigtermExitMs: summarize(exit) };
}

function freeLoopbackPort(): number {
  const listener = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Server log lines of one client, by message: their `time` (epoch ms). */
type ClientLog = Map<string, number>;

/** The server's log lines read so far, by client; `project ready` times by instance folder. */
interface ServerLog {
  readonly byClient: Map<string, ClientLog>;
  // `project ready` carries the instance folder, not the client: it is joined through `folder`.
  readonly ready: Map<string, number>;
}

/**
 * Adds the lines of the server's log files (the current one and the rotated ones) to `into`.
 * The log rotates at 500 kB × 10: the bench reads it after each part, before its lines rotate
 * away. A client's first line of each message counts.
 */
async function collectServerLog(fixture: SimulationFixture, into: ServerLog): Promise<void> {
  const dir = join(fixture.logDir, "simulation");
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (/^output\.log(\.\d+)?$/.test(entry.name)) names.push(entry.name);
  }
  for (const name of names) {
    const text = await Deno.readTextFile(join(dir, name)).catch(() => "");
    for (const line of text.split("\n")) {
      if (!line.startsWith("{")) continue;
      let entry: {
        client?: string;
        msg?: string;
        time?: string | number;
        port?: number;
        dir?: string;
      };
      try {
        entry = JSON.parse(line);
      } catch {
        continue; // Being written right now: read again after the next part.
      }
      // pino writes ISO times with millisecond resolution here.
      const time = typeof entry.time === "string" ? Date.parse(entry.time) : entry.time;
      if (entry.msg === "project ready" && entry.dir && time !== undefined) {
        into.ready.set(entry.dir, time);
      }
      if (!entry.client || !entry.msg || time === undefined || Number.isNaN(time)) continue;
      const log = into.byClient.get(entry.client) ?? new Map<string, number>();
      if (!log.has(entry.msg)) log.set(entry.msg, time);
      if (entry.port !== undefined && !log.has("port")) log.set("port", entry.port);
      into.byClient.set(entry.client, log);
    }
  }
}

/**
 * Where the time goes, per phase, from the server's log (ms resolution) against the client's
 * clock: each measured session is matched to the log client with its port whose `Starting
 * simulation` falls between its send and its reply.
 */
function breakdown(
  measured: readonly Measured[],
  { byClient: logs, ready }: ServerLog,
) {
  const phases: Record<string, number[]> = {
    "sent → server handles start": [],
    "instance folder made, project copied": [],
    "Webots spawned, its pid recorded (`cat` of /proc/<pid>/stat, record rewritten)": [],
    "→ Webots ready line (stand-in start-up, minus the above)": [],
    "ready line → client has webots:": [],
    "closed → Webots stopped (TERM, exit, group KILL)": [],
    "Webots stopped → folder removed": [],
  };
  const used = new Set<ClientLog>();
  for (const m of measured) {
    const log = [...logs.values()].find((l) => {
      const start = l.get("Starting simulation");
      return !used.has(l) && l.get("port") === m.port && start !== undefined &&
        start >= Math.floor(m.sendEpoch) - 1 && start <= Math.ceil(m.replyEpoch) + 1;
    });
    if (!log) continue;
    used.add(log);
    const at = (msg: string) => log.get(msg) ?? NaN;
    const push = (phase: string, value: number) => {
      if (Number.isFinite(value)) phases[phase]!.push(value);
    };
    push("sent → server handles start", at("Starting simulation") - m.sendEpoch);
    const copied = ready.get(m.folder) ?? NaN;
    push("instance folder made, project copied", copied - at("Starting simulation"));
    push(
      "Webots spawned, its pid recorded (`cat` of /proc/<pid>/stat, record rewritten)",
      at("Webots started") - copied,
    );
    push(
      "→ Webots ready line (stand-in start-up, minus the above)",
      at("Webots ready") - at("Webots started"),
    );
    push("ready line → client has webots:", m.replyEpoch - at("Webots ready"));
    push("closed → Webots stopped (TERM, exit, group KILL)", at("Webots stopped") - m.closeEpoch);
    push("Webots stopped → folder removed", at("Client disconnected") - at("Webots stopped"));
  }
  return Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, summarize(v)]));
}

function cleanupFigures(measured: readonly Measured[]) {
  const pick = (key: keyof Cleanup) => summarize(measured.map((m) => m.cleanup?.[key] ?? NaN));
  return {
    totalMs: pick("totalMs"),
    processExitedMs: pick("exitedMs"),
    processReapedMs: pick("reapedMs"),
    folderRemovedMs: pick("folderMs"),
  };
}

/** Busy fractions of a core over the measured blocks of one mode. */
function cpuFigures(cpu: CpuShare) {
  const share = (s: number) => Math.round(s / cpu.wallSeconds * 1000) / 1000;
  return {
    wallSeconds: Math.round(cpu.wallSeconds * 100) / 100,
    clientCoreShare: share(cpu.clientCpuSeconds),
    serverCoreShare: share(cpu.serverCpuSeconds),
    // The held stand-ins sleep: what is left is other work on the machine.
    restOfMachineCoreShare: share(
      Math.max(0, cpu.machineCpuSeconds - cpu.clientCpuSeconds - cpu.serverCpuSeconds),
    ),
  };
}

/** Concurrent ÷ single, for the target (≤ 2). */
function ratio(loaded: Summary, idle: Summary, key: "p50" | "p99"): number {
  return Math.round(loaded[key] / idle[key] * 100) / 100;
}

/** The held comparison's figures: each measure idle and beside the held sessions, and ratios. */
function heldFigures(
  result: HeldResult,
  held: number,
  blocks: number,
  logs: ServerLog,
) {
  const start = {
    idle: summarize(result.idle.map((m) => m.startMs)),
    beside: summarize(result.loaded.map((m) => m.startMs)),
  };
  const close = {
    idle: cleanupFigures(result.idle).totalMs,
    beside: cleanupFigures(result.loaded).totalMs,
  };
  return {
    heldSessions: held,
    samplesPerMode: result.idle.length,
    blocks,
    startToWebotsMs: start,
    closeToCleanedMs: close,
    ratios: {
      startP50: ratio(start.beside, start.idle, "p50"),
      startP99: ratio(start.beside, start.idle, "p99"),
      closeP50: ratio(close.beside, close.idle, "p50"),
      closeP99: ratio(close.beside, close.idle, "p99"),
    },
    cpu: {
      idle: cpuFigures(result.idleCpu),
      beside: cpuFigures(result.loadedCpu),
      serverCoreShareHoldingOnly: Math.round(result.heldIdleServerCpuShare * 1000) / 1000,
    },
    rampUpMs: result.rampUpMs,
    rampDownMs: result.rampDownMs,
    heldAliveAfter: result.heldAliveAfter,
    breakdownMs: {
      idle: breakdown(result.idle, logs),
      beside: breakdown(result.loaded, logs),
    },
  };
}

/**
 * Compiles bench/fast_webots.c into `<dir>/fast-webots/webots` (a stand-in that is ready at once)
 * and returns that folder, or undefined when no C compiler is available.
 */
async function buildFastStandIn(dir: string): Promise<string | undefined> {
  const home = join(dir, "fast-webots");
  await Deno.mkdir(join(home, "resources"), { recursive: true });
  // The server reads the release at start; this stand-in speaks R2021b's command line.
  await Deno.writeTextFile(join(home, "resources", "version.txt"), "R2021b\n");
  const source = join(import.meta.dirname ?? ".", "fast_webots.c");
  try {
    const out = await new Deno.Command("cc", {
      args: ["-O2", "-o", join(home, "webots"), source],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (out.success) return home;
    console.error(`cc failed: ${new TextDecoder().decode(out.stderr)}`);
  } catch {
    // No compiler: fall back to the Deno stand-in.
  }
  return undefined;
}

/** Runs the simulation benchmark; always stops the server and removes its folders. */
export async function runSimulationBench(
  options: SimulationBenchOptions = {},
): Promise<Record<string, unknown>> {
  const sessions = options.sessions ?? 200;
  const warmup = options.warmup ?? 5;
  const count = options.concurrent ?? 100;
  const held = options.held ?? count;
  const heldSamples = options.heldSamples ?? 1000;
  const blocks = options.heldBlocks ?? 20;
  const progress = options.progress ?? (() => {});
  const deadline = performance.now() + (options.deadlineMs ?? 600_000);
  const pids = new StandIns();
  const scratch = await Deno.makeTempDir({ prefix: "simulation-bench-" });
  let fixture: SimulationFixture | undefined;
  try {
    const fast = await buildFastStandIn(scratch);
    const webotsHome = fast ?? FAKE_WEBOTS_HOME;
    progress(`stand-in Webots start-up (${options.standInRuns ?? 20} direct spawns)`);
    const standIn = await standInStartup(scratch, options.standInRuns ?? 20, webotsHome);
    const maxConnections = Math.max(count, held + 1) + 5;
    fixture = await startSimulationServer({
      // Streaming ports outside the ephemeral range: a client connection on the machine (this
      // bench's own 100 sockets too) could otherwise hold one and make a slot vanish.
      config: { webotsHome, port: quietPortRange(maxConnections) },
      maxConnections,
      worlds: { [PROJECT]: { [WORLD]: "#VRML_SIM R2021b utf8\n" } },
    });
    progress(`sequential: ${warmup} warm-up + ${sessions} sessions`);
    const logs: ServerLog = { byClient: new Map(), ready: new Map() };
    await sequential(fixture, warmup, deadline, pids, () => {});
    const seq = await sequential(fixture, sessions, deadline, pids, progress);
    await collectServerLog(fixture, logs);
    progress(
      `held: ${heldSamples} sessions idle and ${heldSamples} beside ${held} held, ${blocks} blocks`,
    );
    const beside = await heldComparison(fixture, {
      held,
      samples: heldSamples,
      blocks,
      serverPid: childPid(fixture.server.pid),
      deadline,
      pids,
      progress,
      afterBlock: () => collectServerLog(fixture!, logs),
    });
    progress(`concurrent: ${count} sessions at once`);
    const conc = await concurrent(fixture, count, deadline, pids);
    await fixture.server.stop();
    await collectServerLog(fixture, logs);
    const startToWebots = summarize(seq.map((m) => m.startMs));
    return {
      config: {
        standIn: fast
          ? "bench/fast_webots.c (compiled C: binds the port, prints open at once)"
          : "tests/fakes/webots (a Deno script; no C compiler found)",
        project: "file:// world, 1 world file + 1 controller",
        maxConnections,
        warmupSessions: warmup,
      },
      standIn,
      sequential: {
        sessions,
        startToWebotsMs: startToWebots,
        // The stand-in starts while the server spawns its registry's `cat`s, so per-phase log
        // times overstate the server; the difference of the medians is its share.
        serverShareP50Ms: Math.round((startToWebots.p50 - standIn.readyMs.p50) * 10) / 10,
        closeToCleanedMs: cleanupFigures(seq),
        breakdownMs: breakdown(seq, logs),
      },
      held: heldFigures(beside, held, blocks, logs),
      concurrent: {
        sessions: count,
        allRepliedMs: Math.round(conc.allRepliedMs * 10) / 10,
        startToWebotsMs: summarize(conc.measured.map((m) => m.startMs)),
        distinctPorts: conc.distinctPorts,
        allCleanedMs: Math.round(conc.allCleanedMs * 10) / 10,
        closeToCleanedMs: cleanupFigures(conc.measured),
        breakdownMs: breakdown(conc.measured, logs),
      },
    };
  } finally {
    if (fixture) {
      await fixture.server.stop();
      await Deno.remove(fixture.dir, { recursive: true }).catch(() => {});
    }
    // The server ends its Webots when it stops; this is only for a server that failed to.
    pids.killLeftovers();
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const result = await runSimulationBench({ progress: (line) => console.error(line) });
  console.log(JSON.stringify(result, null, 2));
}
