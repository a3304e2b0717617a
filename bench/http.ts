/**
 * HTTP throughput of `GET /session` (session server) and `GET /load` (simulation server) against
 * baselines measured in the same run, with `wrk` as the load generator.
 *
 * Targets, each its own process on 127.0.0.1:
 * - the real session server, started through the launcher, polling three stand-in simulation
 *   servers (in this process) so that `/session` answers a real `ws://` URL;
 * - the real simulation server (through the launcher, stand-in Webots, none running) for `/load`;
 * - `bare`: a constant `Deno.serve`;
 * - the same-answer minimum of `/session` and of `/load`: a `Deno.serve` replaying the exact
 *   status, headers and body of a real response taken from the server above in this run;
 * - the cloned answer of each: the same answer built once and cloned per request, the cheapest
 *   way known here to give it (the servers do the same: `cachedResponses` in shared/http.ts);
 * - the routed floor of each: the cloned answer for `GET <path>` only, from a handler that reads
 *   the request's method and URL (see bench/baseline.ts);
 * - the engine floor of each: the same answer prepared once on the project's own HTTP engine
 *   (what the servers run on), for any request.
 *
 * After a warm-up round, `wrk -t1 -c64` runs against each target in turn (A, B, C, …, A, B, C, …)
 * for the given number of rounds. Each round also records wrk's own CPU time, the target's CPU
 * time and what the rest of the machine used meanwhile.
 *
 * Run alone: `deno run -A bench/http.ts [--rounds N] [--seconds N] [--only name,name]`.
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startServer } from "../tests/helpers/server_process.ts";
import { serverPid } from "../tests/helpers/server_process.ts";
import { startSimulationServer } from "../tests/helpers/simulation_fixture.ts";
import { type FakeSimServer, startFakeSimServer } from "../tests/fakes/sim_server.ts";
import { type Answer, answerOf } from "./baseline.ts";
import { findWrk, measureWrkRun, runWrk, WRK_MISSING } from "./wrk.ts";

const BASELINE = join(import.meta.dirname ?? ".", "baseline.ts");

/** Settings of the throughput benchmark. */
export interface HttpBenchOptions {
  /** Measured rounds over all targets (default 5), after one warm-up round. */
  readonly rounds?: number;
  /** Seconds per wrk run (default 5). */
  readonly seconds?: number;
  readonly connections?: number;
  /** Only the targets with these names (default: all); the ratios need all. */
  readonly only?: readonly string[];
  /** Progress lines (default: none). */
  readonly progress?: (line: string) => void;
}

/** min / median / max of a series. */
export interface Spread {
  readonly min: number;
  readonly median: number;
  readonly max: number;
}

/** The figures of one target over all rounds. */
export interface TargetResult {
  readonly name: string;
  readonly path: string;
  readonly requestsPerSecond: Spread;
  /** Server CPU microseconds per answered request (the target process only). */
  readonly serverCpuUsPerRequest: Spread;
  /** wrk's CPU time over the round's wall time (1 = one core busy all the time). */
  readonly wrkCpuCores: Spread;
  /** Requests wrk could send per CPU second it used: its ceiling if it had a core to itself. */
  readonly wrkCeilingRps: Spread;
  /** CPU used on the machine by everything but wrk and the target, in cores. */
  readonly otherCpuCores: Spread;
  readonly rounds: readonly number[];
}

/** A running target. */
interface Target {
  readonly name: string;
  readonly path: string;
  readonly url: string;
  /** The process whose CPU time is the server's. */
  readonly pid: number;
}

/** Median of a non-empty list (mean of the middle two for even lengths). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** min / median / max of `values`, rounded to `digits` decimals. */
export function spread(values: readonly number[], digits: number): Spread {
  const round = (x: number) => Math.round(x * 10 ** digits) / 10 ** digits;
  return {
    min: round(Math.min(...values)),
    median: round(median(values)),
    max: round(Math.max(...values)),
  };
}

/** A baseline process (bench/baseline.ts) that has printed its port. */
export interface Baseline {
  readonly child: Deno.ChildProcess;
  readonly port: number;
}

