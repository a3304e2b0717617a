/**
 * Part (c): the session server in front of a real simulation server, a steady stand-in one and
 * faulty ones (hanging, garbage bytes, a non-number body, 500, slow, reset, refused). Measured:
 * the time a server that starts hanging takes to count as not available, what `/session` hands
 * out, its latency before and while one hangs, and the availability feed when no server is left
 * and when one is back.
 *
 * The real simulation server's load includes the machine's CPU, so on a saturated machine it
 * counts as full, rightly. The feed's `0`/`1` is therefore measured with the steady stand-in
 * (load 1), stopped and started again on its port while the real server is stopped too.
 *
 * @module
 */
import { join } from "node:path";
import type { Verdicts } from "./checks.ts";
import { waitUntil } from "./leftovers.ts";
import { delay, fmt, percentile, type Sample, sampleGet, timedGet } from "./measure.ts";
import { type FaultyServer, startFaultyServer } from "./faulty_sim.ts";
import { freePort } from "../tests/helpers/server_process.ts";
import { type SessionServerProcess, startSessionServer, startSimServer } from "./servers.ts";
import { type RawClient, rawConnect } from "./ws_raw.ts";

/** Settings of part (c). */
export interface FleetOptions {
  readonly dir: string;
  readonly campaign: string;
  readonly short: boolean;
  readonly log: (line: string) => void;
}

const LOAD_REFRESH = 0.5;
const LOAD_TIMEOUT = 1;
const POLL_BOUND_MS = 2 * LOAD_REFRESH * 1000 + LOAD_TIMEOUT * 1000;

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
  const real = await startSimServer({
    dir: join(dir, "simulation"),
    campaign: `${options.campaign}-fleet`,
    timings: { startTimeout: 5, killTimeout: 1, heartbeatTimeout: 2 },
    maxConnections: 5,
  });
  const servers: FaultyServer[] = [];
  let session: SessionServerProcess | undefined;
  let subscriber: RawClient | undefined;
  try {
    const steady = startFaultyServer({ kind: "healthy", load: 1 });
    const hanging = startFaultyServer({ kind: "healthy", load: 0 });
    const always = [
      startFaultyServer({ kind: "garbage-bytes" }),
      startFaultyServer({ kind: "garbage-body" }),
      startFaultyServer({ kind: "status-500" }),
      startFaultyServer({ kind: "slow", delayMs: 3 * LOAD_TIMEOUT * 1000 }),
      startFaultyServer({ kind: "reset" }),
    ];
    servers.push(steady, hanging, ...always);
    const refused = `127.0.0.1:${freePort()}`;
    const realEntry = `127.0.0.1:${real.port}`;
    session = await startSessionServer({
      dir: join(dir, "session"),
      simulationServers: [
        ...always.map((s) => s.entry),
        refused,
        hanging.entry,
        realEntry,
        steady.entry,
      ],
      loadRefresh: LOAD_REFRESH,
      loadTimeout: LOAD_TIMEOUT,
      heartbeatTimeout: 2,
    });
    subscriber = await rawConnect(session.wsUrl);
    const verdicts: Verdicts = await hangPhase(session, hanging, always, refused, {
      real: realEntry,
      steady: steady.entry,
    }, options.short);
    try {
      const feed = await feedPhase(subscriber, steady, async () => {
        await real.process.stop();
      });
      servers[0] = feed.steady;
      verdicts.C04 = feed.verdict;
    } catch (error) {
      verdicts.C04 = { ok: false, detail: error instanceof Error ? error.message : String(error) };
    }
    return verdicts;
  } finally {
    subscriber?.drop();
    await session?.process.stop();
    await real.process.stop();
    await Promise.all(servers.map((s) => s.close()));
  }
}

