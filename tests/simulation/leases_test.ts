/**
 * Slot leases on the simulation server, in-process: the lease book (leases.ts) with a fake clock,
 * and the `POST /lease` route and `/load` share through `createSimulationServer(deps).handler`.
 * The `/lease/<token>/client` socket over real connections is in lease_burst_test.ts.
 */
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { validateConfig } from "../../shared/config.ts";
import { createRegistry } from "../../shared/metrics.ts";
import { simulationSchema } from "../../simulation/config.ts";
import { computeLoad } from "../../simulation/load.ts";
import { createLeases, TOKEN_PATTERN } from "../../simulation/leases.ts";
import { exportLeaseMetrics } from "../../simulation/metrics_export.ts";
import { createPortPool } from "../../simulation/ports.ts";
import { createSimulationServer } from "../../simulation/server.ts";
import type { WebotsRuns } from "../../simulation/webots_run.ts";
import type { Projects } from "../../simulation/projects.ts";
import { emptySnapshot } from "../../simulation/metrics.ts";
import { FakeClock } from "../fakes/fake_clock.ts";
import { recordingLogger, silentLogger } from "../fakes/logger.ts";

const ROOT = resolve(import.meta.dirname ?? ".", "..", "..");
const SECRET = "s3cret-lease-key-0123456789";
const INFO: Deno.ServeHandlerInfo = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 40000 },
  completed: Promise.resolve(),
};

async function metricValue(registry: ReturnType<typeof createRegistry>, line: string) {
  const text = await registry.metrics();
  const found = text.split("\n").find((l) => l.startsWith(line + " "));
  assert.ok(found, `metric ${line} in:\n${text}`);
  return Number(found.slice(line.length + 1));
}

function book(slots = 2, timeoutSeconds = 30) {
  const clock = new FakeClock();
  const ports = createPortPool(2001, 2000 + slots, () => true);
  const registry = createRegistry();
  const leases = createLeases({
    ports,
    clock,
    timeoutSeconds,
    logger: silentLogger,
    events: exportLeaseMetrics(registry, () => leases.outstanding),
  });
  return { clock, ports, registry, leases };
}

Deno.test("a granted lease holds a slot, and its token is 128 random bits, unique", () => {
  const { ports, leases } = book(3);
  const tokens = new Set<string>();
  for (let i = 0; i < 3; i++) {
    const outcome = leases.request();
    assert.equal(outcome.kind, "granted");
    if (outcome.kind !== "granted") return;
    assert.match(outcome.token, TOKEN_PATTERN);
    // 22 base64url characters carry 132 bits; the last 4 are padding of the 16 random bytes.
    assert.equal(outcome.token.length, 22);
    assert.equal(outcome.expiresIn, 30);
    tokens.add(outcome.token);
  }
  assert.equal(tokens.size, 3);
  assert.equal(ports.inUse, 3);
  assert.equal(leases.outstanding, 3);
  assert.deepEqual(leases.request(), { kind: "refused", reason: "full" });
  assert.equal(ports.acquire(), undefined, "a client without a lease finds no slot either");
  leases.clear();
});

Deno.test("a lease expires after leaseTimeout: slot freed, counted as expired, token void", async () => {
  const { clock, ports, leases, registry } = book(1, 30);
  const outcome = leases.request();
  assert.equal(outcome.kind, "granted");
  if (outcome.kind !== "granted") return;
  await clock.advance(29_999);
  assert.equal(ports.inUse, 1, "still held just before the deadline");
  await clock.advance(1);
  assert.equal(ports.inUse, 0);
  assert.equal(leases.outstanding, 0);
  assert.equal(leases.take(outcome.token), undefined);
  assert.equal(await metricValue(registry, "webots_simulation_leases_expired_total"), 1);
  assert.equal(await metricValue(registry, "webots_simulation_leases_used_total"), 0);
  assert.equal(leases.request().kind, "granted", "the freed slot can be leased again");
  leases.clear();
});