/** Starts bench/baseline.ts with `args` and waits for its port. */
export async function startBaseline(args: string[]): Promise<Baseline> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net=127.0.0.1", BASELINE, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    while (!/listening (\d+)\n/.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`baseline ${args[0]} exited before listening: ${text}`);
      text += value;
    }
  } catch (error) {
    child.kill("SIGKILL");
    await child.status;
    throw error;
  } finally {
    // Nothing more is printed; let the stream go so the process can exit cleanly later.
    reader.releaseLock();
    void child.stdout.cancel().catch(() => {});
  }
  return { child, port: Number(text.match(/listening (\d+)/)![1]) };
}

/** Stops a baseline and waits for its exit. */
export async function stopBaseline(baseline: Baseline): Promise<void> {
  try {
    baseline.child.kill("SIGTERM");
  } catch { /* already gone */ }
  await baseline.child.status;
}

/** The answer `url` gives now. */
export async function fetchAnswer(url: string): Promise<Answer> {
  return await answerOf(await fetch(url));
}

/** Throws unless the baseline gives the same status and headers (and body when `body`). */
export async function assertSameAnswer(
  real: Answer,
  baselineUrl: string,
  what: string,
  body: boolean,
): Promise<void> {
  const copy = await fetchAnswer(baselineUrl);
  const shape = (a: Answer) =>
    JSON.stringify({ status: a.status, headers: a.headers, body: body ? a.body : undefined });
  if (shape(copy) !== shape(real)) {
    throw new Error(`${what} baseline answers ${shape(copy)}, the server ${shape(real)}`);
  }
}

/** Runs the throughput benchmark; throws with one line when wrk is missing. */
export async function runHttpBench(options: HttpBenchOptions = {}): Promise<
  Record<string, unknown>
