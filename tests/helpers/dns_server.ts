/**
 * A real authoritative DNS server for the discovery tests: dnsmasq (Debian's `dnsmasq-base`) on
 * 127.0.0.1 and a free UDP/TCP port (or the address and port given), answering only the records the test gives it (no upstream,
 * no `/etc/hosts`, no cache). A/AAAA records come from a hosts file that dnsmasq re-reads on
 * SIGHUP, as an operator would change them; SRV records are options, so changing them restarts
 * dnsmasq on the same port (a short outage the tests can also use on purpose).
 *
 * @module
 */
import { join } from "node:path";
import { eventually } from "./simulation_fixture.ts";
import { createDnsResolver } from "../../session/dns.ts";

/** The program; absolute so that a test's failure names exactly what is missing. */
export const DNSMASQ = "/usr/sbin/dnsmasq";

/** One SRV record. */
export interface SrvRecord {
  readonly name: string;
  readonly target: string;
  readonly port: number;
  readonly priority?: number;
  readonly weight?: number;
}

/** The records served: names to addresses (A and AAAA), and SRV records. */
export interface Zone {
  readonly hosts?: Readonly<Record<string, readonly string[]>>;
  readonly services?: readonly SrvRecord[];
}

/** A running dnsmasq. */
export interface DnsServer {
  /** `<address>:<port>`: the session server's `nameServer`. */
  readonly nameServer: string;
  readonly port: number;
  /** Serves these A/AAAA records from now on (SIGHUP), once dnsmasq answers with them. */
  setHosts(hosts: Readonly<Record<string, readonly string[]>>): Promise<void>;
  /** Serves these SRV records from now on (dnsmasq restarted on the same port). */
  setServices(services: readonly SrvRecord[]): Promise<void>;
  /** Stops answering (the process ends; `start` brings it back with the same records). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops dnsmasq and removes its folder. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function hostsText(hosts: Readonly<Record<string, readonly string[]>>): string {
  return Object.entries(hosts).flatMap(([name, addresses]) =>
    addresses.map((address) => `${address} ${name}\n`)
  ).join("");
}

function confText(services: readonly SrvRecord[]): string {
  return services.map((s) =>
    `srv-host=${s.name},${s.target},${s.port},${s.priority ?? 0},${s.weight ?? 0}\n`
  ).join("");
}

/** A TCP port free on 127.0.0.1 right now (dnsmasq takes it for UDP too; retried if taken). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** What dnsmasq answers for `name`'s A and AAAA records, sorted ([] for none). */
async function addressesOf(
  name: string,
  port: number,
  address = "127.0.0.1",
): Promise<string[]> {
  const resolver = createDnsResolver({ ipAddr: address, port });
  return (await resolver.addresses(name, new AbortController().signal)).sort();
}

/** Where dnsmasq listens: 127.0.0.1 and a free port unless told. */
export interface DnsListen {
  readonly address?: string;
  /** A fixed port (e.g. 53, for a resolv.conf, which names no port; needs root). */
  readonly port?: number;
}

/** Starts dnsmasq serving `zone`. */
export async function startDnsServer(zone: Zone = {}, listen: DnsListen = {}): Promise<DnsServer> {
  const address = listen.address ?? "127.0.0.1";
  const dir = await Deno.makeTempDir({ prefix: "dns-test-" });
  // dnsmasq started as root reads its files as `nobody`.
  await Deno.chmod(dir, 0o755);
  const hostsFile = join(dir, "hosts");
  const confFile = join(dir, "dnsmasq.conf");
  const write = async (file: string, text: string) => {
    await Deno.writeTextFile(file, text);
    await Deno.chmod(file, 0o644);
  };
  await write(hostsFile, hostsText(zone.hosts ?? {}));
  await write(confFile, confText(zone.services ?? []));
  let hosts = zone.hosts ?? {};
  let port = listen.port ?? 0;
  let child: Deno.ChildProcess | undefined;
  let stderr = "";

  const spawn = async (onPort: number): Promise<boolean> => {
    const process = new Deno.Command(DNSMASQ, {
      args: [
        "--keep-in-foreground",
        `--conf-file=${confFile}`,
        `--port=${onPort}`,
        `--listen-address=${address}`,
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        `--addn-hosts=${hostsFile}`,
        "--cache-size=0",
        "--local-ttl=0",
        "--pid-file=",
        "--log-facility=-",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const text = new Response(process.stderr).text().then((t) => (stderr = t));
    // Answering means ready; an exit means the port was taken (or dnsmasq refused its options).
    const exited = process.status.then(() => false);
    const answering = (async () => {
      for (let i = 0; i < 200; i++) {
        try {
          await Deno.resolveDns("readiness-probe.test", "A", {
            nameServer: { ipAddr: address, port: onPort },
            signal: AbortSignal.timeout(100),
          });
          return true;
        } catch (error) {
          if (error instanceof Error && error.name === "NotFound") return true;
          await new Promise((r) => setTimeout(r, 25));
        }
      }
      return false;
    })();
    const ok = await Promise.race([answering, exited]);
    if (!ok) {
      try {
        process.kill("SIGKILL");
      } catch {
        // Already ended.
      }
      await process.status;
      await text;
      return false;
    }
    child = process;
    return true;
  };

  const start = async () => {
    if (child !== undefined) return;
    for (let attempt = 0; attempt < 5; attempt++) {
      const candidate = port === 0 ? freePort() : port;
      if (await spawn(candidate)) {
        port = candidate;
        return;
      }
      if (port !== 0) await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${DNSMASQ} did not start: ${stderr.trim()}`);
  };
  const stop = async () => {
    const process = child;
    if (process === undefined) return;
    child = undefined;
    process.kill("SIGTERM");
    await process.status;
  };
  const close = async () => {
    await stop();
    await Deno.remove(dir, { recursive: true });
  };

  try {
    await start();
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  return {
    get nameServer() {
      return `${address}:${port}`;
    },
    get port() {
      return port;
    },
    async setHosts(next) {
      const names = new Set([...Object.keys(hosts), ...Object.keys(next)]);
      hosts = next;
      await write(hostsFile, hostsText(next));
      child?.kill("SIGHUP");
      for (const name of names) {
        const addresses = [...next[name] ?? []].sort();
        await eventually(
          async () =>
            JSON.stringify(await addressesOf(name, port, address)) === JSON.stringify(addresses),
          10_000,
          `dnsmasq answers ${name} with [${addresses.join(", ")}]`,
        );
      }
    },
    async setServices(services) {
      await write(confFile, confText(services));
      await stop();
      await start();
    },
    stop,
    start,
    close,
    [Symbol.asyncDispose]: close,
  };
}
