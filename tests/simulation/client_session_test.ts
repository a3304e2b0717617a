/**
 * A browser session in-process: `new ClientSession` with a fake socket, a fake spawner whose
 * processes print scripted Webots lines, fake projects, in-memory run records and a fake clock.
 * The run module (`webots_run.ts`) is the real one, on a temp instances folder. Nothing here waits
 * on the wall clock: timeouts fire when the test advances the clock.
 */
import { recordingLogger, silentLogger } from "../fakes/logger.ts";
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { validateConfig } from "../../shared/config.ts";
import { parseClientMessage } from "../../shared/protocol.ts";
import { createLeases, type HeldSlot } from "../../simulation/leases.ts";
import { ClientError } from "../../simulation/client_error.ts";
import { ClientSession, type ClientSocket } from "../../simulation/client_session.ts";
import { type SimulationConfig, simulationSchema } from "../../simulation/config.ts";
import { createPortPool, type PortPool } from "../../simulation/ports.ts";
import type { OnProgress, ProjectProgress } from "../../simulation/progress.ts";
import type { Project, Projects } from "../../simulation/projects.ts";
import type { RunRecord, RunRecords } from "../../simulation/run_records.ts";
import { singleInstallation } from "../../simulation/webots_installations.ts";
import { createWebotsRuns } from "../../simulation/webots_run.ts";
import { ProcessTable } from "../fakes/process_table.ts";
import { FakeClock, flush } from "../fakes/fake_clock.ts";
import { FakeSpawner } from "../fakes/fake_spawner.ts";

const ROOT = resolve(import.meta.dirname ?? ".", "..", "..");
const FAKE_HOME = join(ROOT, "tests", "fakes", "webots");
const PORT = 2001;

/** The socket a session writes to. */
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

/** In-memory crash-recovery records. */
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
    return Promise.resolve({ startTime: "4242", bootId: "boot" });
  }
  reap(): never {
    throw new Error("not used by sessions");
  }
}

/** Projects whose preparation the test holds or fails; a prepared project has a world file. */
class FakeProjects implements Projects {
  /** When set, preparation waits for the abort signal, writes one more file, then rejects. */
  holdUntilAborted = false;
  /** When set, preparation fails with this error. */
  failure: Error | undefined;
  resetFailure: Error | undefined;
  readonly resets: string[] = [];
  /** Steps each preparation reports, as a real download would. */
  progress: ProjectProgress[] = [];
  /** Whether each preparation was given a progress callback. */
  readonly progressGiven: boolean[] = [];

  async #prepare(dir: string, signal: AbortSignal, onProgress?: OnProgress): Promise<Project> {
    this.progressGiven.push(onProgress !== undefined);
    for (const step of this.progress) onProgress?.(step);
    const projectDir = join(dir, "p");
    await Deno.mkdir(join(projectDir, "worlds"), { recursive: true });
    const worldFile = join(projectDir, "worlds", "w.wbt");
    await Deno.writeTextFile(worldFile, "#VRML_SIM R2023b utf8\n");
    if (this.holdUntilAborted) {
      // The session may be closed while the world file is written, before anyone listens.
      if (!signal.aborted) {
        await new Promise<void>((resolve) => {
          signal.addEventListener("abort", () => resolve(), { once: true });
        });
      }
      // Like a copy that notices the abort only after its next file.
      await Deno.mkdir(join(projectDir, "controllers"), { recursive: true });
      await Deno.writeTextFile(join(projectDir, "controllers", "late.txt"), "late");
      throw signal.reason;
    }
    if (this.failure) throw this.failure;
    return { dir, projectDir, worldFile, source: undefined };
  }

  async prepareInit(_init: unknown, dir: string, signal: AbortSignal, onProgress?: OnProgress) {
    return { project: await this.#prepare(dir, signal, onProgress), controllerEdit: true };
  }

  prepareStart(_url: string, dir: string, signal: AbortSignal, onProgress?: OnProgress) {
    return this.#prepare(dir, signal, onProgress);
  }

  resetController(_project: Project, path: string) {
    if (this.resetFailure) return Promise.reject(this.resetFailure);
    this.resets.push(path);
    return Promise.resolve();
  }
}

