/**
 * The polling fleet in-process: a scripted fetch plays the simulation servers and a fake clock
 * drives the poll period and the poll timeout, so no test here waits on the wall clock.
 */
import assert from "node:assert/strict";
import {
  createFleet,
  POLLS_PER_STEP,
  pollsPerStep,
  ROUND_STEP_MS,
  type Transition,
} from "../../session/fleet.ts";
import { fetchLoadProbe } from "../../session/load_probe.ts";
import {
  DEFAULT_THRESHOLDS,
  type LoadThresholds,
  type ServerState,
  type ServerView,
} from "../../session/load_rules.ts";
import { FakeClock, flush } from "../fakes/fake_clock.ts";
import { FakeFetch, recordingLogger } from "./_fakes.ts";

const A = "a.test:2000";
const B = "b.test:2000";
const C = "c.test:2000";
const url = (entry: string) => `http://${entry}/load`;

interface Options {
  readonly refreshMs?: number;
  readonly timeoutMs?: number;
  readonly onUpdate?: (changed?: ServerView) => void;
  /** Default: the stock 99 / 90. */
  readonly thresholds?: LoadThresholds;
}

/** A fleet over `entries` on a fake clock and a scripted fetch; nothing is started. */
function fleetOf(entries: string[], options: Options = {}) {
  const clock = new FakeClock();
  const net = new FakeFetch();
  const logger = recordingLogger();
  const transitions: Transition[] = [];
  let updates = 0;
  const fleet = createFleet({
    entries,
    mode: { ssl: false, portRewrite: false },
    probe: fetchLoadProbe(net.fetch, clock),
    logger,
    clock,
    refreshMs: options.refreshMs ?? 1000,
    timeoutMs: options.timeoutMs ?? 500,
    thresholds: options.thresholds ?? DEFAULT_THRESHOLDS,
    onUpdate: (changed) => {
      updates++;
      options.onUpdate?.(changed);
    },
    onTransition: (transition) => transitions.push(transition),
  });
  const state = (entry: string): ServerState | undefined =>
    fleet.servers().find((s) => s.entry === entry)?.state;
  return { clock, net, logger, transitions, fleet, state, updates: () => updates };
}

Deno.test("the fleet polls every server once at start, then once per loadRefresh", async () => {
  const { clock, net, fleet, state } = fleetOf([A, B], { refreshMs: 1000 });
  net.load(url(A), 10);
  net.load(url(B), 20);
  try {
    assert.deepEqual(fleet.servers().map((s) => s.state), [{ kind: "unknown" }, {
      kind: "unknown",
    }]);
    fleet.start();
    assert.deepEqual(net.calls.map((c) => c.url), [url(A), url(B)], "first round at once");
    await flush();
    assert.deepEqual(state(A), { kind: "up", load: 10, full: false });
    assert.deepEqual(state(B), { kind: "up", load: 20, full: false });
    await clock.advance(999);
    assert.equal(net.calls.length, 2, "no second round before loadRefresh");
    await clock.advance(1);
    assert.equal(net.calls.length, 4);
    net.load(url(A), 42.5);
    await clock.advance(3000);
    assert.equal(net.callsTo(url(A)).length, 5);
    assert.equal(net.callsTo(url(B)).length, 5);
    assert.deepEqual(state(A), { kind: "up", load: 42.5, full: false });
    fleet.start();
    await clock.advance(1000);
    assert.equal(net.callsTo(url(A)).length, 6, "a second start() adds no rounds");
  } finally {
    await fleet.stop();
  }
});

