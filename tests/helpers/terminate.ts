/**
 * Ending a child process the way the tests' daemons and the chaos campaign's processes are ended:
 * SIGTERM, then SIGKILL if it has not exited within a grace period.
 *
 * @module
 */

/**
 * Sends `child` SIGTERM and, if `exited` has not resolved within `graceMs`, SIGKILL; resolves
 * with `exited`'s value once it has. Signalling a child that already exited does nothing.
 */
export async function terminate<T>(
  child: Deno.ChildProcess,
  exited: Promise<T>,
  graceMs: number,
): Promise<T> {
  const signal = (name: Deno.Signal) => {
    try {
      child.kill(name);
    } catch {
      // Exited meanwhile.
    }
  };
  signal("SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      signal("SIGKILL");
      resolve();
    }, graceMs);
  });
  await Promise.race([exited, killed]);
  clearTimeout(timer);
  return await exited;
}
