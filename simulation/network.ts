/**
 * Network throughput from the kernel's byte counters in `/proc/net/dev`. Deno refuses to read
 * `/proc` without `--allow-all`, so the file is read by running `/usr/bin/cat`, the one program
 * the server's permissions allow for this.
 *
 * @module
 */
import type { RunCommand } from "./command_runner.ts";

/** Byte counters of one interface. */
export interface InterfaceCounters {
  received: number;
  sent: number;
}

/** Counters per interface at one moment. */
export interface NetworkReading {
  /** Milliseconds clock value when read. */
  at: number;
  interfaces: ReadonlyMap<string, InterfaceCounters>;
}

/** Parses `/proc/net/dev`, leaving out the loopback interface `lo`. */
export function parseNetDev(text: string): Map<string, InterfaceCounters> {
  const interfaces = new Map<string, InterfaceCounters>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const fields = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    // Receive has 8 columns (bytes first), then transmit (bytes first).
    if (!name || name === "lo" || fields.length < 16 || fields.some((f) => !Number.isFinite(f))) {
      continue;
    }
    interfaces.set(name, { received: fields[0] ?? 0, sent: fields[8] ?? 0 });
  }
  return interfaces;
}

/** Reads the counters through `cat /proc/net/dev`; throws when that fails. */
export async function readNetwork(
  runCommand: RunCommand,
  now: () => number,
  signal?: AbortSignal,
  catPath = "/usr/bin/cat",
): Promise<NetworkReading> {
  const out = await runCommand(catPath, ["/proc/net/dev"], signal ? { signal } : {});
  if (!out.success) throw new Error(`${catPath} /proc/net/dev failed: ${out.stderr?.trim() ?? ""}`);
  const interfaces = parseNetDev(out.stdout);
  if (!out.stdout.includes("|")) throw new Error("unexpected /proc/net/dev content");
  return { at: now(), interfaces };
}

/**
 * MB/s (10^6 bytes) sent and received between two readings, summed over the interfaces present in
 * both. A counter that went down (interface re-created, wrap-around) counts as 0.
 */
export function networkRates(
  previous: NetworkReading,
  current: NetworkReading,
): { sent: number; received: number } {
  const seconds = (current.at - previous.at) / 1000;
  if (!(seconds > 0)) return { sent: 0, received: 0 };
  let sent = 0;
  let received = 0;
  for (const [name, now] of current.interfaces) {
    const before = previous.interfaces.get(name);
    if (!before) continue;
    sent += Math.max(0, now.sent - before.sent);
    received += Math.max(0, now.received - before.received);
  }
  const rate = (bytes: number) => Math.round((bytes / seconds / 1e6) * 1000) / 1000;
  return { sent: rate(sent), received: rate(received) };
}
