/**
 * The URL forms of the reference servers: `host:port` directly, or `host/port` behind a proxy that
 * rewrites `/port` to the port (Webots' Apache guide), with `ws`/`wss` and `http`/`https`.
 *
 * @module
 */

/** How a server is reached: its own TLS, and whether a port-rewriting proxy stands in front. */
export interface UrlMode {
  readonly ssl: boolean;
  readonly portRewrite: boolean;
}

function secure(mode: UrlMode): boolean {
  return mode.ssl || mode.portRewrite;
}

/** `GET /session` answer for a simulation server entry (`host:port` or `host/port`). */
export function simulationServerWsUrl(entry: string, mode: UrlMode): string {
  return `${secure(mode) ? "wss" : "ws"}://${entry}`;
}

/** URL the session server polls for a simulation server's load. */
export function loadUrl(entry: string, mode: UrlMode): string {
  return `${secure(mode) ? "https" : "http"}://${entry}/load`;
}

/** URL the session server asks a simulation server for a slot lease at (`POST`). */
export function leaseRequestUrl(entry: string, mode: UrlMode): string {
  return `${secure(mode) ? "https" : "http"}://${entry}/lease`;
}

/** `GET /session` answer for a slot lease: the stock client appends `/client` to it. */
export function leasedSessionUrl(entry: string, mode: UrlMode, token: string): string {
  return `${simulationServerWsUrl(entry, mode)}/lease/${token}`;
}

/** Link from the session monitor page to a simulation server's own monitor page. */
export function monitorUrl(entry: string, mode: UrlMode): string {
  return `${secure(mode) ? "https" : "http"}://${entry}/monitor`;
}

/** Where a server can be reached: `host:port`, or `host/port` with port rewriting. */
export function hostAndPort(host: string, port: number, mode: UrlMode): string {
  return `${host}${mode.portRewrite ? "/" : ":"}${port}`;
}

/** The URL of a Webots stream as sent in `webots:<url>`, e.g. `ws://localhost:2001`. */
export function webotsStreamUrl(host: string, port: number, mode: UrlMode): string {
  return `${secure(mode) ? "wss" : "ws"}://${hostAndPort(host, port, mode)}`;
}

/** The "Check it at" link of notification e-mails: the session server's own monitor page. */
export function checkUrl(server: string, port: number, mode: UrlMode): string {
  return `${secure(mode) ? "https" : "http"}://${hostAndPort(server, port, mode)}/monitor`;
}

/** The Host header without its port (`[::1]:2000` → `[::1]`, `example.com:2000` → `example.com`). */
export function hostWithoutPort(hostHeader: string): string {
  if (hostHeader.startsWith("[")) {
    const end = hostHeader.indexOf("]");
    return end === -1 ? hostHeader : hostHeader.slice(0, end + 1);
  }
  const colon = hostHeader.indexOf(":");
  return colon === -1 ? hostHeader : hostHeader.slice(0, colon);
}
