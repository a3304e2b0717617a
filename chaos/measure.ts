/**
 * Measurements the campaign takes while it injects faults: HTTP latency samples (`/load`,
 * `/session`), a server's memory over time, and percentiles.
 *
 * @module
 */
import { rssMiB } from "./leftovers.ts";

/** The p-th percentile (0–100) of `values`, NaN when empty (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** `12.3` for ms and MiB figures in check lines. */
export function fmt(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : String(value);
}

/** One timed request. */
export interface Sample {
  /** `performance.now()` when the request was sent. */
  readonly at: number;
  readonly ms: number;
  readonly status: number;
  readonly body: string;
}

/**
 * GETs `url` once and times it; a failure is a sample with status 0. Without `client`, the
 * connection is closed afterwards: a kept-alive one would count among the server's descriptors.
 */
export async function timedGet(
  url: string,
  timeoutMs = 5000,
  client?: Deno.HttpClient,
): Promise<Sample> {
  const own = client ?? Deno.createHttpClient({});
  const at = performance.now();
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), client: own });
    const body = await response.text();
    return { at, ms: performance.now() - at, status: response.status, body };
  } catch (error) {
    return { at, ms: performance.now() - at, status: 0, body: String(error) };
  } finally {
    if (client === undefined) own.close();
  }
}

/** A background sampler: one GET every `periodMs` (never two in flight) until stopped. */
export interface Sampler {
  readonly samples: readonly Sample[];
  /** Stops sampling and closes its connection; idempotent. */
  stop(): Promise<void>;
}

/** Starts sampling `url`. */
export function sampleGet(url: string, periodMs: number): Sampler {
  const samples: Sample[] = [];
  // One kept-alive connection for the sampler, closed when it stops.
  const client = Deno.createHttpClient({});
  let running = true;
  const loop = (async () => {
    while (running) {
      samples.push(await timedGet(url, 5000, client));
      await new Promise((resolve) => setTimeout(resolve, periodMs));
    }
  })();
  let stopped: Promise<void> | undefined;
  return {
    samples,
    stop() {
      running = false;
      stopped ??= loop.then(() => client.close());
      return stopped;
    },
  };
}

/** A process's memory over time. */
export interface MemoryTrace {
  readonly points: readonly { at: number; mib: number }[];
  /** Highest RSS seen within [from, to] (`performance.now()` times). */
  peak(from: number, to: number): number;
  stop(): Promise<void>;
}

/** Samples `pid`'s RSS every `periodMs`. */
export function traceMemory(pid: number, periodMs: number): MemoryTrace {
  const points: { at: number; mib: number }[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const mib = rssMiB(pid);
      if (Number.isFinite(mib)) points.push({ at: performance.now(), mib });
      await new Promise((resolve) => setTimeout(resolve, periodMs));
    }
  })();
  return {
    points,
    peak(from, to) {
      let best = NaN;
      for (const p of points) {
        if (p.at >= from && p.at <= to && !(p.mib <= best)) best = p.mib;
      }
      return best;
    },
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** Waits `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
