import { deepEqual, equal, match, ok, rejects } from "node:assert/strict";
import { join, resolve } from "node:path";
import {
  APT_GET,
  DPKG_QUERY,
  ensurePackages,
  expandNames,
  findMissing,
  isInstalledStatus,
  main,
  PACKAGE_SETS,
  type Runner,
  type RunResult,
} from "../../scripts/prerequisites.ts";

/** The project root. */
const ROOT = resolve(import.meta.dirname ?? ".", "..", "..");

// What dpkg-query -W -f='${Status}\n' <pkg> really prints, by case.
const INSTALLED: RunResult = { code: 0, stdout: "install ok installed\n", stderr: "" };
const HELD: RunResult = { code: 0, stdout: "hold ok installed\n", stderr: "" };
const CONFIG_FILES: RunResult = { code: 0, stdout: "deinstall ok config-files\n", stderr: "" };
const NOT_INSTALLED: RunResult = { code: 0, stdout: "unknown ok not-installed\n", stderr: "" };
const HALF_CONFIGURED: RunResult = { code: 0, stdout: "install ok half-configured\n", stderr: "" };
const unknown = (name: string): RunResult => ({
  code: 1,
  stdout: "",
  stderr: `dpkg-query: no packages found matching ${name}\n`,
});

interface Call {
  readonly program: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>> | undefined;
}

interface FakeOptions {
  /** dpkg-query's answer per package; absent: dpkg never heard of it. */
  readonly db: Record<string, RunResult>;
  /** apt-get's answer per subcommand; absent: exit 0. */
  readonly apt?: Record<string, RunResult>;
  /** Packages apt-get "installs" without them ending up installed. */
  readonly broken?: readonly string[];
  readonly noAptGet?: boolean;
  readonly noDpkgQuery?: boolean;
}

/**
 * dpkg-query and apt-get played from their real outputs over an in-memory package database;
 * a successful `apt-get install` marks its packages installed, as the real one does.
 */
function fakeSystem(options: FakeOptions) {
  const db = { ...options.db };
  const calls: Call[] = [];
  const run: Runner = (program, args, env) => {
    calls.push({ program, args: [...args], env: env && { ...env } });
    if (program === DPKG_QUERY) {
      if (options.noDpkgQuery) throw new Deno.errors.NotFound(`Failed to spawn '${program}'`);
      equal(args.length, 3);
      deepEqual(args.slice(0, 2), ["-W", "-f=${Status}\\n"]);
      const name = args[2]!;
      return Promise.resolve(db[name] ?? unknown(name));
    }
    if (program === APT_GET) {
      if (options.noAptGet) throw new Deno.errors.NotFound(`Failed to spawn '${program}'`);
      const answer = options.apt?.[args[0]!] ?? { code: 0, stdout: "", stderr: "" };
      if (args[0] === "install" && answer.code === 0) {
        for (const name of args.filter((a) => !a.startsWith("-") && a !== "install")) {
          if (!options.broken?.includes(name) && !name.includes("=")) db[name] = INSTALLED;
        }
      }
      return Promise.resolve(answer);
    }
    throw new Error(`unexpected program ${program}`);
  };
  const info: string[] = [];
  const error: string[] = [];
  const aptCalls = () => calls.filter((c) => c.program === APT_GET);
  return {
    calls,
    aptCalls,
    info,
    error,
    deps: (root: boolean) => ({
      run,
      root,
      info: (line: string) => info.push(line),
      error: (line: string) => error.push(line),
    }),
  };
}

Deno.test("a package counts as installed only when dpkg-query says it is", async () => {
  for (
    const [status, installed] of [
      ["install ok installed", true],
      ["hold ok installed", true],
      ["deinstall ok config-files", false],
      ["purge ok not-installed", false],
      ["unknown ok not-installed", false],
      ["install ok half-configured", false],
      ["install ok unpacked", false],
      ["deinstall reinstreq half-installed", false],
      ["", false],
    ] as const
  ) {
    equal(isInstalledStatus(status), installed, status);
  }
  const system = fakeSystem({
    db: {
      chromium: INSTALLED,
      openssl: HELD,
      apache2: CONFIG_FILES,
      nginx: NOT_INSTALLED,
      firejail: HALF_CONFIGURED,
      // A multi-arch package prints one status per architecture.
      "libfoo": {
        code: 0,
        stdout: "deinstall ok config-files\ninstall ok installed\n",
        stderr: "",
      },
    },
  });
  const missing = await findMissing(system.deps(true).run, [
    "chromium",
    "openssl",
    "apache2",
    "nginx",
    "firejail",
    "libfoo",
    "wrk",
  ]);
  deepEqual(missing, ["apache2", "nginx", "firejail", "wrk"]);
  equal(system.aptCalls().length, 0);
});

