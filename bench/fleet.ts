/**
 * The session server with 1,000 simulation servers in rotation (issue 11, "Measured scale").
 *
 * Stand-ins: 1,000 addresses `127.0.x.y` (x from 1, y 1–250) on one port, served by 4 processes
 * of 250 `Deno.serve` each (bench/fleet_stand_in.ts), answering `/load` as our simulation servers
 * do and keeping the time of every answer. The real session server, started through the launcher
 * as `deno task session` starts it, has the 1,000 entries in `simulationServers` and the default
 * `loadRefresh` (5 s) and `loadTimeout`. A second session server with one simulation server (an
 * in-process stand-in), started the same way, gives the idle cost of a session server over the
 * same span.
 *
 * Once every server is seen available (admin API), three phases, each starting between two poll
 * rounds:
 * 1. CPU: nothing but polling for `cpuRounds` periods; utime + stime (`/proc/<pid>/stat`) of both
 *    session servers and of the stand-in processes; RSS of the session server before and after.
 * 2. Round time: at the middle of each of `spanRounds` periods, `GET /admin/servers`: the spread
 *    of the servers' `lastPoll` is the time from the round's first answer applied to its last.
 * 3. Throughput: `wrk -t1 -c64` against `GET /session` of the polling server and against its
 *    same-answer minimum (bench/baseline.ts `answer`, replaying the exact response the server gave
 *    in this run), alternating, one period per run so that each run holds one poll round; and
 *    against the idle session server (one simulation server), to tell what the fleet itself costs
 *    a request.
 * At the end the stand-ins report every answer's time: each address must have been polled once
 * in every round from the first phase to the last (none missed).
 *
 * Run alone: `deno run -A bench/fleet.ts [--servers N] [--cpu-rounds N] [--wrk-rounds N]`.
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { serverPid, type ServerProcess, startServer } from "../tests/helpers/server_process.ts";
import { startFakeSimServer } from "../tests/fakes/sim_server.ts";
import {
  assertSameAnswer,
  type Baseline,
  fetchAnswer,
  median,
  spread,
  startBaseline,
  stopBaseline,
} from "./http.ts";
import {
  cpuPerRound,
  type PollCoverage,
  pollCoverage,
  rssMiB,
  standInAddresses,
} from "./fleet_figures.ts";
import { threadCpuSeconds } from "./proc_stats.ts";
import { summarize } from "./stats.ts";
import { stdoutLines } from "./stdout_lines.ts";
import { cpuSeconds, findWrk, measureWrkRun, runWrk, WRK_MISSING } from "./wrk.ts";

const STAND_IN = join(import.meta.dirname ?? ".", "fleet_stand_in.ts");
const ADMIN_TOKEN = "fleet-bench-admin-token-0123456789";
/** The session server's default `loadRefresh`, in seconds. */
const REFRESH_S = 5;

/** Settings of the fleet benchmark. */
export interface FleetBenchOptions {
  /** Simulation servers (default 1,000). */
  readonly servers?: number;
  /** Stand-in processes (default 4). */
  readonly processes?: number;
  /** Poll periods of the CPU phase (default 12). */
  readonly cpuRounds?: number;
  /** Poll periods of the round-time phase (default 4). */
  readonly spanRounds?: number;
  /** wrk runs per target (default 5), after one warm-up run each. */
  readonly wrkRounds?: number;
  readonly progress?: (line: string) => void;
}

/** A stand-in process and its addresses. */
interface StandIn {
  readonly child: Deno.ChildProcess;
  readonly addresses: readonly string[];
  readonly line: (pattern: RegExp) => Promise<string>;
}

