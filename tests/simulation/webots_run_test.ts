/**
 * The Webots run module and the start-up reaping, with the real spawner, the real command runner
 * and real processes (the stand-in Webots, sh, sleep).
 */
import { exists, isAlive } from "../helpers/simulation_fixture.ts";
import { silentLogger } from "../fakes/logger.ts";
import assert from "node:assert/strict";
import { basename, join, resolve } from "node:path";
import { systemClock } from "../../shared/clock.ts";
import { validateConfig } from "../../shared/config.ts";
import { ClientError } from "../../simulation/client_error.ts";
import { createCommandRunner } from "../../simulation/command_runner.ts";
import { type SimulationConfig, simulationSchema } from "../../simulation/config.ts";
import { canBindPort, createPortPool, type PortPool } from "../../simulation/ports.ts";
import { createSpawner, type Spawner } from "../../simulation/process.ts";
import {
  createRunRecords,
  parseRecord,
  RECORDS_FOLDER,
  type RunRecords,
  type ServerIdentity,
} from "../../simulation/run_records.ts";
import { createRunProcesses, type RunProcesses } from "../../simulation/run_processes.ts";
import { webotsArgs } from "../../simulation/webots.ts";
import { createWebotsRuns, type WebotsProcess } from "../../simulation/webots_run.ts";
import { installation, singleInstallation } from "../../simulation/webots_installations.ts";

const ROOT = resolve(import.meta.dirname ?? ".", "..", "..");
const FAKE_HOME = join(ROOT, "tests", "fakes", "webots");
const FIREJAIL = "/usr/bin/firejail";

const runCommand = createCommandRunner();

/** The real scanner, for this test process as the server. */
function realProcesses(): RunProcesses {
  return createRunProcesses({
    runCommand,
    psBinary: "/usr/bin/ps",
    grepBinary: "/usr/bin/grep",
    catBinary: "/usr/bin/cat",
    killBinary: "/usr/bin/kill",
    uid: Deno.uid() ?? 0,
    selfPid: Deno.pid,
    clock: systemClock,
    logger: silentLogger,
  });
}

/** What a stand-in Webots recorded about itself. */
interface FakeRecord {
  pid: number;
  args: string[];
  env: Record<string, string | undefined>;
  childPids: number[];
  escapedPids: number[];
}

/** A temp folder with an instancesDir, a record folder for the stand-in, and helpers. */
async function workspace() {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "webots-run-test-" }));
  const instancesDir = join(dir, "instances");
  const fakeRecords = join(dir, "fake-records");
  await Deno.mkdir(instancesDir);
  await Deno.mkdir(fakeRecords);
  const pids: number[] = [];
  return {
    dir,
    instancesDir,
    /** Pids to SIGKILL at the end should a test fail half-way. */
    pids,
    config(raw: Record<string, unknown> = {}): SimulationConfig {
      return validateConfig(
        simulationSchema,
        { webotsHome: FAKE_HOME, instancesDir, keyDir: join(dir, "keys"), ...raw },
        "test",
        { root: ROOT, vars: {}, tmpDir: dir },
      );
    },
    records(owner: ServerIdentity): RunRecords {
      return createRunRecords({
        instancesDir,
        owner,
        runCommand,
        catBinary: "/usr/bin/cat",
        killBinary: "/usr/bin/kill",
        processes: realProcesses(),
        clock: systemClock,
        logger: silentLogger,
      });
    },
    /** The real spawner; the stand-in also gets the record folder. */
    spawner(): Spawner {
      const real = createSpawner({
        killBinary: "/usr/bin/kill",
        runCommand,
        clock: systemClock,
        logger: silentLogger,
      });
      return {
        spawn: (command, args, options) =>
          real.spawn(command, args, {
            ...options,
            env: { ...options.env, FAKE_WEBOTS_RECORD_DIR: fakeRecords },
          }),
      };
    },
    async fakeRecord(pid: number): Promise<FakeRecord> {
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        try {
          return JSON.parse(await Deno.readTextFile(join(fakeRecords, `${pid}.json`)));
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      throw new Error(`the stand-in ${pid} wrote no record`);
    },
    async runRecords(): Promise<string[]> {
      try {
        return (await Array.fromAsync(Deno.readDir(join(instancesDir, RECORDS_FOLDER))))
          .map((e) => e.name).sort();
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return [];
        throw error;
      }
    },
    async [Symbol.asyncDispose]() {
      for (const pid of pids) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // Already gone, as it should be.
        }
      }
      await Deno.remove(dir, { recursive: true });
    },
  };
}

