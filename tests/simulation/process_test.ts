import assert from "node:assert/strict";
import { eventually, isAlive } from "../helpers/simulation_fixture.ts";
import { silentLogger } from "../fakes/logger.ts";
import { join, resolve } from "node:path";
import { validateConfig } from "../../shared/config.ts";
import { simulationSchema } from "../../simulation/config.ts";
import { simulationPermissions } from "../../simulation/permissions.ts";
import { systemClock } from "../../shared/clock.ts";
import { createCommandRunner } from "../../simulation/command_runner.ts";
import {
  type ChildProcessHandle,
  createSpawner,
  stopProcessGroup,
} from "../../simulation/process.ts";

const ROOT = resolve(import.meta.dirname ?? ".", "..", "..");
const FAKE_HOME = join(ROOT, "tests", "fakes", "webots");
const FAKE_WEBOTS = join(FAKE_HOME, "webots");

interface Record {
  pid: number;
  args: string[];
  env: { [key: string]: string | undefined };
  childPids: number[];
  escapedPids: number[];
}

/** A run marker for the permission probe. */
const MARKER = "00112233445566778899aabbccddeeff";

/** A temp folder with a world file holding `directives`, and a record folder. */
async function world(directives: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "process-test-" });
  const worldFile = join(dir, "test.wbt");
  await Deno.writeTextFile(worldFile, directives.map((d) => `#fake ${d}\n`).join(""));
  await Deno.mkdir(join(dir, "records"));
  return {
    dir,
    worldFile,
    env: { FAKE_WEBOTS_RECORD_DIR: join(dir, "records") },
    async records(): Promise<Record[]> {
      const out: Record[] = [];
      for await (const e of Deno.readDir(join(dir, "records"))) {
        out.push(JSON.parse(await Deno.readTextFile(join(dir, "records", e.name))));
      }
      return out;
    },
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function streamArg(port: number): string {
  return `--stream="port=${port};monitorActivity"`;
}

/** True while `pid` exists and is not a zombie. */
/** Reads lines until one satisfies `match`; returns the lines read. */
async function readUntil(
  iterator: AsyncIterator<string>,
  match: (line: string) => boolean,
): Promise<string[]> {
  const seen: string[] = [];
  while (true) {
    const next = await iterator.next();
    if (next.done) throw new Error(`output ended before the expected line: ${seen.join("|")}`);
    seen.push(next.value);
    if (match(next.value)) return seen;
  }
}

async function drain(handle: ChildProcessHandle): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of handle.lines) lines.push(line);
  return lines;
}

/** Waits for the ready line `open`; then keeps reading; resolves with every line at EOF. */
async function whenOpen(handle: ChildProcessHandle): Promise<{ rest: Promise<string[]> }> {
  const iterator = handle.lines[Symbol.asyncIterator]();
  const seen = await readUntil(iterator, (line) => line === "open");
  const rest = (async () => {
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      seen.push(next.value);
    }
    return seen;
  })();
  return { rest };
}

const spawner = createSpawner({
  killBinary: "/usr/bin/kill",
  runCommand: createCommandRunner(),
  clock: systemClock,
  logger: silentLogger,
});
const stop = (handle: ChildProcessHandle, graceMs: number) =>
  stopProcessGroup(handle, graceMs, systemClock, silentLogger);

Deno.test("lines carry open, mode lines and activity dots from stdout and stderr", async () => {
  await using w = await world([
    "modes real-time,pause",
    "activity-every 50",
    "stderr to-stderr",
  ]);
  const handle = spawner.spawn(FAKE_WEBOTS, [streamArg(freePort()), w.worldFile], {
    env: w.env,
    cwd: w.dir,
  });
  try {
    const iterator = handle.lines[Symbol.asyncIterator]();
    const seen: string[] = [];
    // stdout and stderr are separate pipes: the stderr line may come anywhere.
    while (!(seen.includes(".") && seen.includes("to-stderr"))) {
      seen.push(...await readUntil(iterator, (line) => line === "." || line === "to-stderr"));
    }
    assert.deepEqual(seen.filter((l) => l !== "to-stderr"), ["open", "real-time", "pause", "."]);
  } finally {
    await stop(handle, 5000);
  }
});

