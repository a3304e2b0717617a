/**
 * Small tmpfs mounts for resource-fault tests: a log or instances folder that can be filled up or
 * remounted read-only, which file permissions cannot do for root. Needs root (`mount`); tests
 * that use it are skipped, with the reason, when `tmpfsUnavailable()` says why they cannot run.
 *
 * @module
 */

async function run(args: string[]): Promise<void> {
  const out = await new Deno.Command("/usr/bin/mount", { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`mount ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

let probed: Promise<string | undefined> | undefined;

/** Why no tmpfs can be mounted here (not root, no mount), or undefined when it can. */
export function tmpfsUnavailable(): Promise<string | undefined> {
  probed ??= (async () => {
    if (Deno.uid() !== 0) return "needs root to mount a tmpfs (run the tests as root)";
    const dir = await Deno.makeTempDir({ prefix: "tmpfs-probe-" });
    try {
      await run(["-t", "tmpfs", "-o", "size=16k", "tmpfs", dir]);
      await unmount(dir);
      return undefined;
    } catch (error) {
      return `cannot mount a tmpfs: ${error instanceof Error ? error.message : error}`;
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  })();
  return probed;
}

/** Mounts a tmpfs of `bytes` on the existing folder `dir`. */
export function mountTmpfs(dir: string, bytes: number): Promise<void> {
  return run(["-t", "tmpfs", "-o", `size=${bytes}`, "tmpfs", dir]);
}

/** Remounts the tmpfs on `dir` read-only or read-write. */
export function remount(dir: string, mode: "ro" | "rw"): Promise<void> {
  return run(["-o", `remount,${mode}`, dir]);
}

/** Unmounts `dir` (lazily, so that an open file cannot keep it mounted). */
export async function unmount(dir: string): Promise<void> {
  const out = await new Deno.Command("/usr/bin/umount", {
    args: ["-l", dir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`umount ${dir}: ${new TextDecoder().decode(out.stderr)}`);
}

/** Fills the file system of `dir` up to the last byte with `<dir>/filler`. */
export async function fill(dir: string): Promise<string> {
  const path = `${dir}/filler`;
  const file = await Deno.open(path, { write: true, create: true, append: true });
  const block = new Uint8Array(4096);
  try {
    for (let size = block.length; size >= 1;) {
      try {
        await file.write(block.subarray(0, size));
      } catch {
        size = Math.floor(size / 2);
      }
    }
  } finally {
    file.close();
  }
  return path;
}