type Workspace = Awaited<ReturnType<typeof workspace>>;

function runs(
  ws: Workspace,
  options: { config?: SimulationConfig; owner?: ServerIdentity; ports?: PortPool } = {},
) {
  const config = options.config ?? ws.config();
  const owner = options.owner ?? { port: 3000, config: join(ws.dir, "a.json") };
  const ports = options.ports ?? freePorts(1);
  return {
    ports,
    runs: createWebotsRuns({
      config,
      installations: singleInstallation("R2021b", config.webotsHome),
      owner,
      ssl: false,
      display: undefined,
      ports,
      spawner: ws.spawner(),
      processes: realProcesses(),
      records: ws.records(owner),
      clock: systemClock,
      logger: silentLogger,
    }),
  };
}

/** A pool of `count` ports that were free a moment ago. */
function freePorts(count: number): PortPool {
  const listeners = Array.from({ length: count }, () => Deno.listen({ port: 0 }));
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  const pool = createPortPool(
    Math.min(...ports),
    Math.max(...ports),
    (port) => ports.includes(port) && canBindPort(port),
  );
  return pool;
}

async function writeWorld(dir: string, directives: string[]): Promise<string> {
  const worldFile = join(dir, "p", "worlds", "w.wbt");
  await Deno.mkdir(join(dir, "p", "worlds"), { recursive: true });
  await Deno.writeTextFile(worldFile, directives.map((d) => `#fake ${d}\n`).join(""));
  return worldFile;
}

async function readUntil(webots: WebotsProcess, line: string): Promise<string[]> {
  const lines: string[] = [];
  for await (const next of webots.lines) {
    lines.push(next);
    if (next === line) return lines;
  }
  throw new Error(`output ended before ${line}: ${lines.join("|")}`);
}

async function readRecord(ws: Workspace, id: string) {
  return parseRecord(
    await Deno.readTextFile(join(ws.instancesDir, RECORDS_FOLDER, `${id}.json`)),
  );
}

Deno.test("a run holds a port, a folder and a record, runs Webots, and stop() releases all of them", async (t) => {
  await using ws = await workspace();
  const owner = { port: 3000, config: join(ws.dir, "a.json") };
  const { runs: factory, ports } = runs(ws, { owner });
  const run = await factory.open();
  await t.step("open: an empty folder in instancesDir and a record naming the owner", async () => {
    assert.equal(run.dir, join(ws.instancesDir, run.id));
    assert.deepEqual(await Array.fromAsync(Deno.readDir(run.dir)), []);
    assert.equal(ports.inUse, 1);
    const record = await readRecord(ws, run.id);
    assert.match(record?.marker ?? "", /^[0-9a-f]{32}$/);
    assert.deepEqual(record, { owner, instanceDir: run.dir, marker: record?.marker });
  });
  const worldFile = await writeWorld(run.dir, ["print-args", "children 1"]);
  const webots = await run.start({ worldFile, mode: "x3d", controllerEdit: false });
  ws.pids.push(webots.pid);
  const fake = await ws.fakeRecord(webots.pid);
  ws.pids.push(...fake.childPids);
  await t.step("start: the reference argv and env, and the pid in the record", async () => {
    const lines = await readUntil(webots, "open");
    assert.deepEqual(
      JSON.parse(lines[0]!),
      webotsArgs(ws.config(), {
        instanceDir: run.dir,
        worldFile,
        port: run.port,
        mode: "x3d",
        controllerEdit: false,
        installation: installation("R2021b", ws.config().webotsHome),
      }, false),
    );
    const record = await readRecord(ws, run.id);
    assert.match(record?.marker ?? "", /^[0-9a-f]{32}$/);
    assert.deepEqual(fake.env, {
      DISPLAY: ":0",
      WEBOTS_FIREJAIL_CONTROLLERS: "1",
      WEBOTS_SERVER_RUN: record?.marker,
    });
    assert.equal(record?.pid, webots.pid);
    assert.match(record?.startTime ?? "", /^\d+$/);
    assert.match(record?.bootId ?? "", /^[0-9a-f-]{36}$/);
  });
  await t.step("stop: process group ended, folder and record removed, port released", async () => {
    const [first, second] = await Promise.all([run.stop(), run.stop()]);
    assert.equal(first, second);
    assert.equal(first?.code, 0);
    for (const pid of [webots.pid, ...fake.childPids]) assert.ok(!isAlive(pid), `${pid} lives`);
    assert.ok(!await exists(run.dir));
    assert.deepEqual(await ws.runRecords(), []);
    assert.equal(ports.inUse, 0);
    await assert.rejects(run.start({ worldFile, mode: undefined, controllerEdit: false }));
  });
});

