/**
 * Drain, idle limit and per-address limit in-process: real `ClientSession`s sharing one real run
 * module (`webots_run.ts`) on a temp instances folder, a fake spawner whose processes print
 * scripted Webots lines, the real drain (`drain.ts`) and admission (`admission.ts`), and a fake
 * clock: deadlines fire when the test advances it, nothing waits on the wall clock.
 */
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { validateConfig } from "../../shared/config.ts";
import { parseClientMessage } from "../../shared/protocol.ts";
import { createAdmission } from "../../simulation/admission.ts";
import { ClientSession, type ClientSocket } from "../../simulation/client_session.ts";
import { type SimulationConfig, simulationSchema } from "../../simulation/config.ts";
import { createDrain } from "../../simulation/drain.ts";
import type { ServerEndReason } from "../../simulation/metrics_export.ts";
import { createPortPool } from "../../simulation/ports.ts";
import type { Project, Projects } from "../../simulation/projects.ts";
import type { RunRecord, RunRecords } from "../../simulation/run_records.ts";
import { singleInstallation } from "../../simulation/webots_installations.ts";
import { createWebotsRuns } from "../../simulation/webots_run.ts";
import { FakeClock, flush } from "../fakes/fake_clock.ts";
import { FakeSpawner } from "../fakes/fake_spawner.ts";
import { silentLogger } from "../fakes/logger.ts";
import { ProcessTable } from "../fakes/process_table.ts";

const ROOT = resolve(import.meta.dirname ?? ".", "..", "..");
const FAKE_HOME = join(ROOT, "tests", "fakes", "webots");

class FakeSocket implements ClientSocket {
  readonly sent: string[] = [];
  closed: { code: number | undefined; reason: string | undefined } | undefined;
  send(text: string) {
    if (this.closed) throw new Error("socket closed");
    this.sent.push(text);
  }
  close(code?: number, reason?: string) {
    this.closed ??= { code, reason };
  }
}

class MemoryRecords implements RunRecords {
  readonly records = new Map<string, RunRecord>();
  write(id: string, record: RunRecord) {
    this.records.set(id, record);
    return Promise.resolve();
  }
  remove(id: string) {
    this.records.delete(id);
    return Promise.resolve();
  }
  identity(_pid: number) {
    return Promise.resolve({ startTime: "1", bootId: "boot" });
  }
  reap(): never {
    throw new Error("not used by sessions");
  }
}

/** Projects that are prepared at once: a world file in the run's folder. */
class InstantProjects implements Projects {
  async #prepare(dir: string): Promise<Project> {
    const projectDir = join(dir, "p");
    await Deno.mkdir(join(projectDir, "worlds"), { recursive: true });
    const worldFile = join(projectDir, "worlds", "w.wbt");
    await Deno.writeTextFile(worldFile, "#VRML_SIM R2023b utf8\n");
    return { dir, projectDir, worldFile, source: undefined };
  }
  async prepareInit(_init: unknown, dir: string) {
    return { project: await this.#prepare(dir), controllerEdit: false };
  }
  prepareStart(_url: string, dir: string) {
    return this.#prepare(dir);
  }
  resetController() {
    return Promise.resolve();
  }
}

const START = parseClientMessage(JSON.stringify({ start: { url: "file:///p/worlds/w.wbt" } }));

