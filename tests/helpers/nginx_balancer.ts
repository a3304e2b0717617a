/**
 * A real nginx as an HTTP load balancer in front of several servers on loopback: one `upstream`
 * (round robin, nginx's default), listening on a free loopback port outside the ephemeral range,
 * with every runtime file in a temp folder. Its access log names the upstream that served each
 * request, so a test can count the split. Stopped by its pid.
 *
 * @module
 */
import { join } from "node:path";
import { quietPortRange } from "./quiet_ports.ts";
import { startForegroundDaemon } from "./foreground_daemon.ts";

const NGINX = "/usr/sbin/nginx";

/** A running balancer. */
export interface NginxBalancer {
  readonly pid: number;
  /** `http://127.0.0.1:<port>`. */
  readonly baseUrl: string;
  /** One entry per request logged so far: the path and the upstream address that answered. */
  requests(): Promise<{ path: string; upstream: string; status: number }[]>;
  /** Its output and error log, for a failure message. */
  output(): Promise<string>;
  /** SIGTERM (SIGKILL after 10 s), waits for the exit, removes the temp folder; idempotent. */
  stop(): Promise<Deno.CommandStatus>;
}

/** The whole nginx.conf: a round-robin upstream of `upstreams` (host:port) on `port`. */
export function balancerConfig(dir: string, port: number, upstreams: readonly string[]): string {
  const servers = upstreams.map((u) => `        server ${u};`).join("\n");
  return `pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_processes 1;
events {
    worker_connections 2048;
}
http {
    log_format balanced '$request_uri $upstream_addr $status';
    access_log ${dir}/access.log balanced;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    upstream sessions {
${servers}
    }
    server {
        listen 127.0.0.1:${port};
        location / {
            proxy_pass http://sessions;
        }
    }
}
`;
}

/**
 * Starts nginx balancing over `upstreams` and resolves once it forwards `readyPath`; throws with
 * nginx's output (and leaves nothing behind) when it exits or does not forward within 20 s. The
 * port is free when probed, but another process may bind it before nginx does: then nginx is
 * started again on another port, at most 5 times.
 */
export async function startNginxBalancer(
  upstreams: readonly string[],
  readyPath: string,
): Promise<NginxBalancer> {
  for (let attempt = 1;; attempt++) {
    try {
      return await startOnPort(upstreams, readyPath, quietPortRange(0));
    } catch (error) {
      if (attempt >= 5 || !String(error).includes("Address already in use")) throw error;
    }
  }
}

async function startOnPort(
  upstreams: readonly string[],
  readyPath: string,
  port: number,
): Promise<NginxBalancer> {
  const dir = await Deno.makeTempDir({ prefix: "nginx-balancer-" });
  const configFile = join(dir, "nginx.conf");
  try {
    await Deno.writeTextFile(configFile, balancerConfig(dir, port, upstreams));
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  const baseUrl = `http://127.0.0.1:${port}`;
  const daemon = await startForegroundDaemon({
    name: "nginx",
    dir,
    command: [
      NGINX,
      "-c",
      configFile,
      "-p",
      dir,
      "-e",
      join(dir, "error.log"),
      "-g",
      "daemon off;",
    ],
    install: "apt-get install -y nginx",
    async ready() {
      try {
        const response = await fetch(`${baseUrl}${readyPath}`);
        await response.body?.cancel();
        return response.status === 200;
      } catch {
        return false; // Not listening yet.
      }
    },
  });
  return {
    pid: daemon.pid,
    baseUrl,
    output: daemon.output,
    stop: () => daemon.stop(),
    async requests() {
      const log = await Deno.readTextFile(join(dir, "access.log"));
      return log.split("\n").filter((l) => l.trim() !== "").map((line) => {
        const [path = "", upstream = "", code = ""] = line.split(" ");
        return { path, upstream, status: Number(code) };
      });
    },
  };
}