Deno.test("as root, apt-get update runs once, then installs exactly the missing packages", async () => {
  const system = fakeSystem({
    db: { chromium: INSTALLED, openssl: INSTALLED, apache2: CONFIG_FILES, firejail: INSTALLED },
  });
  const names = ["chromium", "openssl", "apache2", "nginx", "firejail"];
  equal(await ensurePackages(names, system.deps(true)), true);
  deepEqual(system.info, ["prerequisites: installing apache2 nginx (apt-get)"]);
  deepEqual(system.error, []);
  const apt = system.aptCalls();
  deepEqual(apt.map((c) => c.args), [
    ["--version"],
    ["update", "-q", "-o", "DPkg::Lock::Timeout=120"],
    [
      "install",
      "-y",
      "--no-install-recommends",
      "-q",
      "-o",
      "DPkg::Lock::Timeout=120",
      "apache2",
      "nginx",
    ],
  ]);
  deepEqual(apt[1]!.env, { DEBIAN_FRONTEND: "noninteractive" });
  deepEqual(apt[2]!.env, { DEBIAN_FRONTEND: "noninteractive" });
  // Checked again after the install: the last dpkg-query calls are for the two packages.
  const rechecks = system.calls.slice(system.calls.indexOf(apt[2]!) + 1);
  deepEqual(rechecks.map((c) => c.args[2]), ["apache2", "nginx"]);
});

Deno.test("when everything is installed, nothing is run but dpkg-query and one line is printed", async () => {
  const system = fakeSystem({ db: { chromium: INSTALLED, openssl: HELD } });
  equal(await ensurePackages(["chromium", "openssl"], system.deps(true)), true);
  deepEqual(system.calls.map((c) => c.program), [DPKG_QUERY, DPKG_QUERY]);
  deepEqual(system.info, ["prerequisites: chromium openssl installed"]);
  deepEqual(system.error, []);
});

Deno.test("not root: stops with the exact sudo command and runs no apt-get", async () => {
  const system = fakeSystem({ db: { chromium: CONFIG_FILES, openssl: INSTALLED } });
  equal(await ensurePackages(["chromium", "openssl", "wrk"], system.deps(false)), false);
  deepEqual(system.aptCalls(), []);
  deepEqual(system.info, []);
  deepEqual(system.error, [
    "prerequisites: missing chromium wrk; run `sudo apt-get install -y chromium wrk`, then run again",
  ]);
});

Deno.test("root without apt-get: stops with one line naming the command", async () => {
  const system = fakeSystem({ db: {}, noAptGet: true });
  equal(await ensurePackages(["nginx"], system.deps(true)), false);
  deepEqual(system.aptCalls().map((c) => c.args), [["--version"]]);
  deepEqual(system.info, []);
  deepEqual(system.error, [
    `prerequisites: missing nginx and ${APT_GET} not found; install these Debian packages ` +
    "(`apt-get install -y nginx`), then run again",
  ]);
});

Deno.test("a failing apt-get update shows apt's output and the command, and installs nothing", async () => {
  const system = fakeSystem({
    db: {},
    apt: {
      update: {
        code: 100,
        stdout: "Err:1 http://deb.debian.org/debian bookworm InRelease\n",
        stderr:
          "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 42 (apt-get)\n",
      },
    },
  });
  equal(await ensurePackages(["firejail"], system.deps(true)), false);
  deepEqual(system.aptCalls().map((c) => c.args[0]), ["--version", "update"]);
  deepEqual(system.info, ["prerequisites: installing firejail (apt-get)"]);
  deepEqual(system.error, [
    "Err:1 http://deb.debian.org/debian bookworm InRelease\n" +
    "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 42 (apt-get)",
    "prerequisites: apt-get update failed (exit 100); run " +
    "`apt-get update && apt-get install -y firejail`, then run again",
  ]);
});

Deno.test("a failing apt-get install stops with the command", async () => {
  const system = fakeSystem({
    db: { openssl: INSTALLED },
    apt: { install: { code: 100, stdout: "", stderr: "E: Unable to locate package wrk\n" } },
  });
  equal(await ensurePackages(["openssl", "wrk"], system.deps(true)), false);
  deepEqual(system.error, [
    "E: Unable to locate package wrk",
    "prerequisites: apt-get install failed (exit 100); run " +
    "`apt-get update && apt-get install -y wrk`, then run again",
  ]);
});

Deno.test("a package still missing after apt-get is reported", async () => {
  const system = fakeSystem({ db: {}, broken: ["chromium"] });
  equal(await ensurePackages(["chromium", "nginx"], system.deps(true)), false);
  deepEqual(system.info, ["prerequisites: installing chromium nginx (apt-get)"]);
  deepEqual(system.error, [
    "prerequisites: chromium still not installed after apt-get; " +
    "run `apt-get install -y chromium` and read its output",
  ]);
});

