/**
 * Two session servers in front of the same fleet, with real processes over loopback: 5 simulation
 * servers (the stand-in Webots) of 4 slots each, with slot leases, and 2 session servers with the
 * same secret and the same 5 entries. The slots live on the simulation servers, so however the
 * browsers are split between the session servers (directly, or by a real nginx balancing over
 * both), no slot is handed out twice; what each session server keeps for itself (its subscribers'
 * feed, its view of the fleet) follows from its own polls.
 */
import assert from "node:assert/strict";
import { NO_SERVER_AVAILABLE } from "../../shared/protocol.ts";
import { sample } from "../helpers/prometheus.ts";
import { startNginxBalancer } from "../helpers/nginx_balancer.ts";
import { quietPortRange } from "../helpers/quiet_ports.ts";
import { serverTest } from "../helpers/server_process.ts";
import {
  eventually,
  isAlive,
  type SimulationFixture,
  startFile,
  startSimulationServer,
} from "../helpers/simulation_fixture.ts";
import { connect, type TestSocket } from "../helpers/ws_client.ts";
import {
  assertLeasesUsedUp,
  type SessionUnderTest,
  startSession,
  subscribe,
  type Subscriber,
  unsubscribe,
} from "./_helpers.ts";

const SECRET = "two-session-servers-lease-secret-4b81e2";
const ADMIN_TOKEN = "two-session-servers-admin-token-90c7d1";
const SIMULATION_SERVERS = 5;
const SLOTS = 4;
const LEASES = SIMULATION_SERVERS * SLOTS;
const REQUESTS = 200;
const LEASE_URL = /^ws:\/\/(127\.0\.0\.1:\d+)\/lease\/([A-Za-z0-9_-]{22})$/;
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** The fleet under test: 5 simulation servers and the 2 session servers in front of them. */
interface Fleet {
  readonly simulations: SimulationFixture[];
  /** `127.0.0.1:<port>` of each simulation server, in config order. */
  readonly entries: string[];
  readonly sessions: SessionUnderTest[];
  close(): Promise<void>;
}

/**
 * Starts a simulation server of `slots` slots on a port range outside the kernel's ephemeral range
 * (slots are counted exactly: no client connection may hold a streaming port), apart from the
 * ranges in `taken` (which it joins). The range is free when probed, but another process (another
 * test on this machine) may bind its port before the server does: then the server exits with
 * `AddrInUse` and is started again on another range, at most 5 times.
 */
async function startOnQuietPorts(
  taken: number[],
  slots: number,
  config: Record<string, unknown>,
): Promise<SimulationFixture> {
  for (let attempt = 1;; attempt++) {
    let port = quietPortRange(slots);
    while (taken.some((other) => Math.abs(other - port) <= slots)) port = quietPortRange(slots);
    taken.push(port);
    try {
      return await startSimulationServer({ maxConnections: slots, config: { port, ...config } });
    } catch (error) {
      if (attempt >= 5 || !String(error).includes("AddrInUse")) throw error;
    }
  }
}

