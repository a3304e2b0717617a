/**
 * The availability feed on `/` over real WebSockets, and graceful shutdown, against the real
 * server process. The hub's rules (changes only, slices, close deadline) are tested in-process in
 * hub_test.ts; this proves the wiring: upgrade, sending, 1001 on SIGTERM.
 */
import assert from "node:assert/strict";
import { startFakeSimServer } from "../fakes/sim_server.ts";
import { get, startSession, subscribe, type Subscriber, unsubscribe } from "./_helpers.ts";
import { serverTest } from "../helpers/server_process.ts";

const SUBSCRIBERS = 1000;

serverTest(
  "1000 WebSocket subscribers get 0, then 1 when the first poll answers, then 1001 on SIGTERM",
  async (t) => {
    await using sim = startFakeSimServer({ load: 10 });
    // The first poll's answer waits until released, so every subscriber connects while the only
    // simulation server is still unknown: no timing decides what they are sent.
    sim.hold();
    const session = await startSession({ simulationServers: [sim.entry] });
    const wsUrl = session.baseUrl.replace("http", "ws") + "/";
    const subscribers: Subscriber[] = [];
    try {
      await t.step("each new subscriber is sent 0 at once", async () => {
        for (let i = 0; i < SUBSCRIBERS; i++) subscribers.push(subscribe(wsUrl));
        await Promise.all(subscribers.map((s) => s.messageCount(1)));
        assert.ok(subscribers.every((s) => s.messages.join() === "0"));
      });
      await t.step("client messages are ignored", () => {
        subscribers[0]!.socket.send("hello");
      });
      await t.step("the poll's answer makes the server available for everyone, once", async () => {
        sim.release();
        await Promise.all(subscribers.map((s) => s.lastIs("1")));
        assert.ok(subscribers.every((s) => s.messages.join() === "0,1"));
        const answer = await get(`${session.baseUrl}/session`);
        assert.equal(answer.body, `ws://${sim.entry}`);
      });
      await t.step("SIGTERM closes every subscriber with 1001 and exits 0", async () => {
        const status = await session.stop("SIGTERM");
        const closes = await Promise.all(subscribers.map((s) => s.closed));
        assert.ok(
          closes.every((c) => c.code === 1001),
          `codes: ${new Set(closes.map((c) => c.code))}`,
        );
        assert.equal(status.code, 0, session.output());
        const lines = await session.logLines();
        assert.ok(lines.some((l) => l.msg === "stopped"), "the log was flushed and closed");
        // Under the launcher's permissions the polls ran in their worker, with no fallback.
        assert.ok(!lines.some((l) => String(l.msg).includes("poll worker")), session.output());
      });
    } catch (error) {
      console.error(session.output());
      throw error;
    } finally {
      await Promise.all(subscribers.map(unsubscribe));
      await session.cleanup();
    }
  },
);
