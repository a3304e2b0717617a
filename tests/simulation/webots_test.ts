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