Deno.test("a round of a large fleet starts its polls at a steady pace over half the period, each server once per period", async () => {
  // 60 servers, loadRefresh 1 s: 25 polls every 50 ms (500 a second), so 25, 25 and 10.
  const entries = Array.from({ length: 60 }, (_, i) => `s${i}.test:2000`);
  const { clock, net, fleet } = fleetOf(entries, { refreshMs: 1000, timeoutMs: 500 });
  for (const entry of entries) net.load(url(entry), 10);
  try {
    fleet.start();
    assert.equal(net.calls.length, 25, "the first step at once");
    await clock.advance(ROUND_STEP_MS - 1);
    assert.equal(net.calls.length, 25);
    await clock.advance(1);
    assert.equal(net.calls.length, 50);
    await clock.advance(ROUND_STEP_MS);
    assert.equal(net.calls.length, 60, "the whole round started within 100 ms");
    assert.deepEqual(net.calls.map((c) => c.url), entries.map(url), "in config order");
    // The next round keeps each server's place in the period.
    await clock.advance(1000 - 2 * ROUND_STEP_MS);
    assert.equal(net.calls.length, 85);
    await clock.advance(2 * ROUND_STEP_MS);
    assert.equal(net.calls.length, 120);
    for (const entry of entries) assert.equal(net.callsTo(url(entry)).length, 2, entry);
  } finally {
    await fleet.stop();
  }
  assert.equal(clock.pendingCount, 0, "stop() leaves no step of a round behind");
});

Deno.test("polls per step: at least 500 a second, more when the fleet would not fit in half the period", () => {
  assert.equal(POLLS_PER_STEP * (1000 / ROUND_STEP_MS), 500);
  assert.equal(pollsPerStep(1, 5000), POLLS_PER_STEP);
  assert.equal(pollsPerStep(1000, 5000), POLLS_PER_STEP, "1,000 over 2 s of a 5 s period");
  // 5,000 at 500 a second would take 10 s: they are spread over the first 2.5 s instead.
  assert.equal(pollsPerStep(5000, 5000), 100);
  assert.equal(pollsPerStep(100, 50), 100, "a period shorter than two steps: all at once");
});

Deno.test("an answer is applied as soon as it arrives, whatever the other servers do", async () => {
  const { net, fleet, state, transitions } = fleetOf([A, B], { timeoutMs: 5000 });
  net.answer(url(A), { hang: true });
  net.load(url(B), 30);
  try {
    fleet.start();
    await flush();
    assert.deepEqual(state(A), { kind: "unknown" });
    assert.deepEqual(state(B), { kind: "up", load: 30, full: false });
    assert.deepEqual(transitions, []);
  } finally {
    await fleet.stop();
  }
});

Deno.test("a poll without answer times out after loadTimeout, then the skipped round polls at once", async (t) => {
  const { clock, net, fleet, state, transitions } = fleetOf([A, B], {
    refreshMs: 1000,
    timeoutMs: 2500,
  });
  net.answer(url(A), { hang: true });
  net.load(url(B), 5);
  try {
    fleet.start();
    await t.step("rounds at 1 s and 2 s skip the server still in flight", async () => {
      await clock.advance(2499);
      assert.equal(net.callsTo(url(A)).length, 1);
      assert.equal(net.callsTo(url(B)).length, 3);
      assert.deepEqual(state(A), { kind: "unknown" });
      assert.equal(net.hanging, 1);
    });
    await t.step("at 2.5 s the poll is aborted and the server reported down/timeout", async () => {
      net.answer(url(A), { hang: true });
      await clock.advance(1);
      assert.equal(net.callsTo(url(A))[0]!.signal?.aborted, true);
      assert.deepEqual(transitions, [{ kind: "not-responding", entry: A, reason: "timeout" }]);
    });
    await t.step("the rounds it skipped poll it again at once, not a round later", () => {
      assert.equal(net.callsTo(url(A)).length, 2);
      assert.equal(net.hanging, 1);
      assert.deepEqual(state(A), {
        kind: "down",
        reason: "timeout",
        detail: "no answer in 2500 ms",
      });
    });
  } finally {
    await fleet.stop();
  }
});

