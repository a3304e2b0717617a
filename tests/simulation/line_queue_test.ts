/**
 * The output line queue in-process: what it keeps when a burst outruns its reader, and that its
 * buffer stays bounded.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { type DroppedLines, type LineKind, LineQueue } from "../../simulation/line_queue.ts";

/** Webots' lines as process.ts sorts them (open and mode lines matter; `.` is activity). */
function classify(line: string): LineKind {
  if (line.startsWith("open") || ["pause", "real-time", "fast", "step"].includes(line)) {
    return "keep";
  }
  return line === "." ? "activity" : "other";
}

async function readAll(queue: LineQueue): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of queue) lines.push(line);
  return lines;
}

Deno.test("below the cap every line is kept in order", async () => {
  const queue = new LineQueue({ classify, maxLines: 10 });
  const lines = ["open", ".", "INFO: x", "pause", "."];
  for (const line of lines) queue.push(line);
  queue.end();
  deepEqual(await readAll(queue), lines);
});

Deno.test("a 50,000-line burst of dots keeps every mode line, in order, and the first dot", async () => {
  const drops: DroppedLines[] = [];
  const queue = new LineQueue({ classify, onDropped: (d) => drops.push(d) });
  const modes = ["pause", "real-time", "fast", "step"];
  const expectedModes: string[] = [];
  let maxSize = 0;
  queue.push("open");
  for (let i = 0; i < 50_000; i++) {
    if (i % 500 === 250) {
      const mode = modes[(i / 500 | 0) % modes.length]!;
      expectedModes.push(mode);
      queue.push(mode);
    } else if (i % 1000 === 999) {
      queue.push(`INFO: line ${i}`);
    } else {
      queue.push(".");
    }
    maxSize = Math.max(maxSize, queue.size);
  }
  queue.end();
  const lines = await readAll(queue);
  equal(lines[0], "open");
  equal(lines[1], ".", "the first dot (the readiness line from R2022b on) is kept");
  deepEqual(lines.filter((l) => modes.includes(l)), expectedModes);
  // Coalesced: after the cap, at most one dot follows each kept line.
  const tail = lines.slice(10_000);
  for (let i = 1; i < tail.length; i++) {
    ok(!(tail[i] === "." && tail[i - 1] === "."), `two dots in a row at ${10_000 + i}`);
  }
  ok(maxSize <= 10_000 + expectedModes.length * 2, `buffer held ${maxSize} lines`);
  equal(drops.length, 1, "one report for the overflow");
  const [drop] = drops;
  ok(drop);
  equal(drop.keep, 0);
  equal(lines.length + drop.other + drop.activity, 50_001);
});

Deno.test("kept lines beyond the cap are bounded too, and counted when dropped", async () => {
  const drops: DroppedLines[] = [];
  const queue = new LineQueue({
    classify,
    maxLines: 5,
    maxExtraLines: 4,
    onDropped: (d) => drops.push(d),
  });
  for (let i = 0; i < 5; i++) queue.push(`INFO: ${i}`);
  for (let i = 0; i < 10; i++) queue.push(i % 2 ? "pause" : "real-time");
  equal(queue.size, 9);
  queue.end();
  const lines = await readAll(queue);
  deepEqual(lines.slice(5), ["real-time", "pause", "real-time", "pause"]);
  deepEqual(drops, [{ other: 0, activity: 0, keep: 6 }]);
});

Deno.test("long lines are bounded by characters as well as by count", async () => {
  const drops: DroppedLines[] = [];
  const queue = new LineQueue({ classify, maxChars: 100, onDropped: (d) => drops.push(d) });
  const long = "x".repeat(40);
  for (let i = 0; i < 5; i++) queue.push(long);
  queue.push("pause");
  equal(queue.size, 4);
  equal(queue.chars, 3 * 40 + "pause".length);
  queue.end();
  deepEqual(await readAll(queue), [long, long, long, "pause"]);
  equal(queue.chars, 0);
  deepEqual(drops, [{ other: 2, activity: 0, keep: 0 }]);
});

Deno.test("drops are reported once the reader has caught up, then counting starts again", async () => {
  const drops: DroppedLines[] = [];
  const queue = new LineQueue({ classify, maxLines: 2, onDropped: (d) => drops.push(d) });
  const iterator = queue[Symbol.asyncIterator]();
  for (const line of ["a", "b", "c", ".", ".", "."]) queue.push(line);
  deepEqual(drops, []);
  deepEqual(await iterator.next(), { value: "a", done: false });
  deepEqual(await iterator.next(), { value: "b", done: false });
  // The first dot is kept as a line that matters, then one dot stands for the rest of the run.
  deepEqual(await iterator.next(), { value: ".", done: false });
  deepEqual(drops, []);
  deepEqual(await iterator.next(), { value: ".", done: false });
  deepEqual(drops, [{ other: 1, activity: 1, keep: 0 }]);
  for (const line of ["x", "y", "z"]) queue.push(line);
  queue.end();
  deepEqual(await readAll(queue), ["x", "y"]);
  deepEqual(drops, [{ other: 1, activity: 1, keep: 0 }, { other: 1, activity: 0, keep: 0 }]);
});

Deno.test("a waiting reader gets the line directly; after return() lines are dropped", async () => {
  const queue = new LineQueue({ classify, maxLines: 2 });
  const iterator = queue[Symbol.asyncIterator]();
  const next = iterator.next();
  queue.push("open");
  deepEqual(await next, { value: "open", done: false });
  queue.push(".");
  await iterator.return?.();
  queue.push("pause");
  equal(queue.size, 0);
  deepEqual(await iterator.next(), { value: undefined, done: true });
});
