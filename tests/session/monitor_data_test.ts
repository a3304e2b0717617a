/**
 * The session server's monitor data model in-process: the fleet log (last answers, slot figures,
 * changes of standing) and `monitorData` over it, with the slot headers, a draining server, a
 * stock server that sends no headers, and the leases and queue sections filled or absent.
 */
import assert from "node:assert/strict";
import { CHANGES_KEPT, createFleetLog } from "../../session/fleet_log.ts";
import type { ServerState, ServerView } from "../../session/load_rules.ts";
import { DEFAULT_THRESHOLDS } from "../../session/load_rules.ts";
import { monitorData, type MonitorInput, monitorPage } from "../../session/monitor_page.ts";
import { SIMULATIONS_HEADER, SLOTS_HEADER } from "../../shared/load_headers.ts";
import { LOAD_STATE_HEADER } from "../../shared/protocol.ts";
import { createFleet } from "../../session/fleet.ts";
import { fetchLoadProbe } from "../../session/load_probe.ts";
import { sessionSchema } from "../../session/config.ts";
import { createSessionServer } from "../../session/server.ts";
import { validateConfig } from "../../shared/config.ts";
import { FakeClock, flush } from "../fakes/fake_clock.ts";
import { FakeFetch, recordingLogger } from "./_fakes.ts";

const A = "a.test:2000";
const B = "b.test:2000";
const C = "c.test:2000";
const D = "d.test:2000";
const T0 = Date.UTC(2026, 10, 29, 21, 0, 0);
const EMPTY = { timestamp: [], average: [], servers: [] };
const MODE = { ssl: false, portRewrite: false };

const up = (load: number, extra: Partial<{ full: boolean; draining: boolean }> = {}) =>
  ({ kind: "up", load, full: false, ...extra }) as ServerState;
const down: ServerState = { kind: "down", reason: "refused", detail: "refused" };

Deno.test("the fleet log keeps each server's last answer and slots, and standing changes newest first", () => {
  const log = createFleetLog();
  const slots = { used: 2, max: 5, simulations: 2 };
  log.polled(A, { kind: "up", load: 40, slots }, T0);
  log.polled(B, { kind: "up", load: 10 }, T0);
  log.updated([{ entry: A, state: up(40) }, { entry: B, state: up(10) }], T0);
  assert.deepEqual(log.changes(), [], "a first answer is not a change");
  assert.deepEqual(log.record(A), { answeredAt: T0, slots });
  assert.deepEqual(log.record(B), { answeredAt: T0, slots: undefined });

  log.polled(A, { kind: "down", reason: "timeout", detail: "no answer" }, T0 + 1000);
  log.updated(
    [{ entry: A, state: down }, { entry: B, state: up(100, { draining: true }) }],
    T0 + 1000,
  );
  assert.deepEqual(log.record(A), { answeredAt: T0, slots }, "a failed poll keeps the last answer");
  assert.deepEqual(log.changes(), [
    { at: T0 + 1000, entry: B, from: "available", to: "draining", load: 100 },
    { at: T0 + 1000, entry: A, from: "available", to: "down", load: undefined },
  ]);

  log.updated(
    [{ entry: A, state: down }, { entry: B, state: up(100, { draining: true }) }],
    T0 + 2000,
  );
  assert.equal(log.changes().length, 2, "no standing change, nothing new");
  log.updated([{ entry: C, state: down }], T0 + 3000);
  assert.deepEqual(log.changes()[0], {
    at: T0 + 3000,
    entry: C,
    from: "unknown",
    to: "down",
    load: undefined,
  }, "a server that never answers is listed at once");
  assert.deepEqual(
    log.record(A),
    { answeredAt: undefined, slots: undefined },
    "removed: forgotten",
  );
});

