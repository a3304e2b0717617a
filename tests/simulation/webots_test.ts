import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import type { Logger } from "../../shared/log.ts";
import { validateConfig } from "../../shared/config.ts";
import { type SimulationConfig, simulationSchema } from "../../simulation/config.ts";
import { type ChildProcessHandle, createSpawner } from "../../simulation/process.ts";
import {
  createWebotsRegistry,
  firejailArgs,
  launchWebots,
  webotsArgs,
  webotsCommand,
  webotsEnv,
  type WebotsLaunch,
} from "../../simulation/webots.ts";

const ROOT = resolve(import.meta.dirname ?? ".", "..", "..");
const FAKE_HOME = join(ROOT, "tests", "fakes", "webots");
const FIREJAIL = "/usr/bin/firejail";

const silent: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silent,
  close: () => Promise.resolve(),
};

function config(raw: Record<string, unknown> = {}): SimulationConfig {
  return validateConfig(simulationSchema, { webotsHome: "/opt/webots", ...raw }, "test", {
    root: ROOT,
    vars: {},
    tmpDir: "/tmp",
  });
}

const base: WebotsLaunch = {
  instanceDir: "/tmp/webots/instances/c1",
  worldFile: "/tmp/webots/instances/c1/worlds/my.wbt",
  port: 2001,
  mode: undefined,
  controllerEdit: false,
};

Deno.test("webotsArgs builds the reference command line", async (t) => {
  await t.step("no mode: minimized, no rendering, no mode option", () => {
    assert.deepEqual(webotsArgs(config(), base, false), [
      "--batch",
      "--mode=pause",
      "--minimize",
      "--no-rendering",
      '--stream="port=2001;monitorActivity"',
      "/tmp/webots/instances/c1/worlds/my.wbt",
    ]);
  });
  await t.step("x3d: mode option, still minimized", () => {
    assert.deepEqual(webotsArgs(config(), { ...base, mode: "x3d" }, false), [
      "--batch",
      "--mode=pause",
      "--minimize",
      "--no-rendering",
      '--stream="port=2001;monitorActivity;mode=x3d"',
      "/tmp/webots/instances/c1/worlds/my.wbt",
    ]);
  });
  await t.step("mjpeg: a visible, rendering window", () => {
    assert.deepEqual(webotsArgs(config(), { ...base, mode: "mjpeg" }, false), [
      "--batch",
      "--mode=pause",
      '--stream="port=2001;monitorActivity;mode=mjpeg"',
      "/tmp/webots/instances/c1/worlds/my.wbt",
    ]);
  });
  await t.step("controllerEdit, multimedia and ssl in the reference order", () => {
    const c = config({ multimediaServer: "janus.example:8088", multimediaStream: "stream1" });
    assert.deepEqual(
      webotsArgs(c, { ...base, mode: "x3d", controllerEdit: true, port: 2042 }, true)[4],
      '--stream="port=2042;monitorActivity;mode=x3d;controllerEdit;' +
        'multimediaServer=janus.example:8088;multimediaStream=stream1;ssl"',
    );
  });
  await t.step("ssl alone", () => {
    assert.equal(
      webotsArgs(config(), base, true)[4],
      '--stream="port=2001;monitorActivity;ssl"',
    );
  });
  await t.step("a world path with spaces stays one argument", () => {
    const worldFile = "/tmp/webots/instances/c 1/worlds/my world --mode=fast.wbt";
    const args = webotsArgs(config(), { ...base, worldFile }, false);
    assert.equal(args.length, 6);
    assert.equal(args.at(-1), worldFile);
  });
  await t.step("a multimedia value that would inject stream options is refused", () => {
    assert.throws(() => webotsArgs(config({ multimediaServer: "x;ssl" }), base, false));
  });
});

Deno.test("webotsEnv sets DISPLAY (default :0) and firejailed controllers", () => {
  assert.deepEqual(webotsEnv({}), { DISPLAY: ":0", WEBOTS_FIREJAIL_CONTROLLERS: "1" });
  assert.deepEqual(webotsEnv({ DISPLAY: "" }), { DISPLAY: ":0", WEBOTS_FIREJAIL_CONTROLLERS: "1" });
  assert.deepEqual(webotsEnv({ DISPLAY: ":99" }), {
    DISPLAY: ":99",
    WEBOTS_FIREJAIL_CONTROLLERS: "1",
  });
});

Deno.test("webotsCommand runs <webotsHome>/webots, or firejail around it", () => {
  assert.deepEqual(webotsCommand(config(), base, false), {
    command: "/opt/webots/webots",
    args: webotsArgs(config(), base, false),
  });
  const jailed = config({
    sandbox: "firejail",
    keyDir: "/srv/keys",
    sslCertificate: "/s/c.pem",
    sslKey: "/s/k.pem",
  });
  assert.deepEqual(webotsCommand(jailed, base, false), {
    command: "/usr/bin/firejail",
    args: [
      "--quiet",
      "--noprofile",
      "--nonewprivs",
      "--caps.drop=all",
      "--private-tmp",
      "--whitelist=/tmp/webots/instances/c1",
      "--read-only=/",
      "--read-write=/tmp/webots/instances/c1",
      "--blacklist=/srv/keys",
      "--blacklist=/s/k.pem",
      "--",
      "/opt/webots/webots",
      ...webotsArgs(jailed, base, false),
    ],
  });
  // Outside /tmp the instance folder needs no whitelist (only /tmp is replaced).
  assert.ok(
    !firejailArgs(jailed, "/var/lib/webots/c1").some((a) => a.startsWith("--whitelist")),
  );
});

