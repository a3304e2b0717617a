/**
 * The Debian packages the test suite and the benchmarks run, checked before they start and
 * installed when possible, the way `playwright install --with-deps` does it:
 *
 * - installed means `dpkg-query -W -f='${Status}' <pkg>` says `install ok installed` (or
 *   `hold ok installed`); `deinstall ok config-files` (removed, configuration kept) and a name
 *   dpkg never heard of are missing;
 * - missing packages, run as root with apt-get present: one line
 *   `prerequisites: installing <pkgs> (apt-get)`, `apt-get update` once, then
 *   `apt-get install -y --no-install-recommends <pkgs>`; apt's output is shown only when it fails;
 *   the packages are checked again afterwards;
 * - otherwise (not root, no apt-get, apt-get failed): one line naming the exact command to run,
 *   and a non-zero exit so that no test runs.
 *
 * ```sh
 * deno run --allow-run=/usr/bin/dpkg-query,/usr/bin/apt-get --allow-sys=uid \
 *   scripts/prerequisites.ts [--check] [SET|PACKAGE ...]   # SET: test (default) or bench
 * ```
 *
 * `--check` only reports (`<pkg> installed` or `<pkg> missing`, one per line) and never installs.
 *
 * @module
 */
import { parseArgs } from "node:util";

/** A Debian package and the reason it is needed (the README lists both). */
export interface Prerequisite {
  readonly name: string;
  readonly why: string;
}

/** The package sets, by the task that needs them. */
export const PACKAGE_SETS: Readonly<Record<"test" | "bench", readonly Prerequisite[]>> = {
  test: [
    // Installed without its recommends: checked on a minimal bookworm, playwright-core drives it
    // headless and text renders (DejaVu comes with its dependencies).
    { name: "chromium", why: "the browser tests drive `/usr/bin/chromium` with playwright-core" },
    { name: "openssl", why: "the test certificates (and `deno task cert`)" },
    {
      name: "apache2",
      why: "the reverse-proxy test runs `/usr/sbin/apache2` with docs/apache.conf",
    },
    { name: "nginx", why: "the reverse-proxy test runs `/usr/sbin/nginx` with docs/nginx.conf" },
    { name: "firejail", why: "the sandbox tests run Webots' stand-in in `/usr/bin/firejail`" },
    {
      name: "procps",
      why: "`/usr/bin/kill` and `/usr/bin/ps`, with which the simulation server ends a Webots run",
    },
    {
      name: "prometheus",
      why: "`/usr/bin/promtool check metrics` checks both servers' `/metrics`",
    },
    {
      name: "systemd",
      why: "`/usr/bin/systemd-analyze verify` and `security --offline` check docs/systemd/'s units",
    },
    {
      name: "xvfb",
      why: "`systemd-analyze verify` finds `/usr/bin/Xvfb`, the virtual display unit's program",
    },
    {
      name: "dnsmasq-base",
      why: "the DNS discovery tests serve their records with `/usr/sbin/dnsmasq` on loopback",
    },
  ],
  bench: [
    { name: "wrk", why: "`deno task bench` loads the servers with it" },
  ],
};

/** The set names, for the command line. */
export type SetName = keyof typeof PACKAGE_SETS;

/** Where the two Debian tools are; absolute so that `--allow-run` names exactly them. */
export const DPKG_QUERY = "/usr/bin/dpkg-query";
export const APT_GET = "/usr/bin/apt-get";

/** What a finished command gave back. */
export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a program to completion; throws `Deno.errors.NotFound` when it does not exist.
 * Injected so that the logic can be tested with dpkg-query's and apt-get's real outputs.
 */
export type Runner = (
  program: string,
  args: readonly string[],
  env?: Readonly<Record<string, string>>,
) => Promise<RunResult>;