Deno.test("a token is single-use: taken once, its slot handed to the run, never taken again", async () => {
  const { clock, ports, leases, registry } = book(1);
  const outcome = leases.request();
  if (outcome.kind !== "granted") throw new Error("not granted");
  const slot = leases.take(outcome.token);
  assert.ok(slot);
  assert.equal(leases.take(outcome.token), undefined);
  assert.equal(leases.outstanding, 0);
  assert.equal(ports.inUse, 1, "the session holds the slot");
  await clock.advance(60_000);
  assert.equal(ports.inUse, 1, "a taken lease does not expire");
  assert.equal(slot.handOver(), 2001);
  assert.equal(slot.handOver(), undefined);
  slot.release();
  assert.equal(ports.inUse, 1, "the run owns the port now: release does nothing");
  ports.release(2001);
  assert.equal(await metricValue(registry, "webots_simulation_leases_used_total"), 1);
  assert.equal(await metricValue(registry, "webots_simulation_leases_expired_total"), 0);
  assert.equal(await metricValue(registry, "webots_simulation_leases_granted_total"), 1);
});

Deno.test("a taken slot released before any run goes back to the pool, once", () => {
  const { ports, leases } = book(1);
  const outcome = leases.request();
  if (outcome.kind !== "granted") throw new Error("not granted");
  const slot = leases.take(outcome.token)!;
  slot.release();
  slot.release();
  assert.equal(ports.inUse, 0);
  assert.equal(slot.handOver(), undefined);
});

Deno.test("refusing leases: the reason set by the drain hook, counted by reason", async () => {
  const { leases, registry, ports } = book(2);
  leases.setRefusing("draining");
  assert.deepEqual(leases.request(), { kind: "refused", reason: "draining" });
  assert.equal(ports.inUse, 0);
  leases.setRefusing(undefined);
  assert.equal(leases.request().kind, "granted");
  assert.equal(leases.request().kind, "granted");
  assert.deepEqual(leases.request(), { kind: "refused", reason: "full" });
  const refused = 'webots_simulation_leases_refused_total{reason="';
  assert.equal(await metricValue(registry, `${refused}draining"}`), 1);
  assert.equal(await metricValue(registry, `${refused}full"}`), 1);
  assert.equal(await metricValue(registry, `${refused}shutting_down"}`), 0);
  assert.equal(await metricValue(registry, "webots_simulation_leases_outstanding"), 2);
  leases.clear();
  assert.equal(ports.inUse, 0);
  assert.equal(await metricValue(registry, "webots_simulation_leases_outstanding"), 0);
});

Deno.test("/load counts reserved slots like running ones", () => {
  const figures = emptySnapshot(0);
  assert.equal(computeLoad(figures, { running: 1, idle: 0, reserved: 2 }, 5), 60);
  assert.equal(computeLoad(figures, { running: 0, idle: 0, reserved: 5 }, 5), 100);
  assert.equal(computeLoad(figures, { running: 1, idle: 1 }, 5), 40);
});

function server(config: Record<string, unknown>, secret: string | undefined, slots = 2) {
  const valid = validateConfig(
    simulationSchema,
    { webotsHome: join(ROOT, "tests", "fakes", "webots"), maxConnections: slots, ...config },
    "test",
    { root: ROOT, vars: {}, tmpDir: "/tmp" },
  );
  const clock = new FakeClock();
  const ports = createPortPool(2001, 2000 + slots, () => true);
  const logger = recordingLogger();
  const registry = createRegistry();
  const unused = () => Promise.reject(new Error("not in this test"));
  const simulation = createSimulationServer({
    config: valid,
    logger,
    ssl: false,
    clock,
    newId: () => "c1",
    projects: { prepareInit: unused, prepareStart: unused } as unknown as Projects,
    webotsRuns: { open: unused } as WebotsRuns,
    load: () => 0,
    monitorPage: () => "<p>monitor</p>",
    monitorData: () => ({}),
    assets: { names: [], respond: () => undefined },
    registry,
    ...(secret === undefined ? {} : { lease: { secret, ports } }),
  });
  return { simulation, clock, ports, logger, registry };
}

const lease = (authorization?: string, method = "POST", host = "sim.example:2000") =>
  new Request(`http://${host}/lease`, {
    method,
    headers: authorization === undefined ? { host } : { authorization, host },
  });

Deno.test("POST /lease without a configured secret is 404, as any unknown path", async () => {
  const { simulation } = server({}, undefined);
  const response = await simulation.handler(lease(`Bearer ${SECRET}`), INFO);
  assert.equal(response.status, 404);
  await response.body?.cancel();
  assert.equal(simulation.leases, undefined);
  const client = await simulation.handler(new Request("http://x/lease/abc/client"), INFO);
  assert.equal(client.status, 404);
  await client.body?.cancel();
});

