/**
 * The slot headers of `/load` between real processes over loopback: our simulation server sends
 * `x-webots-slots` and `x-webots-simulations` as its sessions change (and while draining), a real
 * session server polls them into its `/monitor`, and a stock simulation server (a plain `/load`,
 * no headers) is shown with "—" next to them.
 */
import assert from "node:assert/strict";
import { serverTest } from "../helpers/server_process.ts";
import { eventually, startFile, startSimulationServer } from "../helpers/simulation_fixture.ts";
import { connect } from "../helpers/ws_client.ts";
import { startFakeSimServer } from "../fakes/sim_server.ts";
import { get, startSession } from "../session/_helpers.ts";
import { SIMULATIONS_HEADER, SLOTS_HEADER } from "../../shared/load_headers.ts";

const TOKEN = "admin-token-for-tests-0123456789";

interface Row {
  entry: string;
  state: string;
  simulations: string;
  freeSlots: string;
  lastAnswer: string;
}

serverTest(
  "/load's slot headers follow the sessions and reach a real session server's monitor; a stock server shows —",
  async (t) => {
    await using f = await startSimulationServer({
      maxConnections: 3,
      config: { adminToken: TOKEN, drainTimeout: 600 },
      worlds: { "robots/demo": { "demo.wbt": "#fake modes real-time\n" } },
    });
    const stock = startFakeSimServer({ load: 12.5 });
    const ours = `127.0.0.1:${f.server.port}`;
    const session = await startSession({
      simulationServers: [ours, stock.entry],
      loadRefresh: 0.2,
      loadTimeout: 1,
    });
    const ws = await connect(f.clientUrl);
    try {
      const rows = async (): Promise<Row[]> =>
        JSON.parse((await get(`${session.baseUrl}/monitor/data`)).body).servers;
      const headersOf = async () => {
        const load = await get(`${f.server.baseUrl}/load`);
        assert.equal(load.status, 200);
        assert.ok(Number.isFinite(Number(load.body)), "the body is still the bare number");
        return [load.headers.get(SLOTS_HEADER), load.headers.get(SIMULATIONS_HEADER)];
      };

      await t.step("idle: 0/3 and 0; the session server shows 3 free slots", async () => {
        assert.deepEqual(await headersOf(), ["0/3", "0"]);
        await eventually(
          async () => (await rows())[0]?.freeSlots === "3 of 3",
          10_000,
          "3 free slots on the monitor",
        );
        const [mine, theirs] = await rows();
        assert.equal(mine!.simulations, "0");
        assert.match(mine!.lastAnswer, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
        assert.deepEqual([theirs!.state, theirs!.simulations, theirs!.freeSlots], [
          "available",
          "—",
          "—",
        ]);
      });

      await t.step("a running simulation: 1/3 and 1, shown as 1 simulation, 2 free", async () => {
        ws.send(startFile(f, "robots/demo", "demo.wbt"));
        await ws.waitFor((m) => m.startsWith("webots:"));
        assert.deepEqual(await headersOf(), ["1/3", "1"]);
        await eventually(
          async () => (await rows())[0]?.freeSlots === "2 of 3",
          10_000,
          "2 free slots on the monitor",
        );
        assert.equal((await rows())[0]!.simulations, "1");
      });

      await t.step("draining: /load 100 with the state and the slot headers", async () => {
        const drained = await fetch(`${f.server.baseUrl}/admin/drain`, {
          method: "POST",
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        await drained.body?.cancel();
        assert.equal(drained.status, 200);
        const load = await get(`${f.server.baseUrl}/load`);
        assert.deepEqual(
          [load.body, load.headers.get("x-webots-state"), load.headers.get(SLOTS_HEADER)],
          ["100", "draining", "1/3"],
        );
        await eventually(
          async () => (await rows())[0]?.state === "draining",
          10_000,
          "draining on the monitor",
        );
        const data = JSON.parse((await get(`${session.baseUrl}/monitor/data`)).body);
        assert.equal(data.servers[0].simulations, "1");
        assert.equal(data.changes[0].to, "draining");
        assert.equal(data.changes[0].entry, ours);
      });
    } catch (error) {
      console.error(f.server.output());
      throw error;
    } finally {
      await ws.close();
      await session.cleanup();
      await stock.close();
    }
  },
);

serverTest(
  "with leases on, a slot leased by GET /session shows in /load's headers and on the session server's monitor",
  async () => {
    const secret = "lease-secret-for-tests-0123";
    await using f = await startSimulationServer({
      maxConnections: 3,
      config: { leaseSecret: secret, leaseTimeout: 120 },
    });
    const ours = `127.0.0.1:${f.server.port}`;
    const session = await startSession({
      simulationServers: [ours],
      leaseSecret: secret,
      loadRefresh: 0.2,
      loadTimeout: 1,
      // Only the slots may make the server full here, not a busy test machine's CPU.
      fullAt: 100,
      availableAt: 99,
    });
    try {
      const leasesLine = async () =>
        JSON.parse((await get(`${session.baseUrl}/monitor/data`)).body).leases?.[0];
      await eventually(
        async () =>
          (await leasesLine()) === "Slots held by leases (granted, no Webots running yet): 0",
        10_000,
        "the leases section at 0",
      );
      await eventually(
        async () =>
          JSON.parse((await get(`${session.baseUrl}/monitor/data`)).body).servers[0].state ===
            "available",
        10_000,
        "the server available",
      );
      const answer = await get(`${session.baseUrl}/session`);
      assert.match(answer.body, /\/lease\/[A-Za-z0-9_-]+$/);
      const load = await get(`${f.server.baseUrl}/load`);
      assert.deepEqual([load.headers.get(SLOTS_HEADER), load.headers.get(SIMULATIONS_HEADER)], [
        "1/3",
        "0",
      ]);
      await eventually(
        async () =>
          (await leasesLine()) === "Slots held by leases (granted, no Webots running yet): 1",
        10_000,
        "the leased slot on the monitor",
      );
      const row = JSON.parse((await get(`${session.baseUrl}/monitor/data`)).body).servers[0];
      assert.deepEqual([row.simulations, row.freeSlots], ["0", "2 of 3"]);
    } catch (error) {
      console.error(f.server.output());
      throw error;
    } finally {
      await session.cleanup();
    }
  },
);
