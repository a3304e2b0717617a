/**
 * The DNS side of discovery: the forms of a `simulationServers` entry that name a DNS record,
 * the `nameServer` key, and the resolver the session server asks (`Deno.resolveDns`, the edge).
 *
 * - `dns:<name>:<port>`: every A and AAAA address of `<name>`, each at `<port>` (what a
 *   Kubernetes headless Service answers);
 * - `dns+srv:<name>`: the SRV records of `<name>`, each its own host and port (Consul, or a
 *   headless Service's named port `_<port>._tcp.<service>…`).
 *
 * An authoritative "no such name" or "no records of that type" is an answer (no servers); a
 * timeout or an unreachable server is a failure, which discovery treats differently.
 *
 * @module
 */

/** One entry of `simulationServers`, as written. */
export type ServerSource =
  | { readonly kind: "host"; readonly text: string }
  | { readonly kind: "dns"; readonly text: string; readonly name: string; readonly port: number }
  | { readonly kind: "srv"; readonly text: string; readonly name: string };

/** One SRV record, as discovery uses it. */
export interface ServiceRecord {
  readonly target: string;
  readonly port: number;
  readonly priority: number;
  readonly weight: number;
}

/** What discovery asks of DNS. */
export interface Resolver {
  /** Every A and AAAA address of `name`; [] when it has none. Rejects when DNS fails. */
  addresses(name: string, signal: AbortSignal): Promise<string[]>;
  /** The SRV records of `name`; [] when it has none. Rejects when DNS fails. */
  services(name: string, signal: AbortSignal): Promise<ServiceRecord[]>;
}

/** `nameServer` parsed: what `Deno.resolveDns` takes. */
export interface NameServer {
  readonly ipAddr: string;
  readonly port: number;
}

// Letters, digits, `-`, `_` (SRV labels) and dots; no empty label; 253 characters at most.
const DNS_NAME =
  /^(?=.{1,253}\.?$)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?$/;

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** Reads one entry of `simulationServers`; a string is the reason a `dns` form is wrong. */
export function parseServerSource(text: string): ServerSource | string {
  if (text.startsWith("dns+srv:")) {
    const name = text.slice("dns+srv:".length);
    if (!DNS_NAME.test(name)) {
      return `"dns+srv:" must be followed by a DNS name, got ${JSON.stringify(text)}`;
    }
    return { kind: "srv", text, name };
  }
  if (text.startsWith("dns:")) {
    const rest = text.slice("dns:".length);
    const colon = rest.lastIndexOf(":");
    const name = rest.slice(0, colon);
    const port = colon === -1 ? undefined : parsePort(rest.slice(colon + 1));
    if (colon === -1 || port === undefined || !DNS_NAME.test(name)) {
      return `must be "dns:<name>:<port>" with a DNS name and a port 1–65535, got ${
        JSON.stringify(text)
      }`;
    }
    return { kind: "dns", text, name, port };
  }
  return { kind: "host", text };
}

/** The config check of `simulationServers`' DNS forms (the host forms are checked elsewhere). */
export function serverSourcesCheck(value: unknown): string | undefined {
  if (!Array.isArray(value)) return undefined;
  for (const item of value) {
    if (typeof item !== "string") continue;
    const source = parseServerSource(item);
    if (typeof source === "string") return source;
  }
  return undefined;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function isIpv6(text: string): boolean {
  try {
    return new URL(`http://[${text}]/`).hostname !== "";
  } catch {
    return false;
  }
}

/**
 * Reads `nameServer`: `<IPv4>`, `<IPv4>:<port>`, `<IPv6>` or `[<IPv6>]:<port>`; port 53 when
 * none is given. A string is the reason it is wrong.
 */
export function parseNameServer(text: string): NameServer | string {
  const wrong =
    `must be an IP address with an optional port, e.g. "10.96.0.10" or "127.0.0.1:8600" or "[::1]:53", got ${
      JSON.stringify(text)
    }`;
  let host = text;
  let port = 53;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracket) {
    host = bracket[1]!;
    if (bracket[2] !== undefined) {
      const p = parsePort(bracket[2]);
      if (p === undefined) return wrong;
      port = p;
    }
    return isIpv6(host) ? { ipAddr: host, port } : wrong;
  }
  if (text.includes(".") && text.includes(":")) {
    const colon = text.lastIndexOf(":");
    host = text.slice(0, colon);
    const p = parsePort(text.slice(colon + 1));
    if (p === undefined) return wrong;
    port = p;
  }
  if (IPV4.test(host) || (!host.includes(".") && isIpv6(host))) return { ipAddr: host, port };
  return wrong;
}

/** The config check of `nameServer`. */
export function nameServerCheck(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const parsed = parseNameServer(value);
  return typeof parsed === "string" ? parsed : undefined;
}

/** Deno's name for an authoritative "no such name" or "no records of this type". */
const NOT_FOUND = "NotFound";

/**
 * The resolver over `Deno.resolveDns`: the given name server, or the system's resolver
 * (`/etc/resolv.conf`) without one.
 */
export function createDnsResolver(
  nameServer: NameServer | undefined,
  resolveDns: typeof Deno.resolveDns = Deno.resolveDns,
): Resolver {
  const options = (signal: AbortSignal) =>
    nameServer === undefined ? { signal } : { signal, nameServer };
  const orNone = async <T>(query: Promise<T[]>): Promise<T[]> => {
    try {
      return await query;
    } catch (error) {
      if (error instanceof Error && error.name === NOT_FOUND) return [];
      throw error;
    }
  };
  return {
    async addresses(name, signal) {
      const [v4, v6] = await Promise.all([
        orNone(resolveDns(name, "A", options(signal))),
        orNone(resolveDns(name, "AAAA", options(signal))),
      ]);
      return [...v4, ...v6];
    },
    async services(name, signal) {
      const records = await orNone(resolveDns(name, "SRV", options(signal)));
      return records.map(({ target, port, priority, weight }) => ({
        target,
        port,
        priority,
        weight,
      }));
    },
  };
}
