/**
 * CPU, memory, swap and disk figures and the host's description, from Deno's and Node's system
 * APIs only (`--allow-sys=cpus,systemMemoryInfo,statfs,hostname,osRelease`, read access to
 * `/etc/os-release` and to the folders whose filesystem is measured).
 *
 * @module
 */
import os from "node:os";
import { statfs } from "node:fs/promises";
import { percent } from "./snapshot.ts";

/** Cumulative CPU times of one core, milliseconds. */
export interface CpuTimes {
  user: number;
  nice: number;
  sys: number;
  idle: number;
  irq: number;
}

/** Where system figures come from; `realSystemSources()` in production, stand-ins in tests. */
export interface SystemSources {
  cpus(): { model: string; times: CpuTimes }[];
  /** Bytes. */
  memory(): { total: number; available: number; swapTotal: number; swapFree: number };
  statfs(path: string): Promise<{ blocks: number; bfree: number; bavail: number; bsize: number }>;
  hostname(): string;
  /** Kernel release. */
  osRelease(): string;
  /** Text of `/etc/os-release`, empty when unreadable. */
  osReleaseFile(): string;
}

/** The real sources. */
export function realSystemSources(): SystemSources {
  return {
    cpus: () => os.cpus(),
    memory: () => Deno.systemMemoryInfo(),
    statfs: (path) => statfs(path),
    hostname: () => Deno.hostname(),
    osRelease: () => Deno.osRelease(),
    osReleaseFile: () => {
      try {
        return Deno.readTextFileSync("/etc/os-release");
      } catch {
        return "";
      }
    },
  };
}

function totals(cpus: readonly { times: CpuTimes }[]): { busy: number; all: number } {
  let busy = 0;
  let all = 0;
  for (const { times: t } of cpus) {
    const sum = t.user + t.nice + t.sys + t.idle + t.irq;
    all += sum;
    busy += sum - t.idle;
  }
  return { busy, all };
}

/**
 * CPU use over all cores between calls, %. The first call reports the average since boot; a call
 * with no time elapsed repeats the previous figure.
 */
export function createCpuSampler(sources: Pick<SystemSources, "cpus">): () => number {
  let previous: { busy: number; all: number } | undefined;
  let last = 0;
  return () => {
    const current = totals(sources.cpus());
    const busy = current.busy - (previous?.busy ?? 0);
    const all = current.all - (previous?.all ?? 0);
    previous = current;
    if (all > 0) last = percent(busy, all);
    return last;
  };
}

/** Memory used (total − available), %. */
export function memoryPercent(m: { total: number; available: number }): number {
  return percent(m.total - m.available, m.total);
}

/** Swap used, %; 0 without swap. */
export function swapPercent(m: { swapTotal: number; swapFree: number }): number {
  return percent(m.swapTotal - m.swapFree, m.swapTotal);
}

/**
 * Used space of the filesystem holding the first of `paths` that can be measured, % of the space
 * an unprivileged user can have (as `df` and psutil count it). Throws when none can be measured.
 */
export async function diskPercent(
  sources: Pick<SystemSources, "statfs">,
  paths: readonly string[],
): Promise<number> {
  let failure: unknown = new Error("no path to measure");
  for (const path of paths) {
    try {
      const s = await sources.statfs(path);
      const used = (s.blocks - s.bfree) * s.bsize;
      const available = s.bavail * s.bsize;
      return percent(used, used + available);
    } catch (error) {
      failure = error;
    }
  }
  throw failure;
}

/** `Linux <name> <version> <codename>` from `/etc/os-release`, like the reference's `distro`. */
export function osString(osReleaseText: string): string {
  const fields = new Map<string, string>();
  for (const line of osReleaseText.split("\n")) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (match?.[1]) fields.set(match[1], (match[2] ?? "").replace(/^(["'])(.*)\1$/, "$2"));
  }
  const parts = [fields.get("NAME"), fields.get("VERSION_ID"), fields.get("VERSION_CODENAME")]
    .filter((p): p is string => !!p);
  if (parts.length === 0 && fields.get("PRETTY_NAME")) parts.push(fields.get("PRETTY_NAME")!);
  return ["Linux", ...parts].join(" ");
}
