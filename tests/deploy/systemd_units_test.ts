/**
 * The systemd units of docs/systemd/, checked with systemd's own tools, which work without a
 * running systemd: `systemd-analyze verify` loads each unit as systemd would (unknown or
 * misspelt directives, bad values, missing executables, missing dependencies) and
 * `systemd-analyze security --offline=true` reads the sandbox they set up.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { join, resolve } from "node:path";
import { loadConfig } from "../../shared/config.ts";
import { sessionConfigEnv, sessionSchema } from "../../session/config.ts";
import { simulationConfigEnv, simulationSchema } from "../../simulation/config.ts";

const ROOT = resolve(import.meta.dirname ?? ".", "..", "..");
const UNIT_DIR = join(ROOT, "docs", "systemd");
const SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze";
const UNITS = ["webots-session.service", "webots-simulation.service", "webots-xvfb.service"];

interface Output {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function analyze(args: readonly string[]): Promise<Output> {
  const out = await new Deno.Command(SYSTEMD_ANALYZE, {
    args: [...args],
    env: { SYSTEMD_PAGER: "", NO_COLOR: "1", SYSTEMD_COLORS: "0" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** A unit file's `[Section] Key=value` settings; a key set twice keeps every value in order. */
function parseUnit(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1] ?? "";
      continue;
    }
    const eq = line.indexOf("=");
    ok(eq > 0, `not a setting: ${line}`);
    const key = `${section}.${line.slice(0, eq)}`;
    settings.set(key, [...(settings.get(key) ?? []), line.slice(eq + 1)]);
  }
  return settings;
}

async function unit(name: string): Promise<Map<string, string[]>> {
  return parseUnit(await Deno.readTextFile(join(UNIT_DIR, name)));
}

function one(settings: Map<string, string[]>, key: string): string {
  const values = settings.get(key) ?? [];
  equal(values.length, 1, `${key} is set once`);
  return values[0] ?? "";
}

/** `TimeoutStopSec=` in seconds (plain seconds or systemd's `5min 30s` form). */
function seconds(span: string): number {
  const units: Record<string, number> = { "": 1, s: 1, sec: 1, min: 60, m: 60, h: 3600 };
  let total = 0;
  for (const part of span.trim().split(/\s+/)) {
    const m = /^(\d+)([a-z]*)$/.exec(part);
    ok(m && units[m[2] ?? ""] !== undefined, `unexpected time span ${span}`);
    total += Number(m[1]) * (units[m[2] ?? ""] ?? 0);
  }
  return total;
}

/**
 * The units to verify: the shipped files when `deno` is where systemd looks for the units' bare
 * `deno` (/usr/local/bin, /usr/bin; not $PATH), as on a machine set up as the README says; else
 * copies whose `ExecStart=deno` names this Deno's path, the one change an operator with Deno
 * elsewhere makes (e.g. a checkout run through `npx -y deno@2.9.6`).
 */
async function unitsToVerify(dir: string): Promise<string[]> {
  const found = await Promise.all(
    ["/usr/local/bin/deno", "/usr/bin/deno"].map((p) => Deno.stat(p).then(() => true, () => false)),
  );
  if (found.includes(true)) return UNITS.map((u) => join(UNIT_DIR, u));
  return await Promise.all(UNITS.map(async (u) => {
    const text = await Deno.readTextFile(join(UNIT_DIR, u));
    await Deno.writeTextFile(
      join(dir, u),
      text.replace(/^ExecStart=deno /m, `ExecStart=${Deno.execPath()} `),
    );
    return join(dir, u);
  }));
}

