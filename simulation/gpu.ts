/**
 * GPU figures from `nvidia-smi`. Several GPUs are merged into one machine-wide figure: the mean of
 * their utilisations and the sum of their memory (a server is as loaded as its GPUs on average;
 * simulations are spread over all of them).
 *
 * @module
 */
import type { RunCommand } from "./command_runner.ts";

/** The `nvidia-smi` arguments: one CSV line per GPU, no header, no units (memory in MiB). */
export const NVIDIA_SMI_ARGS: readonly string[] = [
  "--query-gpu=name,utilization.gpu,utilization.memory,memory.used,memory.total",
  "--format=csv,noheader,nounits",
];

/** One GPU as `nvidia-smi` reports it. */
export interface GpuReading {
  name: string;
  /** Compute utilisation, %. */
  compute: number;
  /** Memory-controller utilisation, %. */
  memoryLoad: number;
  /** MiB. */
  memoryUsed: number;
  /** MiB. */
  memoryTotal: number;
}

/** The machine's GPUs merged. */
export interface GpuSummary {
  /** The first GPU's name, with `N × ` in front when there are several. */
  name: string;
  count: number;
  /** Mean compute utilisation, %. */
  compute: number;
  /** Mean memory-controller utilisation, %. */
  memoryLoad: number;
  /** Memory used of total over all GPUs, %. */
  memory: number;
  /** Total memory of all GPUs, GB (10^9 bytes). */
  memoryTotalGB: number;
}

// `[N/A]` and `[Not Supported]` stand for figures a GPU does not report: they count as 0.
function figure(text: string | undefined): number {
  const value = Number.parseFloat(text ?? "");
  return Number.isFinite(value) ? value : 0;
}

/** Parses the query's output; throws when it holds no GPU line. */
export function parseNvidiaSmi(stdout: string): GpuReading[] {
  const gpus: GpuReading[] = [];
  for (const line of stdout.split("\n")) {
    const fields = line.split(",").map((f) => f.trim());
    if (fields.length !== 5 || !fields[0]) continue;
    gpus.push({
      name: fields[0],
      compute: figure(fields[1]),
      memoryLoad: figure(fields[2]),
      memoryUsed: figure(fields[3]),
      memoryTotal: figure(fields[4]),
    });
  }
  if (gpus.length === 0) {
    throw new Error(`unexpected nvidia-smi output: ${JSON.stringify(stdout.slice(0, 200))}`);
  }
  return gpus;
}

const round1 = (v: number) => Math.round(v * 10) / 10;

/** Merges several GPUs into one summary (see the module doc). */
export function summarizeGpus(gpus: readonly GpuReading[]): GpuSummary {
  const count = gpus.length;
  const sum = (f: (g: GpuReading) => number) => gpus.reduce((total, g) => total + f(g), 0);
  const used = sum((g) => g.memoryUsed);
  const total = sum((g) => g.memoryTotal);
  const first = gpus[0]?.name ?? "";
  return {
    name: count > 1 ? `${count} × ${first}` : first,
    count,
    compute: count ? round1(sum((g) => g.compute) / count) : 0,
    memoryLoad: count ? round1(sum((g) => g.memoryLoad) / count) : 0,
    memory: total > 0 ? Math.min(100, round1((used / total) * 100)) : 0,
    memoryTotalGB: round1((total * 1024 * 1024) / 1e9),
  };
}

/** Runs `nvidia-smi` once and summarises its GPUs; throws when it is absent or fails. */
export async function readGpus(
  runCommand: RunCommand,
  nvidiaSmiPath: string,
  signal?: AbortSignal,
): Promise<GpuSummary> {
  const out = await runCommand(nvidiaSmiPath, [...NVIDIA_SMI_ARGS], signal ? { signal } : {});
  if (out.timedOutAfterMs !== undefined) {
    throw new Error(
      `${nvidiaSmiPath} did not answer within ${out.timedOutAfterMs / 1000} s and was ended`,
    );
  }
  if (!out.success) {
    const said = (out.stdout.trim() || out.stderr?.trim() || "").split("\n")[0];
    throw new Error(`${nvidiaSmiPath} failed${said ? `: ${said}` : ""}`);
  }
  return summarizeGpus(parseNvidiaSmi(out.stdout));
}
