/**
 * The line splitter in-process: exact lines across any chunking, the cap, UTF-8 across chunks,
 * and linear work (counted, not timed).
 */
import { deepEqual, equal } from "node:assert/strict";
import { type CutLine, LineSplitter, MAX_LINE_BYTES } from "../../simulation/line_splitter.ts";

const encode = (text: string) => new TextEncoder().encode(text);

function splitAll(splitter: LineSplitter, chunks: readonly Uint8Array[]): string[] {
  const lines: string[] = [];
  for (const chunk of chunks) lines.push(...splitter.push(chunk));
  lines.push(...splitter.end());
  return lines;
}

/** `bytes` cut at random places (seeded, so a failure can be replayed). */
function randomChunks(bytes: Uint8Array, seed: number): Uint8Array[] {
  let state = seed;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
  const chunks: Uint8Array[] = [];
  let start = 0;
  while (start < bytes.length) {
    const size = 1 + Math.floor(random() * (random() < 0.5 ? 4 : 64));
    chunks.push(bytes.slice(start, start + size));
    start += size;
  }
  return chunks;
}

Deno.test("lines come out the same whatever the chunk boundaries", () => {
  const text = "open\r\nreal-time\n.\n\n.\r\nnaïve — ünïcødé 🤖 line\npause\nlast without newline";
  const expected = [
    "open",
    "real-time",
    ".",
    "",
    ".",
    "naïve — ünïcødé 🤖 line",
    "pause",
    "last without newline",
  ];
  const bytes = encode(text);
  deepEqual(splitAll(new LineSplitter(), [bytes]), expected);
  deepEqual(splitAll(new LineSplitter(), [...bytes].map((b) => Uint8Array.of(b))), expected);
  for (let seed = 1; seed <= 200; seed++) {
    deepEqual(splitAll(new LineSplitter(), randomChunks(bytes, seed)), expected, `seed ${seed}`);
  }
});

Deno.test("a multi-byte character split across chunks is decoded whole", () => {
  const bytes = encode("🤖é\n");
  const splitter = new LineSplitter();
  deepEqual(splitter.push(bytes.subarray(0, 2)), []);
  deepEqual(splitter.push(bytes.subarray(2, 5)), []);
  deepEqual(splitter.push(bytes.subarray(5)), ["🤖é"]);
  deepEqual(splitter.end(), []);
});

Deno.test("a final line without newline is emitted at the end, an empty rest is not", () => {
  const splitter = new LineSplitter();
  deepEqual(splitter.push(encode("a\nb")), ["a"]);
  deepEqual(splitter.end(), ["b"]);
  const ended = new LineSplitter();
  deepEqual(ended.push(encode("a\n")), ["a"]);
  deepEqual(ended.end(), []);
});

Deno.test("a line longer than the cap is cut, its head kept, and reported once", () => {
  const cuts: CutLine[] = [];
  const splitter = new LineSplitter({ maxLineBytes: 8, onCut: (cut) => cuts.push(cut) });
  const lines = splitAll(splitter, [
    encode("short\n0123"),
    encode("4567"),
    encode("89ab"),
    encode("cdef\nopen\n"),
  ]);
  deepEqual(lines, ["short", "01234567", "open"]);
  deepEqual(cuts, [{ keptBytes: 8, droppedBytes: 8 }]);
  equal(splitter.pendingBytes, 0);
});

Deno.test("a cut never splits a multi-byte character", () => {
  const cuts: CutLine[] = [];
  const splitter = new LineSplitter({ maxLineBytes: 5, onCut: (cut) => cuts.push(cut) });
  // "ab" + 🤖 (4 bytes) would end inside the robot at 5 bytes: the head is "ab".
  deepEqual(splitAll(splitter, [encode("ab🤖cd\n")]), ["ab"]);
  deepEqual(cuts, [{ keptBytes: 2, droppedBytes: 6 }]);
});

Deno.test("a cut line at the end of the input is reported too", () => {
  const cuts: CutLine[] = [];
  const splitter = new LineSplitter({ maxLineBytes: 4, onCut: (cut) => cuts.push(cut) });
  deepEqual(splitAll(splitter, [encode("abcdefgh")]), ["abcd"]);
  deepEqual(cuts, [{ keptBytes: 4, droppedBytes: 4 }]);
});

Deno.test("a 16 MiB line in 64 KiB chunks scans each byte once and holds at most the cap", () => {
  const cuts: CutLine[] = [];
  const splitter = new LineSplitter({ onCut: (cut) => cuts.push(cut) });
  const chunk = new Uint8Array(64 * 1024).fill(0x78);
  const total = 16 * 1024 * 1024;
  let maxPending = 0;
  for (let sent = 0; sent < total; sent += chunk.length) {
    deepEqual(splitter.push(chunk), []);
    maxPending = Math.max(maxPending, splitter.pendingBytes);
  }
  const [line, ...rest] = splitter.push(encode("\nopen\n"));
  deepEqual(rest, ["open"]);
  equal(line, "x".repeat(MAX_LINE_BYTES));
  equal(splitter.scannedBytes, total + "\nopen\n".length);
  equal(maxPending, MAX_LINE_BYTES);
  deepEqual(cuts, [{ keptBytes: MAX_LINE_BYTES, droppedBytes: total - MAX_LINE_BYTES }]);
});

Deno.test("many short lines in one chunk are scanned once too", () => {
  const splitter = new LineSplitter();
  const bytes = encode(".\n".repeat(50_000));
  equal(splitter.push(bytes).length, 50_000);
  equal(splitter.scannedBytes, bytes.length);
});