Deno.test("systemd-analyze verify accepts the three shipped units without a word", async () => {
  const dir = await Deno.makeTempDir({ prefix: "systemd-units-" });
  try {
    const out = await analyze(["verify", ...await unitsToVerify(dir)]);
    deepEqual({ code: out.code, output: out.stdout + out.stderr }, { code: 0, output: "" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("systemd-analyze verify reports a misspelt directive and a missing program", async () => {
  // The check above means something only if verify speaks up: a unit with a typo and one whose
  // program does not exist, in a temp folder.
  const dir = await Deno.makeTempDir({ prefix: "systemd-units-" });
  try {
    const text = await Deno.readTextFile(join(UNIT_DIR, "webots-session.service"));
    const typo = join(dir, "typo.service");
    await Deno.writeTextFile(typo, text.replace("ProtectSystem=", "ProtectSytem="));
    const missing = join(dir, "missing.service");
    await Deno.writeTextFile(
      missing,
      text.replace(/^ExecStart=deno /m, `ExecStart=${join(dir, "no-such-deno")} `),
    );
    const out = await analyze(["verify", typo, missing]);
    const said = out.stdout + out.stderr;
    ok(said.includes("Unknown key 'ProtectSytem' in section [Service]"), said);
    ok(said.includes(`Command ${join(dir, "no-such-deno")} is not executable`), said);
    equal(out.code === 0, false, said);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("each unit restarts on failure, and the session unit reloads its config with SIGHUP", async () => {
  for (const name of UNITS) {
    const settings = await unit(name);
    equal(one(settings, "Service.Restart"), "on-failure", name);
    equal(one(settings, "Service.User"), "webots", name);
  }
  const session = await unit("webots-session.service");
  equal(one(session, "Service.ExecReload"), "/bin/kill -HUP $MAINPID");
  equal(one(session, "Service.KillMode"), "mixed");
  equal((await unit("webots-simulation.service")).has("Service.ExecReload"), false);
});

Deno.test("the session unit's open-files limit holds 100,000 subscribers and the server's own descriptors", async () => {
  const limit = one(await unit("webots-session.service"), "Service.LimitNOFILE");
  // `N` sets both limits, `soft:hard` each; Deno raises its soft limit to the hard one at start.
  const hard = Number(limit.split(":").at(-1));
  ok(Number.isInteger(hard) && hard >= 100_000 + 1_000, `LimitNOFILE=${limit}`);
});

/** The sandbox settings of a unit, as `systemd-analyze security` reads them. */
async function sandbox(name: string): Promise<{ set: Map<string, boolean>; exposure: number }> {
  const path = join(UNIT_DIR, name);
  const json = await analyze(["security", "--offline=true", "--json=short", path]);
  equal(json.code, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as { json_field: string; set: boolean }[];
  const text = await analyze(["security", "--offline=true", path]);
  const m = /Overall exposure level for \S+: ([\d.]+)/.exec(text.stdout);
  ok(m, text.stdout);
  return { set: new Map(rows.map((r) => [r.json_field, r.set])), exposure: Number(m[1]) };
}

Deno.test("the sandbox: read-only system, no home, private /tmp; NoNewPrivileges except where firejail runs", async (t) => {
  const common = ["UserOrDynamicUser", "ProtectSystem", "ProtectHome", "PrivateTmp"];
  await t.step("session server: everything it tolerates (it runs no program)", async () => {
    const { set, exposure } = await sandbox("webots-session.service");
    for (
      const field of [...common, "NoNewPrivileges", "PrivateDevices", "RestrictNamespaces_user"]
    ) {
      equal(set.get(field), true, field);
    }
    ok(exposure <= 3.5, `exposure ${exposure}`);
  });
  await t.step(
    "simulation server: no NoNewPrivileges (setuid firejail), devices visible (GPU)",
    async () => {
      const { set, exposure } = await sandbox("webots-simulation.service");
      for (const field of common) equal(set.get(field), true, field);
      equal(set.get("NoNewPrivileges"), false);
      equal(set.get("PrivateDevices"), false);
      ok(exposure <= 8.5, `exposure ${exposure}`);
    },
  );
  await t.step("Xvfb", async () => {
    const { set, exposure } = await sandbox("webots-xvfb.service");
    for (const field of [...common, "NoNewPrivileges"]) equal(set.get(field), true, field);
    ok(exposure <= 5.5, `exposure ${exposure}`);
  });
  await t.step(
    "with ProtectSystem=strict each server writes only in folders systemd made for it",
    async () => {
      const simulation = await unit("webots-simulation.service");
      equal(one(simulation, "Service.ProtectSystem"), "strict");
      equal(one(simulation, "Service.LogsDirectory"), "webots-servers");
      equal(one(simulation, "Service.StateDirectory"), "webots-servers");
      const config = await loadConfig(
        simulationSchema,
        join(ROOT, configOf(simulation)),
        simulationConfigEnv(),
      );
      equal(config.logDir, "/var/log/webots-servers");
      ok(config.instancesDir.startsWith("/var/lib/webots-servers/"), config.instancesDir);
      const session = await unit("webots-session.service");
      equal(one(session, "Service.ProtectSystem"), "strict");
      equal(one(session, "Service.LogsDirectory"), "webots-servers");
      const sessionConfig = await loadConfig(
        sessionSchema,
        join(ROOT, configOf(session)),
        sessionConfigEnv(),
      );
      equal(sessionConfig.logDir, "/var/log/webots-servers");
    },
  );
});

/** The config file a unit's `deno task <server> <config>` names. */
function configOf(settings: Map<string, string[]>): string {
  const m = /^deno task (session|simulation) (\S+)$/.exec(one(settings, "Service.ExecStart"));
  ok(m, "ExecStart runs deno task <server> <config>");
  return m[2] ?? "";
}

Deno.test("the simulation unit's TimeoutStopSec covers its config's drainTimeout + killTimeout", async () => {
  const settings = await unit("webots-simulation.service");
  const config = await loadConfig(
    simulationSchema,
    join(ROOT, configOf(settings)),
    simulationConfigEnv(),
  );
  ok(config.drainTimeout > 0, "the shipped systemd config drains on stop");
  const stop = seconds(one(settings, "Service.TimeoutStopSec"));
  // The margin: one killTimeout for Webots' own stop and a few seconds to remove the folders.
  ok(
    stop >= config.drainTimeout + config.killTimeout + 25,
    `TimeoutStopSec=${stop} < drainTimeout ${config.drainTimeout} + killTimeout ${config.killTimeout} + 25`,
  );
  equal(one(settings, "Service.KillMode"), "mixed");
});
