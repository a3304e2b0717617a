/**
 * A stand-in simulation server for session-server tests: a real HTTP server on 127.0.0.1 whose
 * `/load` answer the test controls (a number, garbage, a status, a delay), which can be stopped
 * (connection refused) and started again on the same port, and which records when it served
 * each answer.
 *
 * @module
 */

/** One `/load` answer as served. */
export interface Served {
  /** Wall-clock time in ms (`performance.timeOrigin + performance.now()`), comparable across processes. */
  readonly at: number;
  readonly status: number;
  readonly body: string;
}

/** A running fake simulation server. */
export interface FakeSimServer {
  readonly port: number;
  /** `127.0.0.1:<port>`: the entry to put in `simulationServers`. */
  readonly entry: string;
  /** Sets the `/load` body (a number or any text). */
  setLoad(load: number | string): void;
  /** Delays every `/load` answer by `ms`. */
  setDelay(ms: number): void;
  /** Sets the `/load` status (200 by default). */
  setStatus(status: number): void;
  /** Holds every `/load` answer from now on until `release()` (or `stop()`). */
  hold(): void;
  /** Sends the held answers and stops holding. */
  release(): void;
  /** Every answer served so far, oldest first. */
  served(): readonly Served[];
  /** Resolves at the next `/load` answer served after this call. */
  nextServed(): Promise<Served>;
  /** Closes the listener: polls get "connection refused" until `start()`. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): void;
  /** Stops for good. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of `startFakeSimServer`. */
export interface FakeSimOptions {
  readonly load?: number | string;
  readonly delayMs?: number;
  readonly status?: number;
  /** PEM certificate and key: serve HTTPS. */
  readonly tls?: { readonly cert: string; readonly key: string };
}

/** Wall-clock ms with sub-millisecond precision. */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Starts a fake simulation server on 127.0.0.1 and a free port. */
export function startFakeSimServer(options: FakeSimOptions = {}): FakeSimServer {
  let body = String(options.load ?? 0);
  let delayMs = options.delayMs ?? 0;
  let status = options.status ?? 200;
  const served: Served[] = [];
  let waiters: ((s: Served) => void)[] = [];
  let server: Deno.HttpServer<Deno.NetAddr> | undefined;
  // While held: resolves when released.
  let held: PromiseWithResolvers<void> | undefined;
  // Delayed answers still waiting: released at once on stop, so that shutdown does not wait.
  const delayed = new Set<() => void>();

  const handler = async (request: Request): Promise<Response> => {
    if (new URL(request.url).pathname !== "/load") {
      return new Response("Not found", { status: 404 });
    }
    if (held) await held.promise;
    if (delayMs > 0) {
      await new Promise<void>((resolve) => {
        const release = () => {
          clearTimeout(timer);
          delayed.delete(release);
          resolve();
        };
        const timer = setTimeout(release, delayMs);
        delayed.add(release);
      });
    }
    const answer: Served = { at: wallClockMs(), status, body };
    served.push(answer);
    const ready = waiters;
    waiters = [];
    for (const waiter of ready) waiter(answer);
    return new Response(answer.body, { status: answer.status });
  };

  const listen = (port: number) =>
    Deno.serve({
      hostname: "127.0.0.1",
      port,
      onListen: () => {},
      ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
    }, handler);

  server = listen(0);
  const port = server.addr.port;

  const stop = async () => {
    const current = server;
    server = undefined;
    for (const release of [...delayed]) release();
    held?.resolve();
    held = undefined;
    await current?.shutdown();
  };

  const fake: FakeSimServer = {
    port,
    entry: `127.0.0.1:${port}`,
    setLoad: (load) => (body = String(load)),
    setDelay: (ms) => (delayMs = ms),
    setStatus: (code) => (status = code),
    hold() {
      held ??= Promise.withResolvers();
    },
    release() {
      held?.resolve();
      held = undefined;
    },
    served: () => served,
    nextServed: () => new Promise((resolve) => waiters.push(resolve)),
    stop,
    start() {
      server ??= listen(port);
    },
    close: stop,
    [Symbol.asyncDispose]: stop,
  };
  return fake;
}
