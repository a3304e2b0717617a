/**
 * The simulation server as a process with stand-in installations of R2021b and R2025a side by
 * side (`webotsHomes`): each world starts with the command line of the release its header names,
 * is ready on that release's signal, and the stand-in refuses any other dialect.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { writeInstallation } from "../fakes/webots/installation.ts";
import { runLauncher, serverTest } from "../helpers/server_process.ts";
import {
  eventually,
  isAlive,
  type SimulationFixture,
  startFile,
  startSimulationServer,
} from "../helpers/simulation_fixture.ts";
import { connect } from "../helpers/ws_client.ts";

const WEBOTS_URL = /^webots:ws:\/\/127\.0\.0\.1:(\d+)$/;

/** Two installations in a temp folder, removed on dispose. */
async function installations() {
  const dir = await Deno.makeTempDir({ prefix: "webots-installations-" });
  const r2021b = await writeInstallation(join(dir, "webots-R2021b"), "R2021b");
  const r2025a = await writeInstallation(join(dir, "webots-R2025a"), "R2025a", "R2025a revision 1");
  return {
    dir,
    homes: { R2021b: r2021b, R2025a: r2025a },
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const WORLDS = {
  p: {
    "old.wbt": "#VRML_SIM R2021b utf8\n#fake print-args\n",
    "new.wbt": "#VRML_SIM R2025a utf8\n#fake print-args\n",
    "mid.wbt": "#VRML_SIM R2023b utf8\n",
    "bare.wbt": "WorldInfo {}\n",
    "bad.wbt": "#VRML_SIM R2023 utf8\n",
  },
};

/** Everything of a run is gone: processes, instance folders. */
async function allGone(fixture: SimulationFixture) {
  for (const record of await fixture.records()) {
    await eventually(() => !isAlive(record.pid), 10_000, `process ${record.pid} to end`);
  }
  await eventually(async () => (await fixture.instances()).length === 0, 10_000, "no instance");
}

/** Starts a world, waits for `webots:`, returns the stand-in's record; the client is closed. */
async function run(fixture: SimulationFixture, world: string, mode?: string) {
  const client = await connect(fixture.clientUrl);
  client.send(startFile(fixture, "p", world, mode));
  const reply = await client.waitFor((m) => m.startsWith("webots:") || m.startsWith("error:"));
  match(reply, WEBOTS_URL);
  const port = Number(WEBOTS_URL.exec(reply)?.[1]);
  await eventually(async () => (await fixture.records()).length > 0, 10_000, "a record");
  const records = await fixture.records();
  await client.close();
  await allGone(fixture);
  const record = records.find((r) => r.args.at(-1)?.endsWith(world));
  ok(record, `a record of ${world}`);
  return { record: record as typeof record & { release?: string }, port };
}

serverTest(
  "webotsHomes: each world starts on its release with that release's command line",
  async (t) => {
    await using inst = await installations();
    await using fixture = await startSimulationServer({
      worlds: WORLDS,
      config: { webotsHomes: inst.homes },
    });
    await t.step("R2021b world: --stream options, ready on open", async () => {
      const { record, port } = await run(fixture, "old.wbt", "x3d");
      equal(record.release, "R2021b");
      deepEqual(record.args, [
        "--batch",
        "--mode=pause",
        "--minimize",
        "--no-rendering",
        `--stream="port=${port};monitorActivity;mode=x3d"`,
        record.args.at(-1),
      ]);
    });
    await t.step("R2025a world: --port, --heartbeat, --stream=mode, ready on '.'", async () => {
      const { record, port } = await run(fixture, "new.wbt", "mjpeg");
      equal(record.release, "R2025a");
      deepEqual(record.args, [
        "--batch",
        "--mode=pause",
        `--port=${port}`,
        "--heartbeat=5000",
        "--stream=mjpeg",
        record.args.at(-1),
      ]);
    });
    await t.step("R2023b world, not installed: the newest (R2025a) by default", async () => {
      const { record } = await run(fixture, "mid.wbt");
      equal(record.release, "R2025a");
    });
    await t.step(
      "a missing or malformed header is refused with error:, nothing starts",
      async () => {
        for (
          const [world, reason] of [
            ["bare.wbt", "error: the world file has no '#VRML_SIM <release> utf8' header"],
            [
              "bad.wbt",
              `error: malformed world header "#VRML_SIM R2023 utf8": expected '#VRML_SIM <release> utf8'`,
            ],
          ]
        ) {
          const before = (await fixture.records()).length;
          const client = await connect(fixture.clientUrl);
          client.send(startFile(fixture, "p", world!));
          equal(await client.waitFor((m) => m.startsWith("error:")), reason);
          await client.close();
          equal((await fixture.records()).length, before, "no Webots started");
          await allGone(fixture);
        }
      },
    );
    const log = await Deno.readTextFile(join(fixture.logDir, "simulation", "output.log"));
    const chosen = log.split("\n").filter((line) => line.includes("Webots release chosen"));
    ok(chosen.some((line) => line.includes("R2021b")), log);
    ok(chosen.some((line) => line.includes("R2025a")), log);
  },
);

serverTest(
  "webotsVersionFallback refuse: a world of a release not installed gets error:",
  async () => {
    await using inst = await installations();
    await using fixture = await startSimulationServer({
      worlds: WORLDS,
      config: { webotsHomes: inst.homes, webotsVersionFallback: "refuse" },
    });
    const client = await connect(fixture.clientUrl);
    client.send(startFile(fixture, "p", "mid.wbt"));
    equal(
      await client.waitFor((m) => m.startsWith("error:")),
      "error: this server has no Webots R2023b (installed: R2025a, R2021b)",
    );
    await client.close();
    deepEqual(await fixture.records(), []);
    await allGone(fixture);
  },
);

serverTest(
  "a wrong dialect fails: webotsVersion claiming R2025a for an R2021b stand-in",
  async () => {
    await using inst = await installations();
    // version.txt says R2021b, but webotsVersion makes the server speak R2025a's dialect.
    await using fixture = await startSimulationServer({
      worlds: WORLDS,
      config: { webotsHome: inst.homes.R2021b, webotsVersion: "R2025a" },
    });
    const client = await connect(fixture.clientUrl);
    client.send(startFile(fixture, "p", "old.wbt"));
    equal(
      await client.waitFor((m) => m.startsWith("error:")),
      "error: Webots exited (code 1)",
    );
    await client.close();
    await allGone(fixture);
    // The stand-in refused the command line before it wrote its record.
    deepEqual(await fixture.records(), []);
  },
);

serverTest(
  "an unreadable version stops the server with one line, unless webotsVersion names it",
  async (t) => {
    await using inst = await installations();
    const home = join(inst.dir, "no-version");
    await writeInstallation(home, "R2022a");
    await Deno.remove(join(home, "resources", "version.txt"));
    const config = join(inst.dir, "c.json");
    await t.step("stops", async () => {
      await Deno.writeTextFile(
        config,
        JSON.stringify({
          webotsHome: home,
          instancesDir: join(inst.dir, "i"),
          logDir: join(inst.dir, "log"),
          port: 0,
        }),
      );
      const result = await runLauncher("simulation", [config]);
      equal(result.code, 1, result.stdout + result.stderr);
      const path = join(home, "resources", "version.txt");
      const lines = result.stderr.trim().split("\n").filter((l) => !l.startsWith("Warning"));
      equal(lines.length, 1, result.stderr);
      ok(lines[0]?.startsWith(`cannot read the Webots version from ${path}: `), result.stderr);
      ok(lines[0]?.endsWith("(set webotsVersion to name the release)"), result.stderr);
    });
    await t.step("webotsVersion names it: the server runs R2022a's dialect", async () => {
      await using fixture = await startSimulationServer({
        worlds: WORLDS,
        config: { webotsHome: home, webotsVersion: "R2022a" },
      });
      const { record } = await run(fixture, "old.wbt");
      equal(record.release, "R2022a");
      ok(record.args.some((a) => a.startsWith('--stream="port=')));
    });
  },
);

serverTest("R2025a is not ready on 'open': only its first '.' counts", async () => {
  await using inst = await installations();
  await using fixture = await startSimulationServer({
    worlds: {
      p: {
        "open.wbt": "#VRML_SIM R2025a utf8\n#fake ready-line open\n#fake activity-every 3600000\n",
      },
    },
    config: { webotsHomes: inst.homes, startTimeout: 1 },
  });
  const client = await connect(fixture.clientUrl);
  client.send(startFile(fixture, "p", "open.wbt"));
  equal(
    await client.waitFor((m) => m.startsWith("webots:") || m.startsWith("error:")),
    "error: Webots did not get ready within 1 s",
  );
  await client.close();
  await allGone(fixture);
});
