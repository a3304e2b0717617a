/**
 * `deno task bench`: runs the benchmarks one after the other (HTTP throughput with wrk, the
 * session server's subscribers, the simulation server's sessions), prints the figures, writes them
 * with the machine's facts to `bench/results.json`, and prints Markdown tables for BENCHMARKS.md.
 *
 * Options: `--only http|session|simulation|lease|queue|fleet` (comma-separated), `--rounds N`
 * and `--seconds N` (wrk rounds over all targets, default 5, and seconds per wrk run, default 5),
 * `--sessions N` (sequential simulation sessions, default 200), `--concurrent N` (simulation
 * sessions started at once, and held open while single ones are measured, default 100),
 * `--held-samples N` (single sessions measured per mode, beside the held ones and on an idle
 * server, default 1000), `--subscribers N` (availability subscribers; default: as many as the
 * session server may hold), `--changes N` (availability changes timed, default 6), `--out FILE`
 * (default bench/results.json). The HTTP and fleet parts need `wrk` (`apt-get install -y wrk`).
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fleetTables, runFleetBench } from "./fleet.ts";
import { httpTables, runHttpBench } from "./http.ts";
import { runLeaseBench } from "./lease.ts";
import { runQueueBench } from "./queue.ts";
import { runSessionBench, subscriberTables } from "./session.ts";
import { runSimulationBench } from "./simulation.ts";
import type { Summary } from "./stats.ts";
import { findWrk, WRK_MISSING } from "./wrk.ts";

const BENCHES = ["http", "session", "simulation", "lease", "queue", "fleet"];

/** Facts about the machine the figures were measured on. */
export function machineFacts(): Record<string, unknown> {
  let cpuModel = "unknown";
  try {
    const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
    cpuModel = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? cpuModel;
  } catch {
    // Not Linux: the model stays unknown.
  }
  return {
    cpuModel,
    cores: navigator.hardwareConcurrency,
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30 * 10) / 10,
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    loadAverageAtStart: loadAverage(),
  };
}

function loadAverage(): number[] {
  return Deno.loadavg().map((x) => Math.round(x * 100) / 100);
}

const isSummary = (value: unknown): value is Summary =>
  typeof value === "object" && value !== null && "p50" in value && "p99" in value &&
  "max" in value;

const ms = (x: number | undefined) => x === undefined || x === null ? "–" : `${x} ms`;

function describeSummary(s: Summary): string {
  return `p50 ${ms(s.p50)}, p99 ${ms(s.p99)}, max ${ms(s.max)} (n=${s.n})`;
}

/** Indented `key: value` lines; p50/p99/max summaries on one line. */
function humanLines(value: unknown, indent = ""): string[] {
  if (typeof value !== "object" || value === null) return [`${indent}${String(value)}`];
  const lines: string[] = [];
  for (const [key, item] of Object.entries(value)) {
    if (isSummary(item)) lines.push(`${indent}${key}: ${describeSummary(item)}`);
    else if (typeof item === "object" && item !== null && !Array.isArray(item)) {
      lines.push(`${indent}${key}:`, ...humanLines(item, `${indent}  `));
    } else lines.push(`${indent}${key}: ${JSON.stringify(item)}`);
  }
  return lines;
}

/** Rows `| path | value |` for any result object. */
function genericTable(result: Record<string, unknown>): string {
  const rows: string[] = ["| Figure | Value |", "| --- | --- |"];
  const walk = (value: unknown, path: string) => {
    if (isSummary(value)) rows.push(`| ${path} | ${describeSummary(value)} |`);
    else if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      for (const [key, item] of Object.entries(value)) walk(item, path ? `${path}.${key}` : key);
    } else rows.push(`| ${path} | ${JSON.stringify(value)} |`);
  };
  walk(result, "");
  return rows.join("\n");
}

function at(result: Record<string, unknown>, path: string): unknown {
  return path.split(".").reduce<unknown>(
    (value, key) =>
      typeof value === "object" && value !== null
        ? (value as Record<string, unknown>)[key]
        : undefined,
    result,
  );
}

function summaryAt(result: Record<string, unknown>, path: string): Summary | undefined {
  const value = at(result, path);
  return isSummary(value) ? value : undefined;
}

