import assert from "node:assert/strict";
import { resolve } from "node:path";
import { validateConfig } from "../../shared/config.ts";
import { type SimulationConfig, simulationSchema } from "../../simulation/config.ts";
import {
  firejailArgs,
  webotsArgs,
  webotsCommand,
  webotsEnv,
  type WebotsLaunch,
} from "../../simulation/webots.ts";
import { installation } from "../../simulation/webots_installations.ts";

const ROOT = resolve(import.meta.dirname ?? ".", "..", "..");

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
  installation: installation("R2021b", "/opt/webots"),
};

/** The same launch on another release (same folder). */
function on(release: string, launch: Partial<WebotsLaunch> = {}): WebotsLaunch {
  return { ...base, ...launch, installation: installation(release, "/opt/webots") };
}

Deno.test("webotsArgs builds the R2021b–R2022a command line (the reference's)", async (t) => {
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

Deno.test("R2019b–R2021a: stream options, and no --no-rendering (not accepted before R2021b)", async (t) => {
  for (const release of ["R2019b", "R2020a", "R2020b", "R2021a"]) {
    await t.step(release, () => {
      assert.deepEqual(webotsArgs(config(), on(release, { mode: "x3d" }), false), [
        "--batch",
        "--mode=pause",
        "--minimize",
        '--stream="port=2001;monitorActivity;mode=x3d"',
        "/tmp/webots/instances/c1/worlds/my.wbt",
      ]);
      assert.equal(on(release).installation.dialect.readiness, "open");
    });
  }
  await t.step("mjpeg: visible window; every option still in --stream", () => {
    const c = config({ multimediaServer: "janus.example:8088", multimediaStream: "s1" });
    assert.deepEqual(webotsArgs(c, on("R2020b", { mode: "mjpeg", controllerEdit: true }), true), [
      "--batch",
      "--mode=pause",
      '--stream="port=2001;monitorActivity;mode=mjpeg;controllerEdit;' +
      'multimediaServer=janus.example:8088;multimediaStream=s1;ssl"',
      "/tmp/webots/instances/c1/worlds/my.wbt",
    ]);
  });
});

Deno.test("R2021b and R2022a share the reference dialect", () => {
  assert.deepEqual(
    webotsArgs(config(), on("R2022a", { mode: "x3d" }), true),
    webotsArgs(config(), on("R2021b", { mode: "x3d" }), true),
  );
  assert.equal(on("R2022a").installation.dialect.readiness, "open");
  assert.equal(on("R2022a").installation.dialect.activity, "monitorActivity");
});

Deno.test("R2022b–R2025a: --port, --heartbeat, --stream[=mode]; ready on the first '.'", async (t) => {
  for (const release of ["R2022b", "R2023a", "R2023b", "R2024a", "R2025a"]) {
    await t.step(`${release}: no mode`, () => {
      assert.deepEqual(webotsArgs(config(), on(release), false), [
        "--batch",
        "--mode=pause",
        "--minimize",
        "--no-rendering",
        "--port=2001",
        "--heartbeat=5000",
        "--stream",
        "/tmp/webots/instances/c1/worlds/my.wbt",
      ]);
      const { dialect } = on(release).installation;
      assert.equal(dialect.readiness, "dot");
      assert.equal(dialect.activity, "heartbeat");
      assert.deepEqual(dialect.options, ["mode"]);
    });
  }
  await t.step("x3d", () => {
    assert.deepEqual(webotsArgs(config(), on("R2023b", { mode: "x3d" }), false).slice(2), [
      "--minimize",
      "--no-rendering",
      "--port=2001",
      "--heartbeat=5000",
      "--stream=x3d",
      "/tmp/webots/instances/c1/worlds/my.wbt",
    ]);
  });
  await t.step(
    "mjpeg with controllerEdit, multimedia and ssl: options the release lacks are left out",
    () => {
      const c = config({ multimediaServer: "janus.example:8088", multimediaStream: "s1" });
      assert.deepEqual(
        webotsArgs(c, on("R2025a", { mode: "mjpeg", controllerEdit: true, port: 2042 }), true),
        [
          "--batch",
          "--mode=pause",
          "--port=2042",
          "--heartbeat=5000",
          "--stream=mjpeg",
          "/tmp/webots/instances/c1/worlds/my.wbt",
        ],
      );
    },
  );
});

Deno.test("webotsEnv sets DISPLAY (default :0) and firejailed controllers", () => {
  assert.deepEqual(webotsEnv({}), { DISPLAY: ":0", WEBOTS_FIREJAIL_CONTROLLERS: "1" });
  assert.deepEqual(webotsEnv({ DISPLAY: "" }), { DISPLAY: ":0", WEBOTS_FIREJAIL_CONTROLLERS: "1" });
  assert.deepEqual(webotsEnv({ DISPLAY: ":99" }), {
    DISPLAY: ":99",
    WEBOTS_FIREJAIL_CONTROLLERS: "1",
  });
});

Deno.test("webotsCommand runs the installation's webots, or firejail around it", () => {
  assert.equal(
    webotsCommand(
      config(),
      { ...on("R2025a"), installation: installation("R2025a", "/opt/w25") },
      false,
    )
      .command,
    "/opt/w25/webots",
  );
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