Deno.test("with loadTimeout = loadRefresh a hung server is polled every round and seen back one poll after it answers", async () => {
  const { clock, net, fleet, state, transitions } = fleetOf([A], {
    refreshMs: 1000,
    timeoutMs: 1000,
  });
  net.answer(url(A), { hang: true });
  try {
    fleet.start();
    // Each poll times out exactly when the next round is due: neither round may be lost.
    await clock.advance(3000);
    assert.equal(net.callsTo(url(A)).length, 4);
    assert.equal(state(A)?.kind, "down");
    net.load(url(A), 7);
    await clock.advance(1000);
    assert.equal(net.callsTo(url(A)).length, 5);
    assert.deepEqual(state(A), { kind: "up", load: 7, full: false });
    assert.deepEqual(transitions.map((t) => t.kind), ["not-responding", "working-again"]);
  } finally {
    await fleet.stop();
  }
});

Deno.test("an answer in time clears its timeout timer", async () => {
  const { clock, net, fleet } = fleetOf([A], { refreshMs: 1000, timeoutMs: 500 });
  net.load(url(A), 1);
  try {
    fleet.start();
    await flush();
    assert.equal(clock.pendingCount, 1, "only the next round is scheduled");
  } finally {
    await fleet.stop();
  }
});

Deno.test("transitions follow the scripted answers: full, available again, down, working again", async () => {
  const { clock, net, fleet, transitions, state } = fleetOf([A], { refreshMs: 1000 });
  const script: [string, number | string | "refuse"][] = [
    ["first answer is no transition", 10],
    ["99 is full", 99],
    ["still full", 100],
    ["below 99 but not below 90: still full", 98.9],
    ["below 90: available again", 89.9],
    ["refused", "refuse"],
    ["still refused", "refuse"],
    ["back, but full", 150],
    ["room again", 50],
  ];
  try {
    for (const [i, [, answer]] of script.entries()) {
      if (answer === "refuse") net.answer(url(A), { refuse: true });
      else net.load(url(A), answer);
      if (i === 0) fleet.start();
      else await clock.advance(1000);
      await flush();
    }
    assert.equal(net.callsTo(url(A)).length, script.length);
    assert.deepEqual(transitions, [
      { kind: "full", entry: A, load: 99 },
      { kind: "available-again", entry: A, load: 89.9 },
      { kind: "not-responding", entry: A, reason: "refused" },
      { kind: "working-again", entry: A, load: 150 },
      { kind: "available-again", entry: A, load: 50 },
    ]);
    assert.deepEqual(state(A), { kind: "up", load: 50, full: false });
  } finally {
    await fleet.stop();
  }
});

Deno.test("a refused connection, a non-200 status and a garbage body each mark a server down", async () => {
  const { net, fleet, state, transitions } = fleetOf([A, B, C]);
  net.answer(url(A), { refuse: true });
  net.answer(url(B), { body: "5", status: 500 });
  net.load(url(C), "abc");
  try {
    fleet.start();
    await flush();
    assert.deepEqual(state(A), {
      kind: "down",
      reason: "refused",
      detail: `TypeError: error sending request for url (${url(A)})`,
    });
    assert.deepEqual(state(B), { kind: "down", reason: "status", detail: "HTTP 500" });
    assert.deepEqual(state(C), { kind: "down", reason: "body", detail: "not a number: abc" });
    assert.deepEqual(transitions.map((t) => [t.entry, t.kind, "reason" in t && t.reason]), [
      [A, "not-responding", "refused"],
      [B, "not-responding", "status"],
      [C, "not-responding", "body"],
    ]);
  } finally {
    await fleet.stop();
  }
});

Deno.test("stop() aborts the polls in flight, applies nothing more and leaves no timer", async () => {
  const { clock, net, fleet, state, transitions, updates } = fleetOf([A, B], {
    refreshMs: 1000,
    timeoutMs: 5000,
  });
  net.answer(url(A), { hang: true });
  net.load(url(B), 10);
  fleet.start();
  await flush();
  assert.equal(net.hanging, 1);
  const updatesBefore = updates();
  await fleet.stop();
  assert.equal(net.hanging, 0);
  assert.equal(net.callsTo(url(A))[0]!.signal?.aborted, true);
  assert.deepEqual(state(A), { kind: "unknown" }, "the aborted poll is not reported as a timeout");
  assert.deepEqual(transitions, []);
  assert.equal(updates(), updatesBefore);
  assert.equal(clock.pendingCount, 0);
  await clock.advance(10_000);
  assert.equal(net.calls.length, 2, "no round after stop");
  fleet.start();
  assert.equal(net.calls.length, 2, "a stopped fleet does not start again");
});