/** The simulation figures against the issue's targets, and where the start-up time goes. */
function simulationTables(result: Record<string, unknown>): string {
  const row = (what: string, s: Summary | undefined, target: string) =>
    `| ${what} | ${ms(s?.p50)} | ${ms(s?.p99)} | ${ms(s?.max)} | ${target} |`;
  const n = at(result, "sequential.sessions");
  const c = at(result, "concurrent.sessions");
  const lines = [
    "| Measure | p50 | p99 | max | Target |",
    "| --- | --- | --- | --- | --- |",
    row(
      `\`start\` → \`webots:\` (${n} sequential sessions)`,
      summaryAt(result, "sequential.startToWebotsMs"),
      "p50 ≤ 20 ms, p99 ≤ 60 ms",
    ),
    row(
      "stand-in Webots alone: spawn → ready line",
      summaryAt(result, "standIn.readyMs"),
      "(floor of the line above)",
    ),
    `| server's share: \`start\` → \`webots:\` p50 minus stand-in alone p50 | ${
      ms(at(result, "sequential.serverShareP50Ms") as number)
    } | | | |`,
    row(
      `close → Webots reaped and folder removed (${n} sequential)`,
      summaryAt(result, "sequential.closeToCleanedMs.totalMs"),
      "≤ 100 ms",
    ),
    row(
      `${c} concurrent: \`start\` → \`webots:\` per session`,
      summaryAt(result, "concurrent.startToWebotsMs"),
      "",
    ),
    `| ${c} concurrent: all \`webots:\` received | ${
      ms(at(result, "concurrent.allRepliedMs") as number)
    } | | | |`,
    row(
      `${c} concurrent: close → cleaned up, per session`,
      summaryAt(result, "concurrent.closeToCleanedMs.totalMs"),
      "",
    ),
    `| ${c} concurrent: close → all cleaned up | ${
      ms(at(result, "concurrent.allCleanedMs") as number)
    } | | | |`,
    `| ${c} concurrent: distinct streaming ports | ${
      at(result, "concurrent.distinctPorts")
    } of ${c} | | | all distinct |`,
  ];
  const h = (path: string) => at(result, `held.${path}`);
  if (h("heldSessions") !== undefined) {
    const held = h("heldSessions");
    const pair = (what: string, key: string, target: string) => {
      const idle = summaryAt(result, `held.${key}.idle`);
      const beside = summaryAt(result, `held.${key}.beside`);
      const r = (p: string) => h(`ratios.${p}`);
      const which = key.startsWith("start") ? "start" : "close";
      return [
        `| ${what}, idle server | ${ms(idle?.p50)} | ${ms(idle?.p99)} | ${ms(idle?.max)} | |`,
        `| ${what}, beside ${held} held sessions | ${ms(beside?.p50)} | ${ms(beside?.p99)} | ${
          ms(beside?.max)
        } | |`,
        `| ratio held ÷ idle | ${r(`${which}P50`)} | ${r(`${which}P99`)} | | ${target} |`,
      ];
    };
    lines.push(
      "",
      `One session at a time, ${h("samplesPerMode")} per mode in ${
        h("blocks")
      } alternating blocks, on an idle server and beside ${held} held sessions:`,
      "",
      "| Measure | p50 | p99 | max | Target |",
      "| --- | --- | --- | --- | --- |",
      ...pair("`start` → `webots:`", "startToWebotsMs", "≤ 2"),
      ...pair("close → reaped and folder removed", "closeToCleanedMs", "≤ 2"),
      "",
      "| Load generator check | idle blocks | held blocks |",
      "| --- | --- | --- |",
      `| client (this process), share of a core | ${h("cpu.idle.clientCoreShare")} | ${
        h("cpu.beside.clientCoreShare")
      } |`,
      `| server (with its helpers), share of a core | ${h("cpu.idle.serverCoreShare")} | ${
        h("cpu.beside.serverCoreShare")
      } |`,
      `| rest of the machine, cores | ${h("cpu.idle.restOfMachineCoreShare")} | ${
        h("cpu.beside.restOfMachineCoreShare")
      } |`,
      `| measured wall time, s | ${h("cpu.idle.wallSeconds")} | ${h("cpu.beside.wallSeconds")} |`,
      "",
      `Holding ${held} sessions with nothing happening: server ${
        h("cpu.serverCoreShareHoldingOnly")
      } of a core; opening them 5 at a time: ${
        JSON.stringify(h("rampUpMs"))
      } ms per block; held stand-ins alive after each held block: ${
        JSON.stringify(h("heldAliveAfter"))
      }.`,
    );
    const idlePhases = h("breakdownMs.idle") as Record<string, Summary> | undefined;
    const besidePhases = h("breakdownMs.beside") as Record<string, Summary> | undefined;
    if (idlePhases && besidePhases) {
      lines.push(
        "",
        `| Phase | idle p50 | idle p99 | beside ${held} p50 | beside ${held} p99 |`,
        "| --- | --- | --- | --- | --- |",
      );
      for (const [phase, s] of Object.entries(idlePhases)) {
        const b = besidePhases[phase];
        lines.push(`| ${phase} | ${ms(s.p50)} | ${ms(s.p99)} | ${ms(b?.p50)} | ${ms(b?.p99)} |`);
      }
    }
  }
  const phases = at(result, "sequential.breakdownMs");
  const concurrentPhases = at(result, "concurrent.breakdownMs");
  if (typeof phases === "object" && phases !== null) {
    lines.push(
      "",
      "Where the time goes: the server's log times (whole ms, so each phase is ±1 ms) against " +
        "the client's clock:",
      "",
      `| Phase | sequential p50 | sequential p99 | ${c} concurrent p50 | ${c} concurrent p99 |`,
      "| --- | --- | --- | --- | --- |",
    );
    for (const [phase, s] of Object.entries(phases)) {
      const cs = (concurrentPhases as Record<string, Summary> | undefined)?.[phase];
      if (isSummary(s)) {
        lines.push(`| ${phase} | ${ms(s.p50)} | ${ms(s.p99)} | ${ms(cs?.p50)} | ${ms(cs?.p99)} |`);
      }
    }
  }
  return lines.join("\n");
}

