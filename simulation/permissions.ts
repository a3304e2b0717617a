/**
 * The simulation server's permission flags, derived from its config.
 *
 * Run access is granted to exactly: the Webots binary of each installation (`webotsHomes`, else
 * `webotsHome`), firejail (only with `sandbox: "firejail"`),
 * `nvidia-smi`, `/usr/bin/kill` (Deno refuses `Deno.kill(-pgid)` without unscoped `--allow-run`,
 * and Webots' controllers must die with it, so the process group is signalled through `kill`) and
 * `/usr/bin/cat` (Deno refuses to read `/proc` without `--allow-all`; `cat` reads `/proc/net/dev`
 * for the network figures, and `/proc/<pid>/stat` and the boot id to prove a process' identity),
 * `/usr/bin/ps` (lists the server user's processes) and `/usr/bin/grep` (finds those whose
 * `/proc/<pid>/environ` carries a run's marker), so that every descendant of a run ends with it
 * (see `run_processes.ts`).
 * Network access is not scoped: project downloads go to the
 * site a client names (when a key for it exists) and to the GitHub archive host.
 *
 * @module
 */
import { join } from "node:path";
import type { SimulationConfig } from "./config.ts";
import { versionFile } from "./webots_release.ts";

/** The programs the simulation server may start. */
export function allowedPrograms(config: SimulationConfig): string[] {
  const programs = [
    ...webotsHomes(config).map((home) => join(home, "webots")),
    config.nvidiaSmiPath,
    "/usr/bin/kill",
    "/usr/bin/cat",
    "/usr/bin/ps",
    "/usr/bin/grep",
  ];
  if (config.sandbox === "firejail") programs.push(config.firejailPath);
  return programs;
}

/** The installation folders: every `webotsHomes` folder, else `webotsHome`. */
function webotsHomes(config: SimulationConfig): string[] {
  return config.webotsHomes === undefined ? [config.webotsHome] : Object.values(config.webotsHomes);
}

/** `deno run` flags that add to the `simulation` permission set of deno.json. */
export function simulationPermissions(
  config: SimulationConfig,
  context: { root: string; configFile: string },
): string[] {
  const read = [
    context.root,
    context.configFile,
    config.logDir,
    config.projectsDir,
    config.keyDir,
    config.instancesDir,
    config.webotsHome,
    "/etc/os-release",
    ...config.fileRoots,
    // Each installation's binary (is it installed?) and release (which command line?).
    ...webotsHomes(config).flatMap((home) => [join(home, "webots"), versionFile(home)]),
  ];
  if (config.sslCertificate) read.push(config.sslCertificate);
  if (config.sslKey) read.push(config.sslKey);
  if (config.leaseSecretFile) read.push(config.leaseSecretFile);
  const write = [config.logDir, config.instancesDir];
  return [
    `--allow-read=${read.join(",")}`,
    `--allow-write=${write.join(",")}`,
    `--allow-run=${allowedPrograms(config).join(",")}`,
    "--allow-net",
  ];
}
