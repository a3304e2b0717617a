/**
 * A stand-in simulation server for session-server process tests and the benchmark: a real HTTP
 * server on 127.0.0.1 whose `/load` answer the test controls (a number or any text), whose answers
 * can be held back until released, and which records when it served each answer. Slow, failing
 * and refusing servers are played in-process by a scripted fetch (tests/session/_fakes.ts).
 *
 * @module
 */

/** One `/load` answer as served. */
export interface Served {
  /** Wall-clock time in ms (`performance.timeOrigin + performance.now()`), comparable across processes. */
  readonly at: number;
  readonly body: string;
}

/** A running fake simulation server. */
export interface FakeSimServer {
  readonly port: number;
  /** `127.0.0.1:<port>` (or its own address): the entry to put in `simulationServers`. */
  readonly entry: string;
  /** Sets the `/load` body (a number or any text). */
  setLoad(load: number | string): void;
  /** Holds every `/load` answer from now on until `release()` (or `close()`). */
  hold(): void;
  /** Sends the held answers and stops holding. */
  release(): void;
  /** Every answer served so far, oldest first. */
  served(): readonly Served[];
  /** Resolves at the next `/load` answer served after this call. */
  nextServed(): Promise<Served>;
  /** Stops listening; held answers are sent first. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of `startFakeSimServer`. */
export interface FakeSimOptions {
  readonly load?: number | string;
  /** PEM certificate and key: serve HTTPS. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Address to listen on (default 127.0.0.1), e.g. another loopback address or `::1`. */
  readonly hostname?: string;
  /** Port (default: a free one). */
  readonly port?: number;
}

const hostOf = (address: string) => address.includes(":") ? `[${address}]` : address;

/** Wall-clock ms with sub-millisecond precision. */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Starts a fake simulation server on 127.0.0.1 (or `hostname`) and a free port (or `port`). */
export function startFakeSimServer(options: FakeSimOptions = {}): FakeSimServer {
  let body = String(options.load ?? 0);
  const served: Served[] = [];
  let waiters: ((s: Served) => void)[] = [];
  // While held: resolves when released.
  let held: PromiseWithResolvers<void> | undefined;

  const release = () => {
    held?.resolve();
    held = undefined;
  };

  const server = Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 0,
    onListen: () => {},
    ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
  }, async (request) => {
    if (new URL(request.url).pathname !== "/load") {
      return new Response("Not found", { status: 404 });
    }
    if (held) await held.promise;
    const answer: Served = { at: wallClockMs(), body };
    served.push(answer);
    const ready = waiters;
    waiters = [];
    for (const waiter of ready) waiter(answer);
    return new Response(answer.body);
  });

  let closing: Promise<void> | undefined;
  const close = () => {
    release();
    return closing ??= server.shutdown();
  };

  return {
    port: server.addr.port,
    entry: `${hostOf(options.hostname ?? "127.0.0.1")}:${server.addr.port}`,
    setLoad: (load) => (body = String(load)),
    hold() {
      held ??= Promise.withResolvers();
    },
    release,
    served: () => served,
    nextServed: () => new Promise((resolve) => waiters.push(resolve)),
    close,
    [Symbol.asyncDispose]: close,
  };
}
