/**
 * `<logDir>/simulation/monitor.csv`: the reference's header, then one line per snapshot, written
 * in order through one open handle without blocking the event loop.
 *
 * @module
 */
import { dirname, join } from "node:path";
import type { Logger } from "../shared/log.ts";
import { type Snapshot, SNAPSHOT_COLUMNS } from "./snapshot.ts";

/** The header line, exactly as the reference writes it. */
export const MONITOR_CSV_HEADER: string = SNAPSHOT_COLUMNS.map(([, label]) => label).join(", ");

/** Where the file goes. */
export function monitorCsvPath(logDir: string): string {
  return join(logDir, "simulation", "monitor.csv");
}

/** One CSV line (no newline): the snapshot's fields in column order, `, ` separated. */
export function csvLine(s: Snapshot): string {
  return SNAPSHOT_COLUMNS.map(([key]) => String(s[key])).join(", ");
}

/** An open monitor file. */
export interface MonitorCsv {
  /** Queues one line; returns at once. */
  append(s: Snapshot): void;
  /** Writes what is queued and closes the file. */
  close(): Promise<void>;
}

/** Options of `openMonitorCsv`. */
export interface MonitorCsvOptions {
  /** Milliseconds clock (default `Date.now`). */
  readonly now?: () => number;
  /** After a failure, lines are dropped for this many milliseconds, then tried again (60 s). */
  readonly retryMs?: number;
}

/**
 * Truncates (or creates) the file and writes the header. When that fails, logs
 * `Log file '<path>' cannot be created: <err>`; when a line cannot be written (disk full),
 * `Cannot write to '<path>': <err>`; either once, until a line is written again, which is logged
 * with the number of lines lost. Meanwhile lines are dropped, and the file is tried again every
 * `retryMs`.
 */
export function openMonitorCsv(
  path: string,
  logger: Logger,
  options: MonitorCsvOptions = {},
): MonitorCsv {
  const encoder = new TextEncoder();
  const now = options.now ?? Date.now;
  const retryMs = options.retryMs ?? 60_000;
  let file: Deno.FsFile | undefined;
  let failing = false;
  let retryAt = -Infinity;
  let dropped = 0;
  // A write the disk cut short left half a line: the next line starts on a line of its own.
  let torn = false;

  const fail = (message: string, error: unknown) => {
    retryAt = now() + retryMs;
    if (failing) return;
    failing = true;
    logger.error(
      { path, err: String(error) },
      `${message}: ${error}; monitor lines are dropped until it works again`,
    );
  };

  const writeAll = async (open: Deno.FsFile, text: string) => {
    const bytes = encoder.encode(torn ? `\n${text}` : text);
    let done = 0;
    try {
      while (done < bytes.length) done += await open.write(bytes.subarray(done));
      torn = false;
    } catch (error) {
      if (done > 0) torn = true;
      throw error;
    }
  };

  const open = async (): Promise<boolean> => {
    let opened: Deno.FsFile | undefined;
    try {
      await Deno.mkdir(dirname(path), { recursive: true });
      opened = await Deno.open(path, { write: true, create: true, truncate: true });
      torn = false;
      await writeAll(opened, `${MONITOR_CSV_HEADER}\n`);
      file = opened;
      return true;
    } catch (error) {
      opened?.close();
      fail(`Log file '${path}' cannot be created`, error);
      return false;
    }
  };

  const write = async (line: string) => {
    if (now() < retryAt) {
      dropped++;
      return;
    }
    if (!file && !await open()) {
      dropped++;
      return;
    }
    try {
      await writeAll(file!, line);
    } catch (error) {
      dropped++;
      fail(`Cannot write to '${path}'`, error);
      return;
    }
    if (failing) {
      failing = false;
      logger.info({ path, dropped }, `Writing '${path}' again (${dropped} lines were dropped)`);
      dropped = 0;
    }
  };

  let queue: Promise<unknown> = open();

  let closed = false;
  return {
    append(s) {
      if (closed) return;
      const line = `${csvLine(s)}\n`;
      queue = queue.then(() => write(line));
    },
    async close() {
      if (closed) return void await queue;
      closed = true;
      await queue;
      file?.close();
      file = undefined;
    },
  };
}