Deno.test("without dpkg-query the check stops with one line", async () => {
  const system = fakeSystem({ db: {}, noDpkgQuery: true });
  equal(await ensurePackages(["openssl"], system.deps(true)), false);
  deepEqual(system.aptCalls(), []);
  deepEqual(system.error, [
    `prerequisites: cannot check the Debian packages openssl (${DPKG_QUERY} not found: ` +
    "not a Debian system?); install them, then run again",
  ]);
  await rejects(findMissing(system.deps(true).run, ["openssl"]), /not a Debian system/);
});

Deno.test("the command line: sets, package names, --check and usage errors", async (t) => {
  await t.step("set names expand, duplicates go, the default is the test set", () => {
    const test = PACKAGE_SETS.test.map((p) => p.name);
    deepEqual(expandNames([]), test);
    deepEqual(expandNames(["test", "bench", "wrk", "chromium"]), [...test, "wrk"]);
    deepEqual(expandNames(["zip"]), ["zip"]);
  });

  await t.step("--check reports each package and installs nothing", async () => {
    const system = fakeSystem({ db: { chromium: INSTALLED, apache2: CONFIG_FILES } });
    equal(await main(["--check", "chromium", "apache2", "wrk"], system.deps(true)), 1);
    deepEqual(system.info, ["chromium installed", "apache2 missing", "wrk missing"]);
    deepEqual(system.aptCalls(), []);
    const all = fakeSystem({ db: { wrk: INSTALLED } });
    equal(await main(["--check", "bench"], all.deps(true)), 0);
    deepEqual(all.info, ["wrk installed"]);
  });

  await t.step("an option-like or bad name is refused before anything runs", async () => {
    for (const args of [["--", "-oAPT::Foo=1"], ["Chromium"], ["--verbose"]]) {
      const system = fakeSystem({ db: {} });
      equal(await main(args, system.deps(true)), 2, args.join(" "));
      deepEqual(system.calls, []);
      match(system.error[0]!, /Usage: scripts\/prerequisites\.ts/);
    }
  });
});

/** The first command of `deno task test`: the prerequisites step, as deno.json runs it. */
async function prerequisitesStep(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const command: string = config.tasks.test.command;
  const first = command.split("&&")[0]!.trim().split(/\s+/);
  deepEqual(first.slice(0, 2), ["deno", "run"]);
  deepEqual(first.slice(-2), ["scripts/prerequisites.ts", "test"]);
  return first.slice(2, -2);
}

Deno.test("--check, with the test task's permissions, agrees with dpkg-query on this machine", async () => {
  const list = await new Deno.Command(DPKG_QUERY, {
    args: ["-W", "-f=${Package}\\t${Status}\\n"],
    stdout: "piped",
    stderr: "null",
  }).output();
  ok(list.success, "dpkg-query -W lists the packages");
  const known = new TextDecoder().decode(list.stdout).trimEnd().split("\n").map((line) =>
    line.split("\t") as [string, string]
  );
  // Every prerequisite, two installed packages of the machine, a package removed with its
  // configuration files kept when there is one, and a name dpkg never heard of.
  const sets = expandNames(["test", "bench"]);
  const others = (status: string, count: number) =>
    known.filter(([p, s]) => s === status && !sets.includes(p)).slice(0, count).map(([p]) => p);
  const names = [
    ...sets,
    ...others("install ok installed", 2),
    ...others("deinstall ok config-files", 1),
    `no-such-package-${crypto.randomUUID().slice(0, 8)}`,
  ];
  const direct = new Map<string, boolean>();
  for (const name of names) {
    const out = await new Deno.Command(DPKG_QUERY, {
      args: ["-W", "-f=${Status}", name],
      stdout: "piped",
      stderr: "null",
    }).output();
    direct.set(name, new TextDecoder().decode(out.stdout) === "install ok installed");
  }
  equal(direct.get(names.at(-1)!), false);

  const flags = await prerequisitesStep();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, "scripts/prerequisites.ts", "--check", ...names],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  deepEqual(
    stdout.trimEnd().split("\n"),
    names.map((n) => `${n} ${direct.get(n) ? "installed" : "missing"}`),
    `stdout:\n${stdout}\nstderr:\n${stderr}`,
  );
  equal(out.code, 1, "a missing package makes --check exit 1");
});

Deno.test("the README's prerequisites name every package of the test and bench sets", async () => {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const section = readme.match(/\n### Prerequisites\n([\s\S]*?)\n#/)?.[1];
  ok(section, "README.md has a ### Prerequisites section");
  const listed = [...section.matchAll(/^\| `([a-z0-9+.-]+)` \|/gm)].map((m) => m[1]);
  const sets = [...PACKAGE_SETS.test, ...PACKAGE_SETS.bench].map((p) => p.name);
  deepEqual(listed, sets);
});