Deno.test("the fleet log records one server's change as a whole-list update would, and a reload's list forgets removed servers", () => {
  const log = createFleetLog();
  log.polled(A, { kind: "up", load: 40 }, T0);
  log.changed({ entry: A, state: up(40) }, T0);
  log.changed({ entry: B, state: down }, T0);
  assert.deepEqual(log.changes(), [
    { at: T0, entry: B, from: "unknown", to: "down", load: undefined },
  ], "a first answer is not a change; a first failure is");
  log.changed({ entry: A, state: up(99.5, { full: true }) }, T0 + 1000);
  log.changed({ entry: A, state: up(99.7, { full: true }) }, T0 + 2000);
  assert.deepEqual(log.changes()[0], {
    at: T0 + 1000,
    entry: A,
    from: "available",
    to: "full",
    load: 99.5,
  });
  assert.equal(log.changes().length, 2, "the same standing again is no change");
  for (let i = 0; i < CHANGES_KEPT + 5; i++) {
    log.changed({ entry: C, state: i % 2 ? up(10) : down }, T0 + 3000 + i);
  }
  assert.equal(log.changes().length, CHANGES_KEPT);
  log.updated([{ entry: B, state: down }], T0 + 9000);
  assert.deepEqual(log.record(A), { answeredAt: undefined, slots: undefined }, "A left the list");
  log.changed({ entry: A, state: up(10) }, T0 + 9500);
  assert.equal(log.changes()[0]!.at, T0 + 3000 + CHANGES_KEPT + 4, "back as unknown: no change");
});

Deno.test("the fleet log keeps the last changes only", () => {
  const log = createFleetLog();
  log.updated([{ entry: A, state: up(10) }], T0);
  for (let i = 1; i <= CHANGES_KEPT + 5; i++) {
    log.updated([{ entry: A, state: i % 2 ? up(99.5, { full: true }) : up(10) }], T0 + i * 1000);
  }
  const changes = log.changes();
  assert.equal(changes.length, CHANGES_KEPT);
  assert.equal(changes[0]!.at, T0 + (CHANGES_KEPT + 5) * 1000);
  assert.equal(changes.at(-1)!.at, T0 + 6 * 1000);
});

function inputOf(servers: ServerView[], extras?: MonitorInput["extras"]): MonitorInput {
  const log = createFleetLog();
  return { servers, log, mode: MODE, thresholds: DEFAULT_THRESHOLDS, extras };
}

Deno.test("monitorData shows state, last answer, simulations and free slots per server and the fleet's totals", () => {
  const servers: ServerView[] = [
    { entry: A, state: up(40) },
    { entry: B, state: up(100, { full: true }) },
    { entry: C, state: up(100, { draining: true }) },
    { entry: D, state: down },
  ];
  const input = inputOf(servers);
  input.log.polled(A, { kind: "up", load: 40, slots: { used: 2, max: 5, simulations: 2 } }, T0);
  input.log.polled(B, { kind: "up", load: 100, slots: { used: 3, max: 3, simulations: 3 } }, T0);
  input.log.polled(C, {
    kind: "up",
    load: 100,
    draining: true,
    slots: { used: 1, max: 4, simulations: 1 },
  }, T0 + 1000);
  input.log.polled(
    D,
    { kind: "up", load: 5, slots: { used: 0, max: 2, simulations: 0 } },
    T0 - 60_000,
  );
  const data = monitorData(input, EMPTY);
  assert.deepEqual(
    data.servers.map((r) => [r.entry, r.state, r.lastAnswer, r.load, r.simulations, r.freeSlots]),
    [
      [A, "available", "2026-11-29 21:00:00", "40.0%", "2", "3 of 5"],
      [B, "full", "2026-11-29 21:00:00", "100.0%", "3", "0 of 3"],
      [C, "draining", "2026-11-29 21:00:01", "100.0%", "1", "3 of 4"],
      // Its last answer is shown; its figures of then are not (they would be stale).
      [D, "not responding", "2026-11-29 20:59:00", "N/A", "—", "—"],
    ],
  );
  assert.deepEqual(data.servers.map((r) => r.stateClass), [
    "state state-available",
    "state state-full",
    "state state-draining",
    "state state-down",
  ]);
  // The average leaves the draining server out; free slots count available servers only.
  assert.deepEqual(data.totals, {
    average: { text: "70.0%", className: "load" },
    simulations: "6",
    freeSlots: "3",
  });
  assert.deepEqual(data.thresholds, { fullAt: 99, availableAt: 90 });
});

