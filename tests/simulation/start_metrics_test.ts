/**
 * What a browser session's start records in `/metrics`, in-process: a real `ClientSession` and the
 * real run module over a fake spawner, fake projects and a fake clock, with the real metrics
 * (`exportSessionMetrics`) on a registry of the test's own, read back in the text format. Each
 * start ends in exactly one outcome: ready (the histogram), failed (by reason) or abandoned.
 */
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { validateConfig } from "../../shared/config.ts";
import { createRegistry } from "../../shared/metrics.ts";
import { parseClientMessage } from "../../shared/protocol.ts";
import { ClientError, UnavailableError } from "../../simulation/client_error.ts";
import { ClientSession, type ClientSocket } from "../../simulation/client_session.ts";
import { simulationSchema } from "../../simulation/config.ts";
import { exportSessionMetrics, START_FAILURE_REASONS } from "../../simulation/metrics_export.ts";
import { createPortPool } from "../../simulation/ports.ts";
import type { Project, Projects } from "../../simulation/projects.ts";
import type { RunRecord, RunRecords } from "../../simulation/run_records.ts";
import { createInstallations, installation } from "../../simulation/webots_installations.ts";
import { createWebotsRuns } from "../../simulation/webots_run.ts";
import { FakeClock, flush } from "../fakes/fake_clock.ts";
import { FakeSpawner } from "../fakes/fake_spawner.ts";
import { silentLogger } from "../fakes/logger.ts";
import { ProcessTable } from "../fakes/process_table.ts";
import { sample } from "../helpers/prometheus.ts";

const ROOT = resolve(import.meta.dirname ?? ".", "..", "..");
const FAKE_HOME = join(ROOT, "tests", "fakes", "webots");

class Socket implements ClientSocket {
  readonly sent: string[] = [];
  send(text: string) {
    this.sent.push(text);
  }
  close() {}
}

class Records implements RunRecords {
  write(_id: string, _record: RunRecord) {
    return Promise.resolve();
  }
  remove() {
    return Promise.resolve();
  }
  identity() {
    return Promise.resolve({ startTime: "1", bootId: "boot" });
  }
  reap(): never {
    throw new Error("not used by sessions");
  }
}

/** Projects that write a world with `header`, fail with `failure`, or wait for the abort. */
class Projects_ implements Projects {
  header = "#VRML_SIM R2021b utf8\n";
  failure: Error | undefined;
  hold = false;
  async prepareStart(_url: string, dir: string, signal: AbortSignal): Promise<Project> {
    const worldFile = join(dir, "w.wbt");
    await Deno.writeTextFile(worldFile, this.header);
    if (this.hold) {
      await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
      throw signal.reason;
    }
    if (this.failure) throw this.failure;
    return { dir, projectDir: dir, worldFile, source: undefined };
  }
  prepareInit(): never {
    throw new Error("not used here");
  }
  resetController(): never {
    throw new Error("not used here");
  }
}

const START = parseClientMessage(JSON.stringify({ start: { url: "file:///p/worlds/w.wbt" } }));

async function harness(options: { webotsHome?: string; maxConnections?: number } = {}) {
  const dir = await Deno.makeTempDir({ prefix: "start-metrics-test-" });
  const config = validateConfig(
    simulationSchema,
    {
      webotsHome: options.webotsHome ?? FAKE_HOME,
      instancesDir: join(dir, "instances"),
      port: 2000,
      maxConnections: options.maxConnections ?? 2,
      startTimeout: 10,
    },
    "test",
    { root: ROOT, vars: {}, tmpDir: dir },
  );
  const clock = new FakeClock();
  const spawner = new FakeSpawner();
  const projects = new Projects_();
  const ports = createPortPool(2001, 2000 + config.maxConnections, () => true);
  const registry = createRegistry();
  const sessions: ClientSession[] = [];
  const starts = exportSessionMetrics(registry, {
    sessions: () => sessions,
    clients: () => sessions.length,
    counts: () => ({ running: 0, idle: 0 }),
  });
  const webotsRuns = createWebotsRuns({
    config,
    // Refuses a world of another release, as `webotsHomes` without a fallback does.
    installations: createInstallations([installation("R2021b", config.webotsHome)], {
      byHeader: true,
      fallback: "refuse",
    }),
    owner: { port: 2000, config: join(dir, "simulation.json") },
    ssl: false,
    display: ":9",
    ports,
    spawner,
    processes: new ProcessTable().runProcesses(clock),
    records: new Records(),
    clock,
    logger: silentLogger,
  });
  const open = () => {
    const socket = new Socket();
    const session = new ClientSession(`c${sessions.length + 1}`, socket, "h", "127.0.0.1", {
      config,
      logger: silentLogger,
      ssl: false,
      projects,
      webotsRuns,
      clock,
      onChange: () => {},
      starts,
    });
    sessions.push(session);
    return { session, socket };
  };
  const text = () => registry.metrics();
  return {
    clock,
    spawner,
    projects,
    ports,
    open,
    text,
    async value(name: string, labels: Record<string, string> = {}) {
      return sample(await text(), name, labels);
    },
    async failures(): Promise<Record<string, number>> {
      const body = await text();
      return Object.fromEntries(
        START_FAILURE_REASONS.map((reason) => [
          reason,
          sample(body, "webots_simulation_start_failures_total", { reason })!,
        ]),
      );
    },
    async settle(condition: () => boolean, what: string) {
      for (let round = 0; round < 500; round++) {
        if (condition()) return;
        await flush(1);
      }
      throw new Error(`never happened: ${what}`);
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(sessions.map((s) => s.close("test over")));
      await Deno.remove(dir, { recursive: true });
    },
  };
}

