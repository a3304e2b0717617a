/**
 * Slot leases end to end, with real processes over loopback: a session server with the secret in
 * front of real simulation servers (the stand-in Webots), reached the way the stock browser client
 * reaches them (`GET /session`, then a WebSocket on the answer + `/client`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { NO_SERVER_AVAILABLE } from "../../shared/protocol.ts";
import { serverTest } from "../helpers/server_process.ts";
import {
  eventually,
  isAlive,
  type SimulationFixture,
  startFile,
  startSimulationServer,
} from "../helpers/simulation_fixture.ts";
import { connect } from "../helpers/ws_client.ts";
import { quietPortRange } from "../helpers/quiet_ports.ts";
import { assertLeasesUsedUp, startSession } from "./_helpers.ts";

const SECRET = "fleet-test-lease-secret-7f3a9c";
const SERVERS = 10;
const SLOTS = 5;
const REQUESTS = 200;
const LEASE_URL = /^ws:\/\/(127\.0\.0\.1:\d+)\/lease\/([A-Za-z0-9_-]{22})$/;

/** One sample of a Prometheus text exposition, by its full name with labels. */
async function metric(baseUrl: string, sample: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${sample} `));
  if (line === undefined) throw new Error(`no ${sample} in\n${text}`);
  return Number(line.slice(sample.length + 1));
}

/** Waits until the session server's first poll found every simulation server available. */
async function allAvailable(sessionUrl: string, entries: string[]) {
  await eventually(
    async () => {
      const text = await (await fetch(`${sessionUrl}/metrics`)).text();
      return entries.every((entry) =>
        text.includes(
          `webots_session_simulation_server_state{server="${entry}",state="available"} 1\n`,
        )
      );
    },
    20_000,
    "every simulation server polled and available",
  );
}

async function closeAll(fixtures: SimulationFixture[]) {
  await Promise.all(fixtures.map((f) => f[Symbol.asyncDispose]()));
}

serverTest(
  "200 concurrent GET /session on 10 servers of 5 slots: 50 distinct leases, each usable once, 150 told none available",
  async (t) => {
    const fixtures = await Promise.all(
      Array.from({ length: SERVERS }, () =>
        startSimulationServer({
          maxConnections: SLOTS,
          // Slots are counted exactly: no client connection may hold a streaming port.
          config: { port: quietPortRange(SLOTS), leaseSecret: SECRET, leaseTimeout: 120 },
        })),
    );
    const entries = fixtures.map((f) => `127.0.0.1:${f.server.port}`);
    const session = await startSession({
      simulationServers: entries,
      leaseSecret: SECRET,
      // Only the slots may make a server full here, not a busy test machine's CPU.
      fullAt: 100,
      availableAt: 99,
    });
    try {
      await allAvailable(session.baseUrl, entries);
      const answers: string[] = [];
      await t.step("the burst", async () => {
        const began = performance.now();
        const responses = await Promise.all(
          Array.from({ length: REQUESTS }, async () => {
            const response = await fetch(`${session.baseUrl}/session`);
            assert.equal(response.status, 200);
            return await response.text();
          }),
        );
        answers.push(...responses);
        console.log(
          `${REQUESTS} concurrent GET /session answered in ${
            Math.round(performance.now() - began)
          } ms`,
        );
      });
      const leased = answers.filter((a) => a !== NO_SERVER_AVAILABLE);
      await t.step("exactly 50 distinct leases, 5 per server: no double booking", () => {
        for (const answer of leased) assert.match(answer, LEASE_URL);
        assert.equal(leased.length, SERVERS * SLOTS);
        assert.equal(new Set(leased).size, leased.length);
        assert.equal(new Set(leased.map((a) => LEASE_URL.exec(a)![2])).size, leased.length);
        const perServer = new Map<string, number>();
        for (const answer of leased) {
          const entry = LEASE_URL.exec(answer)![1]!;
          perServer.set(entry, (perServer.get(entry) ?? 0) + 1);
        }
        assert.deepEqual([...perServer.keys()].sort(), [...entries].sort());
        for (const count of perServer.values()) assert.equal(count, SLOTS);
      });
      await t.step("the other 150 are told no server is available", () => {
        assert.equal(answers.filter((a) => a === NO_SERVER_AVAILABLE).length, REQUESTS - 50);
      });
      await t.step("each server granted 5 and reports itself full", async () => {
        for (const fixture of fixtures) {
          const base = fixture.server.baseUrl;
          assert.equal(await metric(base, "webots_simulation_leases_granted_total"), SLOTS);
          assert.equal(await metric(base, "webots_simulation_leases_outstanding"), SLOTS);
          assert.equal(await (await fetch(`${base}/load`)).text(), "100");
        }
      });
      const sockets: Awaited<ReturnType<typeof connect>>[] = [];
      await t.step("every lease opens its /client socket once", async () => {
        sockets.push(...await Promise.all(leased.map((url) => connect(`${url}/client`))));
        for (const fixture of fixtures) {
          const base = fixture.server.baseUrl;
          assert.equal(await metric(base, "webots_simulation_leases_used_total"), SLOTS);
          assert.equal(await metric(base, "webots_simulation_leases_outstanding"), 0);
          assert.equal(await metric(base, "webots_simulation_websocket_clients"), SLOTS);
          assert.equal(
            await (await fetch(`${base}/load`)).text(),
            "100",
            "the sessions hold the slots the leases held",
          );
        }
        for (const socket of sockets) assert.deepEqual(socket.messages, []);
      });
      await t.step("a second use of any lease is refused: error, then close", async () => {
        await assertLeasesUsedUp(leased);
        for (const socket of sockets) assert.deepEqual(socket.messages, []);
      });
      await t.step("the browsers leave: every slot is free again", async () => {
        await Promise.all(sockets.map((s) => s.close()));
        for (const fixture of fixtures) {
          const base = fixture.server.baseUrl;
          await eventually(
            async () => (await (await fetch(`${base}/load`)).text()) !== "100",
            10_000,
            "slots freed",
          );
          assert.equal(await metric(base, 'webots_simulation_slots{state="used"}'), 0);
        }
      });
    } finally {
      await session.cleanup();
      await closeAll(fixtures);
    }
  },
);

serverTest(
  "a stock client runs a simulation unchanged with leases on and required",
  async (t) => {
    await using fixture = await startSimulationServer({
      worlds: { "robots/demo": { "demo.wbt": "#VRML_SIM R2021b utf8\n#fake activity-every 50\n" } },
      config: { leaseSecret: SECRET, requireLease: true },
    });
    const entry = `127.0.0.1:${fixture.server.port}`;
    const session = await startSession({ simulationServers: [entry], leaseSecret: SECRET });
    try {
      await allAvailable(session.baseUrl, [entry]);
      await t.step(
        "the reference sequence: GET /session, <answer>/client, start, webots: and .",
        async () => {
          // What server.js / Server.js do: fetch the session server, alert on "Error:", else open
          // the answer + "/client" and send the start message on open.
          const body = await (await fetch(`${session.baseUrl}/session`)).text();
          assert.ok(!body.startsWith("Error:"), body);
          assert.match(body, LEASE_URL);
          const client = await connect(body + "/client");
          client.send(startFile(fixture, "robots/demo", "demo.wbt"));
          await client.waitFor(() => client.messages.filter((m) => m === ".").length >= 3);
          assert.match(client.messages[0]!, /^webots:ws:\/\/127\.0\.0\.1:\d+$/);
          assert.deepEqual(client.messages.slice(1), client.messages.slice(1).map(() => "."));
          const [record] = await fixture.records();
          assert.ok(record);
          await client.close();
          await eventually(() => !isAlive(record.pid), 10_000, "Webots ended");
          await eventually(
            async () => (await fixture.instances()).length === 0,
            10_000,
            "no folder",
          );
        },
      );
      await t.step("a client that did not come through the session server is refused", async () => {
        const stray = await connect(fixture.clientUrl);
        const closed = await stray.closed;
        assert.deepEqual(stray.messages, [
          "error: this server only takes clients sent by its session server",
        ]);
        assert.equal(closed.code, 1008);
      });
      await t.step("the secret shows in no log", async () => {
        const sessionLog = await Deno.readTextFile(join(session.logDir, "session", "output.log"));
        const simulationLog = await Deno.readTextFile(
          join(fixture.logDir, "simulation", "output.log"),
        );
        assert.ok(sessionLog.length > 0 && simulationLog.length > 0);
        assert.ok(!sessionLog.includes(SECRET));
        assert.ok(!simulationLog.includes(SECRET));
        assert.ok(!session.output().includes(SECRET));
        assert.ok(!fixture.server.output().includes(SECRET));
      });
    } finally {
      await session.cleanup();
    }
  },
);
