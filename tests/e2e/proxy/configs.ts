/**
 * The proxy configs the end-to-end test runs: the shipped docs/apache.conf and docs/nginx.conf
 * with only their parameters replaced (allowed ports, certificate paths, host name, listen
 * address), wrapped in a minimal main config whose every runtime file lives in a temp folder.
 * The rules themselves are the shipped ones, so the test exercises what operators install.
 *
 * @module
 */
import { join } from "node:path";
import { ROOT } from "../../helpers/server_process.ts";

/** The two proxies the test runs. */
export type ProxyKind = "apache" | "nginx";

/** The port alternation of the shipped configs: 1999, 2000 and 2001–2100. */
export const SHIPPED_PORTS = "1999|2000|20[0-9][0-9]|2100";
/** The public host name of the shipped configs. */
export const SHIPPED_HOST = "webots.example.com";
const SHIPPED_CERT = `/etc/letsencrypt/live/${SHIPPED_HOST}/fullchain.pem`;
const SHIPPED_KEY = `/etc/letsencrypt/live/${SHIPPED_HOST}/privkey.pem`;
const SHIPPED_NGINX_LISTEN = "    listen 443 ssl;\n    listen [::]:443 ssl;\n";

/** What the test substitutes into a shipped config. */
export interface ProxyParams {
  /** The only ports the proxy may forward to. */
  readonly ports: readonly number[];
  readonly certFile: string;
  readonly keyFile: string;
}

/** The shipped config file of `kind`. */
export function shippedConfigPath(kind: ProxyKind): string {
  return join(ROOT, "docs", `${kind}.conf`);
}

function replaceEvery(text: string, from: string, to: string, file: string): string {
  if (!text.includes(from)) {
    throw new Error(
      `${file} no longer contains ${JSON.stringify(from)}: update ${import.meta.url}`,
    );
  }
  return text.replaceAll(from, to);
}

/** The shipped config of `kind` for host `localhost` on 127.0.0.1:443 with `params`. */
export function renderShipped(kind: ProxyKind, shipped: string, params: ProxyParams): string {
  const file = `docs/${kind}.conf`;
  let text = shipped;
  text = replaceEvery(text, SHIPPED_PORTS, params.ports.join("|"), file);
  text = replaceEvery(text, SHIPPED_CERT, params.certFile, file);
  text = replaceEvery(text, SHIPPED_KEY, params.keyFile, file);
  text = replaceEvery(text, SHIPPED_HOST, "localhost", file);
  if (kind === "nginx") {
    // Tests listen on loopback only.
    text = replaceEvery(text, SHIPPED_NGINX_LISTEN, "    listen 127.0.0.1:443 ssl;\n", file);
  }
  return text;
}

// Debian builds mod_unixd and mod_log_config in (`apache2 -l`); these are the shared ones.
const APACHE_MODULES = [
  ["mpm_event_module", "mod_mpm_event.so"],
  ["authz_core_module", "mod_authz_core.so"],
  ["ssl_module", "mod_ssl.so"],
  ["headers_module", "mod_headers.so"],
  ["rewrite_module", "mod_rewrite.so"],
  ["proxy_module", "mod_proxy.so"],
  ["proxy_http_module", "mod_proxy_http.so"],
  ["proxy_wstunnel_module", "mod_proxy_wstunnel.so"],
];

/**
 * A whole apache2.conf for `apache2 -f <it> -DFOREGROUND`: the modules the shipped vhost needs,
 * every runtime path in `dir`, `Listen 127.0.0.1:443`, and the rendered vhost included.
 */
export function apacheMainConfig(dir: string, vhostFile: string): string {
  const modules = APACHE_MODULES
    .map(([name, file]) => `LoadModule ${name} /usr/lib/apache2/modules/${file}`)
    .join("\n");
  return `ServerRoot "${dir}"
DefaultRuntimeDir "${dir}/run"
PidFile "${dir}/run/apache2.pid"
Mutex file:${dir}/run default
ErrorLog "${dir}/error.log"
LogLevel warn
${modules}
User www-data
Group www-data
ServerName localhost
DocumentRoot "${dir}/www"
LogFormat "%h \\"%r\\" %>s %b" brief
CustomLog "${dir}/access.log" brief
Listen 127.0.0.1:443
Include "${vhostFile}"
`;
}

/**
 * A whole nginx.conf for `nginx -c <it> -g 'daemon off;'`: every runtime path in `dir`, and the
 * rendered shipped file included in the http context (where its map belongs).
 */
export function nginxMainConfig(dir: string, serverFile: string): string {
  return `pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_processes 1;
events {
    worker_connections 256;
}
http {
    access_log ${dir}/access.log;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    include ${serverFile};
}
`;
}
