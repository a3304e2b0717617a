/**
 * The queue end to end: a real session server polling a real simulation server (one slot, the
 * stand-in Webots), pages on the session server's `/` that queue while the fleet is full, and
 * each one, in order, handed `session: <url>` when the slot frees and then running its simulation
 * on `<url>/client`.
 */
import assert from "node:assert/strict";
import { eventually, startFile, startSimulationServer } from "../helpers/simulation_fixture.ts";
import { connect, type TestSocket } from "../helpers/ws_client.ts";
import { startSession } from "./_helpers.ts";

const QUEUE = JSON.stringify({ queue: {} });

/** Opens `<url>/client`, starts the demo world and waits for `webots:`. */
async function runSimulation(
  url: string,
  start: string,
): Promise<TestSocket> {
  const client = await connect(`${url}/client`);
  client.send(start);
  await client.waitFor((m) => m.startsWith("webots:") || m.startsWith("error:"), 20_000);
  assert.ok(client.messages.some((m) => m.startsWith("webots:")), client.messages.join("\n"));
  return client;
}

/** The position in `queue: N` or `queue: N ~S` (the estimate comes once a gap was measured). */
const positionOf = (message: string) => Number(/^queue: (\d+)(?: ~\d+)?$/.exec(message)?.[1]);

const grantOf = (page: TestSocket) =>
  page.waitFor((m) => m.startsWith("session: "), 20_000).then((m) => m.slice("session: ".length));

Deno.test("pages queued while the fleet is full get session: in order as the slot frees", async (t) => {
  await using sim = await startSimulationServer({ maxConnections: 1 });
  const entry = `127.0.0.1:${sim.server.port}`;
  const session = await startSession({
    simulationServers: [entry],
    loadRefresh: 0.2,
    loadTimeout: 2,
    // Every page here comes from 127.0.0.1.
    queuePerAddress: 0,
  });
  const sockets: TestSocket[] = [];
  const open = async (url: string) => {
    const socket = await connect(url);
    sockets.push(socket);
    return socket;
  };
  const start = startFile(sim, "robots/demo", "demo.wbt");
  const feed = session.baseUrl.replace(/^http/, "ws") + "/";
  try {
    const watcher = await open(feed);
    await watcher.waitFor((m) => m === "1");
    let running: TestSocket;
    await t.step("a stock client fills the only slot; the feed says 0", async () => {
      const answer = await (await fetch(`${session.baseUrl}/session`)).text();
      assert.equal(answer, `ws://${entry}`);
      running = await runSimulation(answer, start);
      sockets.push(running);
      // The feed starts at 0 before the first poll: wait for the 0 after the 1.
      await watcher.waitFor(() => watcher.messages.join() === "0,1,0");
    });
    const pages: TestSocket[] = [];
    await t.step("three pages queue and are told 1, 2, 3", async () => {
      for (let i = 0; i < 3; i++) {
        const page = await open(feed);
        page.send(QUEUE);
        await page.waitFor((m) => m.startsWith("queue: "));
        pages.push(page);
      }
      assert.deepEqual(pages.map((p) => p.messages), [
        ["0", "queue: 1"],
        ["0", "queue: 2"],
        ["0", "queue: 3"],
      ]);
      assert.deepEqual(
        watcher.messages,
        ["0", "1", "0"],
        "the watcher, which never asked, sees 1/0 only",
      );
    });
    for (let turn = 0; turn < pages.length; turn++) {
      await t.step(`the slot frees: page ${turn + 1} is granted, the others move up`, async () => {
        const page = pages[turn]!;
        assert.ok(
          !page.messages.some((m) => m.startsWith("session:")),
          "not before the slot frees",
        );
        await running.close();
        const url = await grantOf(page);
        assert.equal(url, `ws://${entry}`);
        for (const [i, behind] of pages.slice(turn + 1).entries()) {
          await behind.waitFor((m) => positionOf(m) === i + 1);
        }
        running = await runSimulation(url, start);
        sockets.push(running);
        for (const behind of pages.slice(turn + 1)) {
          assert.ok(!behind.messages.some((m) => m.startsWith("session:")), "one page per slot");
        }
      });
    }
    await t.step("each page was told each position once, then its grant", () => {
      const told = pages.map((p) => p.messages.filter((m) => m.startsWith("queue: ")));
      assert.deepEqual(told.map((messages) => messages.map(positionOf)), [[1], [2, 1], [3, 2, 1]]);
      assert.match(told[2]!.at(-1)!, /^queue: 1 ~\d+$/, "an estimate once two grants were seen");
      for (const page of pages) {
        assert.equal(page.messages.filter((m) => m.startsWith("session: ")).length, 1);
      }
    });
    await t.step("/metrics counts the three grants and their waits", async () => {
      const body = await (await fetch(`${session.baseUrl}/metrics`)).text();
      assert.match(body, /^webots_session_queue_outcomes_total\{outcome="granted"\} 3$/m);
      assert.match(body, /^webots_session_queue_wait_seconds_count 3$/m);
      assert.match(body, /^webots_session_queue_length 0$/m);
    });
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await Promise.all(sockets.map((s) => s.close()));
    await session.cleanup();
  }
});

Deno.test("with slot leases (required) a queued page is handed a lease URL, which runs its simulation once", async () => {
  const secret = "queue-lease-secret-0f9e2d7c";
  await using sim = await startSimulationServer({
    maxConnections: 1,
    config: { leaseSecret: secret, requireLease: true },
  });
  const entry = `127.0.0.1:${sim.server.port}`;
  const session = await startSession({
    simulationServers: [entry],
    loadRefresh: 0.2,
    loadTimeout: 2,
    queuePerAddress: 0,
    leaseSecret: secret,
  });
  const sockets: TestSocket[] = [];
  const start = startFile(sim, "robots/demo", "demo.wbt");
  const feed = session.baseUrl.replace(/^http/, "ws") + "/";
  try {
    // A stock client holds the only slot through a lease of its own.
    let answer = "";
    await eventually(
      async () => {
        answer = await (await fetch(`${session.baseUrl}/session`)).text();
        return answer.startsWith("ws://");
      },
      20_000,
      "the first poll found the server and a lease was granted",
    );
    assert.match(answer, /\/lease\/[A-Za-z0-9_-]+$/);
    const first = await runSimulation(answer, start);
    sockets.push(first);
    const page = await connect(feed);
    sockets.push(page);
    page.send(QUEUE);
    await page.waitFor((m) => m.startsWith("queue: "));
    assert.ok(!page.messages.some((m) => m.startsWith("session:")), "no slot while it is held");
    await first.close();
    const url = await grantOf(page);
    assert.match(url, new RegExp(`^ws://${entry}/lease/[A-Za-z0-9_-]+$`));
    const second = await runSimulation(url, start);
    sockets.push(second);
    // The lease was single-use: a second socket on it is refused.
    const again = await connect(`${url}/client`);
    sockets.push(again);
    const closed = await again.closed;
    assert.equal(closed.code, 1008);
    assert.match(again.messages[0] ?? "", /^error: this simulation slot lease is unknown, used/);
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await Promise.all(sockets.map((s) => s.close()));
    await session.cleanup();
  }
});