/** Starts everything, or stops what did start and throws. */
async function startFleet(): Promise<Fleet> {
  const cleanups: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  };
  const settle = async <T>(
    starts: Promise<T>[],
    cleanupOf: (started: T) => () => Promise<void>,
  ): Promise<T[]> => {
    const settled = await Promise.allSettled(starts);
    const started: T[] = [];
    for (const result of settled) {
      if (result.status === "fulfilled") {
        started.push(result.value);
        cleanups.push(cleanupOf(result.value));
      }
    }
    const failed = settled.find((r) => r.status === "rejected");
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    return started;
  };
  const taken: number[] = [];
  try {
    const simulations = await settle(
      Array.from({ length: SIMULATION_SERVERS }, () =>
        startOnQuietPorts(taken, SLOTS, {
          leaseSecret: SECRET,
          leaseTimeout: 120,
          adminToken: ADMIN_TOKEN,
          drainTimeout: 60,
          // A shared machine's CPU, averaged as long as allowed, stays below `fullAt` 100.
          loadWindow: 60,
        })),
      (fixture) => () => fixture[Symbol.asyncDispose](),
    );
    const entries = simulations.map((f) => `127.0.0.1:${f.server.port}`);
    const sessions = await settle(
      [0, 1].map(() =>
        startSession({
          simulationServers: entries,
          leaseSecret: SECRET,
          adminToken: ADMIN_TOKEN,
          // Only the slots may make a server full here, not a busy test machine's CPU.
          fullAt: 100,
          availableAt: 99,
          // Each session server sees the fleet fill and empty from its own polls.
          loadRefresh: 0.5,
        })
      ),
      (session) => () => session.cleanup(),
    );
    for (const session of sessions) await allAvailable(session, entries);
    return { simulations, entries, sessions, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The exposition of `/metrics` at `baseUrl`. */
async function metrics(baseUrl: string): Promise<string> {
  return await (await fetch(`${baseUrl}/metrics`)).text();
}

/** One sample of `/metrics`, which must be there. */
async function metric(
  baseUrl: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const value = sample(await metrics(baseUrl), name, labels);
  assert.notEqual(value, undefined, `${name} ${JSON.stringify(labels)} at ${baseUrl}`);
  return value!;
}

/** The state a session server's `/metrics` gives `entry` (available, full, draining, …). */
async function stateSeen(session: SessionUnderTest, entry: string): Promise<string | undefined> {
  const text = await metrics(session.baseUrl);
  const line = text.split("\n").find((l) =>
    l.startsWith(`webots_session_simulation_server_state{server="${entry}",`) && l.endsWith(" 1")
  );
  return line?.match(/state="([^"]+)"/)?.[1];
}

/** Waits until `session`'s own polls found every simulation server available. */
async function allAvailable(session: SessionUnderTest, entries: string[]): Promise<void> {
  await eventually(
    async () => {
      for (const entry of entries) {
        if (await stateSeen(session, entry) !== "available") return false;
      }
      return true;
    },
    20_000,
    "every simulation server polled and available",
  );
}

/**
 * The leases among `answers`, checked: every other answer is "none available", exactly 4 leases
 * per simulation server, no URL and no token twice.
 */
function checkedLeases(answers: string[], entries: string[]): string[] {
  const leased = answers.filter((a) => a !== NO_SERVER_AVAILABLE);
  for (const answer of leased) assert.match(answer, LEASE_URL);
  assert.equal(leased.length, LEASES, "exactly 20 leases");
  assert.equal(new Set(leased).size, LEASES, "no lease URL twice");
  assert.equal(new Set(leased.map((a) => LEASE_URL.exec(a)![2])).size, LEASES, "no token twice");
  const perServer = new Map<string, number>();
  for (const answer of leased) {
    const entry = LEASE_URL.exec(answer)![1]!;
    perServer.set(entry, (perServer.get(entry) ?? 0) + 1);
  }
  assert.deepEqual([...perServer.keys()].sort(), [...entries].sort());
  for (const [entry, count] of perServer) assert.equal(count, SLOTS, `leases on ${entry}`);
  assert.equal(
    answers.filter((a) => a === NO_SERVER_AVAILABLE).length,
    REQUESTS - LEASES,
    "the others are told no server is available",
  );
  return leased;
}

/** The leases each simulation server granted, and that it says it is full. */
async function checkFleetFull(fleet: Fleet): Promise<void> {
  for (const fixture of fleet.simulations) {
    const base = fixture.server.baseUrl;
    assert.equal(await metric(base, "webots_simulation_leases_granted_total"), SLOTS);
    assert.equal(await metric(base, "webots_simulation_leases_outstanding"), SLOTS);
    assert.equal(await metric(base, "webots_simulation_slots", { state: "used" }), SLOTS);
    assert.equal(await metric(base, "webots_simulation_slots", { state: "free" }), 0);
    const load = await fetch(`${base}/load`);
    assert.equal(await load.text(), "100");
    assert.equal(load.headers.get("x-webots-slots"), `${SLOTS}/${SLOTS}`);
  }
}

/** What each session server counted of its own answers and lease requests. */
async function sessionCounts(session: SessionUnderTest) {
  const text = await metrics(session.baseUrl);
  return {
    granted: sample(text, "webots_session_lease_requests_total", { outcome: "granted" }) ?? 0,
    refused: sample(text, "webots_session_lease_requests_total", { outcome: "refused" }) ?? 0,
    server: sample(text, "webots_session_answers_total", { outcome: "server" }) ?? 0,
    none: sample(text, "webots_session_answers_total", { outcome: "none" }) ?? 0,
  };
}

/**
 * The two session servers' counts add up to the simulation servers': 20 leases granted in all,
 * and every refusal either session server heard is one a simulation server counted (each lease
 * request was answered once, none lost or granted behind a session server's back).
 */
async function checkReservationTotals(
  fleet: Fleet,
  counts: Awaited<ReturnType<typeof sessionCounts>>[],
): Promise<void> {
  const [a, b] = counts;
  assert.equal(a!.granted + b!.granted, LEASES);
  let refusedBySimulations = 0;
  for (const fixture of fleet.simulations) {
    refusedBySimulations += await metric(
      fixture.server.baseUrl,
      "webots_simulation_leases_refused_total",
      { reason: "full" },
    );
  }
  assert.equal(a!.refused + b!.refused, refusedBySimulations);
  console.log(
    `leases handed out: ${a!.granted} + ${b!.granted}; refused as full: ${a!.refused} + ${
      b!.refused
    }`,
  );
}

/** Opens every lease's `/client` socket, then proves a second use of each is refused. */
async function useEachOnce(leased: string[]): Promise<TestSocket[]> {
  const sockets = await Promise.all(leased.map((url) => connect(`${url}/client`)));
  await assertLeasesUsedUp(leased);
  for (const socket of sockets) assert.deepEqual(socket.messages, []);
  return sockets;
}

serverTest(
  "2 session servers, 5 simulation servers of 4 slots, 200 concurrent GET /session split across both: exactly 20 leases, no slot given twice",
  async (t) => {
    const fleet = await startFleet();
    const { simulations, entries, sessions } = fleet;
    const feeds: Subscriber[] = [];
    const sockets: TestSocket[] = [];
    try {
      // One page on each session server's availability feed.
      for (const session of sessions) {
        const feed = subscribe(session.baseUrl.replace(/^http/, "ws") + "/");
        feeds.push(feed);
        await feed.opened;
        await feed.lastIs("1");
      }

      const answers: { via: number; body: string }[] = [];
      await t.step("the burst: 100 to each session server at once", async () => {
        const began = performance.now();
        answers.push(
          ...await Promise.all(
            Array.from({ length: REQUESTS }, async (_, i) => {
              const via = i % 2;
              const response = await fetch(`${sessions[via]!.baseUrl}/session`);
              assert.equal(response.status, 200);
              return { via, body: await response.text() };
            }),
          ),
        );
        console.log(
          `${REQUESTS} concurrent GET /session over 2 session servers answered in ${
            Math.round(performance.now() - began)
          } ms`,
        );
      });

      let leased: string[] = [];
      await t.step("exactly 20 distinct leases, 4 per simulation server, 180 told none", () => {
        leased = checkedLeases(answers.map((a) => a.body), entries);
      });

      await t.step("the 20 leases came from both session servers' own reservations", async () => {
        const counts = await Promise.all(sessions.map(sessionCounts));
        counts.forEach((count, via) => {
          const mine = answers.filter((a) => a.via === via);
          const mineLeased = mine.filter((a) => a.body !== NO_SERVER_AVAILABLE).length;
          assert.equal(mine.length, REQUESTS / 2);
          assert.equal(count.granted, mineLeased, `session server ${via} granted what it answered`);
          assert.equal(count.server, mineLeased);
          assert.equal(count.none, REQUESTS / 2 - mineLeased);
        });
        await checkReservationTotals(fleet, counts);
      });

      await t.step("each simulation server granted 4 leases and says it is full", async () => {
        await checkFleetFull(fleet);
      });

      await t.step(
        "each session server tells its own subscribers 0 from its own polls",
        async () => {
          for (const feed of feeds) {
            await feed.lastIs("0");
            assert.deepEqual(feed.messages, ["1", "0"]);
          }
          for (const session of sessions) {
            for (const entry of entries) assert.equal(await stateSeen(session, entry), "full");
            assert.equal(
              await (await fetch(`${session.baseUrl}/session`)).text(),
              NO_SERVER_AVAILABLE,
            );
          }
        },
      );

      await t.step(
        "each lease opens its /client socket once; a second use is refused",
        async () => {
          sockets.push(...await useEachOnce(leased));
          for (const fixture of simulations) {
            const base = fixture.server.baseUrl;
            assert.equal(await metric(base, "webots_simulation_leases_used_total"), SLOTS);
            assert.equal(await metric(base, "webots_simulation_leases_outstanding"), 0);
            assert.equal(await metric(base, "webots_simulation_websocket_clients"), SLOTS);
            assert.equal(await (await fetch(`${base}/load`)).text(), "100");
          }
        },
      );

      await t.step(
        "simulations started on the leases stream on distinct ports of their server's slots",
        async () => {
          // All 4 leases of the first server, and one of each other server.
          const chosen = leased.map((url, i) => ({ url, socket: sockets[i]! })).filter(
            ({ url }, i, all) => {
              const entry = LEASE_URL.exec(url)![1]!;
              return entry === entries[0] ||
                all.findIndex((o) => LEASE_URL.exec(o.url)![1] === entry) === i;
            },
          );
          assert.equal(chosen.length, SLOTS + SIMULATION_SERVERS - 1);
          const ports = await Promise.all(chosen.map(async ({ url, socket }) => {
            const entry = LEASE_URL.exec(url)![1]!;
            const fixture = simulations[entries.indexOf(entry)]!;
            socket.send(startFile(fixture, "robots/demo", "demo.wbt"));
            const reply = await socket.waitFor((m) => m.startsWith("webots:"), 30_000);
            const port = Number(/^webots:ws:\/\/127\.0\.0\.1:(\d+)$/.exec(reply)?.[1]);
            const base = fixture.server.port;
            assert.ok(port > base && port <= base + SLOTS, `${reply} within ${entry}'s slots`);
            return { entry, port };
          }));
          const first = ports.filter((p) => p.entry === entries[0]).map((p) => p.port);
          const base = simulations[0]!.server.port;
          assert.deepEqual(
            first.sort((a, b) => a - b),
            Array.from({ length: SLOTS }, (_, i) => base + 1 + i),
            "the first server's 4 leases became its 4 streaming ports, each once",
          );
          for (const [i, fixture] of simulations.entries()) {
            const response = await fetch(`${fixture.server.baseUrl}/admin/sessions`, {
              headers: admin,
            });
            assert.equal(response.status, 200);
            const view = await response.json() as {
              draining: boolean;
              sessions: { state: string; port: number | null; pid: number | null }[];
            };
            assert.equal(view.draining, false);
            assert.equal(view.sessions.length, SLOTS, "4 browsers, one per lease");
            const running = view.sessions.filter((s) => s.pid !== null);
            assert.equal(running.length, i === 0 ? SLOTS : 1);
            const started = ports.filter((p) => p.entry === entries[i]).map((p) => p.port).sort();
            assert.deepEqual(running.map((s) => s.port).sort(), started);
            const load = await fetch(`${fixture.server.baseUrl}/load`);
            assert.equal(await load.text(), "100");
            assert.equal(load.headers.get("x-webots-slots"), `${SLOTS}/${SLOTS}`);
            assert.equal(load.headers.get("x-webots-simulations"), String(running.length));
          }
        },
      );

      await t.step("the browsers leave: every slot is free, both feeds say 1 again", async () => {
        await Promise.all(sockets.splice(0).map((s) => s.close()));
        for (const fixture of simulations) {
          const base = fixture.server.baseUrl;
          await eventually(
            async () => await metric(base, "webots_simulation_slots", { state: "used" }) === 0,
            10_000,
            "slots freed",
          );
          for (const record of await fixture.records()) {
            await eventually(() => !isAlive(record.pid), 10_000, `Webots ${record.pid} ended`);
          }
          await eventually(
            async () => (await fixture.instances()).length === 0,
            10_000,
            "no folder",
          );
        }
        for (const feed of feeds) {
          await feed.lastIs("1");
          assert.deepEqual(feed.messages, ["1", "0", "1"]);
        }
      });

      await t.step("a drain on one simulation server is seen by both session servers", async () => {
        const drained = entries[0]!;
        const response = await fetch(`${simulations[0]!.server.baseUrl}/admin/drain`, {
          method: "POST",
          headers: admin,
        });
        assert.equal(response.status, 200);
        assert.equal((await response.json()).draining, true);
        for (const session of sessions) {
          await eventually(
            async () => await stateSeen(session, drained) === "draining",
            10_000,
            "the drain seen",
          );
        }
        const more = await Promise.all(
          Array.from({ length: 8 }, async (_, i) => {
            return await (await fetch(`${sessions[i % 2]!.baseUrl}/session`)).text();
          }),
        );
        for (const answer of more) {
          const entry = LEASE_URL.exec(answer)?.[1];
          assert.ok(entry !== undefined && entry !== drained, answer);
        }
        assert.equal(
          await metric(simulations[0]!.server.baseUrl, "webots_simulation_leases_granted_total"),
          SLOTS,
        );
      });
    } finally {
      for (const socket of sockets) await socket.close();
      for (const feed of feeds) await unsubscribe(feed);
      await fleet.close();
    }
  },
);

serverTest(
  "200 concurrent GET /session through nginx balancing over 2 session servers: exactly 20 leases, each usable once",
  async (t) => {
    const fleet = await startFleet();
    const { simulations, entries, sessions } = fleet;
    const sockets: TestSocket[] = [];
    const upstreams = sessions.map((s) => `127.0.0.1:${s.port}`);
    let balancer: Awaited<ReturnType<typeof startNginxBalancer>> | undefined;
    try {
      balancer = await startNginxBalancer(upstreams, "/health");
      const answers: string[] = [];
      await t.step("the burst, all through nginx", async () => {
        answers.push(
          ...await Promise.all(
            Array.from({ length: REQUESTS }, async () => {
              const response = await fetch(`${balancer!.baseUrl}/session`);
              assert.equal(response.status, 200);
              return await response.text();
            }),
          ),
        );
      });

      let leased: string[] = [];
      await t.step("exactly 20 distinct leases, 4 per simulation server, 180 told none", () => {
        leased = checkedLeases(answers, entries);
      });

      await t.step("nginx sent 100 to each session server, and each answered its own", async () => {
        const sent = (await balancer!.requests()).filter((r) => r.path === "/session");
        assert.equal(sent.length, REQUESTS);
        for (const request of sent) assert.equal(request.status, 200);
        const counts = await Promise.all(sessions.map(sessionCounts));
        upstreams.forEach((upstream, i) => {
          assert.equal(sent.filter((r) => r.upstream === upstream).length, REQUESTS / 2, upstream);
          assert.equal(counts[i]!.server + counts[i]!.none, REQUESTS / 2);
          assert.equal(counts[i]!.granted, counts[i]!.server);
        });
        await checkReservationTotals(fleet, counts);
      });

      await t.step("each simulation server granted 4 leases and says it is full", async () => {
        await checkFleetFull(fleet);
      });

      await t.step(
        "each lease opens its /client socket once; a second use is refused",
        async () => {
          sockets.push(...await useEachOnce(leased));
          for (const fixture of simulations) {
            const base = fixture.server.baseUrl;
            assert.equal(await metric(base, "webots_simulation_leases_used_total"), SLOTS);
            assert.equal(await metric(base, "webots_simulation_websocket_clients"), SLOTS);
          }
        },
      );
    } catch (error) {
      if (balancer) console.error(await balancer.output());
      throw error;
    } finally {
      for (const socket of sockets) await socket.close();
      await balancer?.stop();
      await fleet.close();
    }
  },
);

serverTest(
  "without leases, two session servers hand out the same last slot: the second browser is refused",
  async () => {
    await using fixture = await startOnQuietPorts([], 1, {});
    const entry = `127.0.0.1:${fixture.server.port}`;
    const sessions: SessionUnderTest[] = [];
    const browsers: TestSocket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        // No poll after the first one: each session server answers from what it saw at start.
        sessions.push(
          await startSession({ simulationServers: [entry], fullAt: 100, availableAt: 99 }),
        );
      }
      for (const session of sessions) await allAvailable(session, [entry]);
      const answers = await Promise.all(
        sessions.map(async (s) => await (await fetch(`${s.baseUrl}/session`)).text()),
      );
      assert.deepEqual(answers, [`ws://${entry}`, `ws://${entry}`], "both name the one slot");
      // The first browser takes the slot, then the second arrives with the same answer.
      const first = await connect(`${answers[0]}/client`);
      browsers.push(first);
      first.send(startFile(fixture, "robots/demo", "demo.wbt"));
      assert.match(await first.waitFor((m) => m.startsWith("webots:")), /^webots:ws:/);
      const second = await connect(`${answers[1]}/client`);
      browsers.push(second);
      second.send(startFile(fixture, "robots/demo", "demo.wbt"));
      assert.equal(
        await second.waitFor((m) => m.startsWith("error:")),
        "error: no simulation slot left on this server (1 in use)",
      );
      assert.equal((await fixture.records()).length, 1, "one Webots only");
    } finally {
      for (const browser of browsers) await browser.close();
      for (const session of sessions) await session.cleanup();
    }
  },
);
