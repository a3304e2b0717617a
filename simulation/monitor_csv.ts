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

/**
 * Truncates (or creates) the file and writes the header. When that fails, logs
 * `Log file '<path>' cannot be created: <err>` and every later append is dropped.
 */
export function openMonitorCsv(path: string, logger: Logger): MonitorCsv {
  const encoder = new TextEncoder();
  let file: Deno.FsFile | undefined;
  let writeFailed = false;

  const write = async (text: string) => {
    if (!file || writeFailed) return;
    try {
      const bytes = encoder.encode(text);
      let done = 0;
      while (done < bytes.length) done += await file.write(bytes.subarray(done));
    } catch (error) {
      writeFailed = true;
      logger.error({ path, err: String(error) }, `Cannot write to '${path}': ${error}`);
    }
  };

  let queue: Promise<void> = (async () => {
    try {
      await Deno.mkdir(dirname(path), { recursive: true });
      file = await Deno.open(path, { write: true, create: true, truncate: true });
    } catch (error) {
      logger.error({ path, err: String(error) }, `Log file '${path}' cannot be created: ${error}`);
      return;
    }
    await write(`${MONITOR_CSV_HEADER}\n`);
  })();

  let closed = false;
  return {
    append(s) {
      if (closed) return;
      const line = `${csvLine(s)}\n`;
      queue = queue.then(() => write(line));
    },
    async close() {
      if (closed) return queue;
      closed = true;
      await queue;
      file?.close();
      file = undefined;
    },
  };
}
