/**
 * The command line of `deno task chaos`:
 * `[--short] [--sessions N] [--concurrency N] [--seed S] [--only part,…]`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type Part, PARTS } from "./checks.ts";
import type { FaultSizes } from "./session_faults.ts";
import type { SimulationTimings } from "./servers.ts";

/** Everything a campaign run is told. */
export interface CampaignOptions {
  readonly short: boolean;
  readonly sessions: number;
  readonly concurrency: number;
  readonly seed: number;
  readonly parts: ReadonlySet<Part>;
  /** Also run the network-namespace faults of `chaos/network.ts` (root), after the 36 checks. */
  readonly network: boolean;
  readonly sizes: FaultSizes;
  readonly timings: SimulationTimings;
  /** Sessions running when the simulation server is killed (part b). */
  readonly killSessions: number;
  /** Availability changes the normal subscribers must all see (part d). */
  readonly toggles: number;
  /** Connect/disconnect cycles on the availability socket (part d). */
  readonly churn: number;
  /** Availability sockets sending endless fragments, and the most each sends (part d). */
  readonly fragmentSockets: number;
  readonly subscriberFragmentBytes: number;
}

export const USAGE =
  "Usage: deno task chaos [--short] [--sessions N] [--concurrency N] [--seed S] [--only part,…] [--network]\n" +
  `  parts: ${PARTS.join(", ")} (default: all)\n` +
  "  --short: the CI version (fewer sessions and smaller floods, under 2 minutes)\n" +
  "  --network: also the network-namespace faults of chaos/network.ts (root), printed after the 36";

const MiB = 2 ** 20;

/** Parses `args`; throws an Error with a clear message on bad input. */
export function parseOptions(args: string[], defaultSeed: number): CampaignOptions {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      short: { type: "boolean", default: false },
      sessions: { type: "string" },
      concurrency: { type: "string" },
      seed: { type: "string" },
      only: { type: "string" },
      network: { type: "boolean", default: false },
    },
  });
  if (positionals.length > 0) throw new Error(`unexpected argument: ${positionals[0]}`);
  const int = (name: string, value: string | undefined, fallback: number, min: number) => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      throw new Error(`--${name} must be an integer ≥ ${min}: ${JSON.stringify(value)}`);
    }
    return n;
  };
  const short = values.short;
  const parts = new Set<Part>();
  for (const name of (values.only ?? PARTS.join(",")).split(",").map((p) => p.trim())) {
    if (!(PARTS as readonly string[]).includes(name)) {
      throw new Error(`--only: unknown part ${JSON.stringify(name)} (parts: ${PARTS.join(", ")})`);
    }
    parts.add(name as Part);
  }
  return {
    short,
    sessions: int("sessions", values.sessions, short ? 34 : 300, 1),
    concurrency: int("concurrency", values.concurrency, short ? 6 : 10, 1),
    seed: int("seed", values.seed, defaultSeed, 0),
    parts,
    network: values.network,
    sizes: short
      ? {
        fragmentedBytes: 32 * MiB,
        fragmentBytes: MiB,
        longLineBytes: 16 * MiB,
        burstLines: 50_000,
      }
      : {
        fragmentedBytes: 128 * MiB,
        fragmentBytes: MiB,
        longLineBytes: 16 * MiB,
        burstLines: 50_000,
      },
    timings: { startTimeout: 5, killTimeout: 1, heartbeatTimeout: 2 },
    killSessions: short ? 5 : 10,
    toggles: short ? 6 : 20,
    churn: short ? 200 : 1000,
    fragmentSockets: short ? 5 : 10,
    subscriberFragmentBytes: short ? 16 * MiB : 64 * MiB,
  };
}
