/**
 * The WebSocket frame parser, fed whole streams and the same streams cut at random points: the
 * same events in the same order, limits checked from the frame header before any payload is
 * kept, and each protocol error with its close code.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import {
  encodeClose,
  encodeFrame,
  type FrameEvent,
  FrameParser,
  OPCODE,
} from "../../shared/websocket_frames.ts";

const encoder = new TextEncoder();

/** A client frame: masked with a random key unless `masked` is false. */
function clientFrame(
  opcode: number,
  payload: Uint8Array | string,
  { fin = true, masked = true, rsv = 0 } = {},
): Uint8Array {
  const bytes = typeof payload === "string" ? encoder.encode(payload) : payload;
  const length = bytes.length;
  const extended = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const header = new Uint8Array(2 + extended + (masked ? 4 : 0));
  header[0] = (fin ? 0x80 : 0) | rsv | opcode;
  header[1] = (masked ? 0x80 : 0) | (length < 126 ? length : length < 65536 ? 126 : 127);
  const view = new DataView(header.buffer);
  if (extended === 2) view.setUint16(2, length);
  if (extended === 8) view.setBigUint64(2, BigInt(length));
  const out = new Uint8Array(header.length + (masked ? length : 0) + (masked ? 0 : length));
  out.set(header);
  if (!masked) {
    out.set(bytes, header.length);
    return out;
  }
  const mask = crypto.getRandomValues(new Uint8Array(4));
  header.set(mask, 2 + extended);
  out.set(header);
  for (let i = 0; i < length; i++) out[header.length + i] = bytes[i]! ^ mask[i & 3]!;
  return out;
}

/** A header alone declaring `length` bytes (no payload follows). */
function headerOnly(opcode: number, length: number, fin = true): Uint8Array {
  const frame = new Uint8Array(14);
  frame[0] = (fin ? 0x80 : 0) | opcode;
  frame[1] = 0x80 | 127;
  new DataView(frame.buffer).setBigUint64(2, BigInt(length));
  return frame;
}