type Harness = Awaited<ReturnType<typeof harness>>;

/** Every reason at 0 but `reason` (at `count`). */
function onlyFailure(reason: string | undefined, count = 1): Record<string, number> {
  return Object.fromEntries(START_FAILURE_REASONS.map((r) => [r, r === reason ? count : 0]));
}

async function assertOutcomes(
  h: Harness,
  expected: { starts: number; ready: number; abandoned: number; failed: number },
) {
  const body = await h.text();
  assert.equal(sample(body, "webots_simulation_starts_total"), expected.starts);
  assert.equal(sample(body, "webots_simulation_start_duration_seconds_count"), expected.ready);
  assert.equal(sample(body, "webots_simulation_starts_abandoned_total"), expected.abandoned);
  const failed = START_FAILURE_REASONS
    .map((reason) => sample(body, "webots_simulation_start_failures_total", { reason })!)
    .reduce((a, b) => a + b, 0);
  assert.equal(failed, expected.failed);
}

Deno.test("before any start every failure reason and the start histogram read 0", async () => {
  await using h = await harness();
  assert.deepEqual(await h.failures(), onlyFailure(undefined));
  await assertOutcomes(h, { starts: 0, ready: 0, abandoned: 0, failed: 0 });
  assert.equal(await h.value("webots_simulation_start_duration_seconds_bucket", { le: "+Inf" }), 0);
  for (const state of ["waiting", "preparing", "starting", "running", "closing"]) {
    assert.equal(await h.value("webots_simulation_sessions", { state }), 0, state);
  }
});

Deno.test("a start that gets ready records its time from the start message to webots: on the clock", async () => {
  await using h = await harness();
  const { session, socket } = h.open();
  const handled = session.handle(START);
  await h.settle(() => h.spawner.spawned.length === 1, "Webots to be spawned");
  assert.equal(await h.value("webots_simulation_sessions", { state: "starting" }), 1);
  await h.clock.advance(1500);
  h.spawner.spawned[0]!.print("open");
  await h.settle(() => socket.sent.length === 1, "webots:");
  const body = await h.text();
  assert.equal(sample(body, "webots_simulation_start_duration_seconds_sum"), 1.5);
  assert.equal(sample(body, "webots_simulation_start_duration_seconds_bucket", { le: "1" }), 0);
  assert.equal(sample(body, "webots_simulation_start_duration_seconds_bucket", { le: "2" }), 1);
  assert.equal(sample(body, "webots_simulation_sessions", { state: "running" }), 1);
  await assertOutcomes(h, { starts: 1, ready: 1, abandoned: 0, failed: 0 });
  await session.close("browser left");
  await handled;
  // Leaving a running simulation is not an outcome of its start.
  await assertOutcomes(h, { starts: 1, ready: 1, abandoned: 0, failed: 0 });
});

