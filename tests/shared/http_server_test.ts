/**
 * The HTTP/1.1 engine against real sockets over loopback: keep-alive, pipelining, HEAD, what is
 * refused (431, 400, 413, 501), deadlines on an injected clock, streaming bodies, TLS, errors
 * kept to their connection, and the graceful shutdown.
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { type Clock, systemClock, type TimerId } from "../../shared/clock.ts";
import type { Handler } from "../../shared/http_request.ts";
import { type HttpServer, type HttpServerOptions, listenHttp } from "../../shared/http_server.ts";
import { preparedResponses } from "../../shared/http_response.ts";
import { FakeClock, flush } from "../fakes/fake_clock.ts";
import { makeCertificate } from "../helpers/cert.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One response as read off the wire. */
interface Wire {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** A raw client connection that reads responses off the wire. */
class RawClient {
  #buffer = new Uint8Array(0);
  #ended = false;
  private constructor(readonly conn: Deno.Conn) {}

  static async open(server: HttpServer): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
  }

  async send(text: string | Uint8Array): Promise<void> {
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    for (let at = 0; at < bytes.length;) at += await this.conn.write(bytes.subarray(at));
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(65536);
    let n: number | null = null;
    try {
      n = await this.conn.read(chunk);
    } catch (error) {
      if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
    }
    if (n === null) {
      this.#ended = true;
      return false;
    }
    const joined = new Uint8Array(this.#buffer.length + n);
    joined.set(this.#buffer);
    joined.set(chunk.subarray(0, n), this.#buffer.length);
    this.#buffer = joined;
    return true;
  }

  /** Reads one response; `head` for a HEAD request (no body whatever the length says). */
  async response(head = false): Promise<Wire> {
    let end: number;
    while ((end = decoder.decode(this.#buffer).indexOf("\r\n\r\n")) === -1) {
      if (!(await this.#fill())) throw new Error("connection ended before a response");
    }
    const lines = decoder.decode(this.#buffer.subarray(0, end)).split("\r\n");
    this.#buffer = this.#buffer.slice(end + 4);
    const status = Number(lines[0]!.split(" ")[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    let body = "";
    if (head) return { status, headers, body };
    if (headers["content-length"] !== undefined) {
      const length = Number(headers["content-length"]);
      while (this.#buffer.length < length) {
        if (!(await this.#fill())) throw new Error("connection ended inside a body");
      }
      body = decoder.decode(this.#buffer.subarray(0, length));
      this.#buffer = this.#buffer.slice(length);
    } else if (headers["transfer-encoding"] === "chunked") {
      for (;;) {
        let lineEnd: number;
        while ((lineEnd = decoder.decode(this.#buffer).indexOf("\r\n")) === -1) await this.#fill();
        const size = parseInt(decoder.decode(this.#buffer.subarray(0, lineEnd)), 16);
        while (this.#buffer.length < lineEnd + 2 + size + 2) await this.#fill();
        body += decoder.decode(this.#buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
        this.#buffer = this.#buffer.slice(lineEnd + 2 + size + 2);
        if (size === 0) break;
      }
    } else {
      while (await this.#fill()) { /* up to the end of the connection */ }
      body = decoder.decode(this.#buffer);
      this.#buffer = new Uint8Array(0);
    }
    return { status, headers, body };
  }

  /** True once the server closed the connection (reads nothing more). */
  async ended(): Promise<boolean> {
    while (!this.#ended) {
      if (await this.#fill()) return false;
    }
    return this.#buffer.length === 0;
  }

  /** Reads whatever comes up to the end of the connection (true when it ends). */
  async untilEnd(): Promise<boolean> {
    while (await this.#fill()) { /* discard */ }
    return this.#ended;
  }

  close() {
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }
}

/** Starts a server on a free loopback port; `using` shuts it down. */
function serve(handler: Handler, options: Partial<HttpServerOptions> = {}) {
  const errors: string[] = [];
  const server = listenHttp({
    hostname: "127.0.0.1",
    port: 0,
    handler,
    onError: (error, what) => errors.push(`${what}: ${error}`),
    ...options,
  });
  return Object.assign(server, { errors, [Symbol.asyncDispose]: () => server.shutdown() });
}

const echo: Handler = (request) =>
  new Response(`${request.method} ${new URL(request.url).pathname}`, {
    headers: { "content-type": "text/plain", "x-host": request.headers.get("host") ?? "" },
  });

const get = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;

Deno.test("keep-alive: several requests on one connection, each answered with its length", async () => {
  await using server = serve(echo);
  const client = await RawClient.open(server);
  try {
    for (const path of ["/a", "/b", "/c"]) {
      await client.send(get(path));
      const response = await client.response();
      equal(response.status, 200);
      equal(response.body, `GET ${path}`);
      equal(response.headers["content-length"], String(response.body.length));
      equal(response.headers["x-host"], "t");
      match(response.headers["date"]!, /^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/);
      equal(response.headers["connection"], undefined);
    }
    equal(server.connections, 1);
  } finally {
    client.close();
  }
});

Deno.test("pipelined requests are answered in order, even when the first answers last", async () => {
  let releaseFirst!: () => void;
  const firstHeld = new Promise<void>((resolve) => releaseFirst = resolve);
  const seen: string[] = [];
  await using server = serve(async (request) => {
    const path = new URL(request.url).pathname;
    seen.push(path);
    if (path === "/slow") await firstHeld;
    return new Response(path);
  });
  const client = await RawClient.open(server);
  try {
    await client.send(get("/slow") + get("/fast") + `HEAD /head HTTP/1.1\r\nHost: t\r\n\r\n`);
    setTimeout(releaseFirst, 0);
    equal((await client.response()).body, "/slow");
    equal((await client.response()).body, "/fast");
    const head = await client.response(true);
    equal(head.status, 200);
    equal(head.headers["content-length"], "5", "HEAD: the length of the body it would get");
    // No body followed the HEAD answer: the next answer comes next.
    await client.send(get("/after"));
    equal((await client.response()).body, "/after");
    deepEqual(seen, ["/slow", "/fast", "/head", "/after"]);
  } finally {
    client.close();
  }
});

Deno.test("prepared answers are written from their bytes, GET and HEAD", async () => {
  const respond = preparedResponses({ headers: { "content-type": "text/html; charset=utf-8" } });
  let body = "ws://a:2000";
  await using server = serve(() => respond(body));
  const client = await RawClient.open(server);
  try {
    await client.send(get("/session"));
    const first = await client.response();
    deepEqual([first.status, first.body, first.headers["content-type"]], [
      200,
      "ws://a:2000",
      "text/html; charset=utf-8",
    ]);
    body = "ws://b:2000";
    await client.send(`HEAD /session HTTP/1.1\r\nHost: t\r\n\r\n` + get("/session"));
    const head = await client.response(true);
    equal(head.headers["content-length"], "11");
    equal((await client.response()).body, "ws://b:2000");
  } finally {
    client.close();
  }
});

Deno.test("what cannot be read is refused and the connection closed: 431, 400, 413, 501, 505", async () => {
  await using server = serve(echo, { maxBodyBytes: 1024 });
  const cases: [string, number][] = [
    [`GET / HTTP/1.1\r\nHost: t\r\nX-Big: ${"a".repeat(17_000)}\r\n\r\n`, 431],
    ["GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\n\r\n", 400],
    ["\x16\x03\x01\x02\x00", 400],
    ["OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", 400],
    [`POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1025\r\n\r\n`, 413],
    [
      `POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
      501,
    ],
    ["GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505],
  ];
  for (const [request, status] of cases) {
    const client = await RawClient.open(server);
    try {
      await client.send(request);
      const response = await client.response();
      equal(response.status, status, JSON.stringify(request.slice(0, 60)));
      equal(response.headers["connection"], "close");
      ok(await client.ended(), "closed after the refusal");
    } finally {
      client.close();
    }
  }
  deepEqual(server.errors, []);
});

Deno.test("a body under the cap is read past, and the next request on the connection is answered", async () => {
  await using server = serve(echo, { maxBodyBytes: 1024 });
  const client = await RawClient.open(server);
  try {
    const body = "x".repeat(1024);
    await client.send(`POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n`);
    await client.send(body.slice(0, 500));
    await client.send(body.slice(500) + get("/next"));
    equal((await client.response()).body, "POST /p");
    equal((await client.response()).body, "GET /next");
  } finally {
    client.close();
  }
});

Deno.test("HTTP/1.0 and connection: close are answered, then the connection is closed", async () => {
  await using server = serve(echo);
  for (const request of ["GET /old HTTP/1.0\r\n\r\n", get("/bye", "Connection: close\r\n")]) {
    const client = await RawClient.open(server);
    try {
      await client.send(request);
      const response = await client.response();
      equal(response.status, 200);
      equal(response.headers["connection"], "close");
      ok(await client.ended());
    } finally {
      client.close();
    }
  }
});

Deno.test("a long streaming body is sent chunked (HTTP/1.1) or up to the close (HTTP/1.0)", async () => {
  const piece = "0123456789abcdef".repeat(4096); // 64 KiB
  const streaming = () =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < 6; i++) controller.enqueue(encoder.encode(piece));
          controller.close();
        },
      }),
    );
  await using server = serve(streaming);
  const client = await RawClient.open(server);
  const old = await RawClient.open(server);
  try {
    await client.send(get("/stream") + get("/again"));
    const first = await client.response();
    equal(first.headers["transfer-encoding"], "chunked");
    equal(first.body, piece.repeat(6));
    equal((await client.response()).body.length, piece.length * 6, "keep-alive after chunks");
    await old.send("GET /stream HTTP/1.0\r\n\r\n");
    const response = await old.response();
    equal(response.headers["connection"], "close");
    equal(response.body, piece.repeat(6));
  } finally {
    client.close();
    old.close();
  }
});

Deno.test("a handler that throws gets its request a 500; other connections never notice", async () => {
  await using server = serve((request) => {
    if (request.url.endsWith("/throw")) throw new Error("boom");
    if (request.url.endsWith("/reject")) return Promise.reject(new Error("late boom"));
    return new Response("fine");
  });
  const a = await RawClient.open(server);
  const b = await RawClient.open(server);
  try {
    await a.send(get("/throw"));
    equal((await a.response()).status, 500);
    await b.send(get("/ok"));
    equal((await b.response()).body, "fine");
    await a.send(get("/reject"));
    equal((await a.response()).status, 500);
    await a.send(get("/ok"));
    equal((await a.response()).body, "fine", "the connection that failed goes on");
    // A connection dropped in the middle of a head disturbs nobody.
    const c = await RawClient.open(server);
    await c.send("GET /half");
    c.close();
    await b.send(get("/ok"));
    equal((await b.response()).body, "fine");
    deepEqual(server.errors.map((e) => e.split(":")[0]), ["handler failed", "handler failed"]);
  } finally {
    a.close();
    b.close();
  }
});

/** A clock that tells when a timer of a given length is set. */
class WatchedClock implements Clock {
  readonly #inner: FakeClock;
  #waiters: { ms: number; resolve: () => void }[] = [];
  constructor(inner: FakeClock) {
    this.#inner = inner;
  }
  now = () => this.#inner.now();
  setTimeout(callback: () => void, ms: number): TimerId {
    for (const waiter of this.#waiters.filter((w) => w.ms === ms)) waiter.resolve();
    this.#waiters = this.#waiters.filter((w) => w.ms !== ms);
    return this.#inner.setTimeout(callback, ms);
  }
  clearTimeout = (id: TimerId) => this.#inner.clearTimeout(id);
  /** Resolves at the next timer of `ms` set. */
  timerOf(ms: number): Promise<void> {
    return new Promise((resolve) => this.#waiters.push({ ms, resolve }));
  }
}

Deno.test("a slow head and an idle keep-alive connection are closed at their deadlines", async (t) => {
  const fake = new FakeClock();
  const clock = new WatchedClock(fake);
  await using server = serve(echo, { clock, headTimeoutMs: 10_000, idleTimeoutMs: 20_000 });

  await t.step("a head not complete 10 s after its first byte", async () => {
    const client = await RawClient.open(server);
    try {
      const armed = clock.timerOf(10_000);
      await client.send("GET / HTTP/1.1\r\nHo");
      await armed;
      await fake.advance(9_999);
      equal(server.connections, 1);
      await fake.advance(1);
      ok(await client.ended(), "closed at the head deadline");
    } finally {
      client.close();
    }
  });

  await t.step("a keep-alive connection idle for 20 s after its answer", async () => {
    const client = await RawClient.open(server);
    try {
      await client.send(get("/x"));
      await client.response();
      await fake.advance(19_999);
      equal(server.connections, 1);
      await client.send(get("/y"));
      await client.response();
      // The deadline moved with the second answer.
      await fake.advance(19_999);
      equal(server.connections, 1);
      await fake.advance(1);
      ok(await client.ended(), "closed at the idle deadline");
      while (server.connections > 0) await flush(1);
    } finally {
      client.close();
    }
  });
});

Deno.test("shutdown: idle connections close, a request in flight is answered, then nothing is accepted", async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => release = resolve);
  let arrived!: () => void;
  const inFlight = new Promise<void>((resolve) => arrived = resolve);
  const server = serve(async (request) => {
    if (request.url.endsWith("/held")) {
      arrived();
      await held;
    }
    return new Response("done");
  });
  const idle = await RawClient.open(server);
  const busy = await RawClient.open(server);
  try {
    await idle.send(get("/quick"));
    await idle.response();
    await busy.send(get("/held"));
    await inFlight;
    const stopped = server.shutdown();
    ok(await idle.ended(), "the idle connection is closed at once");
    release();
    const answer = await busy.response();
    equal(answer.body, "done");
    equal(answer.headers["connection"], "close");
    ok(await busy.ended());
    await stopped;
    let refused = false;
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port: server.port })).close();
    } catch (error) {
      refused = error instanceof Deno.errors.ConnectionRefused;
    }
    ok(refused, "the port no longer accepts");
  } finally {
    idle.close();
    busy.close();
    release();
    await server.shutdown();
  }
});

Deno.test("TLS with ALPN http/1.1: fetch over HTTPS gets its answer", async () => {
  const dir = await Deno.makeTempDir({ prefix: "http-tls-" });
  try {
    const { cert, key } = await makeCertificate(dir);
    await using server = serve(echo, { cert, key, clock: systemClock });
    using client = Deno.createHttpClient({ caCerts: [cert] });
    const response = await fetch(`https://localhost:${server.port}/secure`, { client });
    equal(response.status, 200);
    equal(await response.text(), "GET /secure");
    // A plain-text request on the TLS port fails its handshake: only that connection ends.
    const plain = await RawClient.open(server);
    await plain.send(get("/"));
    ok(await plain.untilEnd(), "the plain-text connection is closed");
    plain.close();
    const tls = await Deno.connectTls({
      hostname: "localhost",
      port: server.port,
      caCerts: [cert],
      alpnProtocols: ["h2", "http/1.1"],
    });
    equal((await tls.handshake()).alpnProtocol, "http/1.1");
    tls.close();
    const again = await fetch(`https://localhost:${server.port}/again`, { client });
    equal(await again.text(), "GET /again");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
