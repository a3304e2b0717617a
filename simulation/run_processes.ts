/**
 * The processes of one Webots run, found by the run's environment marker, and their ending.
 *
 * Every run gets `WEBOTS_SERVER_RUN=<128-bit random hex>` in Webots' environment; every
 * descendant that does not clear its environment inherits it (through firejail too), also after
 * it left Webots' process group or session. A scan, through documented helpers only (Deno may not
 * read `/proc` without `--allow-all`):
 *
 * 1. `ps -u UID -U UID -o pid=,ppid=,pgid=,sid=`: the server user's processes;
 * 2. `cat /proc/<pid>/stat …`: state, ppid, pgid, sid and start time (field 22) of each, read in
 *    one piece per process (where it differs from `ps`, the process changed in between: `stat`
 *    wins);
 * 3. `grep -lsFxz -e WEBOTS_SERVER_RUN=<marker> /proc/<pid>/environ …`: the marked ones.
 *
 * A run's processes (`runMembers`) are the marked processes, the members of their process groups
 * and sessions (never the server's own group or session, never 0 or 1: a marked process can only
 * have created those groups and sessions itself, or inherited them from Webots, which starts in a
 * session of its own), and the ppid-descendants of all of these. Zombies are left out.
 *
 * Ownership is proved before every signal: the marker is a secret that only the run's descendants
 * inherit, and right before `kill` each pid's start time is read again and must equal the one read
 * before its marker was checked (so a pid that was reused in between is never signalled). The
 * window left is the time between that last read and `kill`: one process start; within it the
 * process would have to exit and the kernel hand its pid to a new process, which takes a full turn
 * of the pid space.
 *
 * `end` stops a run: TERM to Webots' group (through its `Leader`) and to every process of the run,
 * up to the grace period (on the injected clock) for all of them to end, then KILL in rounds until
 * a scan finds nothing (at most `MAX_KILL_ROUNDS`: a process forked after a scan is found by the
 * next one, and a killed process forks no more). A run is over when a scan begun after Webots
 * ended finds nothing; when Webots ends within `LEADER_WAIT_MS` of its TERM and leaves nothing,
 * that is the only scan (each scan reads every process of the server's user, so its cost grows
 * with the sessions the server holds).
 *
 * @module
 */
import { type Clock, sleep } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import type { RunCommand } from "./command_runner.ts";

/** The environment variable that carries a run's marker. */
export const MARKER_VARIABLE = "WEBOTS_SERVER_RUN";