Deno.test("a run stopped before Webots started removes its folder and record and frees the port", async () => {
  await using ws = await workspace();
  const { runs: factory, ports } = runs(ws);
  const run = await factory.open();
  await writeWorld(run.dir, []);
  assert.equal(await run.stop(), undefined);
  assert.ok(!await exists(run.dir));
  assert.deepEqual(await ws.runRecords(), []);
  assert.equal(ports.inUse, 0);
});

Deno.test("without Webots, or without a free port, open() fails with a ClientError and holds nothing", async () => {
  await using ws = await workspace();
  const home = join(ws.dir, "no-webots");
  const missing = runs(ws, { config: ws.config({ webotsHome: home }) });
  await assert.rejects(
    missing.runs.open(),
    (e) =>
      e instanceof ClientError &&
      e.message === `Webots is not installed on this server (no ${home}/webots)`,
  );
  assert.equal(missing.ports.inUse, 0);
  const full = runs(ws, { config: ws.config({ maxConnections: 1 }) });
  const held = await full.runs.open();
  await assert.rejects(
    full.runs.open(),
    (e) =>
      e instanceof ClientError &&
      e.message === "no simulation slot left on this server (1 in use)",
  );
  await held.stop();
  assert.deepEqual(await ws.runRecords(), []);
  const left = await Array.fromAsync(Deno.readDir(ws.instancesDir));
  assert.deepEqual(left.map((e) => e.name), [RECORDS_FOLDER]);
});

Deno.test("stop() ends escaped children that obey SIGTERM at once, and KILLs those that ignore it after killTimeout", async (t) => {
  await using ws = await workspace();
  for (
    const [directives, ignore] of [[["escaped-children 2"], false], [[
      "escaped-children 2",
      "escaped-ignore-term",
    ], true]] as const
  ) {
    await t.step(ignore ? "ignoring SIGTERM" : "obeying SIGTERM", async () => {
      const { runs: factory } = runs(ws, { config: ws.config({ killTimeout: 1 }) });
      const run = await factory.open();
      const webots = await run.start({
        worldFile: await writeWorld(run.dir, [...directives]),
        mode: undefined,
        controllerEdit: false,
      });
      const fake = await ws.fakeRecord(webots.pid);
      ws.pids.push(webots.pid, ...fake.escapedPids);
      await readUntil(webots, "open");
      for (const pid of fake.escapedPids) assert.ok(isAlive(pid), `${pid} runs`);
      const started = performance.now();
      const status = await run.stop();
      const ms = performance.now() - started;
      console.log(
        `stop() with 2 escaped children ${ignore ? "ignoring" : "obeying"} TERM: ${
          ms.toFixed(0)
        } ms`,
      );
      // Webots obeys TERM; its escaped children are what the run waits for.
      assert.equal(status?.code, 0);
      for (const pid of fake.escapedPids) await untilDead(pid);
      assert.ok(ignore ? ms >= 1000 : ms < 1000, `stop took ${ms} ms`);
      assert.deepEqual(await ws.runRecords(), []);
    });
  }
});