/** One session and everything around it. */
async function harness(
  raw: Record<string, unknown> = {},
  release = "R2021b",
  /** The slot of a slot lease the session comes with (leases.ts), taken from the run's pool. */
  leaseFrom?: (ports: PortPool, clock: FakeClock) => HeldSlot,
) {
  const dir = await Deno.makeTempDir({ prefix: "client-session-test-" });
  const instancesDir = join(dir, "instances");
  const config: SimulationConfig = validateConfig(
    simulationSchema,
    { webotsHome: FAKE_HOME, instancesDir, port: 2000, maxConnections: 2, ...raw },
    "test",
    { root: ROOT, vars: {}, tmpDir: dir },
  );
  const clock = new FakeClock();
  const spawner = new FakeSpawner();
  const records = new MemoryRecords();
  const projects = new FakeProjects();
  // Every port of the range "can be bound": no real socket in these tests.
  const ports: PortPool = createPortPool(PORT, 2000 + config.maxConnections, () => true);
  const socket = new FakeSocket();
  let changes = 0;
  const logger = recordingLogger();
  const slot = leaseFrom?.(ports, clock);
  const session = new ClientSession("c1", socket, "example.com", "127.0.0.1", {
    config,
    logger,
    ssl: false,
    projects,
    webotsRuns: createWebotsRuns({
      config,
      installations: singleInstallation(release, config.webotsHome),
      owner: { port: 2000, config: join(dir, "simulation.json") },
      ssl: false,
      display: ":9",
      ports,
      spawner,
      // The fake spawner's processes are not in any process table: scans find nothing.
      processes: new ProcessTable().runProcesses(clock),
      records,
      clock,
      logger: silentLogger,
    }),
    clock,
    onChange: () => changes++,
  }, slot);
  const folders = async () => {
    try {
      return (await Array.fromAsync(Deno.readDir(instancesDir))).map((e) => e.name);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return [];
      throw error;
    }
  };
  return {
    config,
    clock,
    spawner,
    records,
    projects,
    ports,
    socket,
    session,
    folders,
    logger,
    changes: () => changes,
    /** The first Webots the session started. */
    get webots() {
      const process = spawner.spawned[0];
      if (process === undefined) throw new Error("no Webots was started");
      return process;
    },
    /** Lets the session's promise chains and its file-system calls run until `condition`. */
    async settle(condition: () => boolean | Promise<boolean>, what: string) {
      for (let round = 0; round < 500; round++) {
        if (await condition()) return;
        await flush(1);
      }
      throw new Error(`never happened: ${what}; sent ${JSON.stringify(socket.sent)}`);
    },
    /** Asserts that the session let go of everything. */
    async assertReleased() {
      assert.equal(session.state, "closed");
      assert.deepEqual(await folders(), []);
      assert.equal(records.records.size, 0);
      assert.equal(ports.inUse, 0);
      for (const process of spawner.spawned) assert.ok(process.exited);
      assert.equal(clock.pendingCount, 0);
    },
    async [Symbol.asyncDispose]() {
      await session.close("test over");
      await Deno.remove(dir, { recursive: true });
    },
  };
}

type Harness = Awaited<ReturnType<typeof harness>>;

const START = parseClientMessage(JSON.stringify({ start: { url: "file:///p/worlds/w.wbt" } }));
const INIT = parseClientMessage(JSON.stringify({
  init: ["https://example.com", "robots/demo", "w.wbt", "", "", "", "", "", ""],
}));

/** Sends a message without waiting for the simulation to end (handle() resolves then). */
function send(h: Harness, message: typeof START): Promise<void> {
  return h.session.handle(message);
}