/** A temp instance folder with a world file of `#fake` directives and a record folder. */
async function instance(directives: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "webots-test-" });
  const instanceDir = join(dir, "instances", "c1");
  await Deno.mkdir(join(instanceDir, "worlds"), { recursive: true });
  await Deno.mkdir(join(dir, "records"));
  const worldFile = join(instanceDir, "worlds", "test world.wbt");
  await Deno.writeTextFile(worldFile, directives.map((d) => `#fake ${d}\n`).join(""));
  return {
    dir,
    instanceDir,
    worldFile,
    async records() {
      const out = [];
      for await (const e of Deno.readDir(join(dir, "records"))) {
        if (!e.name.endsWith(".json")) continue;
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

/** A spawner whose children also get `extraEnv` (the stand-in's record folder). */
function spawnerWith(extraEnv: Record<string, string>) {
  const real = createSpawner({ killBinary: "/usr/bin/kill", logger: silent });
  return {
    spawn: (
      command: string,
      args: readonly string[],
      options: { env: Record<string, string>; cwd: string },
    ) => real.spawn(command, args, { ...options, env: { ...options.env, ...extraEnv } }),
  };
}

async function collect(handle: ChildProcessHandle, until: (lines: string[]) => boolean) {
  const lines: string[] = [];
  for await (const line of handle.lines) {
    lines.push(line);
    if (until(lines)) break;
  }
  return lines;
}

function isAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

Deno.test("launchWebots starts Webots with exactly the argv and env it built", async () => {
  await using inst = await instance(["print-args"]);
  const c = config({ webotsHome: FAKE_HOME });
  const launch = {
    ...base,
    instanceDir: inst.instanceDir,
    worldFile: inst.worldFile,
    port: freePort(),
    mode: "x3d" as const,
  };
  const spawner = spawnerWith({ FAKE_WEBOTS_RECORD_DIR: join(inst.dir, "records") });
  const handle = launchWebots(spawner, c, launch, false, undefined);
  try {
    const lines = await collect(handle, (l) => l.includes("open"));
    assert.deepEqual(JSON.parse(lines[0] ?? ""), webotsArgs(c, launch, false));
    assert.equal(lines[1], "open");
    const [record] = await inst.records();
    assert.deepEqual(record.env, { DISPLAY: ":0", WEBOTS_FIREJAIL_CONTROLLERS: "1" });
    // The stand-in streams on the port it was given, like Webots.
    const socket = new WebSocket(`ws://127.0.0.1:${launch.port}/`);
    const reply = await new Promise<string>((resolve, reject) => {
      socket.onopen = () => socket.send("x3d");
      socket.onmessage = (event) => resolve(String(event.data));
      socket.onerror = () => reject(new Error("websocket error"));
    });
    assert.equal(reply, "fake webots received: x3d");
    const closed = new Promise((resolve) => socket.onclose = resolve);
    socket.close();
    await closed;
  } finally {
    await handle.stop(5000);
  }
});

Deno.test({
  name: "with sandbox firejail, Webots runs jailed and writes only its instance folder",
  ignore: !exists(FIREJAIL),
  async fn() {
    await using inst = await instance([]);
    const outsideDir = join(inst.dir, "outside");
    await Deno.mkdir(outsideDir);
    const outsideRoot = join(ROOT, `.firejail-probe-${Deno.pid}`);
    const inside = join(inst.instanceDir, "inside.txt");
    const inHome = join(FAKE_HOME, `.firejail-probe-${Deno.pid}`);
    const writes = [inside, join(outsideDir, "x.txt"), outsideRoot, inHome];
    await Deno.writeTextFile(
      inst.worldFile,
      writes.map((p) => `#fake try-write ${p}\n`).join("") + "#fake children 1\n",
    );
    const c = config({
      webotsHome: FAKE_HOME,
      sandbox: "firejail",
      keyDir: join(inst.dir, "keys"),
    });
    const launch = {
      ...base,
      instanceDir: inst.instanceDir,
      worldFile: inst.worldFile,
      port: freePort(),
    };
    const handle = launchWebots(spawnerWith({}), c, launch, false, ":5");
    try {
      const lines = await collect(handle, (l) => l.includes("open"));
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
      assert.equal(await Deno.readTextFile(inside), "written by the fake webots\n");
      assert.deepEqual(await Array.fromAsync(Deno.readDir(outsideDir)), []);
      assert.ok(!exists(outsideRoot));
      assert.ok(!exists(inHome));
    } finally {
      const started = performance.now();
      const status = await handle.stop(5000);
      console.log(`stop() of jailed Webots: ${(performance.now() - started).toFixed(0)} ms`);
      // firejail passes SIGTERM on to the jail and exits with 128 + 15.
      assert.equal(status.code, 143);
      // Nothing of the process group (firejail, the stand-in, its child) is left.
      assert.throws(() => Deno.kill(-handle.pid, "SIGCONT"), Deno.errors.NotFound);
    }
  },
});

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("reapLeftovers ends the Webots of a previous run, and only those", async (t) => {
  await using inst = await instance(["children 1"]);
  const instancesDir = join(inst.dir, "instances");
  const deps = {
    instancesDir,
    catBinary: "/usr/bin/cat",
    killBinary: "/usr/bin/kill",
    logger: silent,
  };
  const previous = createWebotsRegistry(deps);
  const c = config({ webotsHome: FAKE_HOME });
  const spawner = spawnerWith({ FAKE_WEBOTS_RECORD_DIR: join(inst.dir, "records") });
  const launch = {
    ...base,
    instanceDir: inst.instanceDir,
    worldFile: inst.worldFile,
    port: freePort(),
  };
  // A Webots whose server "crashed": its record stays.
  const leftover = spawner.spawn(...argvOf(c, launch));
  // A process that is not ours although its pid was recorded (as after pid reuse).
  const strangerDir = join(instancesDir, "c2");
  await Deno.mkdir(join(strangerDir, "worlds"), { recursive: true });
  await Deno.writeTextFile(join(strangerDir, "worlds", "w.wbt"), "");
  const stranger = spawner.spawn(
    ...argvOf(c, {
      ...launch,
      instanceDir: strangerDir,
      worldFile: join(strangerDir, "worlds", "w.wbt"),
      port: freePort(),
    }),
  );
  try {
    await collect(leftover, (l) => l.includes("open"));
    await collect(stranger, (l) => l.includes("open"));
    await previous.record(leftover.pid, inst.instanceDir);
    await previous.record(stranger.pid, strangerDir);
    const recordFile = join(instancesDir, ".webots-pids", `${stranger.pid}.json`);
    const record = JSON.parse(await Deno.readTextFile(recordFile));
    await Deno.writeTextFile(recordFile, JSON.stringify({ ...record, startTime: "1" }));
    // A record of a process that is long gone.
    await Deno.writeTextFile(
      join(instancesDir, ".webots-pids", "999999999.json"),
      JSON.stringify({ ...record, pid: 999999999, instanceDir: "/etc" }),
    );
    const [fakeRecord] = (await inst.records()).filter((r) => r.pid === leftover.pid);

    const report = await createWebotsRegistry(deps).reapLeftovers(2000);
    await t.step("the recorded Webots and its controllers are ended", async () => {
      assert.deepEqual(report.killed, [leftover.pid]);
      await leftover.status;
      for (const pid of [leftover.pid, ...fakeRecord.childPids]) assert.ok(!isAlive(pid));
    });
    await t.step("a process whose start time differs is left alone", () => {
      assert.ok(report.gone.includes(stranger.pid));
      assert.ok(isAlive(stranger.pid));
    });
    await t.step("instance folders inside instancesDir are removed, nothing else", () => {
      assert.deepEqual(report.removedDirs.sort(), [inst.instanceDir, strangerDir].sort());
      assert.ok(exists("/etc"));
      assert.deepEqual([...Deno.readDirSync(join(instancesDir, ".webots-pids"))], []);
    });
  } finally {
    await leftover.stop(2000);
    await stranger.stop(2000);
  }
});

Deno.test("a registry given to launchWebots records the run until it exits", async () => {
  await using inst = await instance(["exit-after 300"]);
  const instancesDir = join(inst.dir, "instances");
  const registry = createWebotsRegistry({
    instancesDir,
    catBinary: "/usr/bin/cat",
    killBinary: "/usr/bin/kill",
    logger: silent,
  });
  const c = config({ webotsHome: FAKE_HOME });
  const launch = {
    ...base,
    instanceDir: inst.instanceDir,
    worldFile: inst.worldFile,
    port: freePort(),
  };
  const handle = launchWebots(spawnerWith({}), c, launch, false, undefined, registry);
  await collect(handle, (l) => l.includes("open"));
  const file = join(instancesDir, ".webots-pids", `${handle.pid}.json`);
  // Recording runs alongside the start-up; the record appears within moments.
  const deadline = Date.now() + 10_000;
  while (!exists(file) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(JSON.parse(await Deno.readTextFile(file)).instanceDir, inst.instanceDir);
  await handle.status;
  assert.ok(!exists(file));
});

function argvOf(c: SimulationConfig, launch: WebotsLaunch) {
  const { command, args } = webotsCommand(c, launch, false);
  return [command, args, { env: webotsEnv({}), cwd: launch.instanceDir }] as const;
}
