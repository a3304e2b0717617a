/**
 * The band between `fullAt` and `availableAt` against real processes: a session server in front of
 * two stand-in simulation servers whose `/load` the test scripts, one answer at a time, and a real
 * subscriber of the availability feed. The rules themselves are tested in-process in rules_test.ts
 * and server_test.ts; this proves that a flapping load reaches the feed as one change each way.
 */
import assert from "node:assert/strict";
import { type FakeSimServer, startFakeSimServer } from "../fakes/sim_server.ts";
import { serverTest } from "../helpers/server_process.ts";
import { get, startSession, subscribe, unsubscribe } from "./_helpers.ts";

/** Makes `sim` answer `load` and returns once it has answered it to a poll. */
async function answer(sim: FakeSimServer, load: number): Promise<void> {
  sim.setLoad(load);
  await sim.nextServed();
}

serverTest(
  "a load flapping between 92 and 100 reaches the availability feed as one 0 and one 1",
  async () => {
    await using flapping = startFakeSimServer({ load: 10 });
    await using busy = startFakeSimServer({ load: 100 });
    const session = await startSession({
      simulationServers: [flapping.entry, busy.entry],
      // Every 50 ms: the script below moves on as soon as each answer has been served.
      loadRefresh: 0.05,
    });
    const feed = session.baseUrl.replace("http", "ws") + "/";
    try {
      // A second answer is asked for only once the first is applied (one poll in flight).
      await flapping.nextServed();
      await flapping.nextServed();
      assert.equal((await get(`${session.baseUrl}/session`)).body, `ws://${flapping.entry}`);
      const subscriber = subscribe(feed);
      await subscriber.messageCount(1);
      for (const load of [99.5, 92, 100, 93, 99, 95, 100, 92]) await answer(flapping, load);
      assert.equal(
        (await get(`${session.baseUrl}/session`)).body,
        "Error: no simulation server available at the moment.",
      );
      for (const load of [85, 95, 98, 92, 97, 98.9]) await answer(flapping, load);
      // Applied: the poll after the last answer has been served.
      await flapping.nextServed();
      assert.equal((await get(`${session.baseUrl}/session`)).body, `ws://${flapping.entry}`);
      // The feed's messages arrive in order before its close frame.
      assert.equal((await session.stop("SIGTERM")).code, 0);
      assert.equal((await subscriber.closed).code, 1001);
      assert.deepEqual(subscriber.messages, ["1", "0", "1"]);
      const transitions = (await session.logLines())
        .filter((line) => line.entry === flapping.entry)
        .map((line) => line.msg);
      assert.deepEqual(transitions, [
        `${flapping.entry} simulation server has reached maximum load (99.5%)`,
        `${flapping.entry} simulation server is available again (load = 85.0%)`,
      ]);
      await unsubscribe(subscriber);
    } finally {
      await session.cleanup();
    }
  },
);