Deno.test("reaping ends this server's leftover runs and never touches another server's", async (t) => {
  await using ws = await workspace();
  const a = { port: 3000, config: join(ws.dir, "a.json") };
  const b = { port: 3100, config: join(ws.dir, "b.json") };
  const sameConfigOtherPort = { port: 3200, config: a.config };
  const samePortOtherConfig = { port: 3000, config: join(ws.dir, "other.json") };
  const started = [];
  for (const owner of [a, b, sameConfigOtherPort, samePortOtherConfig]) {
    const { runs: factory } = runs(ws, { owner });
    const run = await factory.open();
    const webots = await run.start({
      worldFile: await writeWorld(run.dir, ["children 1"]),
      mode: undefined,
      controllerEdit: false,
    });
    const fake = await ws.fakeRecord(webots.pid);
    ws.pids.push(webots.pid, ...fake.childPids);
    await readUntil(webots, "open");
    started.push({ owner, run, pids: [webots.pid, ...fake.childPids] });
  }
  // A crash between folder creation and spawn leaves a record without a pid.
  const { runs: crashed } = runs(ws, { owner: a });
  const unstarted = await crashed.open();
  const foreignFolder = join(ws.instancesDir, "no-record");
  await Deno.mkdir(foreignFolder);

  // "Restart" of server A: a new records object for the same owner reaps.
  const report = await ws.records(a).reap(2000);
  const [ours, ...theirs] = started;
  await t.step(
    "A's Webots and its controller are ended, its folders and records removed",
    async () => {
      assert.deepEqual(report.killed, [ours!.pids[0]]);
      for (const pid of ours!.pids) await untilDead(pid);
      assert.deepEqual(report.removedFolders.sort(), [ours!.run.dir, unstarted.dir].sort());
    },
  );
  await t.step("every other owner's run lives on with its folder and record", async () => {
    for (const other of theirs) {
      for (const pid of other.pids) assert.ok(isAlive(pid), `${pid} was killed`);
      assert.ok(await exists(other.run.dir));
    }
    assert.deepEqual(await ws.runRecords(), theirs.map((o) => `${o.run.id}.json`).sort());
    assert.ok(await exists(foreignFolder));
  });
  for (const other of theirs) await other.run.stop();
  // A's run objects are those of a "dead" server; stopping them now finds nothing left.
  await ours!.run.stop();
  await unstarted.stop();
  assert.deepEqual(await ws.runRecords(), []);
});

