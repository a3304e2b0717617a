/**
 * The session server's routes over real loopback sockets, against the real server process and a
 * real stand-in simulation server. Only the wiring is proved here (config → fleet → routes, real
 * assets, real HTTP parsing); the rules behind each route are tested in-process in
 * server_test.ts.
 */
import assert from "node:assert/strict";
import { startFakeSimServer } from "../fakes/sim_server.ts";
import { get, startSession, subscribe, unsubscribe } from "./_helpers.ts";
import { serverTest } from "../helpers/server_process.ts";

serverTest("the real server answers every route over loopback from its first poll", async (t) => {
  await using sim = startFakeSimServer({ load: 12.5 });
  const session = await startSession({ simulationServers: [sim.entry] });
  const base = session.baseUrl;
  const feed = subscribe(base.replace("http", "ws") + "/");
  try {
    // Availability is set right after the poll's answer is applied: from then on, every route
    // shows it.
    await feed.lastIs("1");
    await t.step("GET /session", async () => {
      const response = await get(`${base}/session?url=ignored`);
      assert.equal(response.status, 200);
      assert.equal(response.type, "text/html; charset=utf-8");
      assert.equal(response.body, `ws://${sim.entry}`);
      assert.equal(response.headers.get("access-control-allow-origin"), "*");
      assert.equal(response.headers.get("access-control-allow-headers"), "x-requested-with");
      assert.equal(response.headers.get("access-control-allow-methods"), "POST, GET, OPTIONS");
      assert.deepEqual(
        [...response.headers.keys()].filter((name) => name !== "date" && name !== "content-length"),
        [
          "access-control-allow-headers",
          "access-control-allow-methods",
          "access-control-allow-origin",
          "content-type",
        ],
      );
    });
    await t.step("OPTIONS /session", async () => {
      const response = await fetch(`${base}/session`, {
        method: "OPTIONS",
        headers: { origin: "https://example.test", "access-control-request-method": "GET" },
      });
      await response.body?.cancel();
      assert.equal(response.status, 204);
      assert.equal(response.headers.get("access-control-allow-origin"), "*");
    });
    await t.step("GET /load, /monitor, /monitor/data", async () => {
      assert.equal((await get(`${base}/load`)).body, "12.5");
      const monitor = await get(`${base}/monitor`);
      assert.equal(monitor.status, 200);
      assert.ok(monitor.body.includes(`<a href="http://${sim.entry}/monitor">${sim.entry}</a>`));
      assert.match(monitor.body, /<td class="load">12\.5%<\/td>/);
      const data = JSON.parse((await get(`${base}/monitor/data`)).body);
      assert.equal(data.servers[0].load, "12.5%");
      assert.deepEqual(data.history.s0, [12.5]);
    });
    await t.step("the pages' assets come from the server itself", async () => {
      const script = await get(`${base}/assets/uPlot.iife.min.js`);
      assert.equal(script.status, 200);
      assert.equal(script.type, "text/javascript; charset=utf-8");
      assert.match(script.body, /uPlot/);
    });
    await t.step("404 and 405", async () => {
      assert.equal((await get(`${base}/nothing`)).status, 404);
      const post = await get(`${base}/session`, { method: "POST", body: "x" });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get("allow"), "GET, HEAD, OPTIONS");
    });
    await t.step("a malformed request does not take the server down", async () => {
      const connection = await Deno.connect({ hostname: "127.0.0.1", port: session.port });
      await connection.write(new TextEncoder().encode("\x00\x01GARBAGE /\r\n\r\n\r\n"));
      const buffer = new Uint8Array(1024);
      await connection.read(buffer).catch(() => null);
      connection.close();
      assert.equal((await get(`${base}/load`)).body, "12.5");
    });
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await unsubscribe(feed);
    await session.cleanup();
  }
});
