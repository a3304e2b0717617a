/**
 * One poll of a simulation server's `/load`, as the fleet (session/fleet.ts) asks for it: a
 * `LoadProbe` takes the URL and an abort signal and gives what the server answered, as a
 * `PollOutcome`. It never throws: a refused connection, an error status, a body that is not a
 * number and no answer within the timeout (`loadTimeout`) are outcomes. The signal is the
 * caller's: aborted when the server leaves or polling stops, the outcome then does not matter.
 *
 * `fetchLoadProbe` polls with a `fetch` in the calling thread; session/poll_worker_probe.ts runs
 * the same probe in a Worker, so that a fleet of 1,000 servers costs the thread that answers
 * `GET /session` only the results.
 *
 * ```ts
 * import { fetchLoadProbe } from "./load_probe.ts";
 * import { systemClock } from "../shared/clock.ts";
 * const probe = fetchLoadProbe(fetch, systemClock);
 * await probe("http://127.0.0.1:2000/load", 5000, new AbortController().signal);
 * // { kind: "up", load: 12 }
 * ```
 *
 * @module
 */
import type { Clock } from "../shared/clock.ts";
import { LOAD_STATE_HEADER } from "../shared/protocol.ts";
import { parseSlotHeaders } from "../shared/load_headers.ts";
import type { PollOutcome } from "./load_rules.ts";

/** Polls one `/load` URL for at most `timeoutMs`; resolves with what it found, never rejects. */
export type LoadProbe = (
  url: string,
  timeoutMs: number,
  signal: AbortSignal,
) => Promise<PollOutcome>;

/** The outcome of a poll that had no answer in `timeoutMs`. */
export function timedOut(timeoutMs: number): PollOutcome {
  return { kind: "down", reason: "timeout", detail: `no answer in ${timeoutMs} ms` };
}

/** Parses a `/load` body: a finite number, as Python's `float()` would accept it minus nan/inf. */
export function parseLoad(body: string): number | undefined {
  const trimmed = body.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : undefined;
}

/** The outcome of a `/load` answer: its status, body and headers. */
export function outcomeOf(status: number, body: string, headers: Headers): PollOutcome {
  if (status !== 200) return { kind: "down", reason: "status", detail: `HTTP ${status}` };
  const load = parseLoad(body);
  if (load === undefined) {
    return { kind: "down", reason: "body", detail: `not a number: ${body.slice(0, 40)}` };
  }
  // Our simulation servers name their state and slots in headers stock ones never send.
  const slots = parseSlotHeaders(headers);
  const figures = slots === undefined ? {} : { slots };
  if (headers.get(LOAD_STATE_HEADER) === "draining") {
    return { kind: "up", load, draining: true, ...figures };
  }
  return { kind: "up", load, ...figures };
}

/** A probe that polls with `fetch` in the calling thread, its timeout on `clock`. */
export function fetchLoadProbe(fetcher: typeof fetch, clock: Clock): LoadProbe {
  return async (url, timeoutMs, signal) => {
    const abort = new AbortController();
    let late = false;
    const onAbort = () => abort.abort();
    const timer = clock.setTimeout(() => {
      late = true;
      abort.abort();
    }, timeoutMs);
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      if (signal.aborted) abort.abort();
      const response = await fetcher(url, { signal: abort.signal });
      const body = await response.text();
      return late ? timedOut(timeoutMs) : outcomeOf(response.status, body, response.headers);
    } catch (error) {
      return late
        ? timedOut(timeoutMs)
        : { kind: "down", reason: "refused", detail: String(error) };
    } finally {
      clock.clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  };
}
