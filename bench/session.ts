/**
 * Session-server benchmark of the availability feed (`GET /session` throughput is bench/http.ts):
 * as many subscribers as the server process may hold, by default, and for them:
 * - the server's open descriptors (from /proc/<pid>/fd) against its open-files limit;
 * - its resident memory and V8 heap idle and with them, hence the memory per subscriber;
 * - the time to connect them all;
 * - for several availability changes, the time from the moment the fake simulation server served
 *   the `/load` answer that causes the change to each subscriber's receipt (p50/p99/max);
 * - the CPU each process used meanwhile, to show that the subscriber processes had time to spare;
 * - the same fan-out from a bare baseline (bench/bare_broadcast.ts: `Deno.upgradeWebSocket`, one
 *   send loop) to the same number of sockets, with the same subscriber processes, in the same run.
 *
 * Run alone: `deno run -A bench/session.ts [--subscribers N] [--changes N] [--full-gc]`; with
 * `--full-gc` every GC of the server is a full one, so that its heap readings are the live heap
 * (and its latencies not the server's).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { stdoutLines } from "./stdout_lines.ts";
import { childPid, cpuSeconds, openFiles, openFilesLimit, rssKiB } from "./proc_stats.ts";
import { type ServerProcess, startServer } from "../tests/helpers/server_process.ts";
import { startFakeSimServer, wallClockMs } from "../tests/fakes/sim_server.ts";
import { summarize, type Summary } from "./stats.ts";
import { median } from "./http.ts";

const HERE = import.meta.dirname ?? ".";
const CLIENT = join(HERE, "subscriber_clients.ts");
const BARE = join(HERE, "bare_broadcast.ts");
/** Subscriber processes; each connects to its own 127.0.0.x so each has a port range of its own. */
const CLIENT_PROCESSES = 4;
/**
 * Descriptors left free in the server when it holds the most subscribers: its polls of `/load`
 * (one keep-alive connection per simulation server, a new one when a poll times out), the log
 * file's rotation, an operator's `/monitor` or `/metrics`. Past the limit, accept fails (the
 * engine waits, see shared/http_server.ts) and so do the polls, which would take every server
 * out of rotation.
 */
const HEADROOM = 64;

/** Options of the subscriber bench. */
export interface SessionBenchOptions {
  /** Subscribers to open (default: the server's open-files limit minus its own and the headroom). */
  readonly subscribers?: number | undefined;
  /** Availability changes measured (default 6: 1→0→1→…). */
  readonly changes?: number;
  /**
   * Make every GC of the session server a full one (V8's `--gc-global`), so that each heap
   * reading is the live heap. It slows the server down: the latencies of such a run are not the
   * server's.
   */
  readonly fullGc?: boolean;
  readonly progress?: (line: string) => void;
}

interface Client {
  readonly process: Deno.ChildProcess;
  /** The first stdout line matching `pattern`; rejects if its output ends without one. */
  line(pattern: RegExp): Promise<string>;
}

function spawnClients(port: number, total: number, changes: number): Client[] {
  const share = (k: number) =>
    Math.floor(total / CLIENT_PROCESSES) + (k < total % CLIENT_PROCESSES ? 1 : 0);
  return Array.from({ length: CLIENT_PROCESSES }, (_, k) => {
    const process = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        CLIENT,
        `ws://127.0.0.${k + 1}:${port}/`,
        String(share(k)),
        String(changes),
      ],
      stdout: "piped",
      stderr: "inherit",
      stdin: "null",
    }).spawn();
    return { process, line: stdoutLines(process.stdout) };
  });
}

/** Throws unless each subscriber process may open what it is asked to, with room for its own. */
function checkClientLimits(clients: readonly Client[], total: number): number[] {
  const limits = clients.map((c) => openFilesLimit(c.process.pid));
  const perProcess = Math.ceil(total / CLIENT_PROCESSES);
  for (const limit of limits) {
    if (perProcess + 100 > limit) {
      throw new Error(`a subscriber process may open ${limit} files, ${perProcess} asked`);
    }
  }
  return limits;
}

/** CPU seconds of each pid over an interval, and the interval's wall time. */
function cpuMeter(pids: readonly number[]): () => { wallMs: number; seconds: number[] } {
  const start = performance.now();
  const before = pids.map(cpuSeconds);
  return () => ({
    wallMs: Math.round(performance.now() - start),
    seconds: pids.map((pid, i) => round2(cpuSeconds(pid) - before[i]!)),
  });
}

