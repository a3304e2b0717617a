/**
 * The session server's permission flags, derived from its config.
 *
 * Network access is not scoped: the server connects to the simulation servers and the mail
 * server the config names, and nodemailer connects to resolved addresses, which a host list
 * cannot foresee. Reading is limited to the code, the config and the certificate; writing to the
 * log folder. The session server runs no program at all.
 *
 * @module
 */
import type { SessionConfig } from "./config.ts";

/** `deno run` flags that add to the `session` permission set of deno.json. */
export function sessionPermissions(
  config: SessionConfig,
  context: { root: string; configFile: string },
): string[] {
  const read = [context.root, context.configFile, config.logDir];
  if (config.sslCertificate) read.push(config.sslCertificate);
  if (config.sslKey) read.push(config.sslKey);
  if (config.leaseSecretFile) read.push(config.leaseSecretFile);
  return [`--allow-read=${read.join(",")}`, `--allow-write=${config.logDir}`, "--allow-net"];
}