/** What a lease adds to `GET /session`, and the burst of the issue. */
function leaseTables(result: Record<string, unknown>): string {
  const on = summaryAt(result, "sessionCost.leasesOn");
  const off = summaryAt(result, "sessionCost.leasesOff");
  const n = at(result, "sessionCost.requestsPerMode");
  const b = (key: string) => at(result, `burst.${key}`);
  return [
    `| \`GET /session\`, one at a time (${n} each, alternating) | p50 | p99 | max |`,
    "| --- | --- | --- | --- |",
    `| leases off (cached answer) | ${ms(off?.p50)} | ${ms(off?.p99)} | ${ms(off?.max)} |`,
    `| leases on (a slot reserved per request) | ${ms(on?.p50)} | ${ms(on?.p99)} | ${
      ms(on?.max)
    } |`,
    `| added by the lease | ${ms(at(result, "sessionCost.addedP50Ms") as number)} | ${
      ms(at(result, "sessionCost.addedP99Ms") as number)
    } | |`,
    "",
    "| Burst | Value | Target |",
    "| --- | --- | --- |",
    `| ${b("requests")} concurrent \`GET /session\`, ${b("servers")} servers × ${
      b("slotsPerServer")
    } slots: all answered | ${ms(b("wallMs") as number)} | |`,
    `| leases handed out (distinct) | ${b("leases")} (${b("distinctLeases")}) | 50 |`,
    `| double bookings | ${b("doubleBookings")} | 0 |`,
    `| told no server is available | ${b("answeredNone")} | 150 |`,
  ].join("\n");
}

function machineLine(machine: Record<string, unknown>): string {
  return `${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.os}, ` +
    `Deno ${machine.deno} (V8 ${machine.v8}), load average at start ${
      (machine.loadAverageAtStart as number[]).join(" ")
    }`;
}

