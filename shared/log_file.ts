/**
 * The log file: `<dir>/output.log`, rotated (rotating-file-stream), that outlives a full or
 * read-only disk.
 *
 * A failed write destroys the underlying stream, so without care one `ENOSPC` would silence the
 * log for good. Here a failure is reported once (the caller prints it where it can still be seen,
 * e.g. stderr), the lines that follow are dropped and counted, the file is opened again at most
 * once every `retryMs` (on the next line, so nothing runs on a timer), and the first line that is
 * written again reports the recovery with the number of lines lost.
 *
 * @module
 */
import { createStream, type RotatingFileStream } from "rotating-file-stream";

/** Options of `openLogFile`. */
export interface LogFileOptions {
  /** The folder of `output.log` and its rotated copies. */
  readonly dir: string;
  /** Rotation size in bytes. */
  readonly maxBytes: number;
  /** Rotated files kept. */
  readonly maxFiles: number;
  /** Called once when writing starts failing. */
  readonly onFailure: (path: string, reason: string) => void;
  /** Called once when writing works again, with the number of lines lost meanwhile. */
  readonly onRecovery: (path: string, dropped: number) => void;
  /** Milliseconds between two attempts to open the file again (default 1000). */
  readonly retryMs?: number;
  /** Milliseconds clock (default `Date.now`). */
  readonly now?: () => number;
}

/** An open log file. */
export interface LogFile {
  /** Appends one line (with its newline); never throws. */
  write(line: string): void;
  /** Flushes and closes the file. */
  close(): Promise<void>;
}

/** The reference's names: `output.log`, `output.log.1` … (index null: the current file). */
const fileName = (index: number | Date | null) => index ? `output.log.${index}` : "output.log";

/** False when the file's last byte is not a newline (true when empty or unreadable). */
function endsWithNewline(path: string): boolean {
  try {
    using file = Deno.openSync(path, { read: true });
    const size = file.statSync().size;
    if (size === 0) return true;
    file.seekSync(size - 1, Deno.SeekMode.Start);
    const last = new Uint8Array(1);
    return file.readSync(last) !== 1 || last[0] === 0x0a;
  } catch {
    return true;
  }
}

/** Opens (or creates) the log file; failures are reported through `onFailure`, never thrown. */
export function openLogFile(options: LogFileOptions): LogFile {
  const path = `${options.dir}/output.log`;
  const now = options.now ?? Date.now;
  const retryMs = options.retryMs ?? 1000;
  let stream: RotatingFileStream | undefined;
  let failing = false;
  let dropped = 0;
  let retryAt = -Infinity;
  let closed = false;

  const fail = (failed: RotatingFileStream, error: unknown) => {
    failed.destroy();
    // Late callbacks of a stream already given up must not undo a newer one's state.
    if (failed !== stream) return;
    stream = undefined;
    retryAt = now() + retryMs;
    if (failing || closed) return;
    failing = true;
    options.onFailure(path, error instanceof Error ? error.message : String(error));
  };

  const open = () => {
    // Classical rotation gives the reference's names (see `fileName`).
    const opened = createStream(fileName, {
      path: options.dir,
      size: `${Math.max(1, Math.round(options.maxBytes / 1000))}K`,
      rotate: options.maxFiles,
    });
    opened.on("error", (error: unknown) => fail(opened, error));
    return opened;
  };

  stream = open();
  return {
    write(line) {
      if (closed) return;
      if (!stream) {
        if (now() < retryAt) {
          dropped++;
          return;
        }
        stream = open();
        // A write cut short by a full disk leaves half a line: start the next one on its own.
        if (!endsWithNewline(path)) line = `\n${line}`;
      }
      const target = stream;
      target.write(line, (error) => {
        if (error) {
          dropped++;
          fail(target, error);
          return;
        }
        if (failing && target === stream) {
          failing = false;
          const lost = dropped;
          dropped = 0;
          options.onRecovery(path, lost);
        }
      });
    },
    close() {
      closed = true;
      const open = stream;
      stream = undefined;
      if (!open) return Promise.resolve();
      return new Promise<void>((resolve) => {
        open.once("error", () => resolve());
        open.end(() => resolve());
      });
    },
  };
}
