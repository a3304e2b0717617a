/** Release names, version.txt, world headers and the choice of an installation per world. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ClientError } from "../../simulation/client_error.ts";
import {
  createInstallations,
  installation,
  resolveInstallations,
  WebotsVersionError,
} from "../../simulation/webots_installations.ts";
import {
  isKnownRelease,
  parseVersionLine,
  readInstalledRelease,
  readWorldRelease,
} from "../../simulation/webots_release.ts";

Deno.test("parseVersionLine reads the release of version.txt's first line, revision or not", () => {
  assert.equal(parseVersionLine("R2022a\n"), "R2022a");
  assert.equal(parseVersionLine("R2023b revision 1\nmore"), "R2023b");
  assert.equal(parseVersionLine("R2021b-rev2"), "R2021b");
  assert.equal(parseVersionLine("8.6.2"), undefined);
  assert.equal(parseVersionLine(""), undefined);
  assert.equal(parseVersionLine("R2022c"), undefined);
});

Deno.test("isKnownRelease accepts R2019b to R2025a only", () => {
  for (const r of ["R2019b", "R2021b", "R2022b", "R2025a"]) assert.ok(isKnownRelease(r), r);
  for (const r of ["R2019a", "R2025b", "R2030a", "r2021b", "R2021"]) {
    assert.ok(!isKnownRelease(r), r);
  }
});

/** A temp folder with files; removed after `body`. */
async function withFiles(
  files: Record<string, string>,
  body: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "webots-release-test-" });
  try {
    for (const [path, text] of Object.entries(files)) {
      await Deno.mkdir(join(dir, path, ".."), { recursive: true });
      await Deno.writeTextFile(join(dir, path), text);
    }
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("readInstalledRelease: the release, or one line saying why not", async () => {
  await withFiles({
    "ok/resources/version.txt": "R2023b revision 1\n",
    "odd/resources/version.txt": "nightly\n",
    "old/resources/version.txt": "R2018a\n",
  }, async (dir) => {
    assert.deepEqual(await readInstalledRelease(join(dir, "ok")), { release: "R2023b" });
    const odd = await readInstalledRelease(join(dir, "odd"));
    assert.ok("problem" in odd && odd.problem.includes('names no Webots release: "nightly"'));
    const old = await readInstalledRelease(join(dir, "old"));
    assert.ok("problem" in old && old.problem.includes("R2018a"));
    const none = await readInstalledRelease(join(dir, "none"));
    assert.ok("problem" in none && none.problem.startsWith("cannot read the Webots version"));
  });
});

Deno.test("readWorldRelease: the header's release; a missing or malformed header is a ClientError naming it", async () => {
  await withFiles({
    "a.wbt": "#VRML_SIM R2023b utf8\nWorldInfo {}\n",
    "b.wbt": "WorldInfo {}\n",
    "c.wbt": "#VRML_SIM V8.6 utf8\n",
    "d.wbt": "",
  }, async (dir) => {
    assert.equal(await readWorldRelease(join(dir, "a.wbt")), "R2023b");
    await assert.rejects(
      readWorldRelease(join(dir, "b.wbt")),
      new ClientError("the world file has no '#VRML_SIM <release> utf8' header"),
    );
    await assert.rejects(
      readWorldRelease(join(dir, "c.wbt")),
      new ClientError(
        "malformed world header \"#VRML_SIM V8.6 utf8\": expected '#VRML_SIM <release> utf8'",
      ),
    );
    await assert.rejects(readWorldRelease(join(dir, "d.wbt")), ClientError);
  });
});

Deno.test("forWorld: the exact release, else the newest or a refusal naming what is installed", async () => {
  const list = [installation("R2021b", "/opt/w21"), installation("R2025a", "/opt/w25")];
  await withFiles({
    "21.wbt": "#VRML_SIM R2021b utf8\n",
    "23.wbt": "#VRML_SIM R2023b utf8\n",
  }, async (dir) => {
    const newest = createInstallations(list, { byHeader: true, fallback: "newest" });
    assert.equal((await newest.forWorld(join(dir, "21.wbt"))).home, "/opt/w21");
    assert.equal((await newest.forWorld(join(dir, "23.wbt"))).home, "/opt/w25");
    const refuse = createInstallations(list, { byHeader: true, fallback: "refuse" });
    assert.equal((await refuse.forWorld(join(dir, "21.wbt"))).release, "R2021b");
    await assert.rejects(
      refuse.forWorld(join(dir, "23.wbt")),
      new ClientError("this server has no Webots R2023b (installed: R2025a, R2021b)"),
    );
    // One installation (webotsHome): every world runs on it; its header is not read.
    const single = createInstallations([list[0]!], { byHeader: false, fallback: "refuse" });
    assert.equal((await single.forWorld(join(dir, "missing.wbt"))).release, "R2021b");
  });
});

Deno.test("resolveInstallations: version.txt, webotsVersion, webotsHomes, and no Webots at all", async (t) => {
  await withFiles({
    "w21/webots": "",
    "w21/resources/version.txt": "R2021b\n",
    "w25/webots": "",
    "w25/resources/version.txt": "R2025a\n",
    "bare/webots": "",
  }, async (dir) => {
    const warnings: string[] = [];
    const warn = (m: string) => warnings.push(m);
    const installed = async (home: string) => {
      try {
        return (await Deno.stat(join(home, "webots"))).isFile;
      } catch {
        return false;
      }
    };
    const base = { webotsHome: join(dir, "w21"), webotsVersionFallback: "newest" as const };
    await t.step("webotsHome's version.txt", async () => {
      const found = await resolveInstallations(base, installed, warn);
      assert.deepEqual(found.list.map((i) => [i.release, i.home]), [["R2021b", join(dir, "w21")]]);
    });
    await t.step("no version.txt: stop, unless webotsVersion names the release", async () => {
      await assert.rejects(
        resolveInstallations({ ...base, webotsHome: join(dir, "bare") }, installed, warn),
        (e) => e instanceof WebotsVersionError && e.message.includes("set webotsVersion"),
      );
      const named = await resolveInstallations(
        { ...base, webotsHome: join(dir, "bare"), webotsVersion: "R2023a" },
        installed,
        warn,
      );
      assert.equal(named.list[0]?.release, "R2023a");
      await assert.rejects(
        resolveInstallations({ ...base, webotsVersion: "R2031a" }, installed, warn),
        WebotsVersionError,
      );
    });
    await t.step("no Webots at all: no installation, no stop", async () => {
      const none = await resolveInstallations(
        { ...base, webotsHome: join(dir, "nothing") },
        installed,
        warn,
      );
      assert.deepEqual(none.list, []);
    });
    await t.step(
      "webotsHomes: newest first; a wrong release or a missing binary stops",
      async () => {
        const homes = { R2021b: join(dir, "w21"), R2025a: join(dir, "w25") };
        const found = await resolveInstallations({ ...base, webotsHomes: homes }, installed, warn);
        assert.deepEqual(found.list.map((i) => i.release), ["R2025a", "R2021b"]);
        await assert.rejects(
          resolveInstallations(
            { ...base, webotsHomes: { R2022a: join(dir, "w21") } },
            installed,
            warn,
          ),
          new WebotsVersionError(
            `webotsHomes: ${join(dir, "w21")} holds Webots R2021b, not R2022a`,
          ),
        );
        await assert.rejects(
          resolveInstallations(
            { ...base, webotsHomes: { R2022a: join(dir, "x") } },
            installed,
            warn,
          ),
          new WebotsVersionError(`webotsHomes: no Webots R2022a at ${join(dir, "x", "webots")}`),
        );
      },
    );
  });
});

Deno.test("config: webotsHomes is an object of folders (relative ones resolved), webotsVersionFallback newest or refuse", async () => {
  const { validateConfig, ConfigError } = await import("../../shared/config.ts");
  const { simulationSchema } = await import("../../simulation/config.ts");
  const env = { root: "/srv/app", vars: {}, tmpDir: "/tmp" };
  const config = validateConfig(
    simulationSchema,
    { webotsHomes: { R2021b: "webots-21", R2025a: "/usr/local/webots" } },
    "c.json",
    env,
  );
  assert.deepEqual(config.webotsHomes, {
    R2021b: "/srv/app/webots-21",
    R2025a: "/usr/local/webots",
  });
  assert.equal(config.webotsVersionFallback, "newest");
  assert.throws(
    () => validateConfig(simulationSchema, { webotsHomes: ["/opt/w"] }, "c.json", env),
    new ConfigError('c.json: key "webotsHomes" must be an object of strings'),
  );
  assert.throws(
    () => validateConfig(simulationSchema, { webotsVersionFallback: "oldest" }, "c.json", env),
    new ConfigError('c.json: key "webotsVersionFallback" must be one of "newest", "refuse"'),
  );
});

Deno.test("permissions: run each installation's webots, read each version.txt", async () => {
  const { validateConfig } = await import("../../shared/config.ts");
  const { simulationSchema } = await import("../../simulation/config.ts");
  const { allowedPrograms, simulationPermissions } = await import(
    "../../simulation/permissions.ts"
  );
  const config = validateConfig(
    simulationSchema,
    { webotsHomes: { R2021b: "/opt/w21", R2025a: "/opt/w25" }, nvidiaSmiPath: "/x/nvidia-smi" },
    "c.json",
    { root: "/srv/app", vars: {}, tmpDir: "/tmp" },
  );
  assert.deepEqual(allowedPrograms(config), [
    "/opt/w21/webots",
    "/opt/w25/webots",
    "/x/nvidia-smi",
    "/usr/bin/kill",
    "/usr/bin/cat",
    "/usr/bin/ps",
    "/usr/bin/grep",
  ]);
  const read = simulationPermissions(config, { root: "/srv/app", configFile: "/srv/c.json" })
    .find((flag) => flag.startsWith("--allow-read="))!.slice("--allow-read=".length).split(",");
  for (const path of ["/opt/w21/resources/version.txt", "/opt/w25/resources/version.txt"]) {
    assert.ok(read.includes(path), path);
  }
});

Deno.test("monitor: a started session's row shows its Webots release with the world", async () => {
  const { createMonitorView } = await import("../../simulation/monitor_view.ts");
  const view = createMonitorView({
    fqdn: "sim1",
    metrics: {
      hostInfo: () => ({
        hostname: "sim1",
        os: "Linux",
        kernel: "6.1.0",
        cpuModel: "cpu",
        cpuCores: 2,
        gpu: undefined,
        ramTotalGB: 1,
        swapTotalGB: 0,
      }),
      history: [],
    },
  });
  const info = {
    id: "c1",
    state: "running" as const,
    idle: false,
    world: "file:///p/worlds/w.wbt",
    port: 2001,
    pid: 42,
    remote: "127.0.0.1",
    startedAt: 0,
  };
  const page = view.page([
    { info: () => ({ ...info, release: "R2025a" }) },
    { info: () => ({ ...info, id: "c2", release: undefined }) },
  ]);
  assert.ok(page.includes("file:///p/worlds/w.wbt (Webots R2025a)"), page);
  assert.equal(page.split("(Webots ").length, 2, "no release before Webots starts");
});
