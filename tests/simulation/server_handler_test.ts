/**
 * The simulation server's routes in-process: `createSimulationServer(deps).handler` called
 * directly, without a network. The WebSocket flow itself is covered by client_session_test.ts
 * (in-process) and server_test.ts (over real sockets).
 */
import { silentLogger } from "../fakes/logger.ts";
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { validateConfig } from "../../shared/config.ts";
import { simulationSchema } from "../../simulation/config.ts";
import { createPortPool } from "../../simulation/ports.ts";
import { createProjects } from "../../simulation/projects.ts";
import { createRunRecords } from "../../simulation/run_records.ts";
import { createSimulationServer } from "../../simulation/server.ts";
import { createWebotsRuns } from "../../simulation/webots_run.ts";
import { ProcessTable } from "../fakes/process_table.ts";
import { singleInstallation } from "../../simulation/webots_installations.ts";
import { FakeClock } from "../fakes/fake_clock.ts";
import { FakeSpawner } from "../fakes/fake_spawner.ts";

const ROOT = resolve(import.meta.dirname ?? ".", "..", "..");

const INFO: Deno.ServeHandlerInfo = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 40000 },
  completed: Promise.resolve(),
};

function server() {
  const instancesDir = "/nonexistent/instances";
  const config = validateConfig(
    simulationSchema,
    { webotsHome: join(ROOT, "tests", "fakes", "webots"), instancesDir },
    "test",
    { root: ROOT, vars: {}, tmpDir: "/tmp" },
  );
  const clock = new FakeClock();
  const spawner = new FakeSpawner();
  const owner = { port: config.port, config: "/etc/simulation.json" };
  const monitored: number[] = [];
  const simulation = createSimulationServer({
    config,
    logger: silentLogger,
    ssl: false,
    clock,
    newId: () => "c1",
    projects: createProjects({ config, fetch, logger: silentLogger }),
    webotsRuns: createWebotsRuns({
      config,
      installations: singleInstallation("R2021b", config.webotsHome),
      owner,
      ssl: false,
      display: undefined,
      ports: createPortPool(2001, 2002, () => true),
      spawner,
      processes: new ProcessTable().runProcesses(clock),
      records: createRunRecords({
        instancesDir,
        owner,
        runCommand: () => Promise.reject(new Error("no process in this test")),
        catBinary: "/usr/bin/cat",
        killBinary: "/usr/bin/kill",
        processes: new ProcessTable().runProcesses(clock),
        clock,
        logger: silentLogger,
      }),
      clock,
      logger: silentLogger,
    }),
    load: () => 12.5,
    monitorPage: (sessions) => {
      monitored.push(sessions.length);
      return `<p>${sessions.length} simulations</p>`;
    },
    monitorData: (sessions) => ({ simulations: sessions.length }),
    assets: {
      names: ["x.js"],
      respond: (request) =>
        new URL(request.url).pathname === "/assets/x.js" ? new Response("js") : undefined,
    },
  });
  return { simulation, spawner, monitored };
}

const get = (path: string, method = "GET") =>
  new Request(`http://sim.example:2000${path}`, { method });

Deno.test("the simulation server's routes answer in-process", async (t) => {
  const { simulation, spawner, monitored } = server();
  await t.step("GET /load is the load as one number", async () => {
    const response = await simulation.handler(get("/load"), INFO);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "12.5");
  });
  await t.step("/monitor and /monitor/data show the current sessions", async () => {
    const page = await simulation.handler(get("/monitor"), INFO);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    assert.equal(await page.text(), "<p>0 simulations</p>");
    assert.deepEqual(monitored, [0]);
    const data = await simulation.handler(get("/monitor/data"), INFO);
    assert.deepEqual(await data.json(), { simulations: 0 });
  });
  await t.step("a plain GET on /client is 426, a POST on /load 405", async () => {
    const plain = await simulation.handler(get("/client"), INFO);
    assert.equal(plain.status, 426);
    assert.equal(plain.headers.get("upgrade"), "websocket");
    await plain.body?.cancel();
    const post = await simulation.handler(get("/load", "POST"), INFO);
    assert.equal(post.status, 405);
    await post.body?.cancel();
  });
  await t.step("assets are served, anything else is 404", async () => {
    assert.equal(await (await simulation.handler(get("/assets/x.js"), INFO)).text(), "js");
    const missing = await simulation.handler(get("/nope"), INFO);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  });
  await t.step(
    "no session, no Webots: counts are zero and shutdown has nothing to stop",
    async () => {
      assert.deepEqual(simulation.counts(), { running: 0, idle: 0 });
      await simulation.shutdown();
      assert.equal(simulation.sessions.size, 0);
      assert.equal(spawner.spawned.length, 0);
    },
  );
});
