/**
 * The poll worker: the session server's polls of `/load` run here, in a Worker of their own
 * (started by session/poll_worker_probe.ts), so that the `fetch`es of a large fleet, their
 * promises and their garbage stay off the thread that answers `GET /session`.
 *
 * It takes batches of requests (`poll` a URL under an id with its timeout, `cancel` an id) and
 * answers batches of outcomes (`PollAnswer`), each the `PollOutcome` that `fetchLoadProbe` gives
 * in the main thread; the timeouts run here too.
 * Answers that come together are sent in one message.
 *
 * @module
 */
import { systemClock } from "../shared/clock.ts";
import { fetchLoadProbe, type LoadProbe } from "./load_probe.ts";
import type { PollOutcome } from "./load_rules.ts";

/** One request to the worker. */
export type PollRequest =
  | { readonly kind: "poll"; readonly id: number; readonly url: string; readonly timeoutMs: number }
  | { readonly kind: "cancel"; readonly id: number };

/** One answer of the worker: what the poll `id` found. */
export interface PollAnswer {
  readonly id: number;
  readonly outcome: PollOutcome;
}

/** What `servePolls` needs from its thread. */
export interface PollServiceDeps {
  readonly probe: LoadProbe;
  /** Sends a batch of answers to the main thread. */
  readonly post: (answers: PollAnswer[]) => void;
  /** Runs `task` once what is ready now has run (a macrotask), to send answers together. */
  readonly defer: (task: () => void) => void;
}

/** Serves batches of poll requests; returns the function that takes each batch. */
export function servePolls(deps: PollServiceDeps): (batch: readonly PollRequest[]) => void {
  const running = new Map<number, AbortController>();
  let outbox: PollAnswer[] = [];
  const flush = () => {
    const answers = outbox;
    outbox = [];
    deps.post(answers);
  };
  const answer = (id: number, outcome: PollOutcome) => {
    if (outbox.length === 0) deps.defer(flush);
    outbox.push({ id, outcome });
  };
  const start = (id: number, url: string, timeoutMs: number) => {
    const abort = new AbortController();
    running.set(id, abort);
    void deps.probe(url, timeoutMs, abort.signal).then((outcome) => {
      running.delete(id);
      // A cancelled poll's caller has its answer already.
      if (!abort.signal.aborted) answer(id, outcome);
    });
  };
  return (batch) => {
    for (const request of batch) {
      if (request.kind === "poll") start(request.id, request.url, request.timeoutMs);
      else running.get(request.id)?.abort();
    }
  };
}

if (import.meta.main) {
  // The worker's global scope, as much of it as is used (no `deno.worker` lib: the project is
  // checked as one program with the window's).
  const self = globalThis as unknown as {
    postMessage(message: unknown): void;
    onmessage: ((event: MessageEvent<readonly PollRequest[]>) => void) | null;
  };
  const take = servePolls({
    probe: fetchLoadProbe(fetch, systemClock),
    post: (answers) => self.postMessage(answers),
    defer: (task) => setTimeout(task, 0),
  });
  self.onmessage = (event) => take(event.data);
}
