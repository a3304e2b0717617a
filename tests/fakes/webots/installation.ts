/**
 * Stand-in Webots installations for tests: a folder with `resources/version.txt` naming the
 * release and a `webots` that runs the stand-in of this folder claiming that release (also when
 * a test removes or changes the version.txt, as a real Webots would not care).
 *
 * @module
 */
import { join } from "node:path";

/** The stand-in Webots script. */
export const FAKE_WEBOTS: string = join(import.meta.dirname ?? ".", "webots");

/** Creates `<dir>` as an installation of `release` (the version.txt line may add a revision). */
export async function writeInstallation(
  dir: string,
  release: string,
  versionLine: string = release,
): Promise<string> {
  await Deno.mkdir(join(dir, "resources"), { recursive: true });
  await Deno.writeTextFile(join(dir, "resources", "version.txt"), `${versionLine}\n`);
  const binary = join(dir, "webots");
  // exec: the stand-in takes the wrapper's pid, so signals and process groups are Webots' own.
  await Deno.writeTextFile(
    binary,
    `#!/bin/sh\nFAKE_WEBOTS_RELEASE='${release}' exec '${FAKE_WEBOTS}' "$@"\n`,
  );
  await Deno.chmod(binary, 0o755);
  return dir;
}
