/**
 * The session server's pure rules: load rules (threshold, standing, choice, average),
 * transitions, `/load` parsing, message wording.
 */
import assert from "node:assert/strict";
import { parseLoad, transitionOf } from "../../session/fleet.ts";
import {
  averageLoad,
  chooseServer,
  isAvailable,
  isFull,
  LOAD_THRESHOLD,
  type ServerState,
  standingOf,
} from "../../session/load_rules.ts";
import { pythonFloat, transitionMail, transitionMessage } from "../../session/notify.ts";

const up = (load: number): ServerState => ({ kind: "up", load });
const down: ServerState = { kind: "down", reason: "refused", detail: "" };
const unknown: ServerState = { kind: "unknown" };

Deno.test("the first answer after startup is not a transition unless the server is down", () => {
  assert.equal(transitionOf("a:1", unknown, up(10)), undefined);
  assert.equal(transitionOf("a:1", unknown, up(100)), undefined);
  assert.deepEqual(transitionOf("a:1", unknown, down), {
    kind: "not-responding",
    entry: "a:1",
    reason: "refused",
  });
});

Deno.test("transitions follow the reference: down, up again, full at 99, available below 99", () => {
  assert.equal(transitionOf("a:1", down, down), undefined);
  assert.deepEqual(transitionOf("a:1", down, up(150))?.kind, "working-again");
  assert.deepEqual(transitionOf("a:1", up(98.9), up(99))?.kind, "full");
  assert.deepEqual(transitionOf("a:1", up(99), up(98.9))?.kind, "available-again");
  assert.equal(transitionOf("a:1", up(10), up(50)), undefined);
  assert.equal(transitionOf("a:1", up(99), up(150)), undefined);
});

Deno.test("a /load body must be a finite number", () => {
  assert.equal(parseLoad(" 12.5\n"), 12.5);
  assert.equal(parseLoad("1e2"), 100);
  for (const bad of ["", "abc", "nan", "inf", "12%", "0x10", "1 2"]) {
    assert.equal(parseLoad(bad), undefined, bad);
  }
});

Deno.test("a server is full from 99 on, available below, and neither until it answers", () => {
  assert.equal(LOAD_THRESHOLD, 99);
  assert.deepEqual([98.99, 99, 150].map(isFull), [false, true, true]);
  assert.deepEqual([unknown, down, up(0), up(98.99), up(99)].map(standingOf), [
    "unknown",
    "down",
    "available",
    "available",
    "full",
  ]);
  assert.deepEqual([unknown, down, up(98.99), up(99)].map(isAvailable), [
    false,
    false,
    true,
    false,
  ]);
});

Deno.test("the average load counts only the servers that answer", () => {
  const servers = (...states: ServerState[]) =>
    states.map((state, i) => ({ entry: `s${i}`, state }));
  assert.equal(averageLoad(servers(up(10), down, unknown, up(30), up(100))), 140 / 3);
  assert.equal(averageLoad(servers(down, unknown)), undefined);
  assert.equal(averageLoad([]), undefined);
});

Deno.test("the chosen server is the least loaded below 99, the first on ties", () => {
  const servers = (...states: ServerState[]) =>
    states.map((state, i) => ({ entry: `s${i}`, state }));
  assert.equal(chooseServer(servers(up(50), up(20), up(20))), "s1");
  assert.equal(chooseServer(servers(unknown, down, up(99), up(98.99))), "s3");
  assert.equal(chooseServer(servers(unknown, down, up(99))), undefined);
});

Deno.test("messages use Python's float formatting and the reference's words", () => {
  assert.equal(pythonFloat(50), "50.0");
  assert.equal(pythonFloat(12.5), "12.5");
  assert.equal(
    transitionMessage({ kind: "not-responding", entry: "h:2000", reason: "timeout" }),
    "h:2000 simulation server is taking too long to respond (assuming 100% load)",
  );
  assert.deepEqual(
    transitionMail({ kind: "full", entry: "h:2000", load: 99 }, "http://x:1999/monitor"),
    {
      subject: "Simulation server reached maximum load",
      text:
        "Hello,\n\nh:2000 simulation server has reached maximum load (99.0%).\nCheck it at http://x:1999/monitor\n\n-Simulation Server",
    },
  );
});
