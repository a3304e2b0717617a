/**
 * The session server's pure rules: load rules (threshold, standing, choice, average),
 * transitions, `/load` parsing, message wording.
 */
import assert from "node:assert/strict";
import { transitionOf } from "../../session/fleet.ts";
import { parseLoad } from "../../session/load_probe.ts";
import {
  averageLoad,
  chooseServer,
  DEFAULT_THRESHOLDS,
  isAvailable,
  isFull,
  LOAD_THRESHOLD,
  nextState,
  type PollOutcome,
  type ServerState,
  standingOf,
} from "../../session/load_rules.ts";
import { pythonFloat, transitionMail, transitionMessage } from "../../session/notify.ts";
import { sessionSchema } from "../../session/config.ts";
import { ConfigError, validateConfig } from "../../shared/config.ts";

/** An answering server, full as a first answer at the stock `fullAt` would make it. */
const up = (load: number, full = load >= 99): ServerState => ({ kind: "up", load, full });
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

Deno.test("transitions follow the standings: down, up again, full, available again", () => {
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

Deno.test("a first answer is full from 99 on, available below, and neither until it answers", () => {
  assert.equal(LOAD_THRESHOLD, 99);
  assert.deepEqual([98.99, 99, 150].map((l) => isFull(l, DEFAULT_THRESHOLDS)), [
    false,
    true,
    true,
  ]);
  assert.deepEqual(DEFAULT_THRESHOLDS, { fullAt: 99, availableAt: 90 });
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

// ---------------------------------------------------------------- hysteresis (fullAt, availableAt)

/** The states a server goes through when it answers `loads` in turn, from `start`. */
function walk(
  loads: readonly (number | "down")[],
  thresholds = DEFAULT_THRESHOLDS,
  start: ServerState = unknown,
): ServerState[] {
  const states: ServerState[] = [];
  let state = start;
  for (const load of loads) {
    const outcome: PollOutcome = load === "down" ? down as PollOutcome : { kind: "up", load };
    state = nextState(state, outcome, thresholds);
    states.push(state);
  }
  return states;
}

/** The transitions of `walk`. */
function transitions(loads: readonly (number | "down")[], thresholds = DEFAULT_THRESHOLDS) {
  const states = walk(loads, thresholds);
  return states
    .map((after, i) => transitionOf("a:1", states[i - 1] ?? unknown, after)?.kind)
    .filter((kind) => kind !== undefined);
}

Deno.test("a server is full at 99, still full at 95, available again at 89", () => {
  const states = walk([50, 99, 95, 90, 89, 95, 98.9, 99]);
  assert.deepEqual(states.map(standingOf), [
    "available",
    "full",
    "full",
    "full", // 90 is not below availableAt
    "available",
    "available", // the band keeps an available server available too
    "available",
    "full",
  ]);
  assert.deepEqual(states.map(isAvailable), states.map((s) => standingOf(s) === "available"));
});

Deno.test("a load flapping between 92 and 100 makes exactly one transition each way", () => {
  const flapping = [100, 92, 99.5, 93, 100, 95, 99, 92, 100, 97];
  assert.deepEqual(transitions([20, 98, ...flapping, 60]), ["full", "available-again"]);
  // Without the band (availableAt just under fullAt) the same input flaps at every poll.
  const noBand = { fullAt: 99, availableAt: 98.99 };
  assert.equal(transitions([20, 98, ...flapping, 60], noBand).length, 10);
});

Deno.test("the first answer, and the first after not responding, are judged on fullAt alone", () => {
  assert.deepEqual(walk([95]).map(standingOf), ["available"]);
  assert.deepEqual(walk([99.5, "down", 95]).map(standingOf), ["full", "down", "available"]);
  assert.deepEqual(walk([99.5, "down", 99]).map(standingOf), ["full", "down", "full"]);
});

Deno.test("other thresholds move the band: full at 80, available again below 60", () => {
  const thresholds = { fullAt: 80, availableAt: 60 };
  assert.deepEqual(walk([70, 80, 79, 60, 59.9, 79.9], thresholds).map(standingOf), [
    "available",
    "full",
    "full",
    "full",
    "available",
    "available",
  ]);
  const servers = [
    { entry: "s0", state: nextState(unknown, { kind: "up", load: 85 }, thresholds) },
    { entry: "s1", state: nextState(unknown, { kind: "up", load: 79 }, thresholds) },
  ];
  assert.equal(chooseServer(servers), "s1");
});

Deno.test("fullAt and availableAt default to 99 and 90; availableAt must be below fullAt, both 0–100", () => {
  const env = { root: "/srv", vars: {}, tmpDir: "/tmp" };
  const config = (keys: Record<string, unknown>) =>
    validateConfig(sessionSchema, { simulationServers: ["a:2000"], ...keys }, "s.json", env);
  const stock = config({});
  assert.deepEqual([stock.fullAt, stock.availableAt], [99, 90]);
  const set = config({ fullAt: 80, availableAt: 60.5 });
  assert.deepEqual([set.fullAt, set.availableAt], [80, 60.5]);
  const refused: [Record<string, unknown>, string][] = [
    [{ availableAt: 99 }, 's.json: key "availableAt" must be below "fullAt" (99), got 99'],
    [{ fullAt: 80 }, 's.json: key "availableAt" must be below "fullAt" (80), got 90'],
    [
      { fullAt: 50, availableAt: 70 },
      's.json: key "availableAt" must be below "fullAt" (50), got 70',
    ],
    [{ fullAt: 101 }, 's.json: key "fullAt" must be at most 100'],
    [{ availableAt: -1 }, 's.json: key "availableAt" must be at least 0'],
    [{ fullAt: "99" }, 's.json: key "fullAt" must be a number'],
  ];
  for (const [keys, message] of refused) {
    assert.throws(() => config(keys), (error) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.message, message);
      return true;
    });
  }
});
