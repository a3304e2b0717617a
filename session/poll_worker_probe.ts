/**
 * A `LoadProbe` (session/load_probe.ts) that runs the polls in a Worker (session/poll_worker.ts):
 * what a round of a large fleet costs in `fetch`es, promises and garbage is spent on another
 * thread, and the thread that answers `GET /session` only applies the results.
 *
 * - Requests made in one turn (a round) go to the worker in one message; answers that are ready
 *   together come back in one.
 * - The worker keeps each poll's timeout. A poll aborted here (its server left, polling stopped)
 *   is answered at once in this thread and cancelled in the worker: nothing waits on the worker
 *   to give up.
 * - If the worker cannot start or fails (a `deno compile` binary built without it, an uncaught
 *   error), that is logged once and every poll, those in flight included, runs with the fallback
 *   probe in this thread from then on: polling never stops because of the worker.
 *
 * The owner calls `close()` once polling has stopped.
 *
 * @module
 */
import type { Logger } from "../shared/log.ts";
import type { LoadProbe } from "./load_probe.ts";
import type { PollOutcome } from "./load_rules.ts";
import type { PollAnswer, PollRequest } from "./poll_worker.ts";

/** The worker's module. */
export const POLL_WORKER_URL: URL = new URL("./poll_worker.ts", import.meta.url);

/** Settings of the poll worker. */
export interface PollWorkerOptions {
  readonly logger: Logger;
  /** Polls in this thread when the worker cannot (the same outcomes, e.g. `fetchLoadProbe`). */
  readonly fallback: LoadProbe;
  /** The worker's module; default {@link POLL_WORKER_URL}. */
  readonly url?: URL;
}

/** The probe and its worker's lifetime. */
export interface PollWorker {
  readonly probe: LoadProbe;
  /** Ends the worker; polls still waiting end as aborted. */
  close(): void;
}

/** What an aborted poll resolves with here: its caller has stopped caring about the outcome. */
const ABORTED: PollOutcome = Object.freeze({
  kind: "down",
  reason: "refused",
  detail: "poll aborted",
});

interface Waiting {
  readonly url: string;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  readonly resolve: (outcome: PollOutcome) => void;
  readonly onAbort: () => void;
}

/** Starts the worker; see the module's documentation. */
export function startPollWorker(options: PollWorkerOptions): PollWorker {
  const { logger, fallback } = options;
  let worker: Worker | undefined;
  try {
    worker = new Worker(options.url ?? POLL_WORKER_URL, { type: "module", name: "polls" });
  } catch (error) {
    logger.warn({ err: error }, "the poll worker cannot start: polling in the main thread");
    return { probe: fallback, close() {} };
  }
  let nextId = 1;
  const waiting = new Map<number, Waiting>();
  let outbox: PollRequest[] = [];
  const flush = () => {
    const batch = outbox;
    outbox = [];
    worker?.postMessage(batch);
  };
  const send = (request: PollRequest) => {
    if (outbox.length === 0) queueMicrotask(flush);
    outbox.push(request);
  };
  const settle = (id: number, outcome: PollOutcome) => {
    const entry = waiting.get(id);
    if (entry === undefined) return;
    waiting.delete(id);
    entry.signal.removeEventListener("abort", entry.onAbort);
    entry.resolve(outcome);
  };
  const end = () => {
    worker?.terminate();
    worker = undefined;
    outbox = [];
  };
  const fail = (why: string) => {
    if (worker === undefined) return;
    logger.error({ err: why }, "the poll worker failed: polling in the main thread from now on");
    end();
    for (const [id, { url, timeoutMs, signal }] of waiting) {
      void fallback(url, timeoutMs, signal).then((outcome) => settle(id, outcome));
    }
  };
  worker.onmessage = (event: MessageEvent<readonly PollAnswer[]>) => {
    for (const { id, outcome } of event.data) settle(id, outcome);
  };
  worker.onerror = (event: ErrorEvent) => {
    // Handled here: an uncaught error of the worker must not end the server.
    event.preventDefault();
    fail(event.message);
  };
  worker.onmessageerror = () => fail("a message from the poll worker could not be read");

  const probe: LoadProbe = (url, timeoutMs, signal) => {
    if (worker === undefined) return fallback(url, timeoutMs, signal);
    if (signal.aborted) return Promise.resolve(ABORTED);
    return new Promise((resolve) => {
      const id = nextId++;
      const onAbort = () => {
        settle(id, ABORTED);
        send({ kind: "cancel", id });
      };
      signal.addEventListener("abort", onAbort, { once: true });
      waiting.set(id, { url, timeoutMs, signal, resolve, onAbort });
      send({ kind: "poll", id, url, timeoutMs });
    });
  };
  return {
    probe,
    close() {
      end();
      for (const id of [...waiting.keys()]) settle(id, ABORTED);
    },
  };
}
