/**
 * The pure parts of the 1,000-server fleet benchmark (bench/fleet.ts): which loopback addresses
 * the stand-in simulation servers listen on, how the polls they counted are grouped into the
 * session server's poll rounds and checked (every address once a round, none missed), and the
 * CPU-per-round arithmetic.
 *
 * @module
 */

/** Addresses per `127.0.x.0/24` block: `.1` to `.250`, never `.0` or `.255`. */
const PER_BLOCK = 250;

/**
 * `count` distinct loopback addresses `127.0.x.y` (x from 1, y from 1 to 250: 127.0.0.0/24, where
 * everything else on the machine listens, is left alone), split into `processes` groups of
 * consecutive addresses as even as possible, one group per stand-in process.
 */
export function standInAddresses(count: number, processes: number): string[][] {
  if (!Number.isInteger(count) || count < 1 || count > 254 * PER_BLOCK) {
    throw new RangeError(`count must be an integer from 1 to ${254 * PER_BLOCK}`);
  }
  if (!Number.isInteger(processes) || processes < 1 || processes > count) {
    throw new RangeError("processes must be an integer from 1 to count");
  }
  const all = Array.from(
    { length: count },
    (_, i) => `127.0.${1 + Math.floor(i / PER_BLOCK)}.${1 + (i % PER_BLOCK)}`,
  );
  const groups: string[][] = [];
  let start = 0;
  for (let p = 0; p < processes; p++) {
    const size = Math.floor(count / processes) + (p < count % processes ? 1 : 0);
    groups.push(all.slice(start, start + size));
    start += size;
  }
  return groups;
}

/** One poll round as the stand-ins saw it. */
export interface Round {
  /** Wall-clock ms of the first and last `/load` answer of the round. */
  readonly first: number;
  readonly last: number;
  /** Answers served in the round (an address polled twice counts twice). */
  readonly polls: number;
}

/** Whether every address was polled every round over a window, and how the rounds spread. */
export interface PollCoverage {
  /** Rounds that began inside the window. */
  readonly rounds: readonly Round[];
  readonly addresses: number;
  /** Fewest and most polls one address received in those rounds. */
  readonly minPollsPerAddress: number;
  readonly maxPollsPerAddress: number;
  /** Addresses absent from at least one of those rounds, with how many rounds they missed. */
  readonly missed: Readonly<Record<string, number>>;
  /** Longest time between two consecutive polls of one address inside the window, in ms. */
  readonly maxGapMs: number;
  /** Mean time from one round's first answer to the next round's, in ms. */
  readonly meanPeriodMs: number;
}

/**
 * Groups the polls each address received (wall-clock ms) into rounds and checks the rounds that
 * began in `[from, to]`. A round is a run of answers with no pause longer than half the period
 * between two of them: the session server polls all its servers at once every `refreshMs`.
 */
export function pollCoverage(
  polls: ReadonlyMap<string, readonly number[]>,
  from: number,
  to: number,
  refreshMs: number,
): PollCoverage {
  const all: { at: number; address: string }[] = [];
  for (const [address, times] of polls) {
    for (const at of times) all.push({ at, address });
  }
  all.sort((a, b) => a.at - b.at);
  const clusters: { at: number; address: string }[][] = [];
  for (const poll of all) {
    const current = clusters.at(-1);
    if (current !== undefined && poll.at - current.at(-1)!.at <= refreshMs / 2) current.push(poll);
    else clusters.push([poll]);
  }
  const inWindow = clusters.filter((c) => c[0]!.at >= from && c[0]!.at <= to);
  const counts = new Map<string, number>([...polls.keys()].map((a) => [a, 0]));
  const missed: Record<string, number> = {};
  for (const cluster of inWindow) {
    const seen = new Set<string>();
    for (const { address } of cluster) {
      seen.add(address);
      counts.set(address, (counts.get(address) ?? 0) + 1);
    }
    for (const address of polls.keys()) {
      if (!seen.has(address)) missed[address] = (missed[address] ?? 0) + 1;
    }
  }
  const windowStart = inWindow.length === 0 ? from : inWindow[0]![0]!.at;
  const windowEnd = inWindow.length === 0 ? to : inWindow.at(-1)!.at(-1)!.at;
  let maxGapMs = 0;
  for (const times of polls.values()) {
    const inside = times.filter((t) => t >= windowStart && t <= windowEnd).sort((a, b) => a - b);
    for (let i = 1; i < inside.length; i++) {
      maxGapMs = Math.max(maxGapMs, inside[i]! - inside[i - 1]!);
    }
  }
  const countValues = [...counts.values()];
  return {
    rounds: inWindow.map((c) => ({ first: c[0]!.at, last: c.at(-1)!.at, polls: c.length })),
    addresses: polls.size,
    minPollsPerAddress: countValues.length === 0 ? 0 : Math.min(...countValues),
    maxPollsPerAddress: countValues.length === 0 ? 0 : Math.max(...countValues),
    missed,
    maxGapMs,
    meanPeriodMs: inWindow.length < 2
      ? NaN
      : (inWindow.at(-1)![0]!.at - inWindow[0]![0]!.at) / (inWindow.length - 1),
  };
}

/** A process's CPU seconds over a window, per poll round. */
export interface CpuPerRound {
  /** utime + stime over the window ÷ rounds, in core-seconds. */
  readonly perRound: number;
  /** What the same span costs a session server with one simulation server (the idle cost). */
  readonly idlePerRound: number;
  /** `perRound` minus `idlePerRound`: what polling 1,000 servers adds. */
  readonly pollingPerRound: number;
}

/** CPU per round of the fleet's server, with the idle cost of the reference server subtracted. */
export function cpuPerRound(
  fleetCpuSeconds: number,
  idleCpuSeconds: number,
  rounds: number,
): CpuPerRound {
  if (!(rounds > 0)) throw new RangeError("rounds must be positive");
  const round3 = (x: number) => Math.round(x * 1000) / 1000;
  return {
    perRound: round3(fleetCpuSeconds / rounds),
    idlePerRound: round3(idleCpuSeconds / rounds),
    pollingPerRound: round3((fleetCpuSeconds - idleCpuSeconds) / rounds),
  };
}

/** The resident set size in MiB from the text of `/proc/<pid>/status`. */
export function rssMiB(status: string): number {
  const kB = status.match(/^VmRSS:\s+(\d+)\s+kB$/m);
  if (!kB) throw new Error("no VmRSS line in /proc/<pid>/status");
  return Math.round(Number(kB[1]) / 1024 * 10) / 10;
}