/** C01–C03: one server starts hanging; `/session` is asked every 10 ms before and meanwhile. */
async function hangPhase(
  session: SessionServerProcess,
  hanging: FaultyServer,
  always: readonly FaultyServer[],
  refused: string,
  healthy: { real: string; steady: string },
  short: boolean,
): Promise<Verdicts> {
  const up = await waitUntil(
    async () => (await standing(session.baseUrl, hanging.entry)) === "available",
    5000,
  );
  if (!up) throw new Error("the server about to hang never became available");
  const phaseMs = short ? 3000 : 10_000;
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
  const healthyAnswers =
    during.filter((s) => names(s, healthy.real) || names(s, healthy.steady)).length;
  const ms = (samples: readonly Sample[]) => samples.map((s) => s.ms);
  const p99b = percentile(ms(before), 99);
  const p99d = percentile(ms(during), 99);
  const latencyLimit = Math.max(2 * p99b, 20);
  return {
    C01: {
      ok: detected && detectMs <= POLL_BOUND_MS,
      detail: `${
        detected ? `not responding after ${fmt(detectMs, 0)} ms` : `still ${state}`
      } (loadRefresh ${LOAD_REFRESH} s, loadTimeout ${LOAD_TIMEOUT} s, bound ${POLL_BOUND_MS} ms)`,
    },
    C02: {
      ok: faultyAnswers.length === 0 && afterDetect.length === 0 &&
        failedRequests.length === 0 && healthyAnswers > 0,
      detail:
        `${sampler.samples.length} GET /session: ${faultyAnswers.length} named a faulty server (garbage bytes, garbage body, 500, slow, reset, refused), ${afterDetect.length} named the hanging one after it was found out, ${failedRequests.length} failed; ${healthyAnswers} named a healthy one while the other hung`,
    },
    C03: {
      ok: during.length > 0 && before.length > 0 && p99d <= latencyLimit,
      detail: `before: ${before.length} requests p50 ${fmt(percentile(ms(before), 50), 2)} ms p99 ${
        fmt(p99b, 2)
      } ms; while one hangs: ${during.length} requests p50 ${
        fmt(percentile(ms(during), 50), 2)
      } ms p99 ${fmt(p99d, 2)} ms (limit ${fmt(latencyLimit)} ms)`,
    },
  };
}

/**
 * C04: with the real server stopped and the steady one closed, no server is left (`0`); the
 * steady one listening again on its port brings `1` back.
 */
async function feedPhase(
  subscriber: RawClient,
  steady: FaultyServer,
  stopReal: () => Promise<void>,
): Promise<{ steady: FaultyServer; verdict: { ok: boolean; detail: string } }> {
  await stopReal();
  const latestIsOne = await waitUntil(() => subscriber.received.at(-1)?.text === "1", 10_000);
  if (!latestIsOne) throw new Error("availability not 1 with the steady server up");
  const seen = subscriber.received.length;
  const stoppedAt = performance.now();
  await steady.close();
  await waitUntil(() => subscriber.received.length > seen, 10_000);
  const zero = subscriber.received.slice(seen).find((r) => r.text === "0");
  const zeroMs = zero ? zero.at - stoppedAt : NaN;
  const count = subscriber.received.length;
  const back = startFaultyServer({ kind: "healthy", load: 1 }, steady.port);
  const listeningAt = performance.now();
  await waitUntil(() => subscriber.received.length > count, 10_000);
  const one = subscriber.received.slice(count).find((r) => r.text === "1");
  const oneMs = one ? one.at - listeningAt : NaN;
  return {
    steady: back,
    verdict: {
      ok: zeroMs <= POLL_BOUND_MS && oneMs <= POLL_BOUND_MS,
      detail: `0 after ${fmt(zeroMs, 0)} ms once the last good server stopped, 1 after ${
        fmt(oneMs, 0)
      } ms once it listened again (bound ${POLL_BOUND_MS} ms each; values seen ${
        subscriber.received.map((r) => r.text).join("")
      })`,
    },
  };
}