> {
  const wrk = findWrk();
  if (wrk === undefined) throw new Error(WRK_MISSING);
  const rounds = options.rounds ?? 5;
  const seconds = options.seconds ?? 5;
  const connections = options.connections ?? 64;
  const progress = options.progress ?? (() => {});
  const wrkOptions = { threads: 1, connections, seconds };

  const cleanup: (() => Promise<unknown>)[] = [];
  try {
    // Three stand-in simulation servers; the second is the least loaded, so /session names it.
    const sims: FakeSimServer[] = [30, 10, 50].map((load) => startFakeSimServer({ load }));
    cleanup.push(() => Promise.all(sims.map((s) => s.close())));
    const dir = await Deno.makeTempDir({ prefix: "http-bench-" });
    cleanup.push(() => Deno.remove(dir, { recursive: true }));
    const session = await startServer("session", {
      port: 0,
      simulationServers: sims.map((s) => s.entry),
      logDir: join(dir, "log"),
      loadRefresh: 1,
      loadTimeout: 1,
    }, { dir });
    cleanup.push(() => session.stop());
    // No nvidia-smi: the stand-in is a Deno script that the server would start every second.
    const simulation = await startSimulationServer({
      config: { nvidiaSmiPath: join(dir, "no-nvidia-smi") },
    });
    cleanup.push(() => simulation[Symbol.asyncDispose]());

    const sessionUrl = `${session.baseUrl}/session`;
    const expected = `ws://${sims[1]!.entry}`;
    let sessionAnswer = await fetchAnswer(sessionUrl);
    while (sessionAnswer.body !== expected) {
      await sims[1]!.nextServed();
      sessionAnswer = await fetchAnswer(sessionUrl);
    }
    const loadUrl = `${simulation.server.baseUrl}/load`;
    const loadAnswer = await fetchAnswer(loadUrl);

    const bare = await startBaseline(["bare"]);
    cleanup.push(() => stopBaseline(bare));
    const local = (b: Baseline, path: string) => `http://127.0.0.1:${b.port}${path}`;
    const all: Target[] = [];
    const real = [
      {
        name: "session",
        path: "/session",
        url: sessionUrl,
        answer: sessionAnswer,
        launcher: session,
      },
      {
        name: "load",
        path: "/load",
        url: loadUrl,
        answer: loadAnswer,
        launcher: simulation.server,
      },
    ];
    for (const { name, path, url, answer, launcher } of real) {
      const copy = await startBaseline(["answer", JSON.stringify(answer)]);
      cleanup.push(() => stopBaseline(copy));
      const cloned = await startBaseline(["cloned", JSON.stringify(answer)]);
      cleanup.push(() => stopBaseline(cloned));
      const routed = await startBaseline(["routed", JSON.stringify(answer), path]);
      cleanup.push(() => stopBaseline(routed));
      const engine = await startBaseline(["engine", JSON.stringify(answer)]);
      cleanup.push(() => stopBaseline(engine));
      // The load figure moves between two requests; the status and headers cannot.
      const sameBody = name === "session";
      await assertSameAnswer(answer, local(copy, path), `${path} same-answer`, sameBody);
      await assertSameAnswer(answer, local(cloned, path), `${path} cloned`, sameBody);
      await assertSameAnswer(answer, local(routed, path), `${path} routed`, sameBody);
      await assertSameAnswer(answer, local(engine, path), `${path} engine`, sameBody);
      all.push(
        { name, path, url, pid: serverPid(launcher.pid) },
        { name: `${name}-same-answer`, path, url: local(copy, path), pid: copy.child.pid },
        { name: `${name}-cloned`, path, url: local(cloned, path), pid: cloned.child.pid },
        { name: `${name}-routed-floor`, path, url: local(routed, path), pid: routed.child.pid },
        { name: `${name}-engine-floor`, path, url: local(engine, path), pid: engine.child.pid },
      );
      if (name === "session") {
        all.push({ name: "bare", path: "/", url: local(bare, "/"), pid: bare.child.pid });
      }
    }
    const targets = options.only ? all.filter((t) => options.only!.includes(t.name)) : all;

    progress(`warm-up: ${targets.length} targets, ${seconds} s each`);
    for (const target of targets) await runWrk(wrk, target.url, wrkOptions);

    const perTarget = new Map<string, {
      rps: number[];
      cpuUs: number[];
      wrkCores: number[];
      ceiling: number[];
      other: number[];
    }>(targets.map((t) => [t.name, { rps: [], cpuUs: [], wrkCores: [], ceiling: [], other: [] }]));
    for (let round = 1; round <= rounds; round++) {
      const line: string[] = [];
      for (const target of targets) {
        const run = await measureWrkRun(wrk, target.url, target.pid, wrkOptions);
        const { result } = run;
        if (result.errors > 0) {
          throw new Error(`${result.errors} failed requests against ${target.name}`);
        }
        const figures = perTarget.get(target.name)!;
        figures.rps.push(result.requestsPerSecond);
        figures.cpuUs.push(run.cpuUsPerRequest);
        figures.wrkCores.push(run.wrkCores);
        figures.ceiling.push(run.wrkCeiling);
        figures.other.push(run.otherCores);
        line.push(`${target.name} ${Math.round(result.requestsPerSecond)}`);
      }
      progress(`round ${round}/${rounds}: ${line.join(", ")} req/s`);
    }

    const results: TargetResult[] = targets.map((t) => {
      const f = perTarget.get(t.name)!;
      return {
        name: t.name,
        path: t.path,
        requestsPerSecond: spread(f.rps, 0),
        serverCpuUsPerRequest: spread(f.cpuUs, 2),
        wrkCpuCores: spread(f.wrkCores, 2),
        wrkCeilingRps: spread(f.ceiling, 0),
        otherCpuCores: spread(f.other, 2),
        rounds: f.rps.map(Math.round),
      };
    });
    const find = (name: string) => results.find((r) => r.name === name);
    const rps = (name: string) => find(name)?.requestsPerSecond.median ?? NaN;
    const cpu = (name: string) => find(name)?.serverCpuUsPerRequest.median ?? NaN;
    const round2 = (x: number) => Math.round(x * 100) / 100;
    // Throughput ratio, and the same from the server's CPU per request (baseline ÷ target):
    // the latter does not depend on what else the machine ran during a round.
    const ratio = (a: string, b: string) => ({
      requests: round2(rps(a) / rps(b)),
      cpu: round2(cpu(b) / cpu(a)),
    });
    return {
      generator: `wrk -t1 -c${connections} -d${seconds}s (${wrk}), 127.0.0.1, nothing pinned`,
      rounds,
      seconds,
      connections,
      answers: { session: sessionAnswer, load: loadAnswer },
      targets: results,
      ratios: {
        sessionToSameAnswer: ratio("session", "session-same-answer"),
        sessionToBare: ratio("session", "bare"),
        sessionToCloned: ratio("session", "session-cloned"),
        sessionToRoutedFloor: ratio("session", "session-routed-floor"),
        sessionToEngineFloor: ratio("session", "session-engine-floor"),
        loadToSameAnswer: ratio("load", "load-same-answer"),
        loadToBare: ratio("load", "bare"),
        loadToCloned: ratio("load", "load-cloned"),
        loadToRoutedFloor: ratio("load", "load-routed-floor"),
        loadToEngineFloor: ratio("load", "load-engine-floor"),
      },
    };
  } finally {
    for (const step of cleanup.reverse()) await step();
  }
}