function join(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Feeds `bytes` cut at random points; returns the events and the most bytes held meanwhile. */
function feedRandomly(parser: FrameParser, bytes: Uint8Array, maxChunk: number) {
  const events: FrameEvent[] = [];
  let held = 0;
  for (let at = 0; at < bytes.length;) {
    const size = 1 + Math.floor(Math.random() * maxChunk);
    events.push(...parser.push(bytes.subarray(at, at + size)));
    held = Math.max(held, parser.heldBytes);
    at += size;
  }
  return { events, held };
}

/** Events in a comparable form. */
function shape(events: FrameEvent[]): unknown[] {
  return events.map((e) =>
    e.kind === "binary" || e.kind === "ping" || e.kind === "pong"
      ? { kind: e.kind, bytes: [...(e.kind === "binary" ? e.data : e.payload)] }
      : e
  );
}

Deno.test("a stream of frames parses to the same events however it is cut", () => {
  const euro = "€".repeat(1000);
  const stream = join(
    clientFrame(OPCODE.TEXT, "hello"),
    clientFrame(OPCODE.TEXT, ""),
    clientFrame(OPCODE.BINARY, new Uint8Array([0, 1, 2, 255])),
    clientFrame(OPCODE.TEXT, "x".repeat(300)),
    clientFrame(OPCODE.TEXT, "y".repeat(70_000)),
    // A fragmented text message with a ping between its fragments, cut inside a character.
    clientFrame(OPCODE.TEXT, encoder.encode(euro).subarray(0, 1001), { fin: false }),
    clientFrame(OPCODE.PING, "are you there"),
    clientFrame(OPCODE.CONTINUATION, encoder.encode(euro).subarray(1001, 2000), { fin: false }),
    clientFrame(OPCODE.CONTINUATION, encoder.encode(euro).subarray(2000)),
    clientFrame(OPCODE.PONG, ""),
    clientFrame(OPCODE.CLOSE, join(new Uint8Array([0x03, 0xe8]), encoder.encode("bye"))),
  );
  const expected = [
    { kind: "text", data: "hello" },
    { kind: "text", data: "" },
    { kind: "binary", bytes: [0, 1, 2, 255] },
    { kind: "text", data: "x".repeat(300) },
    { kind: "text", data: "y".repeat(70_000) },
    { kind: "ping", bytes: [...encoder.encode("are you there")] },
    { kind: "text", data: euro },
    { kind: "pong", bytes: [] },
    { kind: "close", code: 1000, reason: "bye" },
  ];
  deepEqual(shape(new FrameParser(100_000).push(stream)), expected);
  for (let run = 0; run < 200; run++) {
    const maxChunk = [1, 3, 16, 1000, 20_000][run % 5]!;
    const parser = new FrameParser(100_000);
    const { events, held } = feedRandomly(parser, stream, maxChunk);
    deepEqual(shape(events), expected, `run ${run}, chunks up to ${maxChunk} bytes`);
    ok(held <= 70_000 + 14, `held ${held} bytes`);
    equal(parser.heldBytes, 0);
  }
});

Deno.test("a message at the limit passes; one byte more fails with 1009", () => {
  const limit = 65536;
  deepEqual(
    new FrameParser(limit).push(clientFrame(OPCODE.TEXT, "a".repeat(limit))).map((e) => e.kind),
    ["text"],
  );
  deepEqual(new FrameParser(limit).push(clientFrame(OPCODE.TEXT, "a".repeat(limit + 1))), [
    { kind: "fail", code: 1009, reason: "message too big" },
  ]);
  // Bytes, not UTF-16 units: 30,000 '€' are 90,000 bytes.
  const euros = new FrameParser(limit).push(clientFrame(OPCODE.TEXT, "€".repeat(30_000)));
  deepEqual(euros.map((e) => e.kind === "fail" && e.code), [1009]);
});

Deno.test("an oversized frame fails from its header alone, before any payload is kept", () => {
  const parser = new FrameParser(65536);
  // 128 MiB declared: only the 14 header bytes are given.
  deepEqual(parser.push(headerOnly(OPCODE.TEXT, 128 * 1024 * 1024)), [
    { kind: "fail", code: 1009, reason: "message too big" },
  ]);
  ok(parser.heldBytes <= 14);
  // Anything after a failure is ignored.
  deepEqual(parser.push(clientFrame(OPCODE.TEXT, "late")), []);
});

Deno.test("fragments count together: the fragment that passes the limit fails at its header", () => {
  const parser = new FrameParser(4096);
  const fragment = clientFrame(OPCODE.BINARY, new Uint8Array(1024), { fin: false });
  const more = clientFrame(OPCODE.CONTINUATION, new Uint8Array(1024), { fin: false });
  const events: FrameEvent[] = [...parser.push(fragment)];
  for (let i = 0; i < 3; i++) events.push(...parser.push(more));
  deepEqual(events, []);
  equal(parser.heldBytes, 4096);
  // The fifth KiB is refused from its header: nothing of it is kept.
  deepEqual(parser.push(headerOnly(OPCODE.CONTINUATION, 1024, false)), [
    { kind: "fail", code: 1009, reason: "message too big" },
  ]);
  ok(parser.heldBytes <= 4096 + 14);
});

Deno.test("endless fragments of 1 MiB are refused at the first one over the limit", () => {
  const parser = new FrameParser(4096);
  const fragment = clientFrame(OPCODE.TEXT, new Uint8Array(1024 * 1024), { fin: false });
  // Fed as 64 KiB reads: the failure comes with the first read, the rest is ignored.
  const events: FrameEvent[] = [];
  for (let at = 0; at < fragment.length; at += 65536) {
    events.push(...parser.push(fragment.subarray(at, at + 65536)));
    ok(parser.heldBytes <= 14);
  }
  deepEqual(events.map((e) => e.kind === "fail" && e.code), [1009]);
});

Deno.test("protocol errors fail with 1002, invalid UTF-8 with 1007", () => {
  const cases: [string, Uint8Array, number, string][] = [
    ["unmasked frame", clientFrame(OPCODE.TEXT, "hi", { masked: false }), 1002, "unmasked"],
    ["reserved bit", clientFrame(OPCODE.TEXT, "hi", { rsv: 0x40 }), 1002, "reserved"],
    ["unknown opcode", clientFrame(0x3, "hi"), 1002, "unknown opcode"],
    ["unknown control opcode", clientFrame(0xb, ""), 1002, "unknown opcode"],
    ["fragmented ping", clientFrame(OPCODE.PING, "x", { fin: false }), 1002, "fragmented"],
    ["long ping", clientFrame(OPCODE.PING, "x".repeat(126)), 1002, "control frame too long"],
    ["lone continuation", clientFrame(OPCODE.CONTINUATION, "x"), 1002, "continuation"],
    [
      "new message inside a fragmented one",
      join(
        clientFrame(OPCODE.TEXT, "a", { fin: false }),
        clientFrame(OPCODE.TEXT, "b"),
      ),
      1002,
      "new message",
    ],
    ["invalid UTF-8", clientFrame(OPCODE.TEXT, new Uint8Array([0xc3, 0x28])), 1007, "UTF-8"],
    [
      "UTF-8 cut at the end of a message",
      clientFrame(OPCODE.TEXT, encoder.encode("€").subarray(0, 2)),
      1007,
      "UTF-8",
    ],
    ["close with 1 byte", clientFrame(OPCODE.CLOSE, new Uint8Array([3])), 1002, "1 byte"],
    [
      "close with code 1005",
      clientFrame(OPCODE.CLOSE, new Uint8Array([0x03, 0xed])),
      1002,
      "invalid close code",
    ],
    [
      "close reason not UTF-8",
      clientFrame(OPCODE.CLOSE, new Uint8Array([0x03, 0xe8, 0xff])),
      1007,
      "UTF-8",
    ],
  ];
  for (const [what, bytes, code, reason] of cases) {
    for (const maxChunk of [1, 2, 1000]) {
      const { events } = feedRandomly(new FrameParser(1024), bytes, maxChunk);
      const last = events.at(-1);
      ok(last?.kind === "fail", `${what}: ${JSON.stringify(events)}`);
      equal(last.code, code, what);
      ok(last.reason.includes(reason), `${what}: ${last.reason}`);
    }
  }
});

Deno.test("server frames: lengths in 7, 16 and 64 bits, unmasked, and close reasons cut to 123 bytes", () => {
  for (const length of [0, 125, 126, 65535, 65536, 70_000]) {
    const frame = encodeFrame(OPCODE.BINARY, new Uint8Array(length).fill(7));
    equal(frame[0], 0x82);
    equal(frame[1]! & 0x80, 0, "servers do not mask");
    const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
    equal(frame.length, header + length);
  }
  const close = encodeClose(1009, "€".repeat(100));
  equal(close[1], 2 + 123 - (123 % 3));
  equal((close[2]! << 8) | close[3]!, 1009);
  equal(new TextDecoder("utf-8", { fatal: true }).decode(close.subarray(4)), "€".repeat(41));
});
