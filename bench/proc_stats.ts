/**
 * What the benches read about a process from /proc (Linux): CPU time, resident memory, open
 * descriptors and their limit, and the pid of a launcher's child.
 *
 * @module
 */

/** User + system CPU seconds of `pid` so far (clock ticks of 10 ms). */
export function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** What `pid`'s threads used so far, in CPU seconds, by the part of the server they run. */
export interface ThreadCpu {
  /** The main thread (the event loop that answers requests). */
  readonly main: number;
  /** Worker threads (Deno names them `worker-<n>`): the session server's poll worker. */
  readonly workers: number;
  /** The rest: V8's helper threads (concurrent garbage collection, compilation), the runtime's. */
  readonly other: number;
}

/** User + system CPU seconds of each thread of `pid`, grouped as {@link ThreadCpu}. */
export function threadCpuSeconds(pid: number): ThreadCpu {
  let main = 0, workers = 0, other = 0;
  for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/stat`);
    } catch {
      continue; // Ended meanwhile.
    }
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const seconds = (Number(fields[11]) + Number(fields[12])) / 100;
    if (Number(entry.name) === pid) main += seconds;
    else if (/^worker-\d+$/.test(name)) workers += seconds;
    else other += seconds;
  }
  return { main, workers, other };
}

/** The pid of the child of `parentPid` (the launcher runs the server as its child). */
export function childPid(parentPid: number): number {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parentPid) return Number(entry.name);
    } catch {
      // The process ended meanwhile.
    }
  }
  throw new Error(`no child of ${parentPid}`);
}

/** Resident memory of `pid` in KiB. */
export function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/^VmRSS:\s+(\d+) kB/m)?.[1]);
}

/** The soft open-files limit of `pid` (what its `accept` runs into). */
export function openFilesLimit(pid: number): number {
  const limits = Deno.readTextFileSync(`/proc/${pid}/limits`);
  const soft = limits.match(/^Max open files\s+(\d+|unlimited)/m)?.[1];
  if (soft === undefined || soft === "unlimited") throw new Error(`no open-files limit: ${pid}`);
  return Number(soft);
}

/** The descriptors `pid` holds, counted by kind (socket, eventpoll, eventfd, pipe, file, …). */
export function openFiles(pid: number): { total: number; byKind: Record<string, number> } {
  const byKind: Record<string, number> = {};
  let total = 0;
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
    } catch {
      continue; // Closed meanwhile.
    }
    const kind = target.startsWith("socket:")
      ? "socket"
      : target.startsWith("pipe:")
      ? "pipe"
      : target.startsWith("anon_inode:")
      ? target.slice("anon_inode:".length).replace(/^\[|\]$/g, "")
      : target.startsWith("/dev/")
      ? "device"
      : "file";
    byKind[kind] = (byKind[kind] ?? 0) + 1;
    total++;
  }
  return { total, byKind };
}