/** Starts a simulation and brings it to `running`; `handled` resolves when it ends. */
async function running(h: Harness, message = START): Promise<{ handled: Promise<void> }> {
  const handled = send(h, message);
  await h.settle(() => h.spawner.spawned.length === 1, "Webots to be spawned");
  h.webots.print("open");
  await h.settle(() => h.session.state === "running", "the session to run");
  return { handled };
}

Deno.test("init: the run is prepared, Webots started with the run's port, and webots:<url> sent once it prints open", async () => {
  await using h = await harness();
  const handled = send(h, INIT);
  await h.settle(() => h.spawner.spawned.length === 1, "Webots to be spawned");
  assert.equal(h.session.state, "starting");
  const webots = h.webots;
  assert.equal(webots.command, join(FAKE_HOME, "webots"));
  assert.ok(webots.args.includes(`--stream="port=${PORT};monitorActivity;controllerEdit"`));
  const marker = webots.options.env.WEBOTS_SERVER_RUN;
  assert.match(marker ?? "", /^[0-9a-f]{32}$/);
  assert.deepEqual(webots.options.env, {
    DISPLAY: ":9",
    WEBOTS_FIREJAIL_CONTROLLERS: "1",
    WEBOTS_SERVER_RUN: marker,
  });
  const [folder] = await h.folders();
  assert.equal(webots.options.cwd, join(h.config.instancesDir, folder!));
  const [record] = h.records.records.values();
  assert.deepEqual(record, {
    owner: record?.owner,
    instanceDir: webots.options.cwd,
    marker,
    pid: webots.pid,
    startTime: "4242",
    bootId: "boot",
  });
  assert.deepEqual(h.socket.sent, []);
  webots.print("open", "real-time", ".");
  await h.settle(() => h.socket.sent.length === 2, "webots: and one dot");
  assert.deepEqual(h.socket.sent, [`webots:ws://example.com:${PORT}`, "."]);
  assert.equal(h.session.state, "running");
  assert.equal(h.session.idle, false);
  assert.deepEqual(h.session.info().port, PORT);
  await h.session.close("browser left");
  await handled;
  await h.assertReleased();
});

Deno.test("every log line of a browser's run carries its client id, from the run's opening to its folder's removal", async () => {
  await using h = await harness();
  const { handled } = await running(h);
  await h.session.close("browser left");
  await handled;
  const messages = h.logger.lines.map((line) => line.message);
  for (const message of ["New client", "Webots started", "Webots ready", "Webots stopped"]) {
    assert.ok(messages.includes(message), `logged: ${message} (${messages.join(" | ")})`);
  }
  for (const line of h.logger.lines) assert.equal(line.fields.client, "c1", line.message);
  const stopped = h.logger.lines.find((line) => line.message === "Webots stopped")!;
  assert.equal(stopped.fields.pid, h.webots.pid);
  assert.equal(stopped.fields.port, PORT);
});

Deno.test("newer Webots that print '.' first are ready too", async () => {
  await using h = await harness();
  const handled = send(h, START);
  await h.settle(() => h.spawner.spawned.length === 1, "Webots to be spawned");
  h.webots.print(".");
  await h.settle(() => h.socket.sent.length === 1, "webots:");
  assert.deepEqual(h.socket.sent, [`webots:ws://example.com:${PORT}`]);
  await h.session.close("browser left");
  await handled;
});

Deno.test("Webots exiting by itself: error: Webots exited (code N), the socket closes, everything is released", async () => {
  await using h = await harness();
  const { handled } = await running(h);
  h.webots.exit(3);
  await h.settle(() => h.socket.closed !== undefined, "the socket to close");
  assert.equal(h.socket.sent.at(-1), "error: Webots exited (code 3)");
  assert.deepEqual(h.socket.closed, { code: 1000, reason: "Webots exited" });
  await handled;
  await h.session.close("browser left");
  await h.assertReleased();
  assert.deepEqual(h.webots.signals, []);
});

