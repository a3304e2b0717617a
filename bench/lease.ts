/**
 * Slot-lease benchmark:
 * - what a lease adds to `GET /session`: two real session servers in front of the same real
 *   simulation server (the stand-in Webots is never started), one with the lease secret and one
 *   without, asked in alternation in the same run, one request at a time (p50/p99 seen by the
 *   client, keep-alive connections);
 * - the burst of the issue: 200 concurrent `GET /session` against 10 real simulation servers of 5
 *   slots each: wall time, leases handed out, double bookings (a URL or token handed out twice, or
 *   a server granting more than its slots), the others told no server is available.
 *
 * Run alone: `deno run -A bench/lease.ts`.
 *
 * @module
 */
import { NO_SERVER_AVAILABLE } from "../shared/protocol.ts";
import { startSimulationServer } from "../tests/helpers/simulation_fixture.ts";
import { startSession } from "../tests/session/_helpers.ts";
import { quietPortRange } from "../tests/helpers/quiet_ports.ts";
import { summarize } from "./stats.ts";

const SECRET = "bench-lease-secret-0123456789";
/** Sequential requests per mode (leases on, off). */
const REQUESTS = 1000;
const BURST = 200;
const BURST_SERVERS = 10;
const BURST_SLOTS = 5;

async function waitAvailable(sessionUrl: string, entries: readonly string[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const text = await (await fetch(`${sessionUrl}/metrics`)).text();
    const ready = entries.every((entry) =>
      text.includes(
        `webots_session_simulation_server_state{server="${entry}",state="available"} 1\n`,
      )
    );
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("the simulation servers were not all available in 20 s");
}

/** p50/p99 of `GET /session` with leases on and off, measured in alternation. */
async function sessionCost(progress: (line: string) => void) {
  // Enough slots that no lease is refused while leases wait out their 1 s timeout.
  await using sim = await startSimulationServer({
    maxConnections: 2000,
    config: { leaseSecret: SECRET, leaseTimeout: 1 },
  });
  const entry = `127.0.0.1:${sim.server.port}`;
  const common = { simulationServers: [entry], fullAt: 100, availableAt: 99, loadRefresh: 60 };
  const on = await startSession({ ...common, leaseSecret: SECRET });
  const off = await startSession(common);
  try {
    await Promise.all([waitAvailable(on.baseUrl, [entry]), waitAvailable(off.baseUrl, [entry])]);
    const times = { on: [] as number[], off: [] as number[] };
    let refused = 0;
    const ask = async (mode: "on" | "off") => {
      const began = performance.now();
      const response = await fetch(`${(mode === "on" ? on : off).baseUrl}/session`);
      const body = await response.text();
      times[mode].push(performance.now() - began);
      if (body === NO_SERVER_AVAILABLE) refused++;
    };
    // Warm-up: connections, JIT.
    for (let i = 0; i < 100; i++) await ask(i % 2 === 0 ? "on" : "off");
    times.on.length = 0;
    times.off.length = 0;
    for (let i = 0; i < REQUESTS; i++) {
      await ask("on");
      await ask("off");
    }
    const result = {
      requestsPerMode: REQUESTS,
      leasesOn: summarize(times.on),
      leasesOff: summarize(times.off),
      addedP50Ms: Math.round((summarize(times.on).p50 - summarize(times.off).p50) * 10) / 10,
      addedP99Ms: Math.round((summarize(times.on).p99 - summarize(times.off).p99) * 10) / 10,
      answeredNone: refused,
    };
    progress(
      `GET /session: leases on p50 ${result.leasesOn.p50} ms, off ${result.leasesOff.p50} ms`,
    );
    return result;
  } finally {
    await on.cleanup();
    await off.cleanup();
  }
}

/** The 200-request burst against 10 servers of 5 slots. */
async function burst(progress: (line: string) => void) {
  const fixtures = await Promise.all(
    Array.from({ length: BURST_SERVERS }, () =>
      startSimulationServer({
        maxConnections: BURST_SLOTS,
        // Slots are counted exactly: no client connection may hold a streaming port.
        config: { port: quietPortRange(BURST_SLOTS), leaseSecret: SECRET, leaseTimeout: 60 },
      })),
  );
  try {
    const entries = fixtures.map((f) => `127.0.0.1:${f.server.port}`);
    const session = await startSession({
      simulationServers: entries,
      leaseSecret: SECRET,
      fullAt: 100,
      availableAt: 99,
    });
    try {
      await waitAvailable(session.baseUrl, entries);
      const began = performance.now();
      const answers = await Promise.all(
        Array.from({ length: BURST }, async () => {
          const response = await fetch(`${session.baseUrl}/session`);
          return await response.text();
        }),
      );
      const wallMs = Math.round((performance.now() - began) * 10) / 10;
      const leases = answers.filter((a) => a !== NO_SERVER_AVAILABLE);
      const perServer = new Map<string, number>();
      for (const url of leases) {
        const entry = new URL(url).host;
        perServer.set(entry, (perServer.get(entry) ?? 0) + 1);
      }
      const tokens = new Set(leases.map((url) => url.slice(url.lastIndexOf("/") + 1)));
      const overbooked = [...perServer.values()].reduce(
        (sum, n) => sum + Math.max(0, n - BURST_SLOTS),
        0,
      );
      const metrics = await (await fetch(`${session.baseUrl}/metrics`)).text();
      const outcomes = Object.fromEntries(
        [...metrics.matchAll(/^webots_session_lease_requests_total\{outcome="(\w+)"\} (\d+)$/gm)]
          .map((m) => [m[1], Number(m[2])]),
      );
      const result = {
        requests: BURST,
        servers: BURST_SERVERS,
        slotsPerServer: BURST_SLOTS,
        wallMs,
        leases: leases.length,
        distinctLeases: tokens.size,
        doubleBookings: leases.length - tokens.size + overbooked,
        answeredNone: answers.filter((a) => a === NO_SERVER_AVAILABLE).length,
        leaseRequestsByOutcome: outcomes,
      };
      progress(`burst: ${result.leases} leases in ${wallMs} ms`);
      return result;
    } finally {
      await session.cleanup();
    }
  } finally {
    await Promise.all(fixtures.map((f) => f[Symbol.asyncDispose]()));
  }
}

/** Runs both parts and returns their figures. */
export async function runLeaseBench(
  progress: (line: string) => void = console.error,
): Promise<Record<string, unknown>> {
  return { sessionCost: await sessionCost(progress), burst: await burst(progress) };
}

if (import.meta.main) {
  console.log(JSON.stringify(await runLeaseBench(), null, 2));
}
