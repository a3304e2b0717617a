import assert from "node:assert/strict";
import type { ServerView } from "../../session/load_rules.ts";
import { createLoadHistory } from "../../session/load_history.ts";

const up = (entry: string, load: number): ServerView => ({
  entry,
  state: { kind: "up", load, full: load >= 99 },
});
const down = (entry: string): ServerView => ({
  entry,
  state: { kind: "down", reason: "refused", detail: "" },
});

Deno.test("the load history keeps one sample per second with per-server loads and their average", () => {
  const history = createLoadHistory();
  history.record([up("a", 10), down("b")], 1_000_000);
  history.record([up("a", 20), up("b", 40)], 1_000_900); // same second: replaces
  history.record([down("a"), down("b")], 1_002_000);
  assert.deepEqual(history.columns(["a", "b"]), {
    timestamp: [1000, 1002],
    average: [30, null],
    servers: [[20, null], [40, null]],
  });
});

Deno.test("the load history forgets samples older than its span", () => {
  const history = createLoadHistory(600);
  for (let s = 0; s <= 700; s += 50) history.record([up("a", s / 10)], s * 1000);
  const { timestamp } = history.columns(["a"]);
  assert.equal(timestamp[0], 150);
  assert.equal(timestamp.at(-1), 700);
});

Deno.test("a server that joins or leaves keeps every other server's series under its own name", () => {
  const history = createLoadHistory();
  history.record([up("a", 10), up("b", 20)], 1_000_000);
  history.record([up("b", 30)], 1_001_000); // a left
  history.record([up("c", 50), up("b", 40)], 1_002_000); // c joined, listed first
  assert.deepEqual(history.columns(["c", "b"]).servers, [[null, null, 50], [20, 30, 40]]);
  assert.deepEqual(history.columns(["a"]).servers, [[10, null, null]]);
});

Deno.test("records within one second are not read until the second is over or the chart asks", () => {
  const history = createLoadHistory();
  let reads = 0;
  /** A list of servers that counts how often its servers are read. */
  const counted = (load: number): ServerView[] =>
    new Proxy([up("a", load), up("b", load + 1)], {
      get(target, key, receiver) {
        if (typeof key === "string" && /^\d+$/.test(key)) reads++;
        return Reflect.get(target, key, receiver);
      },
    });
  for (let i = 0; i < 1000; i++) history.record(counted(i % 50), 5_000_000 + i % 1000);
  assert.equal(reads, 0, "1,000 records in one second read no server");
  history.record(counted(7), 5_001_000);
  // The last record of 5,000 s: its 2 servers read for the list of servers (a first sample),
  // the loads and the average.
  assert.equal(reads, 6, "the next second takes the sample of the one before from its last record");
  assert.deepEqual(history.columns(["a", "b"]), {
    timestamp: [5000, 5001],
    average: [49.5, 7.5],
    servers: [[49, 7], [50, 8]],
  });
});