Deno.test("the browser leaving ends the run whatever the session's state", async (t) => {
  await t.step(
    "while preparing: the preparation is aborted and waited for, nothing is spawned",
    async () => {
      await using h = await harness();
      h.projects.holdUntilAborted = true;
      const handled = send(h, START);
      await h.settle(async () => (await h.folders()).length === 1, "the run's folder");
      assert.equal(h.session.state, "preparing");
      assert.equal(h.ports.inUse, 1);
      await h.session.close("browser left");
      await handled;
      assert.equal(h.spawner.spawned.length, 0);
      assert.deepEqual(h.socket.sent, []);
      await h.assertReleased();
    },
  );
  await t.step("while starting: TERM to the group, then everything released", async () => {
    await using h = await harness();
    const handled = send(h, START);
    await h.settle(() => h.spawner.spawned.length === 1, "Webots to be spawned");
    assert.equal(h.session.state, "starting");
    await h.session.close("browser left");
    await handled;
    assert.deepEqual(h.webots.signals, ["TERM"]);
    assert.deepEqual(h.socket.sent, []);
    await h.assertReleased();
  });
  await t.step("while running: TERM to the group, then everything released", async () => {
    await using h = await harness();
    const { handled } = await running(h);
    await h.session.close("browser left");
    await handled;
    assert.deepEqual(h.webots.signals, ["TERM"]);
    await h.assertReleased();
  });
});

Deno.test("a Webots that never gets ready is ended when startTimeout runs out on the clock", async () => {
  await using h = await harness({ startTimeout: 60 });
  const handled = send(h, START);
  await h.settle(() => h.spawner.spawned.length === 1, "Webots to be spawned");
  await h.clock.advance(59_999);
  assert.equal(h.session.state, "starting");
  assert.deepEqual(h.webots.signals, []);
  await h.clock.advance(1);
  await h.settle(() => h.session.state === "closed" && h.webots.exited, "the run to end");
  assert.deepEqual(h.socket.sent, ["error: Webots did not get ready within 60 s"]);
  assert.deepEqual(h.socket.closed, { code: 1011, reason: "simulation failed" });
  assert.deepEqual(h.webots.signals, ["TERM"]);
  await handled;
  await h.session.close("browser left");
  await h.assertReleased();
});

Deno.test("a Webots that ignores TERM gets KILL after killTimeout on the clock", async () => {
  await using h = await harness({ killTimeout: 5 });
  h.spawner.ignoreTerm = true;
  const { handled } = await running(h);
  const closing = h.session.close("browser left");
  await h.settle(() => h.webots.signals.length === 1, "TERM");
  await h.clock.advance(4_999);
  assert.deepEqual(h.webots.signals, ["TERM"]);
  assert.ok(!h.webots.exited);
  assert.equal(h.ports.inUse, 1);
  await h.clock.advance(1);
  await closing;
  await handled;
  assert.deepEqual(h.webots.signals, ["TERM", "KILL"]);
  assert.equal((await h.webots.status).signal, "SIGKILL");
  await h.assertReleased();
});

Deno.test("a second init on one connection is refused and the first simulation goes on", async () => {
  await using h = await harness();
  const { handled } = await running(h, INIT);
  await send(h, INIT);
  await send(h, START);
  assert.deepEqual(h.socket.sent, [
    `webots:ws://example.com:${PORT}`,
    "error: only one simulation can run per connection",
    "error: only one simulation can run per connection",
  ]);
  assert.equal(h.spawner.spawned.length, 1);
  assert.equal(h.ports.inUse, 1);
  assert.equal(h.socket.closed, undefined);
  assert.equal(h.session.state, "running");
  await h.session.close("browser left");
  await handled;
  await h.assertReleased();
});

