/**
 * Part (c): the session server in front of one real simulation server and faulty ones (hanging,
 * garbage bytes, a non-number body, 500, slow, reset, refused). Measured: the time a server that
 * starts hanging takes to count as not available, what `/session` hands out, its latency before
 * and while one hangs, and the availability feed when no server is left and when one is back.
 *
 * @module
 */
import { join } from "node:path";
import type { Verdicts } from "./checks.ts";
import { waitUntil } from "./leftovers.ts";
import { delay, fmt, percentile, type Sample, sampleGet, timedGet } from "./measure.ts";
import { type FaultyServer, startFaultyServer } from "./faulty_sim.ts";
import { freePort } from "../tests/helpers/server_process.ts";
import { startSessionServer, startSimServer } from "./servers.ts";
import { rawConnect } from "./ws_raw.ts";

/** Settings of part (c). */
export interface FleetOptions {
  readonly dir: string;
  readonly campaign: string;
  readonly short: boolean;
  readonly log: (line: string) => void;
}

const LOAD_REFRESH = 0.5;
const LOAD_TIMEOUT = 1;

/** The server row `/monitor/data` of the session server shows for `entry`. */
async function standing(baseUrl: string, entry: string): Promise<string> {
  const sample = await timedGet(`${baseUrl}/monitor/data`);
  try {
    const data = JSON.parse(sample.body) as { servers: { entry: string; state: string }[] };
    return data.servers.find((s) => s.entry === entry)?.state ?? "absent";
  } catch {
    return `unreadable (${sample.status})`;
  }
}

