/**
 * A scripted process table behind a fake command runner, for in-process tests of the run-process
 * scans: it answers `ps -u UID -U UID -o pid=,ppid=,pgid=,sid=`, `cat /proc/<pid>/stat …`,
 * `grep -lsFxz -e PATTERN -- /proc/<pid>/environ …` and `kill -s SIG -- PID|-PGID …` the way the
 * real helpers do, and records every signal. A process ends on TERM unless it ignores it, always
 * on KILL; `onCommand` lets a test change the table between two helper runs (a pid reused, a
 * process forking).
 *
 * @module
 */
import type { CommandResult, RunCommand } from "../../simulation/command_runner.ts";
import {
  createRunProcesses,
  type RunProcesses,
  type RunProcessesDeps,
} from "../../simulation/run_processes.ts";
import type { Clock } from "../../shared/clock.ts";
import { silentLogger } from "./logger.ts";

/** One scripted process. */
export interface FakeProc {
  readonly pid: number;
  readonly ppid: number;
  readonly pgid: number;
  readonly sid: number;
  /** Clock ticks after boot (field 22 of stat). */
  readonly startTime: number;
  readonly uid?: number;
  /** `Z` for a zombie; default `S`. */
  readonly state?: string;
  /** Its environment; undefined when it cannot be read (setuid). */
  readonly env?: Record<string, string> | undefined;
  readonly ignoreTerm?: boolean;
  /** What it does when it gets `signal` (besides ending or not), e.g. fork a child. */
  readonly onSignal?: (signal: string, table: ProcessTable) => void;
}

/** A signal a process got. */
export interface SentSignal {
  readonly pid: number;
  readonly signal: string;
}

/** The binaries the fake answers to. */
export const BINARIES = {
  psBinary: "/usr/bin/ps",
  grepBinary: "/usr/bin/grep",
  catBinary: "/usr/bin/cat",
  killBinary: "/usr/bin/kill",
} as const;

/** The server process `runProcesses` scans for by default: user 1000's pid 100. */
export const SERVER: FakeProc = { pid: 100, ppid: 1, pgid: 100, sid: 100, startTime: 6, env: {} };

/** The scripted table. */
export class ProcessTable {
  readonly processes = new Map<number, FakeProc>();
  readonly signals: SentSignal[] = [];
  /** Every helper run, as `binary arg…`. */
  readonly commands: string[] = [];
  /** Called before each helper run. */
  onCommand: ((cmd: string, args: readonly string[]) => void) | undefined;
  /** Binaries that cannot be started (not installed, not permitted). */
  readonly unavailable = new Set<string>();

  /** `processes` (by default the server alone, whose run processes are then none). */
  constructor(processes: readonly FakeProc[] = [SERVER]) {
    for (const p of processes) this.add(p);
  }

  add(p: FakeProc): void {
    this.processes.set(p.pid, p);
  }

  /** Ends `pid` (its children go to init, as on Linux). */
  remove(pid: number): void {
    this.processes.delete(pid);
    for (const p of this.processes.values()) {
      if (p.ppid === pid) this.processes.set(p.pid, { ...p, ppid: 1 });
    }
  }

  /** The pids still in the table. */
  get pids(): number[] {
    return [...this.processes.keys()].sort((a, b) => a - b);
  }

  /** Pids that got `signal`, in order. */
  signalled(signal: string): number[] {
    return this.signals.filter((s) => s.signal === signal).map((s) => s.pid);
  }

  readonly runCommand: RunCommand = (cmd, args) => {
    this.commands.push([cmd, ...args].join(" "));
    this.onCommand?.(cmd, args);
    if (this.unavailable.has(cmd)) {
      return Promise.reject(new Deno.errors.NotCapable(`Requires run access to "${cmd}"`));
    }
    switch (cmd) {
      case BINARIES.psBinary:
        return Promise.resolve(this.#ps(args));
      case BINARIES.catBinary:
        return Promise.resolve(this.#cat(args));
      case BINARIES.grepBinary:
        return Promise.resolve(this.#grep(args));
      case BINARIES.killBinary:
        return Promise.resolve(this.#kill(args));
      default:
        return Promise.reject(new Deno.errors.NotCapable(`Requires run access to "${cmd}"`));
    }
  };

  #ps(args: readonly string[]): CommandResult {
    const uids = new Set<number>();
    args.forEach((arg, i) => {
      if (arg === "-u" || arg === "-U") uids.add(Number(args[i + 1]));
    });
    const rows = [...this.processes.values()].filter((p) => uids.has(p.uid ?? 1000))
      .map((p) => `${p.pid} ${p.ppid} ${p.pgid} ${p.sid}`);
    return { success: rows.length > 0, stdout: rows.map((r) => `  ${r}\n`).join("") };
  }

  #cat(args: readonly string[]): CommandResult {
    let stdout = "";
    let success = true;
    for (const path of args) {
      const pid = Number(/^\/proc\/(\d+)\/stat$/.exec(path)?.[1]);
      const p = this.processes.get(pid);
      if (p === undefined) {
        success = false;
        continue;
      }
      // Fields 3…22 of a real stat line, with a command name holding a space and a ')'.
      const middle = Array.from({ length: 15 }, () => "0").join(" ");
      stdout += `${p.pid} (odd) name) ${p.state ?? "S"} ${p.ppid} ${p.pgid} ${p.sid} ${middle} ` +
        `${p.startTime} 0 0\n`;
    }
    return { success, stdout };
  }

  #grep(args: readonly string[]): CommandResult {
    const pattern = args[args.indexOf("-e") + 1] ?? "";
    const files = args.slice(args.indexOf("--") + 1);
    const matched = files.filter((path) => {
      const pid = Number(/^\/proc\/(\d+)\/environ$/.exec(path)?.[1]);
      const p = this.processes.get(pid);
      if (p?.env === undefined || (p.state ?? "S") === "Z") return false;
      return Object.entries(p.env).some(([key, value]) => `${key}=${value}` === pattern);
    });
    return { success: matched.length > 0, stdout: matched.map((f) => `${f}\n`).join("") };
  }

  #kill(args: readonly string[]): CommandResult {
    const signal = args[args.indexOf("-s") + 1] ?? "TERM";
    let success = true;
    for (const target of args.slice(args.indexOf("--") + 1)) {
      const id = Number(target);
      const pids = id < 0
        ? [...this.processes.values()].filter((p) => p.pgid === -id).map((p) => p.pid)
        : this.processes.has(id)
        ? [id]
        : [];
      if (pids.length === 0) success = false;
      for (const pid of pids) this.#deliver(pid, signal);
    }
    return { success, stdout: "" };
  }

  #deliver(pid: number, signal: string) {
    const p = this.processes.get(pid);
    if (p === undefined) return;
    this.signals.push({ pid, signal });
    p.onSignal?.(signal, this);
    if (signal === "KILL" || (signal === "TERM" && !p.ignoreTerm)) this.remove(pid);
  }

  /** `createRunProcesses` on this table, for the server `selfPid` of user `uid`. */
  runProcesses(
    clock: Clock,
    options: Partial<Pick<RunProcessesDeps, "uid" | "selfPid" | "logger">> = {},
  ): RunProcesses {
    return createRunProcesses({
      ...BINARIES,
      runCommand: this.runCommand,
      uid: options.uid ?? 1000,
      selfPid: options.selfPid ?? SERVER.pid,
      clock,
      logger: options.logger ?? silentLogger,
    });
  }
}
