/**
 * The availability feed on `/` (WebSocket) and graceful shutdown, against the real server.
 */
import assert from "node:assert/strict";
import { startFakeSimServer } from "../fakes/sim_server.ts";
import {
  startSession,
  subscribe,
  type Subscriber,
  unsubscribe,
  waitForSession,
} from "./_helpers.ts";
import { NO_SERVER_AVAILABLE } from "../../shared/protocol.ts";

const SUBSCRIBERS = 1000;

Deno.test("1000 subscribers get the current value at once and every change exactly once", async (t) => {
  await using sim = startFakeSimServer({ load: 100 });
  const session = await startSession({ simulationServers: [sim.entry] });
  const wsUrl = session.baseUrl.replace("http", "ws") + "/";
  const subscribers: Subscriber[] = [];
  try {
    await sim.nextServed();
    await t.step("each new subscriber is sent 0 at once", async () => {
      for (let i = 0; i < SUBSCRIBERS; i++) subscribers.push(subscribe(wsUrl));
      await Promise.all(subscribers.map((s) => s.messageCount(1)));
      assert.ok(subscribers.every((s) => s.messages.join() === "0"));
    });
    await t.step("client messages are ignored", () => {
      subscribers[0]!.socket.send("hello");
    });
    await t.step("the change to available reaches everyone once", async () => {
      sim.setLoad(10);
      await Promise.all(subscribers.map((s) => s.messageCount(2)));
      assert.ok(subscribers.every((s) => s.messages.join() === "0,1"));
    });
    await t.step("an unchanged availability is not sent again", async () => {
      sim.setLoad(20);
      await waitForServed(sim, "20", 3);
      sim.setLoad(100);
      await Promise.all(subscribers.map((s) => s.messageCount(3)));
      sim.setLoad(150);
      await waitForServed(sim, "150", 3);
      assert.ok(
        subscribers.every((s) => s.messages.join() === "0,1,0"),
        `first subscriber got ${subscribers[0]!.messages.join()}`,
      );
    });
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await Promise.all(subscribers.map(unsubscribe));
    await session.cleanup();
  }
});

/** Waits until the fake served `body` `times` times (so the server polled it that often). */
async function waitForServed(
  sim: ReturnType<typeof startFakeSimServer>,
  body: string,
  times: number,
) {
  while (sim.served().filter((s) => s.body === body).length < times) await sim.nextServed();
}

Deno.test("SIGTERM closes every subscriber with code 1001 and exits 0", async () => {
  await using sim = startFakeSimServer({ load: 10 });
  const session = await startSession({ simulationServers: [sim.entry] });
  const wsUrl = session.baseUrl.replace("http", "ws") + "/";
  const subscribers: Subscriber[] = [];
  try {
    await waitForSession(session.baseUrl, `ws://${sim.entry}`);
    for (let i = 0; i < 5; i++) subscribers.push(subscribe(wsUrl));
    await Promise.all(subscribers.map((s) => s.messageCount(1)));
    assert.ok(subscribers.every((s) => s.messages.join() === "1"));
    const status = await session.stop("SIGTERM");
    const closes = await Promise.all(subscribers.map((s) => s.closed));
    assert.deepEqual(closes.map((c) => c.code), [1001, 1001, 1001, 1001, 1001]);
    assert.equal(status.code, 0, session.output());
    const lines = await session.logLines();
    assert.ok(lines.some((l) => l.msg === "stopped"), "the log was flushed and closed");
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await Promise.all(subscribers.map(unsubscribe));
    await session.cleanup();
  }
});

Deno.test("subscribers that disconnect are forgotten and do not disturb the others", async () => {
  await using sim = startFakeSimServer({ load: 100 });
  const session = await startSession({ simulationServers: [sim.entry] });
  const wsUrl = session.baseUrl.replace("http", "ws") + "/";
  const stay = subscribe(wsUrl);
  try {
    await stay.messageCount(1);
    const leaving = Array.from({ length: 20 }, () => subscribe(wsUrl));
    await Promise.all(leaving.map((s) => s.messageCount(1)));
    await Promise.all(leaving.map(unsubscribe));
    sim.setLoad(0);
    await stay.messageCount(2);
    assert.equal(stay.messages.join(), "0,1");
    await waitForSession(session.baseUrl, `ws://${sim.entry}`);
    sim.setLoad(100);
    await waitForSession(session.baseUrl, NO_SERVER_AVAILABLE);
    await stay.messageCount(3);
    assert.equal(stay.messages.join(), "0,1,0");
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await unsubscribe(stay);
    await session.cleanup();
  }
});
