/**
 * Runs Debian's apache2 or nginx in the foreground on 127.0.0.1:443 with a config generated into
 * a temp folder (tests/e2e/proxy/configs.ts), and stops it by its pid.
 *
 * @module
 */
import { join } from "node:path";
import { startForegroundDaemon } from "../../helpers/foreground_daemon.ts";
import {
  apacheMainConfig,
  nginxMainConfig,
  type ProxyKind,
  type ProxyParams,
  renderShipped,
  shippedConfigPath,
} from "./configs.ts";

/** The port the proxies listen on: the portRewrite URL forms (`wss://host/<port>`) imply 443. */
export const PROXY_PORT = 443;

const BINARIES: Record<ProxyKind, string> = {
  apache: "/usr/sbin/apache2",
  nginx: "/usr/sbin/nginx",
};

/** A running proxy. */
export interface ProxyProcess {
  readonly pid: number;
  /** Its stdout/stderr and error log, for a failure message. */
  output(): Promise<string>;
  /** Its access log so far (one line per request, with `"<method> <path> HTTP/1.1" <status>`). */
  accessLog(): Promise<string>;
  /** SIGTERM (SIGKILL after `graceMs`), waits for the exit, removes the temp folder. */
  stop(graceMs?: number): Promise<Deno.CommandStatus>;
}

/** Throws a clear error unless 127.0.0.1:443 can be bound (the proxies need it). */
export function assertProxyPortFree(): void {
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ hostname: "127.0.0.1", port: PROXY_PORT });
  } catch (error) {
    throw new Error(
      `port ${PROXY_PORT} on 127.0.0.1 is not free (${error}): this test runs Apache and nginx ` +
        `there because the portRewrite URL forms (wss://localhost/<port>) carry no port; stop ` +
        `whatever listens on ${PROXY_PORT} (e.g. a system apache2/nginx) and run it again`,
    );
  }
  listener.close();
}

export { makeCertificate } from "../../helpers/cert.ts";

/** Writes the configs for `kind` into `dir` and returns the command line that runs it. */
async function writeConfig(kind: ProxyKind, dir: string, params: ProxyParams): Promise<string[]> {
  const shipped = await Deno.readTextFile(shippedConfigPath(kind));
  const site = join(dir, `webots-${kind}.conf`);
  await Deno.writeTextFile(site, renderShipped(kind, shipped, params));
  const main = join(dir, `${kind}-main.conf`);
  if (kind === "apache") {
    // Apache's workers run as www-data and open files under the runtime folder.
    await Deno.chmod(dir, 0o755);
    await Deno.mkdir(join(dir, "run"));
    await Deno.mkdir(join(dir, "www"));
    await Deno.writeTextFile(main, apacheMainConfig(dir, site));
    return [BINARIES.apache, "-f", main, "-d", dir, "-DFOREGROUND"];
  }
  await Deno.writeTextFile(main, nginxMainConfig(dir, site));
  return [BINARIES.nginx, "-c", main, "-p", dir, "-e", join(dir, "error.log"), "-g", "daemon off;"];
}

/**
 * Starts `kind` with its configs and runtime files in a new temp folder and resolves once
 * `ready()` holds; throws with the proxy's output when it exits or is not ready within
 * `timeoutMs`. `stop()` also removes the folder.
 */
export async function startProxy(
  kind: ProxyKind,
  params: ProxyParams,
  ready: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<ProxyProcess> {
  const dir = await Deno.makeTempDir({ prefix: `proxy-${kind}-` });
  let command: string[];
  try {
    command = await writeConfig(kind, dir, params);
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  const daemon = await startForegroundDaemon({
    name: kind,
    dir,
    command,
    install: "apt-get install -y apache2 nginx",
    ready,
    timeoutMs,
  });
  const accessLog = () => Deno.readTextFile(join(dir, "access.log"));
  return { ...daemon, accessLog };
}