Deno.test("status resolves with the exit code when the process crashes", async () => {
  await using w = await world(["crash-after 200"]);
  const handle = spawner.spawn(FAKE_WEBOTS, [streamArg(freePort()), w.worldFile], {
    env: w.env,
    cwd: w.dir,
  });
  const [status, lines] = await Promise.all([handle.status, drain(handle)]);
  assert.equal(status.code, 1);
  assert.equal(status.success, false);
  assert.deepEqual(lines, ["open", "fake webots: crashing"]);
  // Stopping an exited process is fine and gives the same status.
  assert.equal(await stop(handle, 1000), status);
});

Deno.test("stop() ends a process that honours SIGTERM well within the grace period", async () => {
  await using w = await world(["activity-every 50"]);
  const handle = spawner.spawn(FAKE_WEBOTS, [streamArg(freePort()), w.worldFile], {
    env: w.env,
    cwd: w.dir,
  });
  const { rest } = await whenOpen(handle);
  const started = performance.now();
  const status = await stop(handle, 5000);
  const ms = performance.now() - started;
  console.log(`stop() with SIGTERM honoured: ${ms.toFixed(0)} ms`);
  assert.equal(status.code, 0);
  assert.ok(ms < 2500, `stop took ${ms} ms`);
  assert.equal((await rest)[0], "open");
});

Deno.test("stop() escalates to SIGKILL after graceMs when SIGTERM is ignored", async () => {
  await using w = await world(["ignore-sigterm", "activity-every 50"]);
  const handle = spawner.spawn(FAKE_WEBOTS, [streamArg(freePort()), w.worldFile], {
    env: w.env,
    cwd: w.dir,
  });
  const { rest } = await whenOpen(handle);
  const started = performance.now();
  const status = await stop(handle, 400);
  const ms = performance.now() - started;
  console.log(`stop(400) with SIGTERM ignored: ${ms.toFixed(0)} ms`);
  assert.equal(status.signal, "SIGKILL");
  assert.ok(ms >= 400, `stop took only ${ms} ms`);
  assert.ok(ms < 3000, `stop took ${ms} ms`);
  assert.ok((await rest).includes("ignoring SIGTERM"));
});

Deno.test("no grandchild survives stop(), even when the leader ignores SIGTERM", async () => {
  for (const directives of [["children 2"], ["children 2", "ignore-sigterm"]]) {
    await using w = await world(directives);
    const handle = spawner.spawn(FAKE_WEBOTS, [streamArg(freePort()), w.worldFile], {
      env: w.env,
      cwd: w.dir,
    });
    const { rest } = await whenOpen(handle);
    const record = await waitForRecord(w);
    assert.equal(record.childPids.length, 2);
    for (const pid of record.childPids) assert.ok(isAlive(pid));
    await stop(handle, 300);
    await rest;
    await allEnd([record.pid, ...record.childPids]);
  }
});

Deno.test("grandchildren are killed when the leader exits by itself", async () => {
  await using w = await world(["children 2", "crash-after 300"]);
  const handle = spawner.spawn(FAKE_WEBOTS, [streamArg(freePort()), w.worldFile], {
    env: w.env,
    cwd: w.dir,
  });
  const [status] = await Promise.all([handle.status, drain(handle)]);
  assert.equal(status.code, 1);
  const [record] = await w.records();
  assert.ok(record);
  assert.equal(record.childPids.length, 2);
  await allEnd(record.childPids);
});

Deno.test("output nobody reads does not stall the process", async () => {
  await using w = await world(["flood 3000", "exit-after 500"]);
  const handle = spawner.spawn(FAKE_WEBOTS, [streamArg(freePort()), w.worldFile], {
    env: w.env,
    cwd: w.dir,
  });
  // ~330 kB, five times a pipe's capacity, with nobody reading `lines`: the stand-in would block
  // in its write and never reach exit-after if the pipes were not drained.
  const status = await handle.status;
  assert.equal(status.code, 0);
  const lines = await drain(handle);
  assert.equal(lines[0], "open");
  assert.equal(lines.filter((line) => line.startsWith("flood ")).length, 3000);
});

Deno.test("spawning a missing binary throws an error naming it", () => {
  assert.throws(
    () => spawner.spawn("/nonexistent/webots", [], { env: {}, cwd: "/" }),
    { message: "Cannot start /nonexistent/webots: no such file" },
  );
});