Deno.test("reset controller: success is confirmed, a failure is an error: and the simulation goes on", async () => {
  await using h = await harness();
  const { handled } = await running(h, INIT);
  const reset = parseClientMessage(JSON.stringify({ "reset controller": "c/c.py" }));
  await h.session.handle(reset);
  assert.deepEqual(h.projects.resets, ["c/c.py"]);
  assert.equal(h.socket.sent.at(-1), "reset controller: c/c.py");
  h.projects.resetFailure = new ClientError('Cannot reset "c/c.py": no such controller file');
  await h.session.handle(reset);
  assert.equal(h.socket.sent.at(-1), 'error: Cannot reset "c/c.py": no such controller file');
  assert.equal(h.socket.closed, undefined);
  assert.equal(h.session.state, "running");
  assert.deepEqual(h.webots.signals, []);
  await h.session.close("browser left");
  await handled;
  await h.assertReleased();
});

Deno.test("a failed preparation is an error: and its half-filled folder is removed", async () => {
  await using h = await harness();
  h.projects.failure = new ClientError("w.wbt does not exist.");
  await send(h, START);
  assert.deepEqual(h.socket.sent, ["error: w.wbt does not exist."]);
  assert.deepEqual(h.socket.closed, { code: 1011, reason: "simulation failed" });
  assert.equal(h.spawner.spawned.length, 0);
  await h.assertReleased();
});