const wallClockMs = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const round1 = (x: number) => Math.round(x * 10) / 10;
const round2 = (x: number) => Math.round(x * 100) / 100;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** A port free on the first stand-in address a moment ago. */
function freePortOn(hostname: string): number {
  const listener = Deno.listen({ hostname, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function stopChild(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* already gone */ }
  await child.status;
}

/** Starts the stand-in processes; on any failure, stops those already started. */
async function startStandIns(groups: string[][], port: number): Promise<StandIn[]> {
  const started: StandIn[] = [];
  try {
    let first = 0;
    for (const addresses of groups) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-net", STAND_IN, String(port), String(first), addresses.join(",")],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      const line = stdoutLines(child.stdout);
      started.push({ child, addresses, line });
      first += addresses.length;
    }
    await Promise.all(started.map(async (s) => {
      const exited = s.child.status.then((status) => {
        throw new Error(`a stand-in process exited (${status.code}) before listening`);
      });
      await Promise.race([s.line(/^listening \d+$/), exited]);
    }));
    return started;
  } catch (error) {
    await Promise.all(started.map((s) => stopChild(s.child)));
    throw error;
  }
}

/** Every address's answer times, from all stand-ins. */
async function reportPolls(standIns: readonly StandIn[]): Promise<Map<string, number[]>> {
  const polls = new Map<string, number[]>();
  for (const standIn of standIns) {
    const writer = standIn.child.stdin.getWriter();
    await writer.write(new TextEncoder().encode("report\n"));
    writer.releaseLock();
    const line = await Promise.race([
      standIn.line(/^\{/),
      standIn.child.status.then((status) => {
        throw new Error(`a stand-in process exited (${status.code}) before reporting`);
      }),
    ]);
    for (const [address, times] of Object.entries(JSON.parse(line) as Record<string, number[]>)) {
      polls.set(address, times);
    }
  }
  return polls;
}

interface AdminServer {
  readonly entry: string;
  readonly standing: string;
  readonly lastPoll: string | null;
}

async function adminServers(session: ServerProcess): Promise<AdminServer[]> {
  const response = await fetch(`${session.baseUrl}/admin/servers`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (response.status !== 200) throw new Error(`/admin/servers answered ${response.status}`);
  return ((await response.json()) as { servers: AdminServer[] }).servers;
}

/** Waits until every server is available; returns when the last round's first answer came. */
async function allAvailable(session: ServerProcess, count: number): Promise<number> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const servers = await adminServers(session);
    const available = servers.filter((s) => s.standing === "available").length;
    if (servers.length === count && available === count) {
      return Math.min(...servers.map((s) => Date.parse(s.lastPoll!)));
    }
    await sleep(500);
  }
  throw new Error(`the ${count} simulation servers were not all available within 60 s`);
}

/** Sum of utime + stime of `pids`, in seconds. */
const cpuOf = (pids: readonly number[]) => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);

const rss = (pid: number) => rssMiB(Deno.readTextFileSync(`/proc/${pid}/status`));

/** Runs the fleet benchmark. */
export async function runFleetBench(options: FleetBenchOptions = {}): Promise<
  Record<string, unknown>