/** Seconds of CPU over `ms` of wall time, as cores. */
const cores = (seconds: number, ms: number) => round2(seconds / (ms / 1000));

const round1 = (x: number) => Math.round(x * 10) / 10;
const round2 = (x: number) => Math.round(x * 100) / 100;
const mib = (kib: number) => round1(kib / 1024);

/** V8's heap in use after the last GC of `pid` in `output` (`--trace-gc` lines), in MiB. */
function heapAfterLastGc(output: string, pid: number): { mib: number; gc: string } | undefined {
  const line = new RegExp(
    `^\\[${pid}:0x[0-9a-f]+\\]\\s+[\\d.]+ ms: ([A-Za-z -]+?) [\\d.]+ \\([\\d.]+\\) -> ([\\d.]+) \\(`,
    "gm",
  );
  let last: { mib: number; gc: string } | undefined;
  for (const match of output.matchAll(line)) {
    // V8 prints MB of 2^20 bytes.
    last = { gc: match[1]!, mib: Number(match[2]) };
  }
  return last;
}

interface Connected {
  readonly open: number;
  readonly failed: number;
  readonly ms: number;
}

/** Connects the subscriber processes and returns them with what connecting took. */
async function connectAll(port: number, total: number, changes: number, serverPid: number) {
  const started = performance.now();
  const clients = spawnClients(port, total, changes);
  let clientLimits: number[];
  let meter: ReturnType<typeof cpuMeter>;
  let connected: Connected[];
  try {
    clientLimits = checkClientLimits(clients, total);
    meter = cpuMeter([serverPid, ...clients.map((c) => c.process.pid)]);
    connected = await Promise.all(
      clients.map(async (c) =>
        JSON.parse((await c.line(/^connected /)).slice("connected ".length)) as Connected
      ),
    );
  } catch (error) {
    await stopClients(clients);
    throw error;
  }
  const cpu = meter();
  return {
    clients,
    clientLimits,
    open: connected.reduce((sum, c) => sum + c.open, 0),
    failed: connected.reduce((sum, c) => sum + c.failed, 0),
    ms: Math.round(performance.now() - started),
    cpu,
  };
}

/** One change as the subscribers saw it: every receipt time, and the CPU meanwhile. */
async function awaitChange(clients: readonly Client[], i: number, expected: string) {
  const seen = await Promise.all(clients.map(async (c) => {
    const line = await c.line(new RegExp(`^change ${i} `));
    return JSON.parse(line.slice(`change ${i} `.length)) as { value: string; at: number[] };
  }));
  for (const s of seen) {
    if (s.at.length > 0 && s.value !== expected) {
      throw new Error(`change ${i}: subscribers got ${s.value}, not ${expected}`);
    }
  }
  return seen.flatMap((s) => s.at);
}

interface ChangeFigures {
  readonly latencyMs: Summary;
  /**
   * CPU seconds of each process from the change (the load set, or the flip asked) to the last
   * receipt, and the same over the fan-out alone (flip → last receipt) as cores: an upper bound
   * of how busy each process was while the messages went out.
   */
  readonly cpu: {
    wallMs: number;
    serverSeconds: number;
    clientSeconds: number[];
    serverCoresOverFanOut: number;
    clientCoresOverFanOut: number[];
  };
}

function changeFigures(
  at: readonly number[],
  since: number,
  cpu: { wallMs: number; seconds: number[] },
): ChangeFigures {
  const latencyMs = summarize(at.map((t) => t - since));
  const fanOutMs = Math.max(latencyMs.max, 10);
  return {
    latencyMs,
    cpu: {
      wallMs: cpu.wallMs,
      serverSeconds: cpu.seconds[0]!,
      clientSeconds: cpu.seconds.slice(1),
      serverCoresOverFanOut: cores(cpu.seconds[0]!, fanOutMs),
      clientCoresOverFanOut: cpu.seconds.slice(1).map((s) => cores(s, fanOutMs)),
    },
  };
}

