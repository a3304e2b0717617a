/**
 * `/metrics`, `/health` and `/ready` of both real servers, started as processes through the
 * launcher (so under their own scoped permissions), with the stand-in Webots: after one simulation
 * has run, each server's `/metrics` passes `promtool check metrics` and shows what happened.
 */
import assert from "node:assert/strict";
import { serverTest } from "../helpers/server_process.ts";
import { promtoolCheck, sample } from "../helpers/prometheus.ts";
import { eventually, startFile, startSimulationServer } from "../helpers/simulation_fixture.ts";
import { connect } from "../helpers/ws_client.ts";
import { get, startSession, subscribe, unsubscribe } from "../session/_helpers.ts";

serverTest(
  "both servers' /metrics pass promtool check metrics after a simulation has run",
  async (t) => {
    await using fixture = await startSimulationServer({ maxConnections: 3 });
    const sim = fixture.server.baseUrl;
    const scrape = async (base: string) => {
      const response = await get(`${base}/metrics`);
      assert.equal(response.status, 200);
      assert.equal(response.type, "text/plain; version=0.0.4; charset=utf-8");
      assert.equal(response.headers.get("cache-control"), "no-store");
      return response.body;
    };

    await t.step("simulation server: one start, ready, then gone", async () => {
      const client = await connect(fixture.clientUrl);
      client.send(startFile(fixture, "robots/demo", "demo.wbt"));
      await client.waitFor((m) => m.startsWith("webots:"));
      const during = await scrape(sim);
      assert.equal(sample(during, "webots_simulation_sessions", { state: "running" }), 1);
      assert.equal(sample(during, "webots_simulation_websocket_clients"), 1);
      assert.equal(sample(during, "webots_simulation_slots", { state: "used" }), 1);
      await client.close();
      await eventually(
        async () => sample(await scrape(sim), "webots_simulation_slots", { state: "used" }) === 0,
        10_000,
        "the slot to be free again",
      );
      const body = await scrape(sim);
      assert.equal(sample(body, "webots_simulation_starts_total"), 1);
      assert.equal(sample(body, "webots_simulation_start_duration_seconds_count"), 1);
      assert.equal(
        sample(body, "webots_simulation_start_failures_total", { reason: "no_slot" }),
        0,
      );
      assert.equal(sample(body, "webots_simulation_websocket_clients"), 0);
      assert.equal(sample(body, "webots_simulation_slots", { state: "free" }), 3);
      const load = sample(body, "webots_simulation_load_percent");
      assert.ok(load !== undefined && load >= 0 && load <= 100, `load ${load}`);
      const check = await promtoolCheck(body);
      assert.deepEqual(check, { code: 0, output: "" }, body);
    });

    await t.step("simulation server: /health and /ready", async () => {
      assert.deepEqual((await get(`${sim}/health`)).body, "ok\n");
      const ready = await get(`${sim}/ready`);
      assert.deepEqual([ready.status, ready.body], [200, "ready\n"]);
    });

    await t.step("session server polling it: one subscriber, one /session answer", async () => {
      const session = await startSession({
        simulationServers: [`127.0.0.1:${fixture.server.port}`],
      });
      try {
        const feed = subscribe(session.baseUrl.replace("http", "ws") + "/");
        try {
          await feed.lastIs("1");
          assert.equal(
            (await get(`${session.baseUrl}/session`)).body,
            `ws://127.0.0.1:${fixture.server.port}`,
          );
          const body = await scrape(session.baseUrl);
          const server = `127.0.0.1:${fixture.server.port}`;
          assert.equal(
            sample(body, "webots_session_simulation_server_state", { server, state: "available" }),
            1,
          );
          assert.equal(sample(body, "webots_session_polls_total", { server, outcome: "ok" }), 1);
          assert.equal(sample(body, "webots_session_poll_duration_seconds_count", { server }), 1);
          assert.equal(sample(body, "webots_session_answers_total", { outcome: "server" }), 1);
          assert.equal(sample(body, "webots_session_subscribers"), 1);
          const check = await promtoolCheck(body);
          assert.deepEqual(check, { code: 0, output: "" }, body);
          assert.equal((await get(`${session.baseUrl}/health`)).status, 200);
          assert.equal((await get(`${session.baseUrl}/ready`)).status, 200);
        } finally {
          await unsubscribe(feed);
        }
      } finally {
        await session.cleanup();
      }
    });
  },
);