Deno.test("without Webots a browser gets a clear error: and nothing is left behind", async () => {
  const home = await Deno.makeTempDir({ prefix: "no-webots-" });
  try {
    await using h = await harness({ webotsHome: home });
    await send(h, START);
    assert.deepEqual(h.socket.sent, [
      `error: Webots is not installed on this server (no ${join(home, "webots")})`,
    ]);
    assert.deepEqual(h.socket.closed, { code: 1011, reason: "simulation failed" });
    assert.equal(h.spawner.spawned.length, 0);
    await h.assertReleased();
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("when every slot is taken a client gets an error: and holds nothing", async () => {
  await using h = await harness({ maxConnections: 1 });
  // Another session holds the only port.
  assert.equal(h.ports.acquire(), PORT);
  await send(h, START);
  assert.deepEqual(h.socket.sent, [
    "error: no simulation slot left on this server (1 in use)",
  ]);
  h.ports.release(PORT);
  await h.assertReleased();
});

// ---------------------------------------------------------------------------------------------
// Client generations: what each stock client gets (issue 8)

const GITHUB_START = parseClientMessage(JSON.stringify({
  start: { url: "https://github.com/cyberbotics/robots/blob/main/projects/demo/worlds/w.wbt" },
}));
const SOURCE = "cyberbotics/robots@main";
/** A 1000-byte archive arriving in chunks; the fake clock stands still, so pacing drops most. */
const DOWNLOAD: ProjectProgress[] = [
  { step: "downloading", source: SOURCE, received: 0, total: 1000 },
  { step: "downloading", source: SOURCE, received: 350, total: 1000 },
  { step: "downloading", source: SOURCE, received: 1000, total: 1000 },
  { step: "unpacking" },
];

/**
 * Starts a simulation, lets Webots print its first `.` (ready), a mode and an activity dot, and
 * waits for `count` messages; `handled` resolves when the session ends.
 */
async function startAndRun(
  h: Harness,
  message: typeof START,
  count: number,
): Promise<{ handled: Promise<void> }> {
  const handled = send(h, message);
  await h.settle(() => h.spawner.spawned.length === 1, "Webots to be spawned");
  h.webots.print(".", "real-time", ".");
  await h.settle(() => h.socket.sent.length >= count, `${count} messages`);
  return { handled };
}

Deno.test("an R2023b-style client (GitHub blob URL) sees loading: steps, shutdownTimeout:, then webots:", async () => {
  await using h = await harness({ timeout: 3600 });
  h.projects.progress = DOWNLOAD;
  const { handled } = await startAndRun(h, GITHUB_START, 7);
  // The order of the 2023 Cyberbotics server: shutdownTimeout: right after the spawn, webots:
  // once Webots is ready.
  assert.deepEqual(h.socket.sent, [
    `loading: downloading ${SOURCE} (0%)`,
    `loading: downloading ${SOURCE} (100%)`,
    "loading: unpacking",
    "loading: starting Webots R2021b",
    "shutdownTimeout: 3600",
    `webots:ws://example.com:${PORT}`,
    ".",
  ]);
  assert.deepEqual(h.projects.progressGiven, [true]);
  await h.session.close("browser left");
  await handled;
  await h.assertReleased();
});

Deno.test("an R2021b-style client sees exactly webots: and . whatever the config, for init and file://", async (t) => {
  for (const [name, message] of [["init", INIT], ["file://", START]] as const) {
    await t.step(name, async () => {
      await using h = await harness({ timeout: 3600 });
      h.projects.progress = [{ step: "copying" }];
      const { handled } = await startAndRun(h, message, 2);
      await h.clock.advance(1000);
      assert.deepEqual(h.socket.sent, [`webots:ws://example.com:${PORT}`, "."]);
      assert.deepEqual(h.projects.progressGiven, [false]);
      await h.session.close("browser left");
      await handled;
      await h.assertReleased();
    });
  }
});

Deno.test("clientProtocol overrides the rule both ways", async (t) => {
  await t.step("r2021b: a GitHub blob client gets only webots: and .", async () => {
    await using h = await harness({ clientProtocol: "r2021b", timeout: 60 });
    h.projects.progress = DOWNLOAD;
    const { handled } = await startAndRun(h, GITHUB_START, 2);
    assert.deepEqual(h.socket.sent, [`webots:ws://example.com:${PORT}`, "."]);
    await h.session.close("browser left");
    await handled;
    await h.assertReleased();
  });
  await t.step("r2023: a file:// client gets loading: and shutdownTimeout:", async () => {
    await using h = await harness({ clientProtocol: "r2023", timeout: 60 });
    h.projects.progress = [{ step: "copying" }];
    const { handled } = await startAndRun(h, START, 5);
    assert.deepEqual(h.socket.sent, [
      "loading: copying project",
      "loading: starting Webots R2021b",
      "shutdownTimeout: 60",
      `webots:ws://example.com:${PORT}`,
      ".",
    ]);
    await h.session.close("browser left");
    await handled;
    await h.assertReleased();
  });
});

Deno.test("timeout ends the simulation at the limit on the clock and releases everything", async (t) => {
  await t.step("a current client gets error: time limit of N s reached", async () => {
    await using h = await harness({ timeout: 5 });
    const { handled } = await startAndRun(h, GITHUB_START, 4);
    await h.clock.advance(4_999);
    assert.equal(h.session.state, "running");
    assert.deepEqual(h.webots.signals, []);
    assert.equal(h.socket.closed, undefined);
    await h.clock.advance(1);
    await h.settle(() => h.session.state === "closed" && h.webots.exited, "the run to end");
    assert.deepEqual(h.socket.sent.slice(-3), [
      `webots:ws://example.com:${PORT}`,
      ".",
      "error: time limit of 5 s reached",
    ]);
    assert.deepEqual(h.socket.closed, { code: 1000, reason: "time limit reached" });
    assert.deepEqual(h.webots.signals, ["TERM"]);
    await handled;
    await h.session.close("browser left");
    await h.assertReleased();
  });
  await t.step(
    "an R2021b client sees the socket close, without a line it does not know",
    async () => {
      await using h = await harness({ timeout: 5 });
      const { handled } = await startAndRun(h, START, 2);
      await h.clock.advance(5_000);
      await h.settle(() => h.session.state === "closed" && h.webots.exited, "the run to end");
      assert.deepEqual(h.socket.sent, [`webots:ws://example.com:${PORT}`, "."]);
      assert.deepEqual(h.socket.closed, { code: 1000, reason: "time limit reached" });
      await handled;
      await h.assertReleased();
    },
  );
  await t.step("the limit runs from the spawn, also while Webots is not ready yet", async () => {
    await using h = await harness({ timeout: 5, startTimeout: 60 });
    const handled = send(h, GITHUB_START);
    await h.settle(() => h.spawner.spawned.length === 1, "Webots to be spawned");
    await h.clock.advance(5_000);
    await h.settle(() => h.session.state === "closed" && h.webots.exited, "the run to end");
    assert.deepEqual(h.socket.sent, [
      "loading: starting Webots R2021b",
      "shutdownTimeout: 5",
      "error: time limit of 5 s reached",
    ]);
    await handled;
    await h.assertReleased();
  });
  await t.step("a browser leaving first cancels the limit's timer", async () => {
    await using h = await harness({ timeout: 5 });
    const { handled } = await startAndRun(h, GITHUB_START, 4);
    // The start timeout's timer (cleared when Webots' output ends) and the limit's.
    assert.equal(h.clock.pendingCount, 2);
    await h.session.close("browser left");
    await handled;
    // assertReleased also checks that no timer is left on the clock.
    await h.assertReleased();
    assert.ok(!h.socket.sent.some((m) => m.startsWith("error:")));
  });
});

Deno.test("R2022b–R2025a: Webots started with --port/--heartbeat/--stream, ready on the first '.', not on 'open'", async () => {
  await using h = await harness({}, "R2025a");
  const handled = send(h, START);
  await h.settle(() => h.spawner.spawned.length === 1, "Webots to be spawned");
  const webots = h.webots;
  assert.deepEqual(webots.args.slice(2), [
    "--minimize",
    "--no-rendering",
    `--port=${PORT}`,
    "--heartbeat=5000",
    "--stream",
    webots.args.at(-1),
  ]);
  webots.print("open");
  // An "open" line means nothing to this dialect: the session keeps waiting for the heartbeat.
  await flush(5);
  assert.equal(h.session.state, "starting");
  assert.deepEqual(h.socket.sent, []);
  webots.print(".", ".");
  await h.settle(() => h.socket.sent.length === 2, "webots: then one dot");
  assert.deepEqual(h.socket.sent, [`webots:ws://example.com:${PORT}`, "."]);
  assert.equal(h.session.info().release, "R2025a");
  await h.session.close("browser left");
  await handled;
  await h.assertReleased();
});

Deno.test("R2019b–R2022a: ready on 'open' (the stream-options dialect)", async (t) => {
  for (const release of ["R2019b", "R2022a"]) {
    await t.step(release, async () => {
      await using h = await harness({}, release);
      const { handled } = await running(h);
      assert.ok(h.webots.args.includes(`--stream="port=${PORT};monitorActivity"`));
      assert.deepEqual(h.socket.sent, [`webots:ws://example.com:${PORT}`]);
      assert.equal(h.session.info().release, release);
      await h.session.close("browser left");
      await handled;
      await h.assertReleased();
    });
  }
});

/** A lease granted and taken on `ports`, as `/lease/<token>/client` does. */
function leasedSlot(ports: PortPool, clock: FakeClock): HeldSlot {
  const leases = createLeases({ ports, clock, timeoutSeconds: 30, logger: silentLogger });
  const granted = leases.request();
  if (granted.kind !== "granted") throw new Error("no lease");
  return leases.take(granted.token)!;
}

Deno.test("a leased session starts Webots on the port its lease held, and frees it at the end", async () => {
  // Two slots: a port acquired anew would be PORT + 1 once the lease holds PORT.
  await using h = await harness({}, "R2021b", leasedSlot);
  assert.ok(h.session.leased);
  assert.equal(h.ports.inUse, 1, "the slot is held before any message");
  const handled = send(h, START);
  await h.settle(() => h.spawner.spawned.length === 1, "Webots to be spawned");
  assert.equal(h.ports.inUse, 1);
  h.webots.print("open");
  await h.settle(() => h.socket.sent.length === 1, "webots:");
  assert.deepEqual(h.socket.sent, [`webots:ws://example.com:${PORT}`]);
  await h.session.close("browser left");
  await handled;
  await h.assertReleased();
});

Deno.test("a leased session that ends before any start gives its slot back", async () => {
  await using h = await harness({}, "R2021b", leasedSlot);
  assert.equal(h.ports.inUse, 1);
  await h.session.close("browser left");
  await h.assertReleased();
});
