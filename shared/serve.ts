/**
 * Serving lifecycle both servers share: listen (with TLS when configured) on the project's own
 * HTTP engine (http_server.ts), print the reference's start line, and on SIGINT/SIGTERM shut down
 * gracefully and exit 0.
 *
 * A server may choose "drain, then stop" for the first SIGTERM (`drainFirst`): it is called, and
 * the stop follows once it resolves. A second SIGTERM, SIGINT, or the end of stdin (the launcher
 * died) stops at once, drain or not.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import type { Handler } from "./http_request.ts";
import { type AcceptPause, listenHttp } from "./http_server.ts";

/** What `serveUntilSignal` needs. */
export interface ServeOptions {
  /** `Session` or `Simulation`: the first word of the start line. */
  readonly name: string;
  readonly port: number;
  readonly hostname?: string;
  /** PEM certificate and key; both set → HTTPS/WSS. */
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly handler: Handler;
  /** Times the engine's head and idle deadlines (default: the wall clock). */
  readonly clock?: Clock;
  /** Told about what the engine survived: a handler's throw, a failed accept or upgrade. */
  readonly onError?: (error: unknown, what: string) => void;
  /** Told once when accepting works again after a run of failed accepts. */
  readonly onAcceptResumed?: (pause: AcceptPause) => void;
  /** Runs once a signal arrives, before the listener closes: close sockets, stop processes. */
  readonly onShutdown: () => Promise<void>;
  /**
   * Runs on the first SIGTERM instead of stopping; the stop (`onShutdown`) follows when it
   * resolves, or at once on a second SIGTERM, a SIGINT or the end of stdin. Unset: SIGTERM stops.
   */
  readonly drainFirst?: () => Promise<void>;
  /** Runs once listening, with the real port (useful with port 0). */
  readonly onListen?: (port: number) => void;
  /**
   * Shut down when standard input reaches its end. The launcher keeps a pipe open to the server's
   * stdin, so a server whose launcher dies (even by SIGKILL) stops too instead of running orphaned.
   */
  readonly stopOnStdinEnd?: boolean;
}

/** The argument the launcher adds so that the server watches its stdin (see `stopOnStdinEnd`). */
export const WATCH_STDIN_FLAG = "--stop-on-stdin-end";

/** The reference's start line, printed on stdout. */
export function startLine(name: string, port: number, ssl: boolean): string {
  return `${name} server running on port ${port} (${ssl ? "SSL" : "no SSL"})`;
}

/**
 * Serves until SIGINT or SIGTERM, then calls `onShutdown`, stops accepting, lets requests in
 * flight be answered, closes the remaining connections and resolves. The caller exits.
 */
export async function serveUntilSignal(options: ServeOptions): Promise<void> {
  const ssl = options.cert !== undefined && options.key !== undefined;
  let signalled!: () => void;
  const stopRequested = new Promise<void>((resolve) => signalled = resolve);
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= options.onShutdown().finally(signalled);
  };
  let draining = false;
  const terminate = () => {
    if (options.drainFirst === undefined || draining || stopping !== undefined) return stop();
    draining = true;
    void options.drainFirst().then(stop, stop);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", terminate);
  if (options.stopOnStdinEnd) void stopAtEndOfStdin(stop);
  const server = listenHttp({
    hostname: options.hostname ?? "0.0.0.0",
    port: options.port,
    cert: ssl ? options.cert : undefined,
    key: ssl ? options.key : undefined,
    handler: options.handler,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.onError ? { onError: options.onError } : {}),
    ...(options.onAcceptResumed ? { onAcceptResumed: options.onAcceptResumed } : {}),
  });
  console.log(startLine(options.name, server.port, ssl));
  options.onListen?.(server.port);
  await stopRequested;
  await server.shutdown();
  await stopping;
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", terminate);
}

async function stopAtEndOfStdin(stop: () => void): Promise<void> {
  try {
    for await (const _ of Deno.stdin.readable) {
      // Nothing is ever written; only the end matters.
    }
  } catch {
    // A read error means the parent is gone as well.
  }
  stop();
}
