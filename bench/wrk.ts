/**
 * The HTTP load generator of the throughput benchmark: Debian's `wrk` (native, one thread, epoll),
 * run as a child process, with its own CPU use measured so that the bench can show it was not the
 * bottleneck.
 *
 * wrk's CPU time is read from this process's `cutime`/`cstime` in `/proc/self/stat`: the kernel
 * adds a child's user and system time there when the child is reaped, so the difference over one
 * run is exactly wrk's (the bench reaps no other child meanwhile).
 *
 * @module
 */
import { cpuSeconds } from "./proc_stats.ts";

/** Where `wrk` is looked for, in order. */
const WRK_PATHS = ["/usr/bin/wrk", "/usr/local/bin/wrk"];

/** The one line printed when wrk is missing. */
export const WRK_MISSING = "bench: wrk is missing; install it with: apt-get install -y wrk";

/** The path of `wrk` (the first of `paths` that is a file), or undefined when it is missing. */
export function findWrk(paths: readonly string[] = WRK_PATHS): string | undefined {
  for (const path of paths) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Not there: try the next one.
    }
  }
  return undefined;
}

/** Linux's USER_HZ: the unit of the times in `/proc/<pid>/stat` (100 on every Linux ABI). */
const TICKS_PER_SECOND = 100;

/** Fields of `/proc/<pid>/stat` after the command name, 0 = state (field 3). */
function statFields(pid: number | "self"): string[] {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

export { cpuSeconds };

/** User + system CPU seconds of this process's reaped children. */
function childrenCpuSeconds(): number {
  const f = statFields("self");
  return (Number(f[13]) + Number(f[14])) / TICKS_PER_SECOND;
}

/** Busy and total CPU seconds of the whole machine (all cores), from `/proc/stat`. */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0]!;
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0); // idle + iowait
  const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0); // without guest (counted in user)
  return { busy: (total - idle) / TICKS_PER_SECOND, total: total / TICKS_PER_SECOND };
}

/** One wrk run. */
export interface WrkResult {
  readonly requestsPerSecond: number;
  readonly requests: number;
  readonly seconds: number;
  /** Connect/read/write/timeout errors plus non-2xx/3xx answers. */
  readonly errors: number;
  /** wrk's own user + system CPU seconds over the run. */
  readonly wrkCpuSeconds: number;
}

/** One wrk run against a target with what it cost: the target's, wrk's and the machine's CPU. */
export interface MeasuredRun {
  readonly result: WrkResult;
  /** The target's CPU microseconds per request answered. */
  readonly cpuUsPerRequest: number;
  /** wrk's CPU over the run, in cores. */
  readonly wrkCores: number;
  /** Requests per CPU second of wrk: what it could send with a core to itself. */
  readonly wrkCeiling: number;
  /** What the rest of the machine used meanwhile, in cores. */
  readonly otherCores: number;
}

/** Runs wrk against `url` served by `pid`, reading the CPU of the target and the machine. */
export async function measureWrkRun(
  wrk: string,
  url: string,
  pid: number,
  options: WrkOptions,
): Promise<MeasuredRun> {
  const serverBefore = cpuSeconds(pid);
  const machineBefore = machineCpuSeconds();
  const result = await runWrk(wrk, url, options);
  const machineAfter = machineCpuSeconds();
  const serverCpu = cpuSeconds(pid) - serverBefore;
  const wall = (machineAfter.total - machineBefore.total) / navigator.hardwareConcurrency;
  return {
    result,
    cpuUsPerRequest: serverCpu / result.requests * 1e6,
    wrkCores: result.wrkCpuSeconds / result.seconds,
    wrkCeiling: result.requests / Math.max(result.wrkCpuSeconds, 0.01),
    otherCores: Math.max(
      0,
      machineAfter.busy - machineBefore.busy - serverCpu - result.wrkCpuSeconds,
    ) / wall,
  };
}

/** Settings of one wrk run. */
export interface WrkOptions {
  readonly threads: number;
  readonly connections: number;
  readonly seconds: number;
}

/** Reads the figures out of wrk's report; throws when the report is not one. */
export function parseWrkReport(report: string): Omit<WrkResult, "wrkCpuSeconds"> {
  const rps = report.match(/^Requests\/sec:\s+([\d.]+)/m);
  const total = report.match(/^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)\b/m);
  if (!rps || !total) throw new Error(`cannot read wrk's report:\n${report}`);
  const unit = { us: 1e-6, ms: 1e-3, s: 1, m: 60 }[total[3] as "us" | "ms" | "s" | "m"];
  const socket = report.match(
    /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/,
  );
  const non2xx = report.match(/Non-2xx or 3xx responses: (\d+)/);
  const errors = (socket ? socket.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0) +
    (non2xx ? Number(non2xx[1]) : 0);
  return {
    requestsPerSecond: Number(rps[1]),
    requests: Number(total[1]),
    seconds: Number(total[2]) * unit,
    errors,
  };
}

/** Runs wrk against `url` and returns its figures and its CPU time; throws if wrk fails. */
export async function runWrk(wrk: string, url: string, options: WrkOptions): Promise<WrkResult> {
  const before = childrenCpuSeconds();
  const output = await new Deno.Command(wrk, {
    args: [
      `-t${options.threads}`,
      `-c${options.connections}`,
      `-d${options.seconds}s`,
      url,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const wrkCpuSeconds = Math.round((childrenCpuSeconds() - before) * 100) / 100;
  const report = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(
      `wrk exited with ${output.code}: ${new TextDecoder().decode(output.stderr)}${report}`,
    );
  }
  return { ...parseWrkReport(report), wrkCpuSeconds };
}