/** Sessions of one server: what server.ts wires, minus the sockets. */
async function server(raw: Record<string, unknown> = {}) {
  const dir = await Deno.makeTempDir({ prefix: "drain-test-" });
  const instancesDir = join(dir, "instances");
  const config: SimulationConfig = validateConfig(
    simulationSchema,
    {
      webotsHome: FAKE_HOME,
      instancesDir,
      port: 2000,
      maxConnections: 4,
      // Current clients: they understand shutdownTimeout:.
      clientProtocol: "r2023",
      ...raw,
    },
    "test",
    { root: ROOT, vars: {}, tmpDir: dir },
  );
  const clock = new FakeClock();
  const spawner = new FakeSpawner();
  const records = new MemoryRecords();
  const ports = createPortPool(2001, 2000 + config.maxConnections, () => true);
  const sessions = new Set<ClientSession>();
  const ended: ServerEndReason[] = [];
  const draining: boolean[] = [];
  const drain = createDrain({
    timeoutSeconds: config.drainTimeout,
    clock,
    logger: silentLogger,
    sessions: () => sessions,
    onDraining: (on) => draining.push(on),
  });
  const admit = createAdmission({
    sessions: () => sessions,
    maxSessionsPerAddress: config.maxSessionsPerAddress,
    shuttingDown: () => false,
    draining: () => drain.draining,
  });
  const webotsRuns = createWebotsRuns({
    config,
    installations: singleInstallation("R2021b", config.webotsHome),
    owner: { port: 2000, config: join(dir, "simulation.json") },
    ssl: false,
    display: undefined,
    ports,
    spawner,
    processes: new ProcessTable().runProcesses(clock),
    records,
    clock,
    logger: silentLogger,
  });
  let nextId = 0;
  const settle = async (condition: () => boolean, what: string) => {
    for (let round = 0; round < 500; round++) {
      if (condition()) return;
      await flush(1);
    }
    throw new Error(`never happened: ${what}`);
  };
  /** A browser from `remote`: its session and socket, as server.ts makes them. */
  const connect = (remote = "10.0.0.1") => {
    const socket = new FakeSocket();
    const session = new ClientSession(`c${++nextId}`, socket, "example.com", remote, {
      config,
      logger: silentLogger,
      ssl: false,
      projects: new InstantProjects(),
      webotsRuns,
      clock,
      onChange: () => drain.changed(),
      admit,
      ended: (reason) => ended.push(reason),
    });
    sessions.add(session);
    const close = (reason: string) =>
      session.close(reason).finally(() => {
        sessions.delete(session);
        drain.changed();
      });
    return { session, socket, close };
  };
  type Browser = ReturnType<typeof connect>;
  /** Starts a simulation and brings it to `running` (Webots prints `open`, then `lines`). */
  const run = async (browser: Browser, ...lines: string[]) => {
    const before = spawner.spawned.length;
    void browser.session.handle(START);
    await settle(() => spawner.spawned.length === before + 1, "Webots to be spawned");
    spawner.spawned.at(-1)!.print("open", ...lines);
    await settle(() => browser.session.state === "running", "the session to run");
    return spawner.spawned.at(-1)!;
  };
  const folders = async () => (await Array.fromAsync(Deno.readDir(instancesDir))).length;
  return {
    config,
    clock,
    spawner,
    records,
    ports,
    sessions,
    drain,
    ended,
    draining,
    connect,
    run,
    settle,
    async assertReleased() {
      await settle(() => sessions.size === 0 || [...sessions].every((s) => s.closed), "closes");
      await flush();
      assert.equal(await folders(), 0, "instance folders left");
      assert.equal(records.records.size, 0, "run records left");
      assert.equal(ports.inUse, 0, "ports held");
      for (const process of spawner.spawned) assert.ok(process.exited, `pid ${process.pid}`);
    },
    async [Symbol.asyncDispose]() {
      drain.stop();
      await Promise.all([...sessions].map((s) => s.close("test over")));
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("a drain refuses new starts, tells running clients shutdownTimeout: <drainTimeout> and ends them cleanly at the deadline", async () => {
  await using s = await server({ drainTimeout: 120 });
  const a = s.connect("10.0.0.1");
  const b = s.connect("10.0.0.2");
  await s.run(a, "real-time");
  await s.run(b, "real-time");
  s.drain.start();
  assert.equal(s.drain.draining, true);
  assert.deepEqual(s.draining, [true]);
  assert.equal(s.drain.remainingSeconds(), 120);
  assert.equal(a.socket.sent.at(-1), "shutdownTimeout: 120");
  assert.equal(b.socket.sent.at(-1), "shutdownTimeout: 120");

  const late = s.connect("10.0.0.3");
  await late.session.handle(START);
  assert.deepEqual(late.socket.sent, ["error: the server is draining: no new simulations"]);
  assert.deepEqual(late.socket.closed, { code: 1013, reason: "start refused" });
  assert.equal(s.spawner.spawned.length, 2, "nothing spawned for the refused start");
  await late.close("browser left");

  // One browser leaves on its own during the drain; the other runs until the deadline.
  await a.close("browser left");
  await s.clock.advance(119_000);
  assert.equal(b.session.state, "running");
  assert.equal(s.drain.remainingSeconds(), 1);
  await s.clock.advance(1_000);
  await s.settle(() => b.session.closed, "the deadline to end the session");
  assert.equal(b.socket.sent.at(-1), "error: the server is shutting down: simulation ended");
  assert.deepEqual(b.socket.closed, { code: 1000, reason: "drain deadline reached" });
  await b.close("browser left");
  await s.assertReleased();
  assert.deepEqual(s.ended, ["drain_deadline"]);
  assert.equal(s.clock.pendingCount, 0);
});

Deno.test("a start accepted before the drain goes on: its client is told the deadline and gets webots:", async () => {
  await using s = await server({ drainTimeout: 100 });
  const a = s.connect();
  void a.session.handle(START);
  await s.settle(() => s.spawner.spawned.length === 1, "Webots to be spawned");
  assert.equal(a.session.state, "starting");
  s.drain.start();
  assert.equal(a.socket.sent.at(-1), "shutdownTimeout: 100");
  await s.clock.advance(30_000);
  s.spawner.spawned[0]!.print("open");
  await s.settle(() => a.session.state === "running", "the session to run");
  assert.equal(a.socket.sent.at(-1), "webots:ws://example.com:2001");
  assert.equal(s.drain.remainingSeconds(), 70);
  await a.close("browser left");
  await s.assertReleased();
});

Deno.test("undrain before the deadline takes starts again and ends nobody at the old deadline", async () => {
  await using s = await server({ drainTimeout: 60 });
  const a = s.connect();
  await s.run(a, "real-time");
  s.drain.start();
  await s.clock.advance(30_000);
  assert.equal(s.drain.undrain(), undefined);
  assert.equal(s.drain.draining, false);
  assert.deepEqual(s.draining, [true, false]);
  assert.equal(s.drain.undrain(), "not draining");
  await s.clock.advance(60_000);
  assert.equal(a.session.state, "running");
  const b = s.connect("10.0.0.9");
  await s.run(b);
  assert.ok(b.socket.sent.includes("webots:ws://example.com:2002"), b.socket.sent.join(" | "));
  await a.close("browser left");
  await b.close("browser left");
  await s.assertReleased();
  assert.deepEqual(s.ended, []);
});

Deno.test("the SIGTERM drain resolves as soon as the last simulation is gone, and cannot be undrained", async () => {
  await using s = await server({ drainTimeout: 600 });
  const a = s.connect();
  const idle = s.connect("10.0.0.5");
  await s.run(a, "real-time");
  let done = false;
  const drained = s.drain.drainThenStop().then(() => done = true);
  assert.equal(s.drain.undrain(), "stopping");
  await s.clock.advance(10_000);
  assert.equal(done, false, "a simulation still runs");
  await a.close("browser left");
  // A socket that never asked for a simulation does not hold the drain.
  await drained;
  assert.equal(idle.session.state, "waiting");
  await idle.close("browser left");
  await s.assertReleased();
  assert.deepEqual(s.ended, []);
});

Deno.test("the SIGTERM drain resolves at the deadline once the ended sessions are cleaned up", async () => {
  await using s = await server({ drainTimeout: 5 });
  const a = s.connect();
  const webots = await s.run(a, "real-time");
  const drained = s.drain.drainThenStop();
  await s.clock.advance(5_000);
  await s.settle(() => a.session.closed, "the deadline to end the session");
  // server.ts closes the session when its socket closes: the harness does the same.
  await a.close("socket closed");
  await drained;
  assert.deepEqual(webots.signals, ["TERM"]);
  await s.assertReleased();
  assert.deepEqual(s.ended, ["drain_deadline"]);
});

Deno.test("idleTimeout: a paused simulation is warned half-way (at most 60 s before) and ended at the limit", async () => {
  await using s = await server({ idleTimeout: 300 });
  const a = s.connect();
  // Ready but never set running: paused from the start.
  const webots = await s.run(a);
  await s.clock.advance(239_000);
  assert.ok(!a.socket.sent.some((m) => m.startsWith("shutdownTimeout:")), "no warning yet");
  await s.clock.advance(1_000);
  assert.equal(a.socket.sent.at(-1), "shutdownTimeout: 60");
  await s.clock.advance(59_000);
  assert.equal(a.session.state, "running");
  await s.clock.advance(1_000);
  await s.settle(() => a.session.closed, "the idle limit to end the session");
  assert.equal(a.socket.sent.at(-1), "error: simulation paused for 300 s: ended");
  assert.deepEqual(a.socket.closed, { code: 1000, reason: "idle limit reached" });
  await a.close("socket closed");
  assert.deepEqual(webots.signals, ["TERM"]);
  await s.assertReleased();
  assert.deepEqual(s.ended, ["idle_limit"]);
});

Deno.test("idleTimeout: real-time, fast or step resets the count; the next pause starts it afresh", async () => {
  await using s = await server({ idleTimeout: 20 });
  const a = s.connect();
  const webots = await s.run(a, "pause");
  await s.clock.advance(9_000);
  webots.print("real-time");
  await s.settle(() => !a.session.idle, "the simulation to run");
  await s.clock.advance(100_000);
  assert.equal(a.session.state, "running", "a running simulation is never ended for idling");
  webots.print("pause");
  await s.settle(() => a.session.idle, "the pause");
  assert.equal(a.session.info().idleSince, s.clock.now());
  await s.clock.advance(9_000);
  webots.print("fast");
  await s.settle(() => !a.session.idle, "fast");
  webots.print("pause");
  await s.settle(() => a.session.idle, "the second pause");
  await s.clock.advance(10_000);
  assert.equal(a.socket.sent.at(-1), "shutdownTimeout: 10", "warned half-way");
  webots.print("step");
  await s.settle(() => !a.session.idle, "step");
  await s.clock.advance(60_000);
  assert.equal(a.session.state, "running");
  await a.close("browser left");
  await s.assertReleased();
  assert.deepEqual(s.ended, []);
  assert.equal(s.clock.pendingCount, 0);
});

Deno.test("idleTimeout off (default): a paused simulation runs on", async () => {
  await using s = await server();
  const a = s.connect();
  await s.run(a, "pause");
  await s.clock.advance(24 * 3600_000);
  assert.equal(a.session.state, "running");
  await a.close("browser left");
  await s.assertReleased();
});

Deno.test("maxSessionsPerAddress: a start beyond the limit gets error: and a close, other addresses go ahead", async () => {
  await using s = await server({ maxSessionsPerAddress: 2 });
  const first = s.connect("10.0.0.1");
  const second = s.connect("10.0.0.1");
  await s.run(first);
  await s.run(second);
  const third = s.connect("10.0.0.1");
  await third.session.handle(START);
  assert.deepEqual(third.socket.sent, [
    "error: too many simulations from your address (at most 2)",
  ]);
  assert.deepEqual(third.socket.closed, { code: 1013, reason: "start refused" });
  assert.equal(third.session.state, "closed");
  await third.close("socket closed");
  const other = s.connect("10.0.0.2");
  await s.run(other);
  // Once one of them has left, the address may start again.
  await first.close("browser left");
  const again = s.connect("10.0.0.1");
  await s.run(again);
  assert.equal(s.spawner.spawned.length, 4);
  for (const b of [second, other, again]) await b.close("browser left");
  await s.assertReleased();
});

Deno.test("maxSessionsPerAddress off (default): one address may hold every slot", async () => {
  await using s = await server();
  const browsers = [s.connect(), s.connect(), s.connect(), s.connect()];
  for (const b of browsers) await s.run(b);
  assert.equal(s.ports.inUse, 4);
  for (const b of browsers) await b.close("browser left");
  await s.assertReleased();
});

Deno.test("with drainTimeout 0 an admin drain ends the running simulations at once and stays draining", async () => {
  await using s = await server();
  const a = s.connect();
  await s.run(a, "real-time");
  s.drain.start();
  await s.clock.advance(0);
  await s.settle(() => a.session.closed, "the session to end");
  assert.equal(a.socket.sent.at(-1), "error: the server is shutting down: simulation ended");
  await a.close("socket closed");
  await s.assertReleased();
  assert.equal(s.drain.draining, true);
  assert.deepEqual(s.ended, ["drain_deadline"]);
});
