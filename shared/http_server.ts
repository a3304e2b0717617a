/**
 * The project's HTTP/1.1 server on `Deno.listen` / `Deno.listenTls`: keep-alive, pipelining (in
 * order), HEAD, a bounded head (431) and body (413), deadlines for a slow head and an idle
 * connection on an injected clock, upgrades handed over to their taker (the WebSocket), and a
 * graceful shutdown. Each connection is served by its own loop; whatever goes wrong in one ends
 * that connection only.
 *
 * The hot path builds no `Request` and no `Headers` (see http_request.ts) and writes prepared
 * answers (http_response.ts) as they are.
 *
 * @example
 * ```ts
 * const server = listenHttp({ hostname: "127.0.0.1", port: 0, handler: () => new Response("ok") });
 * await server.shutdown();
 * ```
 *
 * @module
 */
import { concatBytes } from "./bytes.ts";
import { type Clock, systemClock, type TimerId } from "./clock.ts";
import { hasToken, parseHead, type RequestHead } from "./http_head.ts";
import { type ConnInfo, type Handler, IncomingRequest } from "./http_request.ts";
import { bodyless, DateField, headerLines, preparedAnswerOf, statusLine } from "./http_response.ts";

/** Settings of an HTTP server. */
export interface HttpServerOptions {
  readonly hostname: string;
  readonly port: number;
  /** PEM certificate and key: both set → TLS (ALPN `http/1.1`). */
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly handler: Handler;
  /** Deadlines; defaults to the wall clock. */
  readonly clock?: Clock;
  /** Longest request head in bytes (default 16 KiB); longer → 431 and close. */
  readonly maxHeadBytes?: number;
  /** Largest request body in bytes (default 64 KiB); larger → 413 and close. */
  readonly maxBodyBytes?: number;
  /** Time from a request's first byte to the end of its head and body (default 30 s). */
  readonly headTimeoutMs?: number;
  /** Time an idle keep-alive connection stays open (default 60 s). */
  readonly idleTimeoutMs?: number;
  /**
   * Told about failures the engine answered or survived (a handler's throw, a failed upgrade).
   * A run of failed accepts (out of file descriptors) is told once, when it starts.
   */
  readonly onError?: (error: unknown, what: string) => void;
  /** Told once when accepting has worked again for a second after a run of failed accepts. */
  readonly onAcceptResumed?: (pause: AcceptPause) => void;
}

/** A run of failed accepts, told when it ends. */
export interface AcceptPause {
  /** Failed accepts in the run. */
  readonly failures: number;
  /** Milliseconds from the first failure to the last accept that succeeded again. */
  readonly ms: number;
}

/** First wait before accepting again after a failed accept; it doubles up to the next one. */
const ACCEPT_RETRY_FIRST_MS = 10;
const ACCEPT_RETRY_MAX_MS = 1000;
/** Accepting must work this long without a failure for a run of failed accepts to end. */
const ACCEPT_QUIET_MS = 1000;

/** A run of failed accepts in progress. */
interface AcceptRun {
  readonly since: number;
  failures: number;
  retryMs: number;
  /** Set once an accept succeeded: ends the run unless another accept fails first. */
  quiet?: TimerId | undefined;
}

/** A listening server. */
export interface HttpServer {
  /** The port listened on (useful with port 0). */
  readonly port: number;
  /** Connections open now (upgraded ones excluded). */
  readonly connections: number;
  /**
   * Stops accepting, closes idle connections, lets requests in flight be answered (their
   * connections close after the answer), then closes the connections taken over by upgrades
   * that are still open. Resolves when every connection is closed.
   */
  shutdown(): Promise<void>;
}

const DEFAULTS = {
  maxHeadBytes: 16 * 1024,
  maxBodyBytes: 64 * 1024,
  headTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
};

/** First read buffer of a connection; it grows up to the head limit only when a head needs it. */
const INITIAL_BUFFER = 4096;

const encoder = new TextEncoder();

