/**
 * What a server left behind, measured from outside it: processes (by pid, by environment marker,
 * by working folder or arguments pointing into the instances folder), instance folders, run
 * records, streaming ports still listening, and a process's resident memory.
 *
 * @module
 */
import { join } from "node:path";

/** True while `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z";
  } catch {
    return false;
  }
}

/** The per-run environment marker of the simulation server's Webots runs. */
const RUN_MARKER = "WEBOTS_SERVER_RUN=";

/** How a stand-in Webots shows in its command line. */
const WEBOTS_PATH_PART = "/webots ";

/** Field 4 of `/proc/<pid>/stat`: the parent's pid (0 when unreadable). */
function parentOf(pid: number): number {
  const stat = readOrEmpty(`/proc/${pid}/stat`);
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1] ?? 0);
}

/** The pids in `/proc`. */
function allPids(): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (/^\d+$/.test(entry.name)) pids.push(Number(entry.name));
  }
  return pids;
}

function readOrEmpty(path: string): string {
  try {
    return new TextDecoder().decode(Deno.readFileSync(path));
  } catch {
    return "";
  }
}

/** What marks a process as the campaign's. */
export interface ScanTarget {
  /** `NAME=value` that the server's environment carries and every descendant inherits. */
  readonly envMarker: string;
  /** The instances folder: a process working in it or naming it in its arguments is a leftover. */
  readonly instancesDir: string;
  /** Pids not to count (the servers themselves, while they run). */
  readonly except: ReadonlySet<number>;
  /** `WEBOTS_SERVER_RUN` values seen in the server's run records (see `watchRunMarkers`). */
  readonly runMarkers?: ReadonlySet<string>;
}

/** A process found by the scan, and why. */
export interface FoundProcess {
  readonly pid: number;
  readonly why: string;
  readonly command: string;
}

/**
 * Live processes of the campaign: environment holding the campaign's marker (alone, or with
 * the desc engineer's per-run marker `WEBOTS_SERVER_RUN=`), working folder inside the instances
 * folder, or arguments naming it.
 */
export function scanProcesses(target: ScanTarget): FoundProcess[] {
  const found: FoundProcess[] = [];
  for (const pid of allPids()) {
    if (pid === Deno.pid || target.except.has(pid) || !isAlive(pid)) continue;
    const environ = readOrEmpty(`/proc/${pid}/environ`).split("\0");
    const command = readOrEmpty(`/proc/${pid}/cmdline`).split("\0").join(" ").trim();
    // A live server's own helpers (nvidia-smi, cat, ps, kill) are its children; its Webots are
    // not helpers and still count.
    if (target.except.has(parentOf(pid)) && !command.includes(WEBOTS_PATH_PART)) continue;
    let cwd = "";
    try {
      cwd = Deno.readLinkSync(`/proc/${pid}/cwd`);
    } catch { /* gone, or not ours to read */ }
    const reasons: string[] = [];
    if (environ.includes(target.envMarker)) reasons.push("campaign env");
    const run = environ.find((v) => v.startsWith(RUN_MARKER));
    if (run !== undefined && target.runMarkers?.has(run.slice(RUN_MARKER.length))) {
      reasons.push("run marker");
    }
    if (cwd === target.instancesDir || cwd.startsWith(`${target.instancesDir}/`)) {
      reasons.push("cwd in instances");
    }
    if (command.includes(target.instancesDir)) reasons.push("args name instances");
    if (reasons.length > 0) {
      found.push({ pid, why: reasons.join("+"), command: command.slice(0, 120) });
    }
  }
  return found;
}

/** Folders in the instances folder (run records live in the hidden `.webots-runs`). */
export function instanceFolders(instancesDir: string): string[] {
  try {
    return [...Deno.readDirSync(instancesDir)]
      .filter((e) => e.isDirectory && !e.name.startsWith("."))
      .map((e) => e.name);
  } catch {
    return [];
  }
}

/** Files in `<instancesDir>/.webots-runs/`. */
export function runRecords(instancesDir: string): string[] {
  try {
    return [...Deno.readDirSync(join(instancesDir, ".webots-runs"))].map((e) => e.name);
  } catch {
    return [];
  }
}

/** TCP ports in LISTEN state (IPv4 and IPv6) within [from, to]. */
export function listeningPorts(from: number, to: number): number[] {
  const ports = new Set<number>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readOrEmpty(file).split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 4 || fields[3] !== "0A") continue;
      const port = parseInt(fields[1]!.split(":").pop()!, 16);
      if (port >= from && port <= to) ports.add(port);
    }
  }
  return [...ports].sort((a, b) => a - b);
}

/** Resident memory of `pid` in MiB (VmRSS), or NaN when it is gone. */
export function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readOrEmpty(`/proc/${pid}/status`));
  return match ? Number(match[1]) / 1024 : NaN;
}

/** The only child of `pid` (the server a launcher started), if there is exactly one. */
export function onlyChild(pid: number): number | undefined {
  const children = readOrEmpty(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/)
    .filter(Boolean).map(Number);
  return children.length === 1 ? children[0] : undefined;
}

/** Polls `condition` every 25 ms until it holds (true) or `timeoutMs` passed (false). */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Ends (SIGKILL) what the campaign's servers left behind, so that a failing check leaves no
 * process running on the machine: only processes that the scan proves are the campaign's
 * (its environment marker, or working in its instances folder). Returns how many were ended.
 */
export function endLeftovers(target: ScanTarget): number {
  let ended = 0;
  for (const found of scanProcesses(target)) {
    try {
      Deno.kill(found.pid, "SIGKILL");
      ended++;
    } catch { /* gone meanwhile */ }
  }
  return ended;
}

/** The run markers a server wrote in its run records, gathered while they exist. */
export interface RunMarkerWatch {
  readonly markers: ReadonlySet<string>;
  /** Reads the records once more now (e.g. before a restart reaps them). */
  collect(): void;
  stop(): Promise<void>;
}

/**
 * Reads `<instancesDir>/.webots-runs/*.json` every `periodMs` and keeps every `marker` seen, so
 * that a process carrying a run's marker is found after its record is gone. Records without a
 * marker (servers before the per-run marker) add nothing.
 */
export function watchRunMarkers(instancesDir: string, periodMs: number): RunMarkerWatch {
  const markers = new Set<string>();
  const dir = join(instancesDir, ".webots-runs");
  const collect = () => {
    for (const name of runRecords(instancesDir)) {
      try {
        const record = JSON.parse(Deno.readTextFileSync(join(dir, name)));
        if (typeof record?.marker === "string") markers.add(record.marker);
      } catch { /* removed or being written */ }
    }
  };
  let running = true;
  const loop = (async () => {
    while (running) {
      collect();
      await new Promise((resolve) => setTimeout(resolve, periodMs));
    }
  })();
  return {
    markers,
    collect,
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** Open file descriptors of `pid` (sockets, pipes, files), NaN when unreadable. */
export function openFds(pid: number): number {
  try {
    return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
  } catch {
    return NaN;
  }
}