Deno.test("with every reporting server full or draining the fleet has 0 free slots, not —", () => {
  const input = inputOf([
    { entry: A, state: up(100, { full: true }) },
    { entry: B, state: up(100, { draining: true }) },
  ]);
  input.log.polled(A, { kind: "up", load: 100, slots: { used: 1, max: 1, simulations: 1 } }, T0);
  input.log.polled(B, {
    kind: "up",
    load: 100,
    draining: true,
    slots: { used: 0, max: 2, simulations: 0 },
  }, T0);
  assert.deepEqual(monitorData(input, EMPTY).totals, {
    average: { text: "100.0%", className: "load full" },
    simulations: "1",
    freeSlots: "0",
  });
});

Deno.test("a stock simulation server (no slot headers) shows — for its simulations and slots", () => {
  const input = inputOf([{ entry: A, state: up(12.5) }]);
  input.log.polled(A, { kind: "up", load: 12.5 }, T0);
  const data = monitorData(input, EMPTY);
  assert.deepEqual([data.servers[0]!.simulations, data.servers[0]!.freeSlots], ["—", "—"]);
  assert.deepEqual(data.totals, {
    average: { text: "12.5%", className: "load" },
    simulations: "—",
    freeSlots: "—",
  });
  assert.equal(monitorData(inputOf([]), EMPTY).servers[0], undefined);
});

Deno.test("the leases and queue sections appear only with their figures", () => {
  const none = monitorData(inputOf([]), EMPTY);
  assert.equal("leases" in none, false);
  assert.equal("queue" in none, false);
  const page = monitorPage(inputOf([]), T0);
  assert.ok(page.includes(`<section id="leases" hidden>`));
  assert.ok(page.includes(`<section id="queue" hidden>`));

  const extras = {
    leases: { outstanding: 4 },
    queue: { length: 3, longestWaitS: 75, estimateS: 120 },
  };
  const data = monitorData(inputOf([], extras), EMPTY);
  assert.deepEqual(data.leases, ["Slots held by leases (granted, no Webots running yet): 4"]);
  assert.deepEqual(data.queue, [
    "Pages waiting: 3",
    "Longest wait now: 1 min 15 s",
    "Average wait of the last served pages: —",
    "Estimated wait for a page joining now: 2 min 00 s",
  ]);
  const shown = monitorPage(inputOf([], extras), T0);
  assert.ok(shown.includes(`<section id="leases"><h2>Slot leases</h2>`));
  assert.ok(shown.includes(`<li>Pages waiting: 3</li>`));
});

Deno.test("the chart draws the fullAt and availableAt lines from the config", () => {
  const input = {
    ...inputOf([{ entry: A, state: up(50) }]),
    thresholds: { fullAt: 95, availableAt: 80 },
  };
  const page = monitorPage(input, T0);
  const attribute = (name: string) =>
    JSON.parse(page.match(new RegExp(`${name}="([^"]+)"`))![1]!.replaceAll("&quot;", '"'));
  assert.deepEqual(attribute("data-lines"), [
    { value: 95, label: "full at 95.0%", color: "#c62828" },
    { value: 80, label: "available again below 80.0%", color: "#2e7d32" },
  ]);
  assert.deepEqual(
    (attribute("data-series") as { key: string }[]).map((s) => s.key),
    ["average", "s0"],
  );
  assert.ok(page.includes("full at 95.0%, available again below 80.0%"));
  assert.deepEqual(monitorData(input, EMPTY).thresholds, { fullAt: 95, availableAt: 80 });
});