/** Writes all of `bytes`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(written === 0 ? bytes : bytes.subarray(written));
  }
}

/** A short plain-text error answer with `connection: close`. */
function errorAnswer(status: number, message: string, date: string): Uint8Array {
  const body = `${message}\n`;
  return encoder.encode(
    statusLine(status) + "content-type: text/plain; charset=utf-8\r\n" + date +
      `content-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Starts listening and serving. */
export function listenHttp(options: HttpServerOptions): HttpServer {
  const settings = { ...DEFAULTS, ...stripUndefined(options) };
  const clock = options.clock ?? systemClock;
  const tls = options.cert !== undefined && options.key !== undefined;
  const listener: Deno.Listener = tls
    ? Deno.listenTls({
      hostname: options.hostname,
      port: options.port,
      cert: options.cert!,
      key: options.key!,
      alpnProtocols: ["http/1.1"],
    })
    : Deno.listen({ hostname: options.hostname, port: options.port, transport: "tcp" });
  const port = (listener.addr as Deno.NetAddr).port;
  const date = new DateField();
  const connections = new Set<Connection>();
  const takenOver = new Set<Deno.Conn>();
  let stopping = false;
  const report = options.onError ?? (() => {});

  const context: Context = {
    settings,
    clock,
    date,
    scheme: tls ? "https" : "http",
    fallbackHost: `${options.hostname}:${port}`,
    handler: options.handler,
    report,
    isStopping: () => stopping,
    takeOver: (conn) => {
      takenOver.add(conn);
      return () => {
        takenOver.delete(conn);
        freed();
      };
    },
  };

  // Out of file descriptors (EMFILE/ENFILE), accept fails while the connection waits in the
  // listen backlog, and the listener stays readable: retrying at once would spin. The engine
  // waits until one of its own connections closes (a descriptor is free) or a timer that doubles
  // up to a second fires (descriptors freed elsewhere in the process), and tells the run once.
  let wakeAccept: (() => void) | undefined;
  const freed = () => wakeAccept?.();
  const waitToAccept = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = clock.setTimeout(() => wake(), ms);
      const wake = () => {
        clock.clearTimeout(timer);
        wakeAccept = undefined;
        resolve();
      };
      wakeAccept = wake;
    });
  // A run lasts from the first failed accept to the last success that no failure follows within
  // ACCEPT_QUIET_MS: at the limit, each freed descriptor is taken by the next connection and the
  // accept after it fails again, which is the same shortage, not a new one to tell.
  let run: AcceptRun | undefined;
  const acceptFailed = (error: unknown) => {
    if (run === undefined) {
      run = { since: clock.now(), failures: 0, retryMs: ACCEPT_RETRY_FIRST_MS };
      report(
        error,
        `accept failed; new connections wait in the listen backlog until it succeeds ` +
          `(${connections.size + takenOver.size} connections open)`,
      );
    } else if (run.quiet !== undefined) {
      clock.clearTimeout(run.quiet);
      run.quiet = undefined;
      run.retryMs = ACCEPT_RETRY_FIRST_MS;
    }
    run.failures++;
    const wait = run.retryMs;
    run.retryMs = Math.min(ACCEPT_RETRY_MAX_MS, run.retryMs * 2);
    return waitToAccept(wait);
  };
  const accepted = () => {
    if (run === undefined || run.quiet !== undefined) return;
    const ended = run;
    const resumedAt = clock.now();
    ended.quiet = clock.setTimeout(() => {
      if (run !== ended) return;
      run = undefined;
      options.onAcceptResumed?.({ failures: ended.failures, ms: resumedAt - ended.since });
    }, ACCEPT_QUIET_MS);
  };

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (stopping || error instanceof Deno.errors.BadResource) return;
        // The listener itself is still good: wait, then accept again.
        await acceptFailed(error);
        continue;
      }
      accepted();
      if (stopping) {
        conn.close();
        continue;
      }
      const connection = new Connection(conn, context);
      connections.add(connection);
      void connection.serve().finally(() => {
        connections.delete(connection);
        freed();
      });
    }
  })();

  return {
    port,
    get connections() {
      return connections.size;
    },
    async shutdown() {
      if (!stopping) {
        stopping = true;
        try {
          listener.close();
        } catch { /* already closed */ }
        freed();
        if (run?.quiet !== undefined) clock.clearTimeout(run.quiet);
      }
      await accepting;
      await Promise.all([...connections].map((connection) => connection.drain()));
      for (const conn of takenOver) {
        try {
          conn.close();
        } catch { /* closed by its owner meanwhile */ }
      }
      takenOver.clear();
    },
  };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<
    T
  >;
}

/** What every connection of a server shares. */
interface Context {
  readonly settings: typeof DEFAULTS;
  readonly clock: Clock;
  readonly date: DateField;
  readonly scheme: "http" | "https";
  readonly fallbackHost: string;
  readonly handler: Handler;
  readonly report: (error: unknown, what: string) => void;
  readonly isStopping: () => boolean;
  /** Records a connection handed over by an upgrade; returns its release. */
  readonly takeOver: (conn: Deno.Conn) => () => void;
}

/** One connection's loop: read a head, answer it, repeat while the connection is kept alive. */
class Connection {
  readonly #conn: Deno.Conn;
  readonly #context: Context;
  #buffer = new Uint8Array(INITIAL_BUFFER);
  /** Unconsumed bytes are `#buffer[#start, #end)`. */
  #start = 0;
  #end = 0;
  /** True while a request is being answered (shutdown then waits for the answer). */
  #busy = false;
  #closed = false;
  #handedOver = false;
  /** A lazily checked deadline: one timer per connection, re-armed only when it fires early. */
  #deadline = Infinity;
  #timer: unknown;
  #timerDue = 0;
  #done: Promise<void> = Promise.resolve();
  /** Built at the first request: reading `remoteAddr` is a call into the runtime. */
  #info: ConnInfo | undefined;

  constructor(conn: Deno.Conn, context: Context) {
    this.#conn = conn;
    this.#context = context;
  }

  serve(): Promise<void> {
    this.#done = this.#loop().catch((error) => {
      // Reset by the peer, closed by a deadline or by shutdown: the usual ends of a connection.
      if (!this.#closed && !isConnectionEnd(error)) this.#context.report(error, "connection");
    }).finally(() => this.#close());
    return this.#done;
  }

  /** Closes the connection if idle; else lets its request be answered, then closes it. */
  async drain(): Promise<void> {
    if (!this.#busy) this.#close();
    await this.#done;
  }

  #close() {
    if (this.#timer !== undefined) this.#context.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed || this.#handedOver) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  /** Sets the deadline `ms` after `now` (the time just read, to read the clock less often). */
  #setDeadline(ms: number, now = this.#context.clock.now()) {
    this.#deadline = now + ms;
    if (this.#timer !== undefined && this.#timerDue <= this.#deadline) return;
    if (this.#timer !== undefined) this.#context.clock.clearTimeout(this.#timer);
    this.#armTimer(ms, now);
  }

  #armTimer(ms: number, now: number) {
    const clock = this.#context.clock;
    this.#timerDue = now + ms;
    this.#timer = clock.setTimeout(() => {
      this.#timer = undefined;
      if (this.#deadline === Infinity) return;
      const left = this.#deadline - clock.now();
      if (left > 0) this.#armTimer(left, clock.now());
      else this.#close();
    }, ms);
  }

  /** Reads more bytes after `#end`, growing the buffer up to `limit`; false at end of stream. */
  async #read(limit: number): Promise<boolean> {
    if (this.#end === this.#buffer.length) {
      if (this.#start > 0) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      if (this.#end === this.#buffer.length) {
        const grown = new Uint8Array(Math.min(limit, this.#buffer.length * 2));
        grown.set(this.#buffer.subarray(0, this.#end));
        this.#buffer = grown;
      }
    }
    const n = await this.#conn.read(this.#buffer.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  async #loop(): Promise<void> {
    const { settings, clock } = this.#context;
    for (;;) {
      // Between requests: idle, closed on shutdown or at the idle deadline.
      this.#busy = false;
      if (this.#context.isStopping()) return;
      if (this.#start === this.#end) {
        this.#start = this.#end = 0;
        if (this.#deadline === Infinity) this.#setDeadline(settings.idleTimeoutMs);
        // The common case, read directly into the empty buffer (no view, no async wrapper).
        const n = await this.#conn.read(this.#buffer);
        if (n === null) return;
        this.#end = n;
      }
      let now = clock.now();
      this.#setDeadline(settings.headTimeoutMs, now);
      let scanned = this.#start;
      let head: RequestHead;
      for (;;) {
        const result = parseHead(
          this.#buffer,
          this.#start,
          this.#end,
          scanned,
          settings.maxHeadBytes,
        );
        if (result.kind === "head") {
          head = result.head;
          break;
        }
        if (result.kind === "error") return await this.#refuse(result.status, result.reason);
        // The buffer may move while reading: keep the scan position relative to the head.
        const relative = result.scanned - this.#start;
        if (!(await this.#read(settings.maxHeadBytes))) return;
        scanned = this.#start + relative;
      }
      this.#start += head.length;
      if (head.transferEncoding) {
        return await this.#refuse(501, "transfer-encoding is not supported");
      }
      if (head.contentLength > settings.maxBodyBytes) {
        return await this.#refuse(413, "request body too large");
      }
      const target = head.target;
      if (
        target.charCodeAt(0) !== 0x2f && !target.startsWith("http://") &&
        !target.startsWith("https://")
      ) {
        return await this.#refuse(400, "unsupported request target");
      }
      if (head.contentLength > 0) {
        // The routes take no body: it is read (bounded above) and dropped to keep the framing.
        let left = head.contentLength;
        while (left > 0) {
          if (this.#start === this.#end) {
            this.#start = this.#end = 0;
            if (!(await this.#read(this.#buffer.length))) return;
          }
          const take = Math.min(left, this.#end - this.#start);
          this.#start += take;
          left -= take;
        }
      }
      this.#deadline = Infinity;
      // Only now does shutdown wait for this connection: a head or body still arriving is not
      // a request in flight, and a slow one must not hold the shutdown up.
      this.#busy = true;

      const request = new IncomingRequest(head, this.#context.scheme, this.#context.fallbackHost);
      let response = this.#answer(request);
      if (!(response instanceof Response)) {
        response = await response;
        now = clock.now();
      }
      // From here the connection is idle for its peer: a peer that does not even read the answer
      // is closed at the idle deadline as well.
      this.#setDeadline(settings.idleTimeoutMs, now);
      const upgrade = request.upgrade;
      if (upgrade !== undefined && upgrade.response === response) {
        await this.#handOver(response, upgrade.takeOver);
        return;
      }
      const keepAlive = !this.#context.isStopping() && head.minor === 1 &&
        !hasToken(head.connection, "close");
      const withBody = head.method !== "HEAD";
      const prepared = keepAlive ? preparedAnswerOf(response) : undefined;
      if (prepared !== undefined) {
        const bytes = prepared.bytes(this.#context.date, now, withBody);
        const written = await this.#conn.write(bytes);
        if (written < bytes.length) await writeAll(this.#conn, bytes.subarray(written));
        continue;
      }
      if (!(await this.#write(response, withBody, keepAlive))) return;
    }
  }

  /**
   * The handler's answer; a throw or a rejection becomes a 500 (reported). A synchronous answer
   * is returned as it is: awaiting it would cost every request a promise and a microtask.
   */
  #answer(request: IncomingRequest): Response | Promise<Response> {
    let answer: Response | Promise<Response>;
    try {
      this.#info ??= { remoteAddr: this.#conn.remoteAddr };
      answer = this.#context.handler(request, this.#info);
    } catch (error) {
      this.#context.report(error, "handler failed");
      return this.#internalError();
    }
    if (answer instanceof Response) return answer;
    return Promise.resolve(answer).then(
      (response) => response instanceof Response ? response : this.#nonResponse(response),
      (error) => {
        this.#context.report(error, "handler failed");
        return this.#internalError();
      },
    );
  }

  #nonResponse(value: unknown): Response {
    this.#context.report(new TypeError(`handler answered ${String(value)}`), "handler failed");
    return this.#internalError();
  }

  #internalError(): Response {
    return new Response("Internal server error\n", {
      status: 500,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }

  /** Answers a request that cannot be read further and closes the connection. */
  async #refuse(status: number, message: string): Promise<void> {
    const date = this.#context.date.line(this.#context.clock.now());
    try {
      await writeAll(this.#conn, errorAnswer(status, message, date));
    } catch { /* the peer is gone */ }
  }

  async #handOver(response: Response, takeOver: (conn: Deno.Conn, leftover: Uint8Array) => void) {
    // `connection: upgrade` is the engine's to write, as every `connection` field.
    const head = statusLine(101) + headerLines(response.headers) + "connection: Upgrade\r\n\r\n";
    await writeAll(this.#conn, encoder.encode(head));
    const leftover = this.#buffer.slice(this.#start, this.#end);
    this.#handedOver = true;
    if (this.#timer !== undefined) this.#context.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const release = this.#context.takeOver(this.#conn);
    try {
      takeOver(wrapClose(this.#conn, release), leftover);
    } catch (error) {
      release();
      this.#context.report(error, "upgrade failed");
      try {
        this.#conn.close();
      } catch { /* closed */ }
    }
  }

  /** Writes a response; false when the connection is to be closed. */
  async #write(response: Response, withBody: boolean, keepAlive: boolean): Promise<boolean> {
    const status = response.status;
    let head = statusLine(status) + headerLines(response.headers);
    if (!response.headers.has("date")) head += this.#context.date.line(this.#context.clock.now());
    const close = keepAlive ? "" : "connection: close\r\n";
    const body = response.body;
    if (body === null || bodyless(status)) {
      if (body !== null) await body.cancel();
      const declared = response.headers.get("content-length");
      const length = bodyless(status)
        ? ""
        : withBody
        ? "content-length: 0\r\n"
        : declared === null
        ? ""
        : `content-length: ${declared}\r\n`;
      await writeAll(this.#conn, encoder.encode(head + length + close + "\r\n"));
      return keepAlive;
    }
    // Up to this many bytes are gathered to answer with a length; a longer body is sent chunked.
    const GATHER = 256 * 1024;
    const reader = body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    let ended = false;
    try {
      while (size <= GATHER) {
        const { value, done } = await reader.read();
        if (done) {
          ended = true;
          break;
        }
        chunks.push(value);
        size += value.length;
      }
      if (ended) {
        const headBytes = encoder.encode(head + `content-length: ${size}\r\n` + close + "\r\n");
        await writeAll(this.#conn, withBody ? concatBytes([headBytes, ...chunks]) : headBytes);
        return keepAlive;
      }
      if (!withBody) {
        await writeAll(this.#conn, encoder.encode(head + close + "\r\n"));
        return keepAlive;
      }
      // HTTP/1.0 knows no chunks: the end of the connection ends the body.
      const chunked = keepAlive;
      await writeAll(
        this.#conn,
        encoder.encode(head + (chunked ? "transfer-encoding: chunked\r\n" : close) + "\r\n"),
      );
      const send = async (chunk: Uint8Array) => {
        if (chunk.length === 0) return;
        if (!chunked) return await writeAll(this.#conn, chunk);
        await writeAll(
          this.#conn,
          concatBytes([encoder.encode(`${chunk.length.toString(16)}\r\n`), chunk, CRLF]),
        );
      };
      for (const chunk of chunks) await send(chunk);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        await send(value);
      }
      if (chunked) await writeAll(this.#conn, encoder.encode("0\r\n\r\n"));
      return chunked;
    } finally {
      // No releaseLock: the response is dropped with its reader, and releasing costs an Error
      // (with its stack) per response, a third of what a small answer costs.
      if (!ended) await reader.cancel().catch(() => {});
    }
  }
}

const CRLF = encoder.encode("\r\n");

/** A connection whose `close` also releases it from the server's list of taken-over ones. */
function wrapClose(conn: Deno.Conn, release: () => void): Deno.Conn {
  const close = conn.close.bind(conn);
  conn.close = () => {
    release();
    close();
  };
  return conn;
}

/** True for the errors that just mean the connection ended. */
function isConnectionEnd(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.UnexpectedEof || error instanceof Deno.errors.NotConnected ||
    (error instanceof Error && /TLS|certificate|handshake/i.test(error.message));
}
