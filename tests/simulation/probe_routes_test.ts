/**
 * The simulation server's `/metrics`, `/health` and `/ready` in-process: `createSimulationServer`
 * with a registry of the test's own, its handler called with `new Request(…)`, and the load
 * metrics (`exportLoadMetrics`) read from scripted sources.
 */
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { validateConfig } from "../../shared/config.ts";
import { counter, createRegistry } from "../../shared/metrics.ts";
import { simulationSchema } from "../../simulation/config.ts";
import { emptySnapshot } from "../../simulation/metrics.ts";
import { exportLoadMetrics } from "../../simulation/metrics_export.ts";
import { createPortPool } from "../../simulation/ports.ts";
import { createProjects } from "../../simulation/projects.ts";
import { createRunRecords } from "../../simulation/run_records.ts";
import { createSimulationServer } from "../../simulation/server.ts";
import { singleInstallation } from "../../simulation/webots_installations.ts";
import { createWebotsRuns } from "../../simulation/webots_run.ts";
import { FakeClock } from "../fakes/fake_clock.ts";
import { FakeSpawner } from "../fakes/fake_spawner.ts";
import { silentLogger } from "../fakes/logger.ts";
import { ProcessTable } from "../fakes/process_table.ts";
import { sample } from "../helpers/prometheus.ts";

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
  const owner = { port: config.port, config: "/etc/simulation.json" };
  const registry = createRegistry();
  const processes = new ProcessTable().runProcesses(clock);
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
      spawner: new FakeSpawner(),
      processes,
      records: createRunRecords({
        instancesDir,
        owner,
        runCommand: () => Promise.reject(new Error("no process in this test")),
        catBinary: "/usr/bin/cat",
        killBinary: "/usr/bin/kill",
        processes,
        clock,
        logger: silentLogger,
      }),
      clock,
      logger: silentLogger,
    }),
    load: () => 0,
    monitorPage: () => "",
    monitorData: () => ({}),
    assets: { names: [], respond: () => undefined },
    registry,
  });
  const request = (path: string, method = "GET") =>
    simulation.handler(new Request(`http://sim.example:2000${path}`, { method }), INFO);
  return { simulation, registry, request };
}

Deno.test("GET /metrics is the registry in the Prometheus text format, never cached", async () => {
  const { request } = server();
  const response = await request("/metrics");
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  assert.equal(response.headers.get("cache-control"), "no-store");
  const body = await response.text();
  assert.equal(sample(body, "webots_simulation_websocket_clients"), 0);
  assert.equal(sample(body, "webots_simulation_sessions", { state: "running" }), 0);
  assert.equal(sample(body, "webots_simulation_webots_processes", { state: "idle" }), 0);
  assert.match(body, /^# TYPE webots_simulation_start_duration_seconds histogram$/m);
});

Deno.test("a metric a feature registers on the server's registry shows in /metrics at 0", async () => {
  const { registry, request } = server();
  // What a later feature (leases, queue, drain) adds, where it lives: one line.
  counter(registry, { name: "webots_simulation_test_leases_total", help: "Test." });
  const body = await (await request("/metrics")).text();
  assert.equal(sample(body, "webots_simulation_test_leases_total"), 0);
});

Deno.test("/metrics, /health and /ready answer GET and HEAD only", async (t) => {
  const { request } = server();
  for (const path of ["/metrics", "/health", "/ready"]) {
    await t.step(path, async () => {
      const head = await request(path, "HEAD");
      assert.equal(head.status, 200);
      assert.equal(head.headers.get("cache-control"), "no-store");
      assert.equal(await head.text(), "");
      for (const method of ["POST", "PUT", "DELETE"]) {
        const refused = await request(path, method);
        assert.equal(refused.status, 405, method);
        assert.equal(refused.headers.get("allow"), "GET, HEAD");
        await refused.body?.cancel();
      }
    });
  }
});

Deno.test("/ready is 503 while draining and once shutting down; /health stays 200", async (t) => {
  const { simulation, request } = server();
  const answer = async (path: string) => {
    const response = await request(path);
    return [response.status, await response.text()];
  };
  await t.step("ready while taking sessions", async () => {
    assert.deepEqual(await answer("/ready"), [200, "ready\n"]);
    assert.deepEqual(await answer("/health"), [200, "ok\n"]);
  });
  await t.step("draining, then called off", async () => {
    simulation.readiness.setDraining(true);
    assert.deepEqual(await answer("/ready"), [503, "draining\n"]);
    assert.deepEqual(await answer("/health"), [200, "ok\n"]);
    simulation.readiness.setDraining(false);
    assert.deepEqual(await answer("/ready"), [200, "ready\n"]);
  });
  await t.step("shutting down, for good", async () => {
    await simulation.shutdown();
    simulation.readiness.setDraining(false);
    assert.deepEqual(await answer("/ready"), [503, "shutting down\n"]);
    assert.deepEqual(await answer("/health"), [200, "ok\n"]);
  });
});

Deno.test("/load and its parts, and the slots, are read when /metrics is rendered", async () => {
  const registry = createRegistry();
  let inUse = 1;
  exportLoadMetrics(registry, {
    load: () => 73.5,
    figures: () => ({ ...emptySnapshot(0), cpu: 73.46, memory: 40, swap: 2, gpuMemory: 5 }),
    counts: () => ({ running: 1, idle: 1 }),
    slotsInUse: () => inUse,
    maxConnections: 4,
  });
  let body = await registry.metrics();
  assert.equal(sample(body, "webots_simulation_load_percent"), 73.5);
  const part = (name: string) =>
    sample(body, "webots_simulation_load_part_percent", { part: name });
  assert.deepEqual(
    ["slots", "cpu", "memory", "swap", "gpu_compute", "gpu_memory"].map(part),
    [50, 73.5, 40, 2, 0, 5],
  );
  assert.equal(sample(body, "webots_simulation_slots", { state: "used" }), 1);
  assert.equal(sample(body, "webots_simulation_slots", { state: "free" }), 3);
  inUse = 4;
  body = await registry.metrics();
  assert.equal(sample(body, "webots_simulation_slots", { state: "used" }), 4);
  assert.equal(sample(body, "webots_simulation_slots", { state: "free" }), 0);
});
