/**
 * A draining simulation server as the session server sees it, in-process: its `/load` answers
 * 100 with `x-webots-state: draining` (a scripted fetch plays it), and the fleet, the load rules
 * and the transitions (which drive the e-mails) take it as draining, not as full.
 */
import assert from "node:assert/strict";
import { createFleet, type Transition, transitionOf } from "../../session/fleet.ts";
import { fetchLoadProbe } from "../../session/load_probe.ts";
import {
  averageLoad,
  chooseServer,
  DEFAULT_THRESHOLDS,
  nextState,
  type ServerState,
  standingOf,
} from "../../session/load_rules.ts";
import { LOAD_STATE_HEADER } from "../../shared/protocol.ts";
import { FakeClock, flush } from "../fakes/fake_clock.ts";
import { FakeFetch, recordingLogger } from "./_fakes.ts";

const A = "a.test:2000";
const B = "b.test:2000";
const url = (entry: string) => `http://${entry}/load`;
const DRAINING = { body: "100", headers: { [LOAD_STATE_HEADER]: "draining" } };

const available: ServerState = { kind: "up", load: 10, full: false };
const full: ServerState = { kind: "up", load: 99.5, full: true };
const draining: ServerState = { kind: "up", load: 100, full: false, draining: true };

Deno.test("a /load with x-webots-state: draining makes the server draining: never handed out, out of the average", async () => {
  const clock = new FakeClock();
  const net = new FakeFetch();
  const transitions: Transition[] = [];
  const fleet = createFleet({
    entries: [A, B],
    mode: { ssl: false, portRewrite: false },
    probe: fetchLoadProbe(net.fetch, clock),
    logger: recordingLogger(),
    clock,
    refreshMs: 1000,
    timeoutMs: 500,
    thresholds: DEFAULT_THRESHOLDS,
    onUpdate: () => {},
    onTransition: (transition) => transitions.push(transition),
  });
  try {
    net.load(url(A), 5);
    net.load(url(B), 50);
    fleet.start();
    await flush();
    assert.equal(chooseServer(fleet.servers()), A);
    net.answer(url(A), DRAINING);
    await clock.advance(1000);
    const [a, b] = fleet.servers();
    assert.deepEqual(a!.state, draining);
    assert.equal(standingOf(a!.state), "draining");
    assert.equal(chooseServer(fleet.servers()), B, "the draining server is never handed out");
    assert.equal(averageLoad(fleet.servers()), 50, "its 100 is not a load figure");
    assert.deepEqual(b!.state, { kind: "up", load: 50, full: false });
    assert.deepEqual(transitions, [], "no 'full' transition (and so no mail) for a drain");
    net.answer(url(B), DRAINING);
    await clock.advance(1000);
    assert.equal(chooseServer(fleet.servers()), undefined, "every server draining: none");
    net.load(url(A), 7);
    await clock.advance(1000);
    assert.equal(chooseServer(fleet.servers()), A, "undrained: handed out again");
    assert.deepEqual(transitions, []);
  } finally {
    await fleet.stop();
  }
});

Deno.test("a 100 without the header (a stock simulation server) is still full, as before", () => {
  const state = nextState(available, { kind: "up", load: 100 }, DEFAULT_THRESHOLDS);
  assert.deepEqual(state, { kind: "up", load: 100, full: true });
  assert.deepEqual(transitionOf(A, available, state), { kind: "full", entry: A, load: 100 });
});

Deno.test("transitions around a drain: none into or out of it, except a server that comes back or is really full", () => {
  const drainingOutcome = { kind: "up", load: 100, draining: true } as const;
  assert.deepEqual(nextState(full, drainingOutcome, DEFAULT_THRESHOLDS), draining);
  assert.equal(transitionOf(A, available, draining), undefined);
  assert.equal(transitionOf(A, full, draining), undefined);
  assert.equal(transitionOf(A, draining, available), undefined);
  assert.deepEqual(transitionOf(A, draining, full), { kind: "full", entry: A, load: 99.5 });
  const down: ServerState = { kind: "down", reason: "refused", detail: "x" };
  assert.deepEqual(transitionOf(A, down, draining), { kind: "working-again", entry: A, load: 100 });
  assert.deepEqual(transitionOf(A, draining, down), {
    kind: "not-responding",
    entry: A,
    reason: "refused",
  });
  // After a drain the band does not hold: the first figure is judged on fullAt alone.
  assert.deepEqual(
    nextState(draining, { kind: "up", load: 95 }, DEFAULT_THRESHOLDS),
    { kind: "up", load: 95, full: false },
  );
});
