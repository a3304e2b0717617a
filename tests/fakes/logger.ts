/**
 * Loggers for in-process tests: one that drops everything, and one that keeps its lines so that
 * a test can assert what was logged.
 *
 * @module
 */
import type { Logger } from "../../shared/log.ts";

/** A logger that drops every line. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
  close: () => Promise.resolve(),
};

/** One logged line. */
export interface LogLine {
  readonly level: "debug" | "info" | "warn" | "error";
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

/** A logger that keeps its lines (children share the list and add their fields). */
export function recordingLogger(
  lines: LogLine[] = [],
  bound: Record<string, unknown> = {},
): Logger & { readonly lines: LogLine[] } {
  const log = (level: LogLine["level"]) => (fields: Record<string, unknown>, message: string) => {
    lines.push({ level, fields: { ...bound, ...fields }, message });
  };
  return {
    lines,
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
    child: (fields) => recordingLogger(lines, { ...bound, ...fields }),
    close: () => Promise.resolve(),
  };
}
