/**
 * Network namespaces for the network-fault campaign: each one joined to the host by a veth pair
 * with private addresses, and the faults injected on them. Every fault stays inside what this
 * module created: the namespace's veth end (`ip link set … down`) or an nft table inside the
 * namespace; the host's own firewall is never touched.
 *
 * A `NetnsLab` owns its namespaces from creation to removal (`cleanup()`, idempotent, also after a
 * failure or on Ctrl-C). Names carry the creating pid (`wbnet-<pid>-<tag>-<i>`), so that a later
 * run removes the leftovers of a run that was killed, and only those whose creator is gone.
 *
 * Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN for `ip netns`), `ip` and `nft`.
 *
 * @module
 */

const IP = "/usr/sbin/ip";
const NFT = "/usr/sbin/nft";
const PREFIX = "wbnet-";

/** The result of a command run to completion. */
interface Ran {
  readonly success: boolean;
  readonly output: string;
}

async function run(cmd: string, args: string[]): Promise<Ran> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const decoder = new TextDecoder();
  return {
    success: out.success,
    output: (decoder.decode(out.stdout) + decoder.decode(out.stderr)).trim(),
  };
}

async function must(cmd: string, args: string[]): Promise<string> {
  const out = await run(cmd, args);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${out.output}`);
  return out.output;
}

async function executable(path: string): Promise<boolean> {
  try {
    return ((await Deno.stat(path)).mode ?? 0) & 0o111 ? true : false;
  } catch {
    return false;
  }
}

/**
 * Why network namespaces cannot be used here, precisely (not root, `ip` or `nft` missing, the
 * kernel refusing), or undefined when they can. Tries one namespace and removes it.
 */
export async function netnsUnavailable(): Promise<string | undefined> {
  const missing = [];
  if (Deno.uid() !== 0) {
    missing.push(
      "root (uid 0, for CAP_NET_ADMIN and CAP_SYS_ADMIN: `ip netns add`, veth pairs, nft inside a namespace)",
    );
  }
  if (!await executable(IP)) missing.push(`${IP} (Debian package iproute2)`);
  if (!await executable(NFT)) missing.push(`${NFT} (Debian package nftables)`);
  if (missing.length) return `missing: ${missing.join("; ")}`;
  const probe = `${PREFIX}${Deno.pid}-probe`;
  const added = await run(IP, ["netns", "add", probe]);
  if (!added.success) return `\`ip netns add\` fails: ${added.output}`;
  const nft = await run(IP, ["netns", "exec", probe, NFT, "list", "ruleset"]);
  await run(IP, ["netns", "del", probe]);
  if (!nft.success) return `nft does not work inside a namespace: ${nft.output}`;
  return undefined;
}

/** One namespace joined to the host by a veth pair. */
export interface Netns {
  readonly name: string;
  /** The host-side veth end. */
  readonly hostLink: string;
  /** The host-side address (the session server reaches the namespace from it). */
  readonly hostAddress: string;
  /** The namespace-side address, where its servers listen. */
  readonly address: string;
  /** `argv` prefix that runs a command inside the namespace. */
  exec(argv: readonly string[]): string[];
  /**
   * Cuts the link: the namespace's veth end goes down. The host end loses its carrier but keeps
   * its route, so packets to the namespace are dropped here instead of leaving by the host's
   * default route (which is what taking the host end down would do).
   */
  linkDown(): Promise<void>;
  linkUp(): Promise<void>;
  /** Inside the namespace, drops every packet coming in to `port` (an nft table of its own). */
  dropPort(port: number): Promise<void>;
  /** Removes the drop table. */
  undrop(): Promise<void>;
}

/** A set of namespaces and the processes started in them, all removed by `cleanup()`. */
export interface NetnsLab {
  /** Creates namespace number `index` (0 … 63) with its veth pair and addresses. */
  add(index: number): Promise<Netns>;
  /** Kills what runs in the namespaces (SIGKILL) and removes them; idempotent. */
  cleanup(): Promise<void>;
  /** The namespaces still present. */
  readonly names: readonly string[];
}

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** Every namespace on the machine. */
export async function listNamespaces(): Promise<string[]> {
  const out = await run(IP, ["netns", "list"]);
  return out.output.split("\n").map((line) => line.split(" ")[0] ?? "").filter(Boolean);
}