/** The real runner: no stdin, both outputs captured. */
export const runCommand: Runner = async (program, args, env) => {
  const out = await new Deno.Command(program, {
    args: [...args],
    ...(env ? { env: { ...env } } : {}),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
};

/** Debian's rule for package names; it also keeps options out of apt-get's command line. */
const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;

/** True when `name` is a valid Debian package name. */
export function isPackageName(name: string): boolean {
  return PACKAGE_NAME.test(name);
}

/**
 * True when a `${Status}` line says the package is installed and healthy: `install ok installed`,
 * or `hold ok installed` (held at its version, but there). Everything else is missing, notably
 * `deinstall ok config-files` (removed, configuration kept), `unknown ok not-installed` and
 * half-installed states.
 */
export function isInstalledStatus(status: string): boolean {
  return status === "install ok installed" || status === "hold ok installed";
}

/** Raised when the packages cannot be checked at all (no dpkg-query: not a Debian system). */
export class PrerequisiteError extends Error {
  override name = "PrerequisiteError";
}

/**
 * The packages of `names` that are not installed, in the order given. dpkg-query exits 1 with
 * `no packages found matching <pkg>` for a name it never heard of: that package is missing.
 */
export async function findMissing(run: Runner, names: readonly string[]): Promise<string[]> {
  const states = await Promise.all(names.map(async (name) => {
    let out: RunResult;
    try {
      out = await run(DPKG_QUERY, ["-W", "-f=${Status}\\n", name]);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new PrerequisiteError(`${DPKG_QUERY} not found: not a Debian system?`, {
          cause: error,
        });
      }
      throw error;
    }
    // One line per architecture of a multi-arch package; any installed one will do.
    const installed = out.code === 0 &&
      out.stdout.split("\n").some((line) => isInstalledStatus(line.trim()));
    return { name, installed };
  }));
  return states.filter((s) => !s.installed).map((s) => s.name);
}

/** The command a person runs to install `missing` (with sudo when not root). */
export function installCommand(missing: readonly string[], root: boolean): string {
  return `${root ? "" : "sudo "}apt-get install -y ${missing.join(" ")}`;
}

/** What `ensurePackages` needs from its surroundings. */
export interface EnsureDeps {
  readonly run: Runner;
  /** Whether this process runs as root (`Deno.uid() === 0`). */
  readonly root: boolean;
  /** Progress lines (stdout). */
  readonly info: (line: string) => void;
  /** Failure lines and apt's output on failure (stderr). */
  readonly error: (line: string) => void;
}

/** apt-get without questions, and waiting for a lock held by another apt rather than failing. */
const APT_ENV = { DEBIAN_FRONTEND: "noninteractive" };
const APT_OPTIONS = ["-q", "-o", "DPkg::Lock::Timeout=120"];

/** How many of apt's last output lines a failure shows. */
const APT_TAIL_LINES = 30;

function tail(out: RunResult): string {
  const lines = `${out.stdout}${out.stderr}`.trimEnd().split("\n");
  return lines.slice(-APT_TAIL_LINES).join("\n");
}

/**
 * Makes sure every package of `names` is installed, installing the missing ones with apt-get
 * when root; returns true when all are installed at the end. Prints at most one line when it
 * installs, one line when it cannot, and one short line when nothing is missing.
 */
export async function ensurePackages(names: readonly string[], deps: EnsureDeps): Promise<boolean> {
  let missing: string[];
  try {
    missing = await findMissing(deps.run, names);
  } catch (error) {
    if (!(error instanceof PrerequisiteError)) throw error;
    deps.error(
      `prerequisites: cannot check the Debian packages ${names.join(" ")} (${error.message}); ` +
        `install them, then run again`,
    );
    return false;
  }
  if (missing.length === 0) {
    deps.info(`prerequisites: ${names.join(" ")} installed`);
    return true;
  }
  const command = installCommand(missing, deps.root);
  if (!deps.root) {
    deps.error(`prerequisites: missing ${missing.join(" ")}; run \`${command}\`, then run again`);
    return false;
  }
  try {
    await deps.run(APT_GET, ["--version"]);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    deps.error(
      `prerequisites: missing ${missing.join(" ")} and ${APT_GET} not found; ` +
        `install these Debian packages (\`${command}\`), then run again`,
    );
    return false;
  }

  deps.info(`prerequisites: installing ${missing.join(" ")} (apt-get)`);
  const steps: [string, string[]][] = [
    ["apt-get update", ["update", ...APT_OPTIONS]],
    ["apt-get install", [
      "install",
      "-y",
      "--no-install-recommends",
      ...APT_OPTIONS,
      ...missing,
    ]],
  ];
  for (const [what, args] of steps) {
    const out = await deps.run(APT_GET, args, APT_ENV);
    if (out.code !== 0) {
      deps.error(tail(out));
      deps.error(
        `prerequisites: ${what} failed (exit ${out.code}); run \`apt-get update && ${command}\`, ` +
          `then run again`,
      );
      return false;
    }
  }

  const still = await findMissing(deps.run, missing);
  if (still.length > 0) {
    deps.error(
      `prerequisites: ${still.join(" ")} still not installed after apt-get; ` +
        `run \`${installCommand(still, true)}\` and read its output`,
    );
    return false;
  }
  return true;
}

/** The sets and their packages with the reason for each, for `--help`. */
function describeSets(): string {
  return Object.entries(PACKAGE_SETS).map(([set, packages]) =>
    `${set}:\n${packages.map((p) => `  ${p.name.padEnd(12)} ${p.why}`).join("\n")}`
  ).join("\n");
}

/** Usage of the script. */
export const USAGE = `Usage: scripts/prerequisites.ts [--check] [SET|PACKAGE ...]

Checks that the Debian packages of each SET (default: test), or the PACKAGEs named, are installed,
and installs the missing ones with apt-get when run as root.
  --check   only report "<package> installed" or "<package> missing", one per line; exit 1 when
            one is missing

${describeSets()}`;

/** The package names that the positional arguments (set names or package names) stand for. */
export function expandNames(args: readonly string[]): string[] {
  const names: string[] = [];
  for (const arg of args.length > 0 ? args : ["test"]) {
    const set = Object.hasOwn(PACKAGE_SETS, arg) ? PACKAGE_SETS[arg as SetName] : undefined;
    if (set) names.push(...set.map((p) => p.name));
    else if (isPackageName(arg)) names.push(arg);
    else throw new TypeError(`not a package set nor a Debian package name: "${arg}"`);
  }
  return [...new Set(names)];
}

/** The command line: returns the exit status (0 all installed, 1 not, 2 usage). */
export async function main(args: readonly string[], deps: EnsureDeps): Promise<number> {
  let names: string[];
  let check: boolean;
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        check: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
    if (values.help) {
      deps.info(USAGE);
      return 0;
    }
    check = values.check;
    names = expandNames(positionals);
  } catch (error) {
    deps.error(`${error instanceof Error ? error.message : error}\n\n${USAGE}`);
    return 2;
  }
  if (!check) return await ensurePackages(names, deps) ? 0 : 1;
  let missing: string[];
  try {
    missing = await findMissing(deps.run, names);
  } catch (error) {
    if (!(error instanceof PrerequisiteError)) throw error;
    deps.error(`prerequisites: ${error.message}`);
    return 2;
  }
  for (const name of names) {
    deps.info(`${name} ${missing.includes(name) ? "missing" : "installed"}`);
  }
  return missing.length === 0 ? 0 : 1;
}

if (import.meta.main) {
  Deno.exit(
    await main(Deno.args, {
      run: runCommand,
      root: Deno.uid() === 0,
      info: (line) => console.log(line),
      error: (line) => console.error(line),
    }),
  );
}
