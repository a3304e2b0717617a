/**
 * Logger factory: to a rotated file or, in debug mode, to stdout; as text lines in the
 * reference's shape (`2026-11-29 18:55:31,123 [INFO   ]  <message> client=c12 port=2001`), or
 * with `logFormat: "json"` as structured JSON lines (pino).
 *
 * Every line carries whatever fields the caller binds (client id, pid, port, world), so an
 * operator can follow one browser's session with `grep 'client=c12'` (text) or
 * `grep '"client":"c12"'` (JSON, whose lines also carry `server`).
 *
 * @module
 */
import pino from "pino";
import { openLogFile } from "./log_file.ts";

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
  /** `text` (default): the reference's lines plus fields; `json`: one JSON object a line. */
  readonly format?: LogFormat;
  /** Rotation size in bytes (default 500 kB) and number of rotated files kept (default 10). */
  readonly maxBytes?: number;
  readonly maxFiles?: number;
}

/** The two line formats. */
export type LogFormat = "text" | "json";

type Level = "debug" | "info" | "warn" | "error";
const LEVELS: Record<Level, { rank: number; label: string }> = {
  debug: { rank: 20, label: "DEBUG" },
  info: { rank: 30, label: "INFO" },
  warn: { rank: 40, label: "WARNING" },
  error: { rank: 50, label: "ERROR" },
};

/** Python's `%(asctime)s`: local time, `YYYY-MM-DD HH:MM:SS,mmm`. */
function asctime(date: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())} ` +
    `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())},` +
    p(date.getMilliseconds(), 3);
}

function fieldText(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.stack ?? String(value));
  if (typeof value === "string") return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/**
 * One text line: the reference's `%(asctime)-15s [%(levelname)-7s]  %(message)s`, then the
 * fields as `key=value` (strings with spaces, quotes or `=` JSON-quoted).
 */
export function textLine(
  date: Date,
  level: Level,
  message: string,
  fields: Readonly<Record<string, unknown>>,
): string {
  const extra = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}=${fieldText(v)}`).join("");
  return `${asctime(date)} [${LEVELS[level].label.padEnd(7)}]  ${message}${extra}\n`;
}

function textLogger(
  write: (line: string) => void,
  minLevel: Level,
  bound: Record<string, unknown>,
  close: () => Promise<void>,
): Logger {
  const at = (level: Level) => (fields: Record<string, unknown>, message: string) => {
    if (LEVELS[level].rank < LEVELS[minLevel].rank) return;
    write(textLine(new Date(), level, message, { ...bound, ...fields }));
  };
  return {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: (fields) => textLogger(write, minLevel, { ...bound, ...fields }, close),
    close,
  };
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
  const json = options.format === "json";
  if (options.debug) {
    const stdoutSink = {
      write(line: string) {
        Deno.stdout.writeSync(new TextEncoder().encode(line));
      },
    };
    // Debug mode also shows debug lines (Webots' own output, ignored subscriber messages).
    if (!json) return textLogger((line) => stdoutSink.write(line), "debug", {}, async () => {});
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
  // A full or read-only log folder must not stop the server, nor silence it for good: the file
  // says once on stderr that it cannot write, drops lines meanwhile, and says when it works again.
  const file = openLogFile({
    dir,
    maxBytes: options.maxBytes ?? 500_000,
    maxFiles: options.maxFiles ?? 10,
    onFailure: (path, reason) =>
      console.error(
        `${options.server} server: cannot write the log file ${path}: ${reason}; ` +
          "dropping log lines until it works again",
      ),
    onRecovery: (path, dropped) => {
      console.error(
        `${options.server} server: writing the log file ${path} again ` +
          `(${dropped} lines were dropped)`,
      );
      // Called from a write callback, long after `logger` below is assigned.
      logger.warn({ path, dropped }, "Writing the log file again, lines were dropped");
    },
  });
  const close = () => file.close();
  const logger: Logger = json
    ? wrap(pino({ base, timestamp: pino.stdTimeFunctions.isoTime }, file), close)
    : textLogger((line) => file.write(line), "info", {}, close);
  return logger;
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
