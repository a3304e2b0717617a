/**
 * The request-head parser in-process: complete heads whatever the chunking, the limit before the
 * end is seen, and what is refused.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { hasToken, type HeadResult, latin1, parseHead } from "../../shared/http_head.ts";

const encoder = new TextEncoder();

/** Parses `text` given `chunks` bytes at a time, as the engine does. */
function parseChunked(text: string, sizes: () => number, limit = 16384): HeadResult {
  const bytes = encoder.encode(text);
  let end = 0;
  let scanned = 0;
  for (;;) {
    end = Math.min(bytes.length, end + sizes());
    const result = parseHead(bytes, 0, end, scanned, limit);
    if (result.kind !== "incomplete" || end === bytes.length) return result;
    scanned = result.scanned;
  }
}

const HEAD = "GET /session?url=x HTTP/1.1\r\nHost: example.com:1999\r\nUser-Agent: t\r\n" +
  "Connection: keep-alive, Upgrade\r\nContent-Length: 0\r\nX-Empty:\r\n\r\n";

Deno.test("a head parses to the same fields however it is cut", () => {
  for (let run = 0; run < 300; run++) {
    const max = [1, 2, 7, 64, 4096][run % 5]!;
    const result = parseChunked(HEAD + "GET /next", () => 1 + Math.floor(Math.random() * max));
    ok(result.kind === "head", JSON.stringify(result));
    const head = result.head;
    equal(head.method, "GET");
    equal(head.target, "/session?url=x");
    equal(head.minor, 1);
    equal(head.host, "example.com:1999");
    equal(head.connection, "keep-alive, upgrade");
    equal(head.contentLength, 0);
    equal(head.transferEncoding, false);
    equal(head.length, HEAD.length, "the next request's bytes are left alone");
    deepEqual(head.fields, [
      "host",
      "example.com:1999",
      "user-agent",
      "t",
      "connection",
      "keep-alive, Upgrade",
      "content-length",
      "0",
      "x-empty",
      "",
    ]);
  }
});

Deno.test("a head longer than the limit is refused with 431 before its end arrives", () => {
  const long = "GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + "a".repeat(20_000);
  const result = parseChunked(long, () => 1000);
  deepEqual(result, { kind: "error", status: 431, reason: "request head too large" });
  // Just under the limit passes.
  const prefix = "GET / HTTP/1.1\r\nHost: x\r\nX: ";
  const fits = prefix + "a".repeat(16384 - prefix.length - 4) + "\r\n\r\n";
  equal(fits.length, 16384);
  equal(parseChunked(fits, () => 512).kind, "head");
  equal(parseChunked(fits + "x", () => 512, 16383).kind, "error");
});

Deno.test("malformed heads are refused with 400, other HTTP versions with 505", () => {
  const cases: [string, number][] = [
    ["GET / HTTP/1.1\r\n\r\n", 400], // no host
    ["GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400],
    ["GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400],
    ["G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400],
    ["GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400],
    ["GET / HTTP/1.1\nHost: x\r\n\r\n", 400],
    ["GET / FTP/1.1\r\nHost: x\r\n\r\n", 400],
    ["GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505],
  ];
  for (const [text, status] of cases) {
    const result = parseHead(encoder.encode(text), 0, encoder.encode(text).length, 0, 16384);
    ok(result.kind === "error", `${JSON.stringify(text)}: ${JSON.stringify(result)}`);
    equal(result.status, status, JSON.stringify(text));
  }
});

Deno.test("bytes that cannot start a request line are refused at once, not at the limit", () => {
  // The start of a TLS ClientHello sent to a plain HTTP port.
  const hello = new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
  deepEqual(parseHead(hello, 0, hello.length, 0, 16384), {
    kind: "error",
    status: 400,
    reason: "malformed request line",
  });
});

Deno.test("HTTP/1.0 needs no host; leading empty lines are skipped; bytes stay Latin-1", () => {
  const text = "\r\nGET / HTTP/1.0\r\nX-Name: caf\xe9\r\n\r\n";
  const bytes = new Uint8Array([...text].map((c) => c.charCodeAt(0)));
  const result = parseHead(bytes, 0, bytes.length, 0, 16384);
  ok(result.kind === "head");
  equal(result.head.minor, 0);
  equal(result.head.host, undefined);
  deepEqual(result.head.fields, ["x-name", "caf\xe9"]);
  equal(result.head.length, bytes.length);
  equal(latin1(new Uint8Array([0x80, 0xff, 0x41]), 0, 3), "\x80\xffA");
});

Deno.test("hasToken finds a token in a comma-separated list", () => {
  ok(hasToken("close", "close"));
  ok(hasToken("keep-alive, close", "close"));
  ok(!hasToken("", "close"));
  ok(!hasToken("closed", "close"));
});