async function run<T>(name: string, bench: () => Promise<T>): Promise<T | { error: string }> {
  console.error(`\n== ${name} benchmark ==`);
  const started = performance.now();
  try {
    const result = await bench();
    console.error(
      `${name} benchmark done in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    return result;
  } catch (error) {
    console.error(`${name} benchmark failed:`, error);
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      only: { type: "string" },
      rounds: { type: "string", default: "5" },
      seconds: { type: "string", default: "5" },
      sessions: { type: "string", default: "200" },
      concurrent: { type: "string", default: "100" },
      "held-samples": { type: "string", default: "1000" },
      subscribers: { type: "string" },
      changes: { type: "string", default: "6" },
      out: { type: "string", default: join(import.meta.dirname ?? ".", "results.json") },
    },
  });
  const which = values.only ? values.only.split(",") : BENCHES;
  if (which.some((w) => !BENCHES.includes(w))) {
    console.error(`--only takes ${BENCHES.join(", ")} (comma-separated)`);
    return 2;
  }
  const counts = [
    values.rounds,
    values.seconds,
    values.sessions,
    values.concurrent,
    values["held-samples"],
    values.changes,
    values.subscribers ?? "1",
  ].map(Number);
  if (counts.some((n) => !Number.isInteger(n) || n < 1)) {
    console.error(
      "--rounds, --seconds, --sessions, --concurrent, --held-samples, --changes and " +
        "--subscribers must be positive integers",
    );
    return 2;
  }
  const [rounds, seconds, sessions, concurrent, heldSamples, changes] = counts as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const subscribers = values.subscribers === undefined ? undefined : Number(values.subscribers);
  if ((which.includes("http") || which.includes("fleet")) && findWrk() === undefined) {
    console.error(WRK_MISSING);
    return 1;
  }
  const machine = machineFacts();
  const results: Record<string, unknown> = { date: new Date().toISOString(), machine };
  console.error(`Machine: ${machineLine(machine)}`);
  if (which.includes("http")) {
    results.http = await run(
      "HTTP throughput",
      () => runHttpBench({ rounds, seconds, progress: (line) => console.error(line) }),
    );
  }
  if (which.includes("session")) {
    results.session = await run(
      "session",
      () => runSessionBench({ subscribers, changes, progress: (line) => console.error(line) }),
    );
  }
  if (which.includes("queue")) {
    results.queue = await run("queue", runQueueBench);
  }
  if (which.includes("simulation")) {
    results.simulation = await run("simulation", () =>
      runSimulationBench({
        sessions,
        concurrent,
        heldSamples,
        progress: (line) => console.error(line),
      }));
  }
  if (which.includes("lease")) {
    results.lease = await run("slot lease", () => runLeaseBench((line) => console.error(line)));
  }
  if (which.includes("fleet")) {
    results.fleet = await run(
      "1,000 simulation servers",
      () => runFleetBench({ progress: (line) => console.error(line) }),
    );
  }
  machine.loadAverageAtEnd = loadAverage();

  const out: string[] = ["", "# Results", "", `Machine: ${machineLine(machine)}`];
  for (const name of BENCHES) {
    const result = results[name];
    if (result === undefined) continue;
    out.push("", `## ${name}`, "", ...humanLines(result, "  "));
  }
  out.push(
    "",
    "# Markdown for BENCHMARKS.md",
    "",
    `Measured ${results.date} on ${machineLine(machine)}.`,
  );
  for (const [part, title, tables] of MARKDOWN_SECTIONS) {
    const result = results[part];
    if (!isRecord(result)) continue;
    out.push("", `### ${title}`, "", "error" in result ? genericTable(result) : tables(result));
  }
  console.log(out.join("\n"));
  await Deno.writeTextFile(
    values.out,
    JSON.stringify(await withEarlierParts(values.out, results, which), null, 2) + "\n",
  );
  console.log(`\nWrote ${values.out}`);
  const failed = which.some((w) => isRecord(results[w]) && "error" in (results[w] as object));
  return failed ? 1 : 0;
}

/** The Markdown sections, in order: a part's result, its heading and its own tables. */
const MARKDOWN_SECTIONS: readonly [
  string,
  string,
  (result: Record<string, unknown>) => string,
][] = [
  ["http", "HTTP throughput", httpTables],
  ["session", "Session server: availability subscribers", subscriberTables],
  ["queue", "Queue", genericTable],
  ["simulation", "Simulation server", simulationTables],
  ["lease", "Slot leases", leaseTables],
  ["fleet", "Session server: 1,000 simulation servers", fleetTables],
];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}

/**
 * `results` plus the parts of the file at `path` that this run did not measure (with `--only`),
 * each marked with the date of the run that did, so that a partial run keeps the others' figures.
 */
export async function withEarlierParts(
  path: string,
  results: Record<string, unknown>,
  measured: readonly string[],
): Promise<Record<string, unknown>> {
  let earlier: Record<string, unknown>;
  try {
    earlier = JSON.parse(await Deno.readTextFile(path));
  } catch {
    return results;
  }
  const merged = { ...results };
  for (const part of BENCHES) {
    if (measured.includes(part) || !isRecord(earlier[part])) continue;
    const date = (earlier[part] as Record<string, unknown>).measured ?? earlier.date;
    merged[part] = { ...(earlier[part] as Record<string, unknown>), measured: date };
  }
  return merged;
}