Deno.test("a poll's slot headers reach the monitor; malformed or missing ones are not guessed", async () => {
  const clock = new FakeClock(T0);
  const net = new FakeFetch();
  const log = createFleetLog();
  const fleet = createFleet({
    entries: [A, B, C],
    mode: MODE,
    probe: fetchLoadProbe(net.fetch, clock),
    logger: recordingLogger(),
    clock,
    refreshMs: 1000,
    timeoutMs: 500,
    thresholds: DEFAULT_THRESHOLDS,
    onUpdate: () => log.updated(fleet.servers(), clock.now()),
    onTransition: () => {},
    onPoll: (entry, outcome) => log.polled(entry, outcome, clock.now()),
  });
  net.answer(`http://${A}/load`, {
    body: "40",
    headers: { [SLOTS_HEADER]: "2/5", [SIMULATIONS_HEADER]: "2" },
  });
  net.answer(`http://${B}/load`, {
    body: "100",
    headers: {
      [SLOTS_HEADER]: "two/5",
      [SIMULATIONS_HEADER]: "2",
      [LOAD_STATE_HEADER]: "draining",
    },
  });
  net.answer(`http://${C}/load`, { body: "7", headers: { [SLOTS_HEADER]: "1/4" } });
  try {
    fleet.start();
    await flush();
    assert.deepEqual(log.record(A).slots, { used: 2, max: 5, simulations: 2 });
    assert.equal(log.record(B).slots, undefined);
    assert.equal(log.record(C).slots, undefined, "one header alone is not enough");
    const rows = monitorData(
      { servers: fleet.servers(), log, mode: MODE, thresholds: DEFAULT_THRESHOLDS },
      EMPTY,
    ).servers;
    assert.deepEqual(rows.map((r) => [r.state, r.freeSlots]), [
      ["available", "3 of 5"],
      ["draining", "—"],
      ["available", "—"],
    ]);
  } finally {
    await fleet.stop();
  }
});

Deno.test("with leases on, /monitor/data shows the slots leases hold (used beyond simulations); off, no section", async () => {
  const INFO = {
    remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 50000 },
    completed: Promise.resolve(),
  } as Deno.ServeHandlerInfo<Deno.NetAddr>;
  const serverWith = (leaseSecret: string | undefined) => {
    const clock = new FakeClock(T0);
    const net = new FakeFetch();
    net.answer(`http://${A}/load`, {
      body: "60",
      headers: { [SLOTS_HEADER]: "3/5", [SIMULATIONS_HEADER]: "1" },
    });
    net.answer(`http://${B}/load`, {
      body: "20",
      headers: { [SLOTS_HEADER]: "1/5", [SIMULATIONS_HEADER]: "0" },
    });
    net.load(`http://${C}/load`, 10); // a stock server: nothing to count
    const server = createSessionServer({
      config: validateConfig(
        sessionSchema,
        { simulationServers: [A, B, C], loadRefresh: 1, loadTimeout: 1 },
        "test.json",
        { root: "/srv", vars: {}, tmpDir: "/tmp" },
      ),
      logger: recordingLogger(),
      fetch: net.fetch,
      clock,
      mail: undefined,
      assets: { names: [], respond: () => undefined },
      ...(leaseSecret === undefined ? {} : { leaseSecret }),
    });
    return { server, clock };
  };
  for (const secret of ["lease-secret-for-tests-0123", undefined]) {
    const { server } = serverWith(secret);
    try {
      server.start(1999);
      await flush();
      const response = await server.handler(new Request("http://s.test/monitor/data"), INFO);
      const data = await response.json();
      if (secret === undefined) {
        assert.equal("leases" in data, false);
      } else {
        assert.deepEqual(data.leases, ["Slots held by leases (granted, no Webots running yet): 3"]);
      }
      assert.deepEqual(data.queue?.[0], "Pages waiting: 0", "the queue is on by default");
    } finally {
      await server.shutdown();
    }
  }
});
