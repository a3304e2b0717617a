/**
 * The queue of the availability feed in-process: pages are stand-in sockets or plain recorders,
 * the grant is scripted, time is a fake clock. Positions, leaving, grants in order, the timeout,
 * the limits, the estimate and the metrics are observed message by message.
 */
import assert from "node:assert/strict";
import { createAvailabilityHub } from "../../session/availability.ts";
import { exportSessionServerMetrics } from "../../session/metrics.ts";
import { createWaitQueue, type QueueSettings } from "../../session/queue.ts";
import { createRegistry } from "../../shared/metrics.ts";
import { FakeClock } from "../fakes/fake_clock.ts";
import { sample } from "../helpers/prometheus.ts";
import { FakeSocket, recordingLogger } from "./_fakes.ts";

const RETRY_MS = 5000;

/** A grant the test answers: each call waits until the test resolves it. */
class ScriptedGrant {
  calls = 0;
  #pending: ((url: string | undefined) => void)[] = [];
  readonly grant = (): Promise<string | undefined> => {
    this.calls++;
    return new Promise((resolve) => this.#pending.push(resolve));
  };
  get waiting(): number {
    return this.#pending.length;
  }
  /** Answers the oldest grant in flight. */
  answer(url: string | undefined): void {
    const resolve = this.#pending.shift();
    assert.ok(resolve, "a grant is in flight");
    resolve(url);
  }
}

/** A page: what it was sent. */
class Page {
  readonly sent: string[] = [];
  readonly send = (text: string) => void this.sent.push(text);
}

function queueWith(settings: Partial<QueueSettings> = {}) {
  const clock = new FakeClock();
  const logger = recordingLogger();
  const grants = new ScriptedGrant();
  const registry = createRegistry();
  const recorded = exportSessionServerMetrics(registry, {
    entries: [],
    servers: () => [],
    subscribers: () => 0,
    queued: () => queue.length,
    dns: () => [],
  });
  const queue = createWaitQueue<Page>({
    clock,
    logger,
    grant: grants.grant,
    settings: () => ({ max: 100, timeoutMs: 0, perAddress: 0, ...settings }),
    retryMs: RETRY_MS,
    recorder: recorded.queue,
  });
  /** `n` pages joined in order, from addresses a0, a1, … */
  const join = (n: number, from = 0) =>
    Array.from({ length: n }, (_, i) => {
      const page = new Page();
      queue.join(page, `a${from + i}`, page.send);
      return page;
    });
  const metrics = () => registry.metrics();
  return { clock, logger, grants, queue, join, metrics };
}

const lastOf = (pages: Page[]) => pages.map((p) => p.sent.at(-1));

Deno.test("each page that joins is told its position, 1 being next", () => {
  const q = queueWith();
  const pages = q.join(3);
  assert.deepEqual(pages.map((p) => p.sent), [["queue: 1"], ["queue: 2"], ["queue: 3"]]);
  assert.equal(q.queue.length, 3);
  q.queue.stop();
});

Deno.test("a page that leaves loses its place and each page behind it is told once", () => {
  const q = queueWith();
  const pages = q.join(4);
  q.queue.leave(pages[1]!);
  assert.deepEqual(pages.map((p) => p.sent), [
    ["queue: 1"],
    ["queue: 2"],
    ["queue: 3", "queue: 2"],
    ["queue: 4", "queue: 3"],
  ]);
  q.queue.leave(pages[1]!);
  assert.equal(pages[3]!.sent.length, 2, "leaving twice changes nothing");
  const again = new Page();
  q.queue.join(again, "a1", again.send);
  assert.deepEqual(again.sent, ["queue: 4"], "a page that left joins at the end");
  q.queue.stop();
});

Deno.test("asking again while queued resends the position and keeps the place", () => {
  const q = queueWith();
  const pages = q.join(2);
  q.queue.join(pages[1]!, "a1", pages[1]!.send);
  assert.deepEqual(pages[1]!.sent, ["queue: 2", "queue: 2"]);
  assert.equal(q.queue.length, 2);
  q.queue.stop();
});

Deno.test("grants go to the head strictly in order, one grant in flight at a time", async (t) => {
  const q = queueWith();
  const pages = q.join(3);
  await t.step("joining starts one grant; kicks while it is in flight start none", () => {
    q.queue.kick();
    q.queue.kick();
    assert.equal(q.grants.calls, 1);
  });
  await t.step(
    "a granted slot goes to the head; the others move up, one message each",
    async () => {
      q.grants.answer("ws://sim1:2000");
      await q.clock.advance(0);
      assert.deepEqual(pages.map((p) => p.sent), [
        ["queue: 1", "session: ws://sim1:2000"],
        ["queue: 2", "queue: 1"],
        ["queue: 3", "queue: 2"],
      ]);
      assert.equal(q.grants.calls, 2, "the next grant follows at once");
    },
  );
  await t.step(
    "the head leaving while a grant is in flight: the slot goes to the next",
    async () => {
      q.queue.leave(pages[1]!);
      assert.deepEqual(lastOf(pages), ["session: ws://sim1:2000", "queue: 1", "queue: 1"]);
      q.grants.answer("ws://sim2:2000");
      await q.clock.advance(0);
      assert.equal(pages[2]!.sent.at(-1), "session: ws://sim2:2000");
      assert.equal(pages[1]!.sent.filter((m) => m.startsWith("session:")).length, 0);
      assert.equal(q.queue.length, 0);
      assert.equal(q.grants.waiting, 0, "no grant is asked for an empty queue");
    },
  );
  q.queue.stop();
});

Deno.test("no slot: the grant is tried again every retry period while pages wait, and then stops", async () => {
  const q = queueWith();
  const [page] = q.join(1);
  q.grants.answer(undefined);
  await q.clock.advance(RETRY_MS - 1);
  assert.equal(q.grants.calls, 1);
  await q.clock.advance(1);
  assert.equal(q.grants.calls, 2, "tried again after the retry period");
  q.grants.answer(undefined);
  await q.clock.advance(0);
  q.queue.kick();
  assert.equal(q.grants.calls, 3, "a kick (a poll with room) tries at once");
  q.grants.answer("ws://sim:2000");
  await q.clock.advance(0);
  assert.equal(page!.sent.at(-1), "session: ws://sim:2000");
  await q.clock.advance(RETRY_MS * 3);
  assert.equal(q.grants.calls, 3, "no retries while nobody waits");
  assert.equal(q.clock.pendingCount, 0);
  q.queue.stop();
});

Deno.test("a kick during a grant that finds no slot makes it ask once more", async () => {
  const q = queueWith();
  const [page] = q.join(1);
  q.queue.kick();
  q.grants.answer(undefined);
  await q.clock.advance(0);
  assert.equal(q.grants.calls, 2);
  q.grants.answer("ws://sim:2000");
  await q.clock.advance(0);
  assert.equal(page!.sent.at(-1), "session: ws://sim:2000");
  q.queue.stop();
});

Deno.test("a failing grant is logged and retried at the next period", async () => {
  const clock = new FakeClock();
  const logger = recordingLogger();
  let calls = 0;
  const queue = createWaitQueue<Page>({
    clock,
    logger,
    grant: () => ++calls === 1 ? Promise.reject(new Error("boom")) : Promise.resolve("ws://s:1"),
    settings: () => ({ max: 10, timeoutMs: 0, perAddress: 0 }),
    retryMs: RETRY_MS,
  });
  const page = new Page();
  queue.join(page, "a", page.send);
  await clock.advance(0);
  assert.ok(logger.lines.some((l) => l.level === "error" && l.message.includes("granting")));
  await clock.advance(RETRY_MS);
  assert.deepEqual(page.sent, ["queue: 1", "session: ws://s:1"]);
  queue.stop();
});

Deno.test("queueTimeout: a page that waited too long is told queue: timeout and leaves", async () => {
  const q = queueWith({ timeoutMs: 60_000 });
  const [first] = q.join(1);
  await q.clock.advance(10_000);
  const [second, third] = q.join(2, 1);
  await q.clock.advance(49_999);
  assert.deepEqual(first!.sent, ["queue: 1"]);
  await q.clock.advance(1);
  assert.deepEqual(first!.sent, ["queue: 1", "queue: timeout"]);
  assert.deepEqual(lastOf([second!, third!]), ["queue: 1", "queue: 2"]);
  await q.clock.advance(10_000);
  assert.deepEqual(lastOf([second!, third!]), ["queue: timeout", "queue: timeout"]);
  assert.equal(q.queue.length, 0);
  assert.deepEqual(
    third!.sent,
    ["queue: 3", "queue: 2", "queue: 1", "queue: timeout"],
    "each page ahead timing out moved it up once",
  );
  const body = await q.metrics();
  assert.equal(sample(body, "webots_session_queue_outcomes_total", { outcome: "timeout" }), 3);
  q.queue.stop();
});

Deno.test("queueMax: one page more is told queue: full and not queued; 0 turns the queue off", () => {
  const q = queueWith({ max: 2 });
  const pages = q.join(3);
  assert.deepEqual(pages.map((p) => p.sent), [["queue: 1"], ["queue: 2"], ["queue: full"]]);
  assert.equal(q.queue.length, 2);
  q.queue.leave(pages[0]!);
  const later = q.join(1, 9);
  assert.deepEqual(later[0]!.sent, ["queue: 2"], "room again once a page left");
  q.queue.stop();
  const off = queueWith({ max: 0 });
  const [page] = off.join(1);
  assert.deepEqual(page!.sent, ["queue: off"]);
  assert.equal(off.queue.length, 0);
  assert.equal(off.grants.calls, 0);
  off.queue.stop();
});

Deno.test("queuePerAddress: beyond the limit an address is told queue: limit; leaving frees a place", () => {
  const q = queueWith({ perAddress: 1 });
  const a = new Page();
  const a2 = new Page();
  const b = new Page();
  q.queue.join(a, "10.0.0.1", a.send);
  q.queue.join(a2, "10.0.0.1", a2.send);
  q.queue.join(b, "10.0.0.2", b.send);
  assert.deepEqual([a.sent, a2.sent, b.sent], [["queue: 1"], ["queue: limit"], ["queue: 2"]]);
  q.queue.leave(a);
  q.queue.join(a2, "10.0.0.1", a2.send);
  assert.deepEqual(a2.sent, ["queue: limit", "queue: 2"]);
  q.queue.stop();
  const two = queueWith({ perAddress: 2 });
  const pages = [new Page(), new Page(), new Page()];
  for (const page of pages) two.queue.join(page, "10.0.0.1", page.send);
  assert.deepEqual(lastOf(pages), ["queue: 1", "queue: 2", "queue: limit"]);
  two.queue.stop();
});

Deno.test("the estimated wait follows the position once a gap between grants is measured", async (t) => {
  const q = queueWith();
  const pages = q.join(4);
  let late: Page[] = [];
  await t.step("no estimate before two grants with pages waiting in between", async () => {
    await q.clock.advance(30_000);
    q.grants.answer("ws://s:1");
    await q.clock.advance(0);
    assert.deepEqual(lastOf(pages), ["session: ws://s:1", "queue: 1", "queue: 2", "queue: 3"]);
    assert.equal(q.queue.estimate(1), undefined);
  });
  await t.step("after a 60 s gap: position × 60 s", async () => {
    q.grants.answer(undefined);
    await q.clock.advance(60_000);
    q.queue.kick();
    q.grants.answer("ws://s:2");
    await q.clock.advance(0);
    assert.deepEqual(lastOf(pages.slice(2)), ["queue: 1 ~60", "queue: 2 ~120"]);
  });
  await t.step("the mean of the gaps: (60 + 30) / 2 = 45 s a place", async () => {
    q.grants.answer(undefined);
    await q.clock.advance(30_000);
    q.queue.kick();
    q.grants.answer("ws://s:3");
    await q.clock.advance(0);
    assert.deepEqual(pages[3]!.sent.at(-1), "queue: 1 ~45");
    late = q.join(1, 9);
    assert.deepEqual(late[0]!.sent, ["queue: 2 ~90"]);
  });
  await t.step(
    "an emptied queue starts a new gap: time without waiters is not counted",
    async () => {
      q.queue.leave(pages[3]!);
      q.queue.leave(late[0]!);
      q.grants.answer(undefined);
      await q.clock.advance(1_000_000);
      const next = q.join(2, 20);
      assert.deepEqual(next[0]!.sent, ["queue: 1 ~45"], "the average is kept, the gap is not");
      q.grants.answer("ws://s:5");
      await q.clock.advance(0);
      assert.deepEqual(next[1]!.sent.at(-1), "queue: 1 ~45");
    },
  );
  q.queue.stop();
});

Deno.test("the estimate averages the last 10 gaps", async () => {
  const q = queueWith();
  q.join(13);
  for (let i = 0; i < 12; i++) {
    // Gaps: two of 100 s first, then ten of 10 s: the first two fall out of the window.
    await q.clock.advance(i < 2 ? 100_000 : 10_000);
    q.grants.answer(`ws://s:${i}`);
    await q.clock.advance(0);
  }
  // 11 gaps measured (the first grant opens the first gap): the last 10 are all 10 s.
  assert.equal(q.queue.estimate(1), 10);
  assert.equal(q.queue.estimate(3), 30);
  q.queue.stop();
});

Deno.test("queue metrics: length, outcomes and the wait before a grant", async () => {
  const q = queueWith({ max: 3, perAddress: 1 });
  const pages = q.join(3);
  q.join(1, 10);
  const twin = new Page();
  q.queue.join(twin, "a0", twin.send);
  let body = await q.metrics();
  assert.equal(sample(body, "webots_session_queue_length"), 3);
  assert.equal(sample(body, "webots_session_queue_outcomes_total", { outcome: "full" }), 2);
  assert.equal(sample(body, "webots_session_queue_outcomes_total", { outcome: "granted" }), 0);
  q.queue.leave(pages[2]!);
  q.queue.join(twin, "a0", twin.send);
  body = await q.metrics();
  assert.equal(sample(body, "webots_session_queue_outcomes_total", { outcome: "limit" }), 1);
  await q.clock.advance(20_000);
  q.grants.answer("ws://s:1");
  await q.clock.advance(0);
  body = await q.metrics();
  assert.deepEqual(
    ["granted", "timeout", "full", "limit", "left"].map((outcome) =>
      sample(body, "webots_session_queue_outcomes_total", { outcome })
    ),
    [1, 0, 2, 1, 1],
  );
  assert.equal(sample(body, "webots_session_queue_length"), 1);
  assert.equal(sample(body, "webots_session_queue_wait_seconds_count"), 1);
  assert.equal(sample(body, "webots_session_queue_wait_seconds_sum"), 20);
  assert.equal(sample(body, "webots_session_queue_wait_seconds_bucket", { le: "15" }), 0);
  assert.equal(sample(body, "webots_session_queue_wait_seconds_bucket", { le: "30" }), 1);
  q.queue.stop();
});

// ---------------------------------------------------------------------------------------------
// On the availability feed

function hubWithQueue() {
  const clock = new FakeClock();
  const logger = recordingLogger();
  const grants = new ScriptedGrant();
  const queue = createWaitQueue<FakeSocket>({
    clock,
    logger,
    grant: grants.grant,
    settings: () => ({ max: 100, timeoutMs: 0, perAddress: 1 }),
    retryMs: RETRY_MS,
  });
  const hub = createAvailabilityHub(logger, clock, queue as never);
  const open = (address: string) => {
    const socket = new FakeSocket();
    hub.add(socket, "session.test", address);
    socket.open();
    return socket;
  };
  return { clock, logger, grants, queue, hub, open };
}

Deno.test("on the feed: a page that never asks sees only 1/0, byte for byte", () => {
  const h = hubWithQueue();
  const quiet = h.open("10.0.0.1");
  const queued = h.open("10.0.0.2");
  queued.receive('{"queue": {}}');
  h.hub.set(true);
  h.hub.set(false);
  assert.deepEqual(quiet.sent, ["0", "1", "0"]);
  assert.deepEqual(queued.sent, ["0", "queue: 1", "1", "0"], "a queued page keeps its 1/0 too");
  h.queue.stop();
});

Deno.test("on the feed: other messages are still ignored; a malformed queue request gets error:", () => {
  const h = hubWithQueue();
  const page = h.open("10.0.0.1");
  page.receive("hello");
  page.receive('{"start": {}}');
  page.receive('["queue"]');
  assert.deepEqual(page.sent, ["0"]);
  page.receive('{"queue": 5}');
  assert.deepEqual(page.sent, ["0", 'error: Cannot parse message: "queue" must be an object']);
  assert.equal(h.queue.length, 0);
  assert.equal(page.readyState, WebSocket.OPEN, "the socket stays open");
  h.queue.stop();
});

Deno.test("on the feed: closing the socket (or a heartbeat close) leaves the queue", async () => {
  const h = hubWithQueue();
  const first = h.open("10.0.0.1");
  const second = h.open("10.0.0.2");
  first.receive('{"queue": {}}');
  second.receive('{"queue": {}}');
  first.peerClosed(1006);
  assert.equal(h.queue.length, 1);
  assert.deepEqual(second.sent, ["0", "queue: 2", "queue: 1"]);
  h.grants.answer("ws://sim:2000");
  await h.clock.advance(0);
  assert.deepEqual(second.sent.at(-1), "session: ws://sim:2000");
  assert.deepEqual(first.sent, ["0", "queue: 1"], "a gone page is sent nothing");
  assert.equal(h.hub.size, 1, "the granted page's socket may stay");
  h.queue.stop();
});

Deno.test("on the feed: a page may queue again after its grant", async () => {
  const h = hubWithQueue();
  const page = h.open("10.0.0.1");
  page.receive('{"queue": {}}');
  h.grants.answer("ws://sim:2000");
  await h.clock.advance(0);
  page.receive('{"queue": {}}');
  assert.deepEqual(page.sent, ["0", "queue: 1", "session: ws://sim:2000", "queue: 1"]);
  h.grants.answer(undefined);
  h.queue.stop();
});
