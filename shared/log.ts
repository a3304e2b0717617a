/**
 * Logger factory: structured JSON lines (pino), to a rotated file or, in debug mode, to stdout.
 *
 * Every line carries `server` and whatever fields the caller binds (client id, pid, port, world),
 * so an operator can follow one browser's session with `grep '"client":"c12"'`.
 *
 * @module
 */
import pino from "pino";
import { createStream } from "rotating-file-stream";

/** The logging interface the servers use; child loggers carry extra fields on every line. */
export interface Logger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
  child(fields: Record<string, unknown>): Logger;
  /** Flushes and closes the underlying file, if any. */
  close(): Promise<void>;
}

/** Where a logger writes. */
export interface LogOptions {
  /** `session` or `simulation`: the subfolder of `logDir` and the `server` field. */
  readonly server: string;
  readonly logDir: string;
  /** Log to stdout instead of the file. */
  readonly debug: boolean;
  /** Rotation size in bytes (default 500 kB) and number of rotated files kept (default 10). */
  readonly maxBytes?: number;
  readonly maxFiles?: number;
}

/** The path of a server's log file. */
export function logFile(logDir: string, server: string): string {
  return `${logDir}/${server}/output.log`;
}

/**
 * Creates the logger. Throws when the log folder cannot be created, with the reference's message
 * `Log file '<path>' cannot be created: <reason>`.
 */
export function createLogger(options: LogOptions): Logger {
  const base = { server: options.server };
  if (options.debug) {
    const stdoutSink = {
      write(line: string) {
        Deno.stdout.writeSync(new TextEncoder().encode(line));
      },
    };
    // Debug mode also shows debug lines (Webots' own output, subscribers coming and going).
    const logger = pino(
      { base, level: "debug", timestamp: pino.stdTimeFunctions.isoTime },
      stdoutSink,
    );
    return wrap(logger, async () => {});
  }
  const dir = `${options.logDir}/${options.server}`;
  try {
    Deno.mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new Error(
      `Log file '${logFile(options.logDir, options.server)}' cannot be created: ${error}`,
      {
        cause: error,
      },
    );
  }
  // Classical rotation gives the reference's names: output.log, output.log.1 … output.log.10.
  // In classical mode the generator's first argument is the rotation index (null: current file).
  const name = (index: number | Date | null) => index ? `output.log.${index}` : "output.log";
  const stream = createStream(name, {
    path: dir,
    size: `${Math.max(1, Math.round((options.maxBytes ?? 500_000) / 1000))}K`,
    rotate: options.maxFiles ?? 10,
  });
  stream.on("error", (error: unknown) => {
    console.error(`log write failed: ${error}`);
  });
  const close = () =>
    new Promise<void>((resolve) => {
      stream.end(() => resolve());
    });
  return wrap(pino({ base, timestamp: pino.stdTimeFunctions.isoTime }, stream), close);
}

function wrap(p: pino.Logger, close: () => Promise<void>): Logger {
  return {
    debug: (fields, message) => p.debug(fields, message),
    info: (fields, message) => p.info(fields, message),
    warn: (fields, message) => p.warn(fields, message),
    error: (fields, message) => p.error(fields, message),
    child: (fields) => wrap(p.child(fields), close),
    close,
  };
}