Deno.test("the server's permissions allow the stand-in Webots, kill and the run scans, not a shell", async () => {
  await using w = await world(["children 1", "escaped-children 1"]);
  const config = validateConfig(
    simulationSchema,
    {
      webotsHome: FAKE_HOME,
      instancesDir: join(w.dir, "instances"),
      logDir: join(w.dir, "log"),
    },
    "test",
    { root: ROOT, vars: {}, tmpDir: w.dir },
  );
  const flags = simulationPermissions(config, { root: ROOT, configFile: join(w.dir, "c.json") });
  const probe = join(w.dir, "probe.ts");
  await Deno.writeTextFile(
    probe,
    `
import { createSpawner, stopProcessGroup } from ${
      JSON.stringify(join(ROOT, "simulation", "process.ts"))
    };
import { createCommandRunner } from ${
      JSON.stringify(join(ROOT, "simulation", "command_runner.ts"))
    };
import { createRunProcesses } from ${JSON.stringify(join(ROOT, "simulation", "run_processes.ts"))};
import { systemClock } from ${JSON.stringify(join(ROOT, "shared", "clock.ts"))};
const results: Record<string, string> = {};
for (const program of ["/bin/sh", "/usr/bin/env", "sh"]) {
  try {
    await new Deno.Command(program, { args: ["-c", "true"] }).output();
    results[program] = "ran";
  } catch (error) {
    results[program] = error instanceof Error ? error.name : String(error);
  }
}
const silentLogger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silentLogger, close: async () => {} };
const handle = createSpawner({
  killBinary: "/usr/bin/kill",
  runCommand: createCommandRunner(),
  clock: systemClock,
  logger: silentLogger,
}).spawn(
  ${JSON.stringify(FAKE_WEBOTS)},
  [${JSON.stringify(streamArg(freePort()))}, ${JSON.stringify(w.worldFile)}],
  { env: { ...${JSON.stringify(w.env)}, WEBOTS_SERVER_RUN: ${JSON.stringify(MARKER)} }, cwd: ${
      JSON.stringify(w.dir)
    } },
);
const it = handle.lines[Symbol.asyncIterator]();
results.first = String((await it.next()).value);
// The scans run with exactly the server's permissions: ps, cat, grep, kill, and the uid.
const processes = createRunProcesses({
  runCommand: createCommandRunner(),
  psBinary: "/usr/bin/ps",
  grepBinary: "/usr/bin/grep",
  catBinary: "/usr/bin/cat",
  killBinary: "/usr/bin/kill",
  uid: Deno.uid() ?? 0,
  selfPid: Deno.pid,
  clock: systemClock,
  logger: silentLogger,
});
results.scanned = String((await processes.scan(${JSON.stringify(MARKER)})).length);
const ended = await processes.end(${JSON.stringify(MARKER)}, 5000, {
  pgid: handle.pid,
  signal: (s) => handle.signalGroup(s),
  exited: handle.status,
});
const status = await stopProcessGroup(handle, 5000, systemClock, silentLogger);
results.stop = status.signal ?? String(status.code);
results.termed = String(ended.termed.length);
results.left = String((await processes.scan(${JSON.stringify(MARKER)})).length);
console.log(JSON.stringify(results));
`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", `--config=${join(ROOT, "deno.json")}`, "-P=simulation", ...flags, probe],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  try {
    assert.equal(out.code, 0, stderr);
    const results = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
    assert.deepEqual(results, {
      "/bin/sh": "NotCapable",
      "/usr/bin/env": "NotCapable",
      sh: "NotCapable",
      first: "open",
      // The stand-in, its child and its escaped child; the escaped one needs its own TERM.
      scanned: "3",
      termed: "1",
      left: "0",
      stop: "0",
    });
    const [record] = await w.records();
    assert.ok(record);
    await allEnd([record.pid, ...record.childPids, ...record.escapedPids]);
  } finally {
    // Should the test fail, nothing of it may stay behind.
    for (const record of await w.records()) {
      for (const pid of [record.pid, ...record.childPids, ...record.escapedPids]) {
        if (isAlive(pid)) Deno.kill(pid, "SIGKILL");
      }
    }
  }
});

/** Waits until the stand-in has written its record (it does so before listening). */
async function waitForRecord(w: Awaited<ReturnType<typeof world>>): Promise<Record> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const [record] = await w.records();
    if (record) return record;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error("the stand-in wrote no record");
}

/**
 * Every pid ends promptly. SIGKILL has been sent to the group when `status` or `stop()` resolves;
 * the kernel ends its members a moment later (asynchronously, maybe on the other core), so they
 * must be gone within a short bound, not necessarily at the instant the promise resolves.
 */
async function allEnd(pids: readonly number[]): Promise<void> {
  for (const pid of pids) await eventually(() => !isAlive(pid), 2_000, `${pid} to end`);
}