async function removeNamespace(name: string): Promise<void> {
  // A namespace lives on while a process is in it: end them first (they are ours: so is the name).
  const pids = await run(IP, ["netns", "pids", name]);
  for (const pid of pids.output.split("\n").map(Number).filter((p) => p > 0)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // Gone already.
    }
  }
  // Deleting the namespace destroys its veth end, and with it the host end.
  await run(IP, ["netns", "del", name]);
}

/** Removes namespaces left by earlier runs whose creating process is gone. */
export async function removeStale(): Promise<string[]> {
  const removed = [];
  for (const name of await listNamespaces()) {
    const match = name.match(/^wbnet-(\d+)-/);
    if (!match || Number(match[1]) === Deno.pid || alive(Number(match[1]))) continue;
    await removeNamespace(name);
    removed.push(name);
  }
  return removed;
}

/** A second octet for `10.x.0.0/16` that no interface of the host uses. */
async function freeSubnet(): Promise<number> {
  const used = await must(IP, ["-o", "-4", "addr", "show"]);
  for (let attempt = 0; attempt < 50; attempt++) {
    const octet = 200 + Math.floor(Math.random() * 50);
    if (!used.includes(` 10.${octet}.`)) return octet;
  }
  throw new Error("no free 10.x.0.0/16 subnet between 10.200 and 10.249");
}

/** Creates an empty lab; namespaces are added with `add`. */
export function createNetnsLab(): NetnsLab {
  const tag = crypto.randomUUID().slice(0, 5);
  const created: string[] = [];
  const links: string[] = [];
  let octet: Promise<number> | undefined;
  let cleaning: Promise<void> | undefined;

  const add = async (index: number): Promise<Netns> => {
    if (cleaning) throw new Error("the lab is cleaned up");
    if (!Number.isInteger(index) || index < 0 || index > 63) throw new Error(`index ${index}`);
    const second = await (octet ??= freeSubnet());
    const name = `${PREFIX}${Deno.pid}-${tag}-${index}`;
    const hostLink = `wbn${tag}h${index}`;
    const nsLink = `wbn${tag}n${index}`;
    // A /30 per namespace: .1 on the host side, .2 inside.
    const base = `10.${second}.${index * 4}`;
    const address = `${base}.2`;
    const hostAddr = `${base}.1`;
    await must(IP, ["netns", "add", name]);
    created.push(name);
    const inNs = (args: string[]) => must(IP, ["netns", "exec", name, ...args]);
    await must(IP, ["link", "add", hostLink, "type", "veth", "peer", "name", nsLink]);
    links.push(hostLink);
    try {
      await must(IP, ["link", "set", nsLink, "netns", name]);
    } catch (error) {
      await run(IP, ["link", "del", hostLink]);
      throw error;
    }
    await must(IP, ["addr", "add", `${hostAddr}/30`, "dev", hostLink]);
    await must(IP, ["link", "set", hostLink, "up"]);
    await inNs([IP, "addr", "add", `${address}/30`, "dev", nsLink]);
    await inNs([IP, "link", "set", nsLink, "up"]);
    await inNs([IP, "link", "set", "lo", "up"]);
    return {
      name,
      hostLink,
      hostAddress: hostAddr,
      address,
      exec: (argv) => [IP, "netns", "exec", name, ...argv],
      linkDown: async () => void await inNs([IP, "link", "set", nsLink, "down"]),
      linkUp: async () => void await inNs([IP, "link", "set", nsLink, "up"]),
      async dropPort(port) {
        await inNs([NFT, "add", "table", "inet", "wbchaos"]);
        await inNs([
          NFT,
          "add chain inet wbchaos input { type filter hook input priority 0 ; policy accept ; }",
        ]);
        await inNs([
          NFT,
          "add",
          "rule",
          "inet",
          "wbchaos",
          "input",
          "tcp",
          "dport",
          String(port),
          "drop",
        ]);
      },
      undrop: async () => void await inNs([NFT, "delete", "table", "inet", "wbchaos"]),
    };
  };

  return {
    add,
    cleanup() {
      cleaning ??= (async () => {
        for (const name of created.splice(0)) await removeNamespace(name);
        // The kernel frees a deleted namespace's devices lazily: delete each pair from the host
        // end so that none is left when this returns.
        for (const link of links.splice(0)) await run(IP, ["link", "del", link]);
      })();
      return cleaning;
    },
    get names() {
      return [...created];
    },
  };
}