/** Runs part (c) and returns its verdicts (C01–C04). */
export async function runFleet(options: FleetOptions): Promise<Verdicts> {
  const dir = join(options.dir, "fleet");
  const timings = { startTimeout: 5, killTimeout: 1, heartbeatTimeout: 2 };
  let real = await startSimServer({
    dir: join(dir, "simulation"),
    campaign: `${options.campaign}-fleet`,
    timings,
    maxConnections: 5,
  });
  const faulty: FaultyServer[] = [];
  try {
    const hanging = startFaultyServer({ kind: "healthy", load: 0 });
    const always = [
      startFaultyServer({ kind: "garbage-bytes" }),
      startFaultyServer({ kind: "garbage-body" }),
      startFaultyServer({ kind: "status-500" }),
      startFaultyServer({ kind: "slow", delayMs: 3 * LOAD_TIMEOUT * 1000 }),
      startFaultyServer({ kind: "reset" }),
    ];
    faulty.push(hanging, ...always);
    const refused = `127.0.0.1:${freePort()}`;
    const realEntry = `127.0.0.1:${real.port}`;
    const session = await startSessionServer({
      dir: join(dir, "session"),
      simulationServers: [...always.map((s) => s.entry), refused, hanging.entry, realEntry],
      loadRefresh: LOAD_REFRESH,
      loadTimeout: LOAD_TIMEOUT,
      heartbeatTimeout: 2,
    });
    const subscriber = await rawConnect(session.wsUrl);
    try {
      const pollBoundMs = 2 * LOAD_REFRESH * 1000 + LOAD_TIMEOUT * 1000;
      const up = await waitUntil(
        async () => (await standing(session.baseUrl, hanging.entry)) === "available",
        5000,
      );
      if (!up) throw new Error("the switchable server never became available");
      const phaseMs = options.short ? 3000 : 10_000;
      const sampler = sampleGet(`${session.baseUrl}/session`, 10);
      await delay(phaseMs);
      const hangAt = performance.now();
      hanging.setMode({ kind: "hang" });
      let state = "";
      const detected = await waitUntil(async () => {
        state = await standing(session.baseUrl, hanging.entry);
        return state === "not responding";
      }, 10_000);
      const detectMs = performance.now() - hangAt;
      await delay(phaseMs);
      const hangEnd = performance.now();
      await sampler.stop();

      const before = sampler.samples.filter((s) => s.at < hangAt);
      const during = sampler.samples.filter((s) => s.at >= hangAt && s.at <= hangEnd);
      const names = (s: Sample, entry: string) => s.body.trim() === `ws://${entry}`;
      const faultyAnswers = sampler.samples.filter((s) =>
        always.some((f) => names(s, f.entry)) || names(s, refused)
      );
      const afterDetect = during.filter((s) => s.at > hangAt + detectMs && names(s, hanging.entry));
      const failedRequests = sampler.samples.filter((s) => s.status !== 200);
      const realAnswers = during.filter((s) => names(s, realEntry)).length;

      // No server left, then the real one back.
      // The latest value must be 1 (the real server may count as full for a moment on a busy
      // machine: its load includes the CPU).
      const latestIsOne = await waitUntil(() => subscriber.received.at(-1)?.text === "1", 10_000);
      if (!latestIsOne) throw new Error("availability is not 1 before the real server stops");
      const stoppedAt = performance.now();
      const seen = subscriber.received.length;
      await real.process.stop();
      await waitUntil(() => subscriber.received.length > seen, 10_000);
      const zero = subscriber.received.slice(seen).find((r) => r.text === "0");
      const zeroMs = zero ? zero.at - stoppedAt : NaN;
      const restartAt = performance.now();
      real = await startSimServer({
        dir: join(dir, "simulation"),
        campaign: `${options.campaign}-fleet`,
        timings,
        maxConnections: 5,
        port: real.port,
      });
      const listeningAt = performance.now();
      const count = subscriber.received.length;
      await waitUntil(() => subscriber.received.length > count, 10_000);
      const backOne = subscriber.received.slice(count).find((r) => r.text === "1");
      const oneMs = backOne ? backOne.at - listeningAt : NaN;
      options.log(
        `fleet: real server restarted in ${fmt(listeningAt - restartAt, 0)} ms; values seen ${
          subscriber.received.map((r) => r.text).join("")
        }`,
      );

      const ms = (samples: readonly Sample[]) => samples.map((s) => s.ms);
      const p50b = percentile(ms(before), 50);
      const p99b = percentile(ms(before), 99);
      const p50d = percentile(ms(during), 50);
      const p99d = percentile(ms(during), 99);
      const latencyLimit = Math.max(2 * p99b, 20);
      return {
        C01: {
          ok: detected && detectMs <= pollBoundMs,
          detail: `${
            detected ? `not responding after ${fmt(detectMs, 0)} ms` : `still ${state}`
          } (loadRefresh ${LOAD_REFRESH} s, loadTimeout ${LOAD_TIMEOUT} s, bound ${pollBoundMs} ms)`,
        },
        C02: {
          ok: faultyAnswers.length === 0 && afterDetect.length === 0 &&
            failedRequests.length === 0 &&
            realAnswers > 0,
          detail:
            `${sampler.samples.length} GET /session: ${faultyAnswers.length} named a faulty server (garbage bytes, garbage body, 500, slow, reset, refused), ${afterDetect.length} named the hanging one after it was found out, ${failedRequests.length} failed; ${realAnswers} named the real one while the other hung`,
        },
        C03: {
          ok: during.length > 0 && before.length > 0 && p99d <= latencyLimit,
          detail: `before: ${before.length} requests p50 ${fmt(p50b, 2)} ms p99 ${
            fmt(p99b, 2)
          } ms; while one hangs: ${during.length} requests p50 ${fmt(p50d, 2)} ms p99 ${
            fmt(p99d, 2)
          } ms (limit ${fmt(latencyLimit)} ms)`,
        },
        C04: {
          ok: zeroMs <= pollBoundMs && oneMs <= pollBoundMs,
          detail: `0 after ${fmt(zeroMs, 0)} ms once the last good server stopped, 1 after ${
            fmt(oneMs, 0)
          } ms once it listened again (bound ${pollBoundMs} ms each; values seen ${
            subscriber.received.map((r) => r.text).join("")
          })`,
        },
      };
    } finally {
      subscriber.drop();
      await session.process.stop();
    }
  } finally {
    await real.process.stop();
    await Promise.all(faulty.map((s) => s.close()));
  }
}