Deno.test("POST /lease checks the secret, grants while slots are free, then 503 full", async (t) => {
  const { simulation, ports, logger, registry, clock } = server({}, SECRET, 2);
  await t.step("no or a wrong secret: 401, logged without what was sent", async () => {
    for (const header of [undefined, "Bearer wrong-secret-0123456789", SECRET, `Basic ${SECRET}`]) {
      const response = await simulation.handler(lease(header), INFO);
      assert.equal(response.status, 401);
      assert.deepEqual(await response.json(), { error: "unauthorized" });
    }
    assert.equal(ports.inUse, 0);
    const logged = JSON.stringify(logger.lines);
    assert.ok(!logged.includes("wrong-secret"), logged);
    assert.ok(!logged.includes(SECRET), logged);
    assert.equal(
      await metricValue(registry, 'webots_simulation_leases_refused_total{reason="unauthorized"}'),
      4,
    );
  });
  await t.step("GET is 405", async () => {
    const response = await simulation.handler(lease(`Bearer ${SECRET}`, "GET"), INFO);
    assert.equal(response.status, 405);
    await response.body?.cancel();
  });
  const granted: string[] = [];
  await t.step("with the secret: a token and the URL the session server hands out", async () => {
    for (let i = 0; i < 2; i++) {
      const response = await simulation.handler(lease(`Bearer ${SECRET}`), INFO);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("cache-control"), "no-store");
      const body = await response.json();
      assert.match(body.token, TOKEN_PATTERN);
      assert.equal(body.url, `ws://sim.example:2000/lease/${body.token}`);
      assert.equal(body.expiresIn, 30);
      granted.push(body.token);
    }
    assert.deepEqual(simulation.counts(), { running: 0, idle: 0, reserved: 2 });
  });
  await t.step("every slot leased: 503 full", async () => {
    const response = await simulation.handler(lease(`Bearer ${SECRET}`), INFO);
    assert.equal(response.status, 503);
    assert.deepEqual(await response.json(), { error: "full" });
  });
  await t.step("while the server drains: 503 draining; undrained: granted again", async () => {
    await clock.advance(30_000);
    assert.equal(ports.inUse, 0, "both leases expired");
    simulation.drain.start();
    const response = await simulation.handler(lease(`Bearer ${SECRET}`), INFO);
    assert.equal(response.status, 503);
    assert.deepEqual(await response.json(), { error: "draining" });
    assert.equal(simulation.drain.undrain(), undefined);
    const again = await simulation.handler(lease(`Bearer ${SECRET}`), INFO);
    assert.equal(again.status, 200);
    await again.body?.cancel();
    await clock.advance(30_000);
    assert.equal(ports.inUse, 0, "that lease expired too");
  });
  await t.step("shutting down: outstanding leases end, 503 shutting_down", async () => {
    const response = await simulation.handler(lease(`Bearer ${SECRET}`), INFO);
    assert.equal(response.status, 200);
    await response.body?.cancel();
    await simulation.shutdown();
    assert.equal(ports.inUse, 0);
    const after = await simulation.handler(lease(`Bearer ${SECRET}`), INFO);
    assert.equal(after.status, 503);
    assert.deepEqual(await after.json(), { error: "shutting_down" });
  });
  await t.step("the secret is in no log line, page or metric", async () => {
    const pages = await Promise.all(["/monitor", "/monitor/data", "/metrics"].map(async (path) => {
      const response = await simulation.handler(new Request(`http://x${path}`), INFO);
      return await response.text();
    }));
    for (const text of [...pages, JSON.stringify(logger.lines)]) {
      assert.ok(!text.includes(SECRET));
    }
  });
});

Deno.test("with port rewriting the lease URL is wss://host/<port>/lease/<token>", async () => {
  const { simulation } = server({ portRewrite: true }, SECRET);
  const response = await simulation.handler(
    lease(`Bearer ${SECRET}`, "POST", "webots.example"),
    INFO,
  );
  const body = await response.json();
  assert.equal(body.url, `wss://webots.example/2000/lease/${body.token}`);
  await simulation.shutdown();
});