Deno.test("reaping KILLs a recorded group whose leader died on TERM while a member ignores TERM", async () => {
  await using ws = await workspace();
  const owner = { port: 3000, config: join(ws.dir, "a.json") };
  const records = ws.records(owner);
  const folder = join(ws.instancesDir, "leftover");
  await Deno.mkdir(folder);
  // Not our child (setsid -f forks): like the Webots of a server that died.
  const script = `(trap "" TERM; exec sleep 3600) & echo $! > member; echo $$ > leader.tmp; ` +
    `mv leader.tmp leader; wait`;
  const out = await new Deno.Command("/usr/bin/setsid", {
    args: ["-f", "/usr/bin/sh", "-c", script],
    cwd: folder,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  assert.ok(out.success);
  const leader = Number(await waitForFile(join(folder, "leader")));
  const member = Number(await Deno.readTextFile(join(folder, "member")));
  ws.pids.push(leader, member);
  const identity = await records.identity(leader);
  assert.ok(identity);
  await records.write("left", { owner, instanceDir: folder, pid: leader, ...identity });

  const startedAt = performance.now();
  const report = await records.reap(10_000);
  const ms = performance.now() - startedAt;
  assert.deepEqual(report.killed, [leader]);
  // SIGKILL is delivered asynchronously: the member dies moments after `kill` returns.
  await untilDead(leader);
  await untilDead(member);
  // The leader went at once on TERM: no need to wait out the grace period before KILL.
  assert.ok(ms < 5000, `reaping took ${ms} ms`);
  assert.ok(!await exists(folder));
  assert.deepEqual(await ws.runRecords(), []);
});

Deno.test("reaping never signals a recycled pid, nor removes a folder outside instancesDir", async () => {
  await using ws = await workspace();
  const owner = { port: 3000, config: join(ws.dir, "a.json") };
  const records = ws.records(owner);
  const stranger = new Deno.Command("/usr/bin/sleep", {
    args: ["3600"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const identity = await records.identity(stranger.pid);
    assert.ok(identity);
    const recycled = join(ws.instancesDir, "recycled");
    await Deno.mkdir(recycled);
    // The recorded start time differs: the pid now belongs to another process.
    await records.write("recycled", {
      owner,
      instanceDir: recycled,
      pid: stranger.pid,
      startTime: String(Number(identity.startTime) - 1),
      bootId: identity.bootId,
    });
    const outside = join(ws.dir, "outside");
    await Deno.mkdir(outside);
    await records.write("outside", { owner, instanceDir: outside });
    const report = await records.reap(500);
    assert.deepEqual(report.killed, []);
    assert.deepEqual(report.gone, [stranger.pid]);
    assert.ok(isAlive(stranger.pid));
    assert.deepEqual(report.removedFolders, [recycled]);
    assert.ok(await exists(outside));
    assert.deepEqual(await ws.runRecords(), []);
    assert.equal(basename(recycled), "recycled");
  } finally {
    stranger.kill("SIGKILL");
    await stranger.status;
  }
});

/** Polls until `pid` is gone or a zombie; fails after 5 s. */
async function untilDead(pid: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`${pid} survived`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function waitForFile(path: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      return await Deno.readTextFile(path);
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  throw new Error(`${path} never appeared`);
}

Deno.test({
  name: "with sandbox firejail, Webots runs jailed and writes only its instance folder",
  ignore: !existsSync(FIREJAIL),
  async fn() {
    await using ws = await workspace();
    const { runs: factory } = runs(ws, {
      config: ws.config({ sandbox: "firejail", keyDir: join(ws.dir, "keys") }),
    });
    const run = await factory.open();
    const outsideDir = join(ws.dir, "outside");
    await Deno.mkdir(outsideDir);
    const outsideRoot = join(ROOT, `.firejail-probe-${Deno.pid}`);
    const inside = join(run.dir, "inside.txt");
    const inHome = join(FAKE_HOME, `.firejail-probe-${Deno.pid}`);
    const records = join(ws.instancesDir, RECORDS_FOLDER, "forged.json");
    const writes = [inside, join(outsideDir, "x.txt"), outsideRoot, inHome, records];
    const worldFile = await writeWorld(run.dir, [
      ...writes.map((p) => `try-write ${p}`),
      "children 1",
    ]);
    const webots = await run.start({ worldFile, mode: undefined, controllerEdit: false });
    try {
      // Inside the jail the stand-in cannot write its own record (its folder is out of reach).
      const lines = (await readUntil(webots, "open"))
        .filter((line) => !line.startsWith("fake webots: no record"));
      assert.deepEqual(lines.slice(0, 2), [
        `try-write ${inside} ok`,
        // The jail's /tmp is private: other folders of the real /tmp are not even there.
        `try-write ${join(outsideDir, "x.txt")} denied NotFound`,
      ]);
      // The project checkout is read-only, except when it lives under /tmp: then the write lands
      // in the jail's throw-away /tmp. Either way nothing reaches the real file system.
      assert.match(
        lines[2]!,
        ROOT.startsWith("/tmp/")
          ? new RegExp(`^try-write ${outsideRoot} (ok|denied)`)
          : new RegExp(`^try-write ${outsideRoot} denied`),
      );
      // The Webots installation is read-only, also when it is whitelisted under /tmp.
      assert.match(lines[3]!, new RegExp(`^try-write ${inHome} denied`));
      // The crash-recovery records live outside the instance folder: out of the jail's reach.
      assert.match(lines[4]!, new RegExp(`^try-write ${records} denied`));
      assert.equal(await Deno.readTextFile(inside), "written by the fake webots\n");
      assert.deepEqual(await Array.fromAsync(Deno.readDir(outsideDir)), []);
      assert.ok(!existsSync(outsideRoot));
      assert.ok(!existsSync(inHome));
      assert.ok(!existsSync(records));
    } finally {
      const started = performance.now();
      const status = await run.stop();
      console.log(`stop() of jailed Webots: ${(performance.now() - started).toFixed(0)} ms`);
      // firejail passes SIGTERM on to the jail and exits with 128 + 15.
      assert.equal(status?.code, 143);
      // Nothing of the process group (firejail, the stand-in, its child) is left.
      assert.throws(() => Deno.kill(-webots.pid, "SIGCONT"), Deno.errors.NotFound);
    }
  },
});

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("a record keeps its marker only when it has a marker's shape (it goes on grep's command line)", () => {
  const base = { owner: { port: 1, config: "/c.json" }, instanceDir: "/i/x" };
  const marker = "00112233445566778899aabbccddeeff";
  assert.deepEqual(parseRecord(JSON.stringify({ ...base, marker })), { ...base, marker });
  for (const bad of [`${marker}\n`, "-e x", marker.toUpperCase(), 42, null]) {
    assert.deepEqual(parseRecord(JSON.stringify({ ...base, marker: bad })), base);
  }
});

Deno.test("a run opened with a leased port takes that port over: stop() frees it, and so does a failed open", async () => {
  await using ws = await workspace();
  const { runs: factory, ports } = runs(ws);
  const leased = ports.acquire();
  assert.ok(leased !== undefined);
  const run = await factory.open(silentLogger, leased);
  assert.equal(run.port, leased);
  assert.equal(ports.inUse, 1, "the leased port is not acquired a second time");
  await run.stop();
  assert.equal(ports.inUse, 0);
  const missing = runs(ws, { config: ws.config({ webotsHome: join(ws.dir, "no-webots") }) });
  const held = missing.ports.acquire();
  await assert.rejects(missing.runs.open(silentLogger, held), ClientError);
  assert.equal(missing.ports.inUse, 0, "the held port went back to the pool");
});