function describe(change: ChangeFigures): string {
  const { latencyMs: l, cpu } = change;
  return `p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms; CPU over the fan-out: server ` +
    `${cpu.serverCoresOverFanOut}, subscriber processes ${cpu.clientCoresOverFanOut.join(", ")}`;
}

/** The pooled latencies of all changes, and the worst per change. */
function overall(changes: readonly ChangeFigures[], all: readonly number[]) {
  return {
    allChangesMs: summarize(all),
    worstP99Ms: Math.max(...changes.map((c) => c.latencyMs.p99)),
    maxClientCoresOverFanOut: Math.max(...changes.flatMap((c) => c.cpu.clientCoresOverFanOut)),
    maxServerCoresOverFanOut: Math.max(...changes.map((c) => c.cpu.serverCoresOverFanOut)),
  };
}

async function stopClients(clients: readonly Client[]): Promise<void> {
  for (const c of clients) {
    try {
      c.process.kill("SIGTERM");
    } catch { /* already gone */ }
    await c.process.status;
  }
}

/** The session server with `subscribers` (default: as many as it may hold). */
async function sessionServer(options: SessionBenchOptions, changes: number) {
  const say = options.progress ?? (() => {});
  const sim = startFakeSimServer({ load: 10 });
  const dir = await Deno.makeTempDir({ prefix: "session-bench-" });
  let session: ServerProcess;
  try {
    session = await startServer("session", {
      port: 0,
      simulationServers: [sim.entry],
      logDir: `${dir}/log`,
      loadRefresh: 0.2,
      loadTimeout: 1,
    }, { dir, env: { DENO_V8_FLAGS: options.fullGc ? "--trace-gc,--gc-global" : "--trace-gc" } });
  } catch (error) {
    await sim.close();
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  let clients: Client[] = [];
  try {
    const pid = childPid(session.pid);
    const sessionUrl = `http://127.0.0.1:${session.port}/session`;
    while ((await (await fetch(sessionUrl)).text()) !== `ws://${sim.entry}`) {
      await sim.nextServed();
    }
    const limit = openFilesLimit(pid);
    const filesIdle = openFiles(pid);
    const rssIdle = rssKiB(pid);
    const heapIdle = heapAfterLastGc(session.output(), pid);
    const most = limit - filesIdle.total;
    const total = options.subscribers ?? most - HEADROOM;
    if (total > most) {
      // Past the limit the extra connections wait in the listen backlog and never open.
      throw new Error(`the session server may hold at most ${most} subscribers, ${total} asked`);
    }
    say(
      `session server pid ${pid}: open-files limit ${limit}, ${filesIdle.total} open idle ` +
        `(${JSON.stringify(filesIdle.byKind)}); opening ${total} subscribers`,
    );
    const connect = await connectAll(session.port, total, changes, pid);
    clients = connect.clients;
    if (connect.failed > 0) say(`${connect.failed} subscribers could not connect`);
    const filesWith = openFiles(pid);
    const rssWith = rssKiB(pid);
    say(
      `${connect.open} subscribers in ${connect.ms} ms; ${filesWith.total} descriptors open of ` +
        `${limit}; RSS ${mib(rssIdle)} → ${mib(rssWith)} MiB`,
    );

    // The last GC before the first change: the subscribers connected, no broadcast in flight.
    const heapConnected = heapAfterLastGc(session.output(), pid);
    const figures: ChangeFigures[] = [];
    const all: number[] = [];
    for (let i = 0; i < changes; i++) {
      const [load, expected] = i % 2 === 0 ? ["100", "0"] : ["10", "1"];
      const meter = cpuMeter([pid, ...clients.map((c) => c.process.pid)]);
      const before = sim.served().length;
      sim.setLoad(load);
      const at = await awaitChange(clients, i, expected);
      const cpu = meter();
      const flip = sim.served().slice(before).find((s) => s.body === load);
      if (!flip) throw new Error("the answer that changed availability was not recorded");
      const change = changeFigures(at, flip.at, cpu);
      figures.push(change);
      all.push(...at.map((t) => t - flip.at));
      say(
        `change ${i + 1} (→ ${expected}): ${describe(change)}`,
      );
    }
    // After the changes: a GC during a broadcast also counts the sends in flight.
    const heapAfterChanges = heapAfterLastGc(session.output(), pid);
    await Promise.all(clients.map((c) => c.process.status));
    clients = [];
    return {
      subscribers: connect.open,
      failedToConnect: connect.failed,
      clientProcesses: CLIENT_PROCESSES,
      clientOpenFilesLimits: connect.clientLimits,
      descriptors: {
        limit,
        idle: filesIdle,
        withSubscribers: filesWith,
        headroomLeft: limit - filesWith.total,
      },
      connect: {
        ms: connect.ms,
        serverCores: cores(connect.cpu.seconds[0]!, connect.cpu.wallMs),
        clientCores: connect.cpu.seconds.slice(1).map((s) => cores(s, connect.cpu.wallMs)),
      },
      memory: {
        rssIdleMiB: mib(rssIdle),
        rssWithMiB: mib(rssWith),
        rssPerSubscriberKiB: round2((rssWith - rssIdle) / connect.open),
        heapIdleMiB: heapIdle?.mib,
        heapConnected,
        heapAfterChanges,
        // Without a GC while idle (a small heap may have none), the idle heap counts as zero.
        heapPerSubscriberAtMostKiB: heapConnected
          ? round2((heapConnected.mib - (heapIdle?.mib ?? 0)) * 1024 / connect.open)
          : undefined,
        fullGc: options.fullGc === true,
        heapSource: "V8 --trace-gc: heap in use after the last GC before each reading (after a " +
          "scavenge it also counts the old generation's garbage)",
      },
      changes: figures,
      ...overall(figures, all),
    };
  } finally {
    await stopClients(clients);
    await session.stop();
    await sim.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The bare baseline with the same number of subscribers and processes. */
async function bareBaseline(total: number, changes: number, say: (line: string) => void) {
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", BARE],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const line = stdoutLines(process.stdout);
  let clients: Client[] = [];
  try {
    const port = Number((await line(/^port /)).slice("port ".length));
    const rssIdle = rssKiB(process.pid);
    const connect = await connectAll(port, total, changes, process.pid);
    clients = connect.clients;
    const rssWith = rssKiB(process.pid);
    say(
      `bare baseline: ${connect.open} sockets in ${connect.ms} ms; RSS ${mib(rssIdle)} → ${
        mib(rssWith)
      } MiB`,
    );
    const figures: ChangeFigures[] = [];
    const all: number[] = [];
    for (let i = 0; i < changes; i++) {
      const meter = cpuMeter([process.pid, ...clients.map((c) => c.process.pid)]);
      const flip = await (await fetch(`http://127.0.0.1:${port}/flip`)).json() as {
        at: number;
        value: string;
      };
      const at = await awaitChange(clients, i, flip.value);
      const change = changeFigures(at, flip.at, meter());
      figures.push(change);
      all.push(...at.map((t) => t - flip.at));
      say(`bare change ${i + 1}: ${describe(change)}`);
    }
    await Promise.all(clients.map((c) => c.process.status));
    clients = [];
    return {
      subscribers: connect.open,
      connectMs: connect.ms,
      rssIdleMiB: mib(rssIdle),
      rssWithMiB: mib(rssWith),
      rssPerSubscriberKiB: round2((rssWith - rssIdle) / connect.open),
      changes: figures,
      ...overall(figures, all),
    };
  } finally {
    await stopClients(clients);
    try {
      process.kill("SIGTERM");
    } catch { /* already gone */ }
    await process.status;
  }
}

/** Runs the benchmark, prints progress and returns the figures. */
export async function runSessionBench(
  options: SessionBenchOptions = {},
): Promise<Record<string, unknown>> {
  const say = options.progress ?? ((line: string) => console.error(line));
  const changes = options.changes ?? 6;
  const started = wallClockMs();
  const server = await sessionServer({ ...options, progress: say }, changes);
  const bare = await bareBaseline(server.subscribers, changes, say);
  const n = server.subscribers;
  const scale = 100_000 / n;
  return {
    subscribers: {
      ...server,
      bareBaseline: bare,
      // A straight line through this run's figures; see BENCHMARKS.md for what else must change.
      estimate100k: {
        rssGiB: round2(
          (server.memory.rssIdleMiB + server.memory.rssPerSubscriberKiB * 100_000 / 1024) / 1024,
        ),
        descriptors: 100_000 + server.descriptors.idle.total + HEADROOM,
        fanOutP99Ms: Math.round(server.worstP99Ms * scale),
        fanOutMaxMs: Math.round(server.allChangesMs.max * scale),
        // Steadier on a shared machine: what one change costs the server, whoever else runs.
        serverCpuPerChangeS: round2(median(server.changes.map((c) => c.cpu.serverSeconds)) * scale),
      },
      seconds: Math.round((wallClockMs() - started) / 1000),
    },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      subscribers: { type: "string" },
      changes: { type: "string", default: "6" },
      "full-gc": { type: "boolean", default: false },
    },
  });
  console.log(
    JSON.stringify(
      await runSessionBench({
        subscribers: values.subscribers === undefined ? undefined : Number(values.subscribers),
        changes: Number(values.changes),
        fullGc: values["full-gc"],
      }),
      null,
      2,
    ),
  );
}

/** Markdown tables of a `runSessionBench` result for BENCHMARKS.md. */
export function subscriberTables(result: Record<string, unknown>): string {
  // deno-lint-ignore no-explicit-any
  const r = (result as any).subscribers;
  const b = r.bareBaseline;
  const e = r.estimate100k;
  const s = (x: Summary) => `${x.p50} / ${x.p99} / ${x.max} ms`;
  const cores = (xs: number[]) => xs.join(", ");
  const rows = [
    "| Measure | Session server | Bare baseline (`Deno.upgradeWebSocket`, one send loop) |",
    "| --- | --- | --- |",
    `| subscribers open (failed to connect) | ${r.subscribers} (${r.failedToConnect}) | ${b.subscribers} |`,
    `| descriptors open: idle → with them (limit) | ${r.descriptors.idle.total} → ${r.descriptors.withSubscribers.total} (${r.descriptors.limit}) | |`,
    `| connecting them all | ${r.connect.ms} ms | ${b.connectMs} ms |`,
    `| RSS idle → with them | ${r.memory.rssIdleMiB} → ${r.memory.rssWithMiB} MiB | ${b.rssIdleMiB} → ${b.rssWithMiB} MiB |`,
    `| RSS per subscriber | ${r.memory.rssPerSubscriberKiB} KiB | ${b.rssPerSubscriberKiB} KiB |`,
    `| V8 heap after the last GC before the first change | ${
      r.memory.heapConnected === undefined
        ? "no GC"
        : `${r.memory.heapConnected.mib} MiB (${r.memory.heapConnected.gc}), ≤ ${r.memory.heapPerSubscriberAtMostKiB} KiB per subscriber`
    } | |`,
    `| change → all received, all ${r.changes.length} changes pooled, p50 / p99 / max | ${
      s(r.allChangesMs)
    } | ${s(b.allChangesMs)} |`,
    `| worst p99 of one change (target ≤ 1 s) | ${r.worstP99Ms} ms | ${b.worstP99Ms} ms |`,
    `| busiest subscriber process over a fan-out (cores) | ${r.maxClientCoresOverFanOut} | ${b.maxClientCoresOverFanOut} |`,
    `| busiest server over a fan-out (cores) | ${r.maxServerCoresOverFanOut} | ${b.maxServerCoresOverFanOut} |`,
    "",
    "| Change | Session server p50 / p99 / max | server, subscriber processes (cores over the fan-out) | Bare p50 / p99 / max | bare, subscriber processes |",
    "| --- | --- | --- | --- | --- |",
    // deno-lint-ignore no-explicit-any
    ...r.changes.map((c: any, i: number) => {
      const bc = b.changes[i];
      return `| ${i + 1} | ${s(c.latencyMs)} | ${c.cpu.serverCoresOverFanOut}; ${
        cores(c.cpu.clientCoresOverFanOut)
      } | ${bc ? s(bc.latencyMs) : ""} | ${
        bc ? `${bc.cpu.serverCoresOverFanOut}; ${cores(bc.cpu.clientCoresOverFanOut)}` : ""
      } |`;
    }),
    "",
    `Straight-line estimate for 100,000 subscribers from this run: RSS ${e.rssGiB} GiB, ` +
    `${e.descriptors} descriptors, fan-out p99 ${e.fanOutP99Ms} ms (max ${e.fanOutMaxMs} ms), ` +
    `${e.serverCpuPerChangeS} s of server CPU per change (the fan-out's floor on one core).`,
  ];
  return rows.join("\n");
}