> {
  const wrk = findWrk();
  if (wrk === undefined) throw new Error(WRK_MISSING);
  const count = options.servers ?? 1000;
  const processes = options.processes ?? 4;
  const cpuRounds = options.cpuRounds ?? 12;
  const spanRounds = options.spanRounds ?? 4;
  const wrkRounds = options.wrkRounds ?? 5;
  const progress = options.progress ?? (() => {});
  const refreshMs = REFRESH_S * 1000;

  const cleanup: (() => Promise<unknown>)[] = [];
  try {
    const groups = standInAddresses(count, processes);
    const port = freePortOn(groups[0]![0]!);
    const standIns = await startStandIns(groups, port);
    cleanup.push(() => Promise.all(standIns.map((s) => stopChild(s.child))));
    const standInPids = standIns.map((s) => s.child.pid);
    const entries = groups.flat().map((address) => `${address}:${port}`);
    progress(`${count} stand-ins listening on port ${port} (${processes} processes)`);

    const dir = await Deno.makeTempDir({ prefix: "fleet-bench-" });
    cleanup.push(() => Deno.remove(dir, { recursive: true }));
    const reference = startFakeSimServer({ load: 10 });
    cleanup.push(() => reference.close());
    const startSession = async (name: string, simulationServers: string[]) => {
      const sub = join(dir, name);
      await Deno.mkdir(sub);
      const server = await startServer("session", {
        port: 0,
        simulationServers,
        logDir: join(sub, "log"),
        adminToken: ADMIN_TOKEN,
      }, { dir: sub });
      cleanup.push(() => server.stop());
      return server;
    };
    const session = await startSession("fleet", entries);
    const idle = await startSession("idle", [reference.entry]);
    const sessionPid = serverPid(session.pid);
    const idlePid = serverPid(idle.pid);

    let roundBegan = await allAvailable(session, count);
    progress(`all ${count} available; RSS ${rss(sessionPid)} MiB`);
    /** Waits for the middle of the next gap between two rounds. */
    const midGap = async () => {
      const now = wallClockMs();
      const periods = Math.ceil((now - roundBegan - refreshMs / 2) / refreshMs);
      await sleep(roundBegan + periods * refreshMs + refreshMs / 2 - now);
    };

    // 1. CPU per round.
    await midGap();
    const rssBefore = rss(sessionPid);
    const cpuFrom = wallClockMs();
    const before = {
      fleet: cpuOf([sessionPid]),
      idle: cpuOf([idlePid]),
      stand: cpuOf(standInPids),
      threads: threadCpuSeconds(sessionPid),
    };
    // RSS once a period (read from /proc by this process: it costs the server nothing).
    const rssPerPeriod: number[] = [];
    for (let i = 0; i < cpuRounds; i++) {
      await sleep(cpuFrom + (i + 1) * refreshMs - wallClockMs());
      rssPerPeriod.push(rss(sessionPid));
    }
    const after = {
      fleet: cpuOf([sessionPid]),
      idle: cpuOf([idlePid]),
      stand: cpuOf(standInPids),
      threads: threadCpuSeconds(sessionPid),
    };
    const cpuTo = wallClockMs();
    const rssAfter = rss(sessionPid);
    progress(
      `CPU: ${round2(after.fleet - before.fleet)} s over ${cpuRounds} periods (idle server ${
        round2(after.idle - before.idle)
      } s)`,
    );

    // 2. Round time, from the session server's own record of each poll's end.
    const spans: number[] = [];
    for (let i = 0; i < spanRounds; i++) {
      await midGap();
      const servers = await adminServers(session);
      const times = servers.map((s) => Date.parse(s.lastPoll!));
      spans.push(Math.max(...times) - Math.min(...times));
      roundBegan = Math.min(...times);
    }
    progress(`round time (first to last answer applied): ${spans.join(", ")} ms`);

    // 3. GET /session while polling runs, against its same-answer minimum.
    const sessionUrl = `${session.baseUrl}/session`;
    const answer = await fetchAnswer(sessionUrl);
    const expected = `ws://${entries[0]}`;
    if (answer.body !== expected) {
      throw new Error(`/session answered ${answer.body}, not ${expected}`);
    }
    const copy: Baseline = await startBaseline(["answer", JSON.stringify(answer)]);
    cleanup.push(() => stopBaseline(copy));
    const copyUrl = `http://127.0.0.1:${copy.port}/session`;
    await assertSameAnswer(answer, copyUrl, "/session same-answer", true);
    // The idle server answers its own one server's URL, as long as this one's: it shows what
    // the same session server costs per request without the fleet around it.
    const targets = [
      { name: "session", url: sessionUrl, pid: sessionPid },
      { name: "session-one-server", url: `${idle.baseUrl}/session`, pid: idlePid },
      { name: "session-same-answer", url: copyUrl, pid: copy.child.pid },
    ];
    const wrkOptions = { threads: 1, connections: 64, seconds: REFRESH_S };
    const wrkFrom = wallClockMs();
    for (const target of targets) await runWrk(wrk, target.url, wrkOptions);
    const figures = new Map(targets.map((t) => [t.name, {
      rps: [] as number[],
      cpuUs: [] as number[],
      wrkCores: [] as number[],
      ceiling: [] as number[],
      other: [] as number[],
    }]));
    for (let round = 1; round <= wrkRounds; round++) {
      const line: string[] = [];
      for (const target of targets) {
        const run = await measureWrkRun(wrk, target.url, target.pid, wrkOptions);
        const { result } = run;
        if (result.errors > 0) throw new Error(`${result.errors} failed requests (${target.name})`);
        const f = figures.get(target.name)!;
        f.rps.push(result.requestsPerSecond);
        f.cpuUs.push(run.cpuUsPerRequest);
        f.wrkCores.push(run.wrkCores);
        f.ceiling.push(run.wrkCeiling);
        f.other.push(run.otherCores);
        line.push(`${target.name} ${Math.round(result.requestsPerSecond)}`);
      }
      progress(`wrk round ${round}/${wrkRounds}: ${line.join(", ")} req/s`);
    }
    const wrkTo = wallClockMs();
    const answerAfter = await fetchAnswer(sessionUrl);
    if (answerAfter.body !== expected) throw new Error(`/session changed to ${answerAfter.body}`);
    const rssEnd = rss(sessionPid);

    // Every address polled every round, from the first phase to the last.
    const polls = await reportPolls(standIns);
    const metrics = await (await fetch(`${session.baseUrl}/metrics`)).text();
    const coverage = (from: number, to: number) =>
      describeCoverage(pollCoverage(polls, from, to, refreshMs));
    const cpuCoverage = pollCoverage(polls, cpuFrom, cpuTo, refreshMs);
    const perRound = cpuPerRound(
      after.fleet - before.fleet,
      after.idle - before.idle,
      cpuCoverage.rounds.length,
    );
    const targetFigures = Object.fromEntries(targets.map((t) => {
      const f = figures.get(t.name)!;
      return [t.name, {
        requestsPerSecond: spread(f.rps, 0),
        serverCpuUsPerRequest: spread(f.cpuUs, 2),
        wrkCpuCores: spread(f.wrkCores, 2),
        wrkCeilingRps: spread(f.ceiling, 0),
        otherCpuCores: spread(f.other, 2),
        runs: f.rps.map(Math.round),
      }];
    }));
    const rps = (name: string) => median(figures.get(name)!.rps);
    const cpuUs = (name: string) => median(figures.get(name)!.cpuUs);
    return {
      servers: count,
      standIns: `${processes} processes × ${groups[0]!.length} addresses, port ${port}`,
      loadRefreshS: REFRESH_S,
      polling: {
        allRounds: coverage(cpuFrom, wrkTo),
        cpuPhase: describeCoverage(cpuCoverage),
        wrkPhase: coverage(wrkFrom, wrkTo),
      },
      cpu: {
        rounds: cpuCoverage.rounds.length,
        periods: cpuRounds,
        sessionServerSeconds: round2(after.fleet - before.fleet),
        idleServerSeconds: round2(after.idle - before.idle),
        ...perRound,
        standInsPerRound: round2((after.stand - before.stand) / cpuCoverage.rounds.length),
        // Where a round's CPU went: what is left on the thread that answers /session.
        perRoundByThread: Object.fromEntries(
          (["main", "workers", "other"] as const).map((part) => [
            part,
            round3((after.threads[part] - before.threads[part]) / cpuCoverage.rounds.length),
          ]),
        ),
        target: "≤ 1 core-second per round",
      },
      roundTimeMs: {
        firstToLastApplied: spans,
        meanPollSeconds: meanPollSeconds(metrics),
      },
      rssMiB: {
        allAvailable: rssBefore,
        afterCpuPhase: rssAfter,
        afterWrk: rssEnd,
        cpuPhasePerPeriod: rssPerPeriod,
      },
      throughput: {
        generator: `wrk -t1 -c64 -d${REFRESH_S}s, ${wrkRounds} runs per target, alternating`,
        answer,
        targets: targetFigures,
        ratio: {
          requests: round2(rps("session") / rps("session-same-answer")),
          cpu: round2(cpuUs("session-same-answer") / cpuUs("session")),
          target: "≥ 0.9",
        },
        oneServerRatio: {
          requests: round2(rps("session-one-server") / rps("session-same-answer")),
          cpu: round2(cpuUs("session-same-answer") / cpuUs("session-one-server")),
        },
      },
    };
  } finally {
    for (const step of cleanup.reverse()) await step();
  }
}