const fmt = (x: number) => x.toLocaleString("en-US");

/** The Markdown tables of a throughput result, for BENCHMARKS.md. */
export function httpTables(result: Record<string, unknown>): string {
  const targets = result.targets as TargetResult[];
  const ratios = result.ratios as Record<string, { requests: number; cpu: number }>;
  const lines = [
    `${result.generator}, ${result.rounds} rounds alternating over the targets after a warm-up ` +
    "round.",
    "",
    "| Target | req/s min | req/s median | req/s max | server CPU µs/req (median) | wrk CPU, cores (median) | wrk ceiling req/s (median) | rest of machine, cores (median) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const t of targets) {
    lines.push(
      `| ${t.name} \`${t.path}\` | ${fmt(t.requestsPerSecond.min)} | ${
        fmt(t.requestsPerSecond.median)
      } | ${
        fmt(t.requestsPerSecond.max)
      } | ${t.serverCpuUsPerRequest.median} | ${t.wrkCpuCores.median} | ${
        fmt(t.wrkCeilingRps.median)
      } | ${t.otherCpuCores.median} |`,
    );
  }
  lines.push(
    "",
    "| Ratio of medians | by req/s | by server CPU per request (baseline µs ÷ target µs) | target |",
    "| --- | --- | --- | --- |",
  );
  const row = (what: string, key: string, target: string) => {
    const r = ratios[key]!;
    const bold = (x: number) => target ? `**${x}**` : String(x);
    lines.push(`| ${what} | ${bold(r.requests)} | ${r.cpu} | ${target} |`);
  };
  row("`/session` ÷ its same-answer minimum", "sessionToSameAnswer", "≥ 0.9");
  row("`/session` ÷ bare constant", "sessionToBare", "");
  row("`/session` ÷ the same answer built once and cloned", "sessionToCloned", "");
  row("`/session` ÷ that cloned answer after reading method and path", "sessionToRoutedFloor", "");
  row("`/session` ÷ the same answer prepared on the project's engine", "sessionToEngineFloor", "");
  row("`/load` ÷ its same-answer minimum", "loadToSameAnswer", "≥ 0.9");
  row("`/load` ÷ bare constant", "loadToBare", "");
  row("`/load` ÷ the same answer built once and cloned", "loadToCloned", "");
  row("`/load` ÷ that cloned answer after reading method and path", "loadToRoutedFloor", "");
  row("`/load` ÷ the same answer prepared on the project's engine", "loadToEngineFloor", "");
  return lines.join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "5" },
      seconds: { type: "string", default: "5" },
      only: { type: "string" },
    },
  });
  try {
    const result = await runHttpBench({
      rounds: Number(values.rounds),
      seconds: Number(values.seconds),
      ...(values.only ? { only: values.only.split(",") } : {}),
      progress: (line) => console.error(line),
    });
    console.log(httpTables(result));
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    Deno.exit(1);
  }
}