Deno.test("an onUpdate that throws is logged once per poll and polling goes on", async () => {
  const { clock, net, fleet, logger, state } = fleetOf([A], {
    refreshMs: 1000,
    onUpdate: () => {
      throw new Error("subscriber broke");
    },
  });
  net.load(url(A), 10);
  try {
    fleet.start();
    await clock.advance(2000);
    net.load(url(A), 20);
    await clock.advance(1000);
    assert.equal(net.callsTo(url(A)).length, 4);
    assert.deepEqual(state(A), { kind: "up", load: 20, full: false });
    const errors = logger.lines.filter((l) => l.level === "error");
    assert.equal(errors.length, 4);
    assert.equal(errors[0]!.message, "applying a poll result failed");
    assert.equal(errors[0]!.fields.entry, A);
    assert.equal((errors[0]!.fields.err as Error).message, "subscriber broke");
  } finally {
    await fleet.stop();
  }
});

Deno.test("with SSL or portRewrite the fleet polls https://<entry>/load", async () => {
  const clock = new FakeClock();
  const net = new FakeFetch();
  const fleet = createFleet({
    entries: ["host.test/2000"],
    mode: { ssl: false, portRewrite: true },
    probe: fetchLoadProbe(net.fetch, clock),
    logger: recordingLogger(),
    clock,
    refreshMs: 1000,
    timeoutMs: 500,
    thresholds: DEFAULT_THRESHOLDS,
    onUpdate: () => {},
    onTransition: () => {},
  });
  fleet.start();
  await fleet.stop();
  assert.deepEqual(net.calls.map((c) => c.url), ["https://host.test/2000/load"]);
});

Deno.test("each poll result reaches onUpdate with its own server; servers() is a snapshot later results leave alone", async () => {
  const seen: (ServerView | undefined)[] = [];
  const { clock, net, fleet } = fleetOf([A, B], { onUpdate: (changed) => seen.push(changed) });
  net.load(url(A), 10);
  net.load(url(B), 20);
  try {
    fleet.start();
    await flush();
    assert.deepEqual(seen, [
      { entry: A, state: { kind: "up", load: 10, full: false } },
      { entry: B, state: { kind: "up", load: 20, full: false } },
    ]);
    const before = fleet.servers();
    net.load(url(A), 30);
    await clock.advance(1000);
    assert.deepEqual(before.map((s) => s.state), [
      { kind: "up", load: 10, full: false },
      { kind: "up", load: 20, full: false },
    ], "an earlier snapshot keeps the states it had");
    assert.deepEqual(fleet.servers()[0], {
      entry: A,
      state: { kind: "up", load: 30, full: false },
    });

    seen.length = 0;
    fleet.reconfigure({
      entries: [C, B, A],
      refreshMs: 1000,
      timeoutMs: 500,
      thresholds: DEFAULT_THRESHOLDS,
    });
    assert.deepEqual(seen, [undefined], "after a reconfigure any server may have changed");
    assert.deepEqual(fleet.servers().map((s) => s.entry), [C, B, A]);
    net.load(url(C), 5);
    net.load(url(A), 40);
    await clock.advance(1000);
    assert.deepEqual(fleet.servers(), [
      { entry: C, state: { kind: "up", load: 5, full: false } },
      { entry: B, state: { kind: "up", load: 20, full: false } },
      { entry: A, state: { kind: "up", load: 40, full: false } },
    ], "a result lands on its own server in the new order");
  } finally {
    await fleet.stop();
  }
});