/** A new marker: 128 random bits as 32 lowercase hex digits. */
export function newMarker(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Whether `value` has the shape of a marker (it goes on a command line: nothing else may). */
export function isMarker(value: unknown): value is string {
  return typeof value === "string" && /^[0-9a-f]{32}$/.test(value);
}

/** One process as a scan saw it. */
export interface ProcessRow {
  readonly pid: number;
  readonly ppid: number;
  readonly pgid: number;
  readonly sid: number;
  /** Field 3 of `/proc/<pid>/stat`: `Z` for a zombie. */
  readonly state: string;
  /** Field 22 of `/proc/<pid>/stat`: clock ticks after boot. */
  readonly startTime: string;
}

/**
 * The ownership rule: the processes of the run whose marked processes are `marked`, out of
 * `table`, for the server `selfPid` (see the module doc).
 */
export function runMembers(
  table: readonly ProcessRow[],
  marked: ReadonlySet<number>,
  selfPid: number,
): ProcessRow[] {
  const self = table.find((row) => row.pid === selfPid);
  const allowed = (row: ProcessRow) =>
    row.pid > 1 && row.pid !== selfPid && row.state !== "Z" &&
    row.pgid !== self?.pgid && row.sid !== self?.sid;
  const live = table.filter(allowed);
  const groups = new Set<number>();
  const sessions = new Set<number>();
  for (const row of live) {
    if (!marked.has(row.pid)) continue;
    if (row.pgid > 1) groups.add(row.pgid);
    if (row.sid > 1) sessions.add(row.sid);
  }
  const members = new Set(
    live.filter((row) => marked.has(row.pid) || groups.has(row.pgid) || sessions.has(row.sid))
      .map((row) => row.pid),
  );
  const children = new Map<number, number[]>();
  for (const row of live) children.set(row.ppid, [...children.get(row.ppid) ?? [], row.pid]);
  const queue = [...members];
  for (let pid = queue.pop(); pid !== undefined; pid = queue.pop()) {
    for (const child of children.get(pid) ?? []) {
      if (members.has(child)) continue;
      members.add(child);
      queue.push(child);
    }
  }
  return live.filter((row) => members.has(row.pid));
}

/** The signals a run's processes get. */
export type RunSignal = "TERM" | "KILL";

/** Webots' own process group, which the spawner signals (see `process.ts`). */
export interface Leader {
  /** Webots' pid, the id of its process group. */
  readonly pgid: number;
  /** Signals the whole group. */
  signal(signal: RunSignal): Promise<void>;
  /** Settles when Webots has exited. */
  readonly exited: Promise<unknown>;
}

/** What `end` did. */
export interface EndReport {
  /** Pids of the run that got TERM (besides Webots' group, which the leader signals). */
  readonly termed: number[];
  /** Pids that got KILL. */
  readonly killed: number[];
  /** Pids of the run still found after the last KILL round (normally none). */
  readonly survivors: number[];
  /** Whether everything ended within the grace period. */
  readonly graceful: boolean;
}

/** Finds and ends the processes of runs. */
export interface RunProcesses {
  /** The run's live processes now (see `runMembers`). */
  scan(marker: string): Promise<ProcessRow[]>;
  /** Signals each of `rows` that is still the same process; resolves with the pids signalled. */
  signal(rows: readonly ProcessRow[], signal: RunSignal): Promise<number[]>;
  /**
   * Ends the run (see the module doc); `leader` is Webots' group when the server started it.
   * Never throws: a scan that cannot run is logged, and the leader's group is still ended.
   */
  end(marker: string, graceMs: number, leader?: Leader): Promise<EndReport>;
}

/** What the scans need. */
export interface RunProcessesDeps {
  /** Runs the helpers below. */
  readonly runCommand: RunCommand;
  /** `/usr/bin/ps` (procps). */
  readonly psBinary: string;
  /** `/usr/bin/grep`. */
  readonly grepBinary: string;
  /** `/usr/bin/cat`. */
  readonly catBinary: string;
  /** `/usr/bin/kill`. */
  readonly killBinary: string;
  /** The server user's uid: only its processes are scanned. */
  readonly uid: number;
  /** The server's own pid: never signalled, nor its group or session. */
  readonly selfPid: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** How often a stopping run is scanned while it is given time to end (after quicker first looks). */
export const POLL_MS = 100;
/** The first pause between two scans of a stopping run; it doubles up to `POLL_MS`. */
const FIRST_POLL_MS = 5;
/** Pause between two KILL rounds: the kernel ends a killed process a moment after `kill`. */
export const KILL_ROUND_MS = 20;
/** KILL rounds before the survivors are logged and given up. */
export const MAX_KILL_ROUNDS = 25;
/**
 * How long `end` waits for Webots to end after its TERM before it scans for the rest of the run
 * (the scan then TERMs the processes outside Webots' group).
 */
export const LEADER_WAIT_MS = 50;
/** Pids per `cat` or `grep` command line. */
const PIDS_PER_COMMAND = 2_000;

/** Creates the scanner of the server described by `deps`. */
export function createRunProcesses(deps: RunProcessesDeps): RunProcesses {
  const log = deps.logger.child({ component: "run processes" });

  const list = async (): Promise<number[]> => {
    const uid = String(deps.uid);
    const out = await deps.runCommand(deps.psBinary, [
      "-u",
      uid,
      "-U",
      uid,
      "-o",
      "pid=,ppid=,pgid=,sid=",
    ]);
    const pids = out.stdout.split("\n").map((line) => Number(line.trim().split(/\s+/)[0]))
      .filter((pid) => Number.isInteger(pid) && pid > 0);
    // The server itself is always one of them: none means ps did not run properly.
    if (pids.length === 0) throw new Error(`${deps.psBinary} listed no process: ${out.stderr}`);
    return pids;
  };

  /** `/proc/<pid>/stat` of each pid that still exists. */
  const stats = async (pids: readonly number[]): Promise<Map<number, ProcessRow>> => {
    const rows = new Map<number, ProcessRow>();
    const wanted = new Set(pids);
    for (const chunk of chunks(pids)) {
      const out = await deps.runCommand(deps.catBinary, chunk.map((pid) => `/proc/${pid}/stat`));
      for (const line of out.stdout.split("\n")) {
        const row = parseStat(line);
        if (row !== undefined && wanted.has(row.pid)) rows.set(row.pid, row);
      }
    }
    return rows;
  };

  const markedAmong = async (pids: readonly number[], marker: string): Promise<Set<number>> => {
    if (!isMarker(marker)) throw new Error(`not a run marker: ${JSON.stringify(marker)}`);
    const marked = new Set<number>();
    for (const chunk of chunks(pids)) {
      // Exit status 2 when a process vanished before grep read it: the names printed still count.
      const out = await deps.runCommand(deps.grepBinary, [
        "-lsFxz",
        "-e",
        `${MARKER_VARIABLE}=${marker}`,
        "--",
        ...chunk.map((pid) => `/proc/${pid}/environ`),
      ]);
      for (const line of out.stdout.split("\n")) {
        const match = /^\/proc\/(\d+)\/environ$/.exec(line);
        if (match) marked.add(Number(match[1]));
      }
    }
    return marked;
  };

  const scan = async (marker: string): Promise<ProcessRow[]> => {
    // Start times are read before the marker is checked: a pid reused after this read fails the
    // check that comes right before each signal.
    const table = [...(await stats(await list())).values()];
    const marked = await markedAmong(
      table.filter((row) => row.state !== "Z").map((row) => row.pid),
      marker,
    );
    if (marked.size === 0) return [];
    return runMembers(table, marked, deps.selfPid);
  };

  const signal = async (rows: readonly ProcessRow[], name: RunSignal): Promise<number[]> => {
    if (rows.length === 0) return [];
    const now = await stats(rows.map((row) => row.pid));
    const same = rows.filter((row) => {
      const current = now.get(row.pid);
      return current !== undefined && current.state !== "Z" &&
        current.startTime === row.startTime;
    }).map((row) => row.pid);
    if (same.length === 0) return [];
    // Exit status 1 when one of them has just exited: the others were signalled all the same.
    await deps.runCommand(deps.killBinary, ["-s", name, "--", ...same.map(String)]);
    return same;
  };

  /** `scan`, or nothing (logged) when a helper cannot run. */
  const scanSafely = async (marker: string): Promise<ProcessRow[] | undefined> => {
    try {
      return await scan(marker);
    } catch (error) {
      log.error({ err: String(error) }, "cannot scan the processes of a run");
      return undefined;
    }
  };

  const settlesBy = async (promise: Promise<unknown>, deadline: number): Promise<boolean> => {
    const limit = new AbortController();
    const settled = await Promise.race([
      promise.then(() => true, () => true),
      sleep(deps.clock, Math.max(0, deadline - deps.clock.now()), limit.signal)
        .then(() => false, () => true),
    ]);
    limit.abort();
    return settled;
  };

  /**
   * Scans until the run has no process left or `deadline` passes: soon at first (a process that
   * got TERM or KILL a moment ago is usually gone within milliseconds), then every `POLL_MS`.
   */
  const emptyBy = async (marker: string, deadline: number): Promise<boolean> => {
    for (let pause = FIRST_POLL_MS;; pause = Math.min(2 * pause, POLL_MS)) {
      const rows = await scanSafely(marker);
      if (rows === undefined || rows.length === 0) return true;
      const left = deadline - deps.clock.now();
      if (left <= 0) return false;
      await sleep(deps.clock, Math.min(pause, left));
    }
  };

  const killRounds = async (marker: string) => {
    const killed = new Set<number>();
    for (let round = 0; round < MAX_KILL_ROUNDS; round++) {
      const rows = await scanSafely(marker);
      if (rows === undefined || rows.length === 0) return { killed: [...killed], survivors: [] };
      for (const pid of await signal(rows, "KILL").catch(() => [])) killed.add(pid);
      await sleep(deps.clock, KILL_ROUND_MS);
    }
    const survivors = (await scanSafely(marker) ?? []).map((row) => row.pid);
    if (survivors.length > 0) {
      log.error({ survivors, rounds: MAX_KILL_ROUNDS }, "processes of a run survived SIGKILL");
    }
    return { killed: [...killed], survivors };
  };

  return {
    scan,
    signal,
    async end(marker, graceMs, leader) {
      const deadline = deps.clock.now() + graceMs;
      await leader?.signal("TERM");
      // Webots usually ends at once (and its group is KILLed when it does): a scan begun after
      // that which finds nothing is the last one the run needs, as in `emptyBy`. Waiting for it a
      // moment first saves a second full scan of the machine's processes; a Webots that takes
      // longer only delays the TERM of the processes outside its group by `LEADER_WAIT_MS`.
      const leaderEnded = leader !== undefined &&
        await settlesBy(leader.exited, Math.min(deadline, deps.clock.now() + LEADER_WAIT_MS));
      const found = await scanSafely(marker);
      if (leaderEnded && found !== undefined && found.length === 0) {
        return { termed: [], killed: [], survivors: [], graceful: true };
      }
      // Webots' group has just had TERM from the leader: one TERM each is enough.
      const rows = (found ?? []).filter((row) => row.pgid !== leader?.pgid);
      const termed = await signal(rows, "TERM").catch((error) => {
        log.error({ err: String(error) }, "cannot signal the processes of a run");
        return [];
      });
      const graceful = (leader === undefined || await settlesBy(leader.exited, deadline)) &&
        await emptyBy(marker, deadline);
      if (graceful) {
        // The last scan found nothing left, and nothing is left to fork.
        if (termed.length > 0) {
          log.info({ pid: leader?.pgid, termed }, "ended the processes of a run");
        }
        return { termed, killed: [], survivors: [], graceful };
      }
      log.warn({ pid: leader?.pgid, graceMs }, "a run ignored SIGTERM; sending SIGKILL");
      await leader?.signal("KILL");
      const { killed, survivors } = await killRounds(marker);
      if (termed.length > 0 || killed.length > 0) {
        log.info({ pid: leader?.pgid, termed, killed, graceful }, "ended the processes of a run");
      }
      return { termed, killed, survivors, graceful };
    },
  };
}

/** One `/proc/<pid>/stat` line as a row, or undefined when it is not one. */
export function parseStat(line: string): ProcessRow | undefined {
  const open = line.indexOf(" (");
  // The command name (field 2) may hold spaces and ')': the last ')' ends it.
  const close = line.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  const pid = Number(line.slice(0, open));
  const fields = line.slice(close + 2).split(" ");
  // fields[0] is field 3 (state), fields[19] field 22 (start time).
  const [state, ppid, pgid, sid] = fields;
  const startTime = fields[19];
  if (
    !Number.isInteger(pid) || state === undefined || startTime === undefined ||
    !/^\d+$/.test(startTime)
  ) return undefined;
  return { pid, ppid: Number(ppid), pgid: Number(pgid), sid: Number(sid), state, startTime };
}

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += PIDS_PER_COMMAND) {
    out.push(items.slice(i, i + PIDS_PER_COMMAND));
  }
  return out;
}