Deno.test("failed starts are counted by reason, each in the step it failed in", async (t) => {
  await t.step("no_slot: every slot is taken", async () => {
    await using h = await harness({ maxConnections: 1 });
    h.ports.acquire();
    const { session, socket } = h.open();
    await session.handle(START);
    assert.match(socket.sent[0] ?? "", /^error: no simulation slot left/);
    assert.deepEqual(await h.failures(), onlyFailure("no_slot"));
    await assertOutcomes(h, { starts: 1, ready: 0, abandoned: 0, failed: 1 });
  });
  await t.step("no_webots: no installation", async () => {
    await using h = await harness({ webotsHome: "/nonexistent/webots" });
    const { session, socket } = h.open();
    await session.handle(START);
    assert.match(socket.sent[0] ?? "", /^error: Webots is not installed/);
    assert.deepEqual(await h.failures(), onlyFailure("no_webots"));
  });
  await t.step("project: the project cannot be prepared", async () => {
    await using h = await harness();
    h.projects.failure = new ClientError("Failed to download project: HTTP 404");
    const { session } = h.open();
    await session.handle(START);
    assert.deepEqual(await h.failures(), onlyFailure("project"));
  });
  await t.step("storage: the instances folder cannot store the run", async () => {
    await using h = await harness();
    h.projects.failure = new UnavailableError(
      "this server cannot store a simulation at the moment",
    );
    const { session, socket } = h.open();
    await session.handle(START);
    assert.match(socket.sent[0] ?? "", /^error: this server cannot store/);
    assert.deepEqual(await h.failures(), onlyFailure("storage"));
  });
  await t.step("internal: a fault of the server, not of the request", async () => {
    await using h = await harness();
    h.projects.failure = new Error("disk on fire");
    const { session, socket } = h.open();
    await session.handle(START);
    assert.deepEqual(socket.sent, ["error: internal server error"]);
    assert.deepEqual(await h.failures(), onlyFailure("internal"));
  });
  await t.step("release: the world's Webots release is not installed", async () => {
    await using h = await harness();
    h.projects.header = "#VRML_SIM R2023b utf8\n";
    const { session, socket } = h.open();
    await session.handle(START);
    assert.equal(socket.sent.at(-1), "error: this server has no Webots R2023b (installed: R2021b)");
    assert.deepEqual(await h.failures(), onlyFailure("release"));
  });
  await t.step("webots_exited: Webots exits before it is ready", async () => {
    await using h = await harness();
    const { session } = h.open();
    const handled = session.handle(START);
    await h.settle(() => h.spawner.spawned.length === 1, "Webots to be spawned");
    h.spawner.spawned[0]!.exit(3);
    await handled;
    await h.settle(() => session.state === "closed", "the session to close");
    assert.deepEqual(await h.failures(), onlyFailure("webots_exited"));
    await assertOutcomes(h, { starts: 1, ready: 0, abandoned: 0, failed: 1 });
  });
  await t.step("start_timeout: Webots is not ready within startTimeout on the clock", async () => {
    await using h = await harness();
    const { session, socket } = h.open();
    const handled = session.handle(START);
    await h.settle(() => h.spawner.spawned.length === 1, "Webots to be spawned");
    await h.clock.advance(10_000);
    await handled;
    assert.equal(socket.sent.at(-1), "error: Webots did not get ready within 10 s");
    assert.deepEqual(await h.failures(), onlyFailure("start_timeout"));
    await assertOutcomes(h, { starts: 1, ready: 0, abandoned: 0, failed: 1 });
  });
});

Deno.test("a browser leaving before Webots is ready abandons the start: no failure, no ready", async (t) => {
  await t.step("while the project is prepared", async () => {
    await using h = await harness();
    h.projects.hold = true;
    const { session } = h.open();
    const handled = session.handle(START);
    await h.settle(() => session.state === "preparing", "preparing");
    await session.close("browser left");
    await handled;
    await assertOutcomes(h, { starts: 1, ready: 0, abandoned: 1, failed: 0 });
  });
  await t.step("while Webots starts", async () => {
    await using h = await harness();
    const { session } = h.open();
    const handled = session.handle(START);
    await h.settle(() => h.spawner.spawned.length === 1, "Webots to be spawned");
    await session.close("browser left");
    await handled;
    await assertOutcomes(h, { starts: 1, ready: 0, abandoned: 1, failed: 0 });
  });
});

Deno.test("a second start on one connection is refused without counting as a start", async () => {
  await using h = await harness();
  const { session, socket } = h.open();
  const handled = session.handle(START);
  await h.settle(() => h.spawner.spawned.length === 1, "Webots to be spawned");
  h.spawner.spawned[0]!.print("open");
  await h.settle(() => socket.sent.length === 1, "webots:");
  await session.handle(START);
  assert.equal(socket.sent.at(-1), "error: only one simulation can run per connection");
  await assertOutcomes(h, { starts: 1, ready: 1, abandoned: 0, failed: 0 });
  await session.close("browser left");
  await handled;
});