/** The coverage figures worth printing. */
function describeCoverage(c: PollCoverage): Record<string, unknown> {
  const spans = c.rounds.map((r) => r.last - r.first);
  return {
    rounds: c.rounds.length,
    addresses: c.addresses,
    pollsPerAddress: { min: c.minPollsPerAddress, max: c.maxPollsPerAddress },
    addressesMissingARound: Object.keys(c.missed).length,
    maxGapBetweenPollsMs: Math.round(c.maxGapMs),
    meanPeriodMs: round1(c.meanPeriodMs),
    standInsFirstToLastAnswerMs: summarize(spans),
  };
}

/** Mean duration of a poll, from the session server's poll-duration histogram. */
function meanPollSeconds(metrics: string): number {
  const total = (name: string) =>
    [...metrics.matchAll(
      new RegExp(`^webots_session_poll_duration_seconds_${name}\\{[^}]*\\} (\\S+)$`, "gm"),
    )]
      .reduce((sum, m) => sum + Number(m[1]), 0);
  return Math.round(total("sum") / total("count") * 1e5) / 1e5;
}

/** The Markdown tables of a fleet result, for BENCHMARKS.md. */
export function fleetTables(result: Record<string, unknown>): string {
  const r = result as {
    servers: number;
    polling: Record<string, Record<string, unknown>>;
    cpu: Record<string, number | string> & {
      perRoundByThread: { main: number; workers: number; other: number };
    };
    roundTimeMs: { firstToLastApplied: number[]; meanPollSeconds: number };
    rssMiB: Record<string, number | number[]>;
    throughput: {
      generator: string;
      targets: Record<string, Record<string, { min: number; median: number; max: number }>>;
      ratio: { requests: number; cpu: number };
      oneServerRatio: { requests: number; cpu: number };
    };
  };
  const all = r.polling.allRounds as {
    rounds: number;
    pollsPerAddress: { min: number; max: number };
    addressesMissingARound: number;
    maxGapBetweenPollsMs: number;
    meanPeriodMs: number;
    standInsFirstToLastAnswerMs: { p50: number; max: number };
  };
  const fmt = (x: number) => x.toLocaleString("en-US");
  const lines = [
    "| Measure | Result | Target |",
    "| --- | --- | --- |",
    `| rounds from the CPU phase to the end of wrk / polls per address (min–max) | ${all.rounds} / ${all.pollsPerAddress.min}–${all.pollsPerAddress.max} | each once a round |`,
    `| addresses missing a round / longest gap between two polls of one address | ${all.addressesMissingARound} / ${
      fmt(all.maxGapBetweenPollsMs)
    } ms | 0 / ≈ 5,000 ms |`,
    `| mean period between rounds | ${fmt(all.meanPeriodMs)} ms | 5,000 ms |`,
    `| session server CPU per round (${r.cpu.rounds} rounds) | **${r.cpu.perRound} core-s** | ≤ 1 core-s |`,
    `| of which idle (a session server with 1 simulation server, same span) | ${r.cpu.idlePerRound} core-s | |`,
    `| by thread: main (answers \`/session\`) / poll worker / V8 and runtime helpers | ${r.cpu.perRoundByThread.main} / ${r.cpu.perRoundByThread.workers} / ${r.cpu.perRoundByThread.other} core-s | |`,
    `| stand-ins' CPU per round (all 4 processes) | ${r.cpu.standInsPerRound} core-s | |`,
    `| one round, first to last answer applied (session server's lastPoll) | ${
      r.roundTimeMs.firstToLastApplied.join(", ")
    } ms | |`,
    `| one round, first to last answer served (stand-ins), p50 / max | ${all.standInsFirstToLastAnswerMs.p50} / ${all.standInsFirstToLastAnswerMs.max} ms | |`,
    `| mean poll duration (session server's histogram) | ${
      round1(r.roundTimeMs.meanPollSeconds * 1000)
    } ms | |`,
    `| RSS: all available → after CPU phase → after wrk | ${r.rssMiB.allAvailable} → ${r.rssMiB.afterCpuPhase} → ${r.rssMiB.afterWrk} MiB | |`,
    `| RSS at each period of the CPU phase | ${
      (r.rssMiB.cpuPhasePerPeriod as unknown as number[]).join(", ")
    } MiB | |`,
    "",
    `${r.throughput.generator}:`,
    "",
    "| Target | req/s min | req/s median | req/s max | server CPU µs/req (median) | wrk CPU, cores (median) | wrk ceiling req/s (median) | rest of machine, cores (median) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const [name, t] of Object.entries(r.throughput.targets)) {
    lines.push(
      `| ${name} \`/session\` | ${fmt(t.requestsPerSecond!.min)} | ${
        fmt(t.requestsPerSecond!.median)
      } | ${fmt(t.requestsPerSecond!.max)} | ${t.serverCpuUsPerRequest!.median} | ${
        t.wrkCpuCores!.median
      } | ${fmt(t.wrkCeilingRps!.median)} | ${t.otherCpuCores!.median} |`,
    );
  }
  lines.push(
    "",
    `\`/session\` ÷ its same-answer minimum: **${r.throughput.ratio.requests}** by req/s, ${r.throughput.ratio.cpu} by server CPU per request (target ≥ 0.9).`,
    `The same for the session server with one simulation server: ${r.throughput.oneServerRatio.requests} by req/s, ${r.throughput.oneServerRatio.cpu} by CPU.`,
  );
  return lines.join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      servers: { type: "string", default: "1000" },
      "cpu-rounds": { type: "string", default: "12" },
      "wrk-rounds": { type: "string", default: "5" },
    },
  });
  try {
    const result = await runFleetBench({
      servers: Number(values.servers),
      cpuRounds: Number(values["cpu-rounds"]),
      wrkRounds: Number(values["wrk-rounds"]),
      progress: (line) => console.error(line),
    });
    console.log(JSON.stringify(result, null, 2));
    console.log(fleetTables(result));
  } catch (error) {
    console.error(error instanceof Error ? error.stack : error);
    Deno.exit(1);
  }
}
