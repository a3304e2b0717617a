/**
 * SIGHUP, the Unix signal for "read your configuration again": while listening, each SIGHUP calls
 * `reload` (which logs its own outcome). Kept apart from `serve.ts`, which owns SIGINT and SIGTERM.
 * The launcher forwards SIGHUP to the server it runs.
 *
 * @module
 */

/** Calls `reload` on each SIGHUP until the returned function is called. */
export function reloadOnSighup(reload: () => Promise<unknown>): () => void {
  const listener = () => {
    // `reload` reports its outcome itself; a rejection here would end the process.
    reload().catch((error) => console.error("reload failed:", error));
  };
  Deno.addSignalListener("SIGHUP", listener);
  return () => Deno.removeSignalListener("SIGHUP", listener);
}
