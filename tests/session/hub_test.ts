/**
 * The availability hub in-process: stand-in sockets and a fake clock, so slicing and the close
 * deadline are observed step by step instead of over real WebSockets and wall-clock time.
 */
import assert from "node:assert/strict";
import { createAvailabilityHub } from "../../session/availability.ts";
import { FakeClock } from "../fakes/fake_clock.ts";
import { FakeSocket, recordingLogger } from "./_fakes.ts";

/** A hub on a fake clock, with `n` subscribers already open (each has been sent "0"). */
function hubWith(n: number) {
  const clock = new FakeClock();
  const logger = recordingLogger();
  const hub = createAvailabilityHub(logger, clock);
  const sockets = Array.from({ length: n }, () => new FakeSocket());
  for (const socket of sockets) {
    hub.add(socket, "client.test");
    socket.open();
  }
  return { clock, logger, hub, sockets };
}

const sentBy = (sockets: FakeSocket[]) => new Set(sockets.map((s) => s.sent.join()));

Deno.test("a subscriber is sent the current value once open, not before", () => {
  const { hub } = hubWith(0);
  const socket = new FakeSocket();
  hub.add(socket, "client.test");
  hub.set(true);
  assert.deepEqual(socket.sent, [], "nothing is sent before the handshake");
  assert.equal(hub.size, 0);
  socket.open();
  assert.deepEqual(socket.sent, ["1"]);
  assert.equal(hub.size, 1);
});

Deno.test("only changes are sent, never the same value twice in a row", () => {
  const { hub, sockets } = hubWith(3);
  assert.deepEqual(sentBy(sockets), new Set(["0"]));
  hub.set(false);
  assert.deepEqual(sentBy(sockets), new Set(["0"]), "false is no change from the start");
  hub.set(true);
  hub.set(true);
  assert.deepEqual(sentBy(sockets), new Set(["0,1"]));
  hub.set(false);
  assert.deepEqual(sentBy(sockets), new Set(["0,1,0"]));
});

Deno.test("client messages are ignored and logged", () => {
  const { hub, sockets, logger } = hubWith(1);
  sockets[0]!.receive("hello");
  hub.set(true);
  assert.deepEqual(sockets[0]!.sent, ["0", "1"]);
  assert.ok(
    logger.lines.some((l) => l.message === "[client.test] Ignored client message: hello"),
  );
});

Deno.test("a broadcast goes out in slices of 1000 that yield to the event loop in between", async () => {
  const { clock, hub, sockets } = hubWith(2500);
  const yields: number[] = [];
  const setTimeout = clock.setTimeout.bind(clock);
  clock.setTimeout = (callback, ms) => {
    yields.push(sockets.filter((s) => s.sent.length === 2).length);
    return setTimeout(callback, ms);
  };
  hub.set(true);
  assert.equal(sockets.filter((s) => s.sent.length === 2).length, 1000, "first slice at once");
  assert.ok(sockets.slice(0, 1000).every((s) => s.sent.join() === "0,1"), "in order of arrival");
  await clock.advance(0);
  assert.deepEqual(yields, [1000, 2000], "one yield after each full slice");
  assert.deepEqual(sentBy(sockets), new Set(["0,1"]));
});

Deno.test("a change during a broadcast is neither duplicated nor reordered", async (t) => {
  const { clock, hub, sockets } = hubWith(2500);
  await t.step("a change back before the pass ends reaches only those told the first", async () => {
    hub.set(true);
    hub.set(false);
    await clock.advance(0);
    assert.deepEqual(sentBy(sockets.slice(0, 1000)), new Set(["0,1,0"]));
    assert.deepEqual(sentBy(sockets.slice(1000)), new Set(["0"]));
  });
  await t.step("flapping within one pass ends with the last value, sent once", async () => {
    hub.set(true);
    hub.set(false);
    hub.set(true);
    await clock.advance(0);
    assert.deepEqual(sentBy(sockets.slice(0, 1000)), new Set(["0,1,0,1"]));
    assert.deepEqual(sentBy(sockets.slice(1000)), new Set(["0,1"]));
    assert.equal(clock.pendingCount, 0);
  });
});

Deno.test("a subscriber that leaves is forgotten; a failing send disturbs no one else", () => {
  const { hub, sockets, logger } = hubWith(3);
  const [stays, leaves, breaks] = sockets as [FakeSocket, FakeSocket, FakeSocket];
  leaves.peerClosed();
  assert.equal(hub.size, 2);
  breaks.failSends = true;
  hub.set(true);
  assert.deepEqual(stays.sent, ["0", "1"]);
  assert.deepEqual(leaves.sent, ["0"]);
  assert.deepEqual(breaks.sent, ["0"]);
  assert.ok(logger.lines.some((l) => l.message === "sending availability failed"));
  breaks.failSends = false;
  hub.set(false);
  hub.set(true);
  assert.deepEqual(breaks.sent, ["0", "1"], "the broken socket never got the same value twice");
});

Deno.test("closeAll closes every subscriber with the code and resolves once they are closed", async () => {
  const { hub, sockets, clock } = hubWith(3);
  await hub.closeAll(1001, "server shutting down", 2000);
  assert.deepEqual(
    sockets.map((s) => s.closedWith),
    sockets.map(() => ({ code: 1001, reason: "server shutting down" })),
  );
  assert.equal(hub.size, 0);
  assert.equal(clock.pendingCount, 0, "the deadline timer is cleared");
});

Deno.test("closeAll stops waiting for a peer that never confirms after waitMs on the clock", async () => {
  const { hub, clock } = hubWith(1);
  const silent = new FakeSocket({ confirmClose: false });
  hub.add(silent, "client.test");
  silent.open();
  let done = false;
  const closing = hub.closeAll(1001, "server shutting down", 2000).then(() => (done = true));
  await clock.advance(1999);
  assert.equal(done, false);
  assert.equal(silent.closedWith?.code, 1001);
  await clock.advance(1);
  await closing;
  assert.equal(done, true);
});

Deno.test("a subscriber's arrival and departure are logged at INFO, as the reference does", () => {
  const { logger, sockets } = hubWith(1);
  sockets[0]!.peerClosed(1001); // the page went away
  const lines = logger.lines.filter((l) => l.message.startsWith("[client.test] "));
  assert.deepEqual(
    lines.map((l) => [l.level, l.message]),
    [["info", "[client.test] New client"], ["info", "[client.test] Client disconnected"]],
  );
});
