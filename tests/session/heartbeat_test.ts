/**
 * The heartbeat of the session server's `/` feed as a process: a subscriber that stops answering
 * pings is closed after `heartbeatTimeout` and leaves the hub; one that answers stays.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { freePort, serverTest } from "../helpers/server_process.ts";
import { CLOSE, describe, PING, rawConnect } from "../helpers/raw_ws.ts";
import { eventually } from "../helpers/simulation_fixture.ts";
import { startSession, subscribe, unsubscribe } from "./_helpers.ts";

const TIMEOUT_S = 2;

serverTest(
  "a subscriber that stops answering pings is dropped from the feed; one that answers stays",
  async (t) => {
    // Nothing listens on that port: the only server is down and the feed says 0.
    const session = await startSession({
      simulationServers: [`127.0.0.1:${freePort()}`],
      heartbeatTimeout: TIMEOUT_S,
    });
    try {
      const wsUrl = `${session.baseUrl.replace("http", "ws")}/`;
      const polite = subscribe(wsUrl);
      await polite.opened;
      const vanishing = await rawConnect(wsUrl);
      try {
        // Pings that arrive before the first value are answered, as a live page would.
        equal(await vanishing.readUntilText(() => true), "0");
        await polite.lastIs("0");
        const departures = async () =>
          (await session.logLines()).filter((line) =>
            String(line.msg).endsWith("Client disconnected")
          );

        // From here on the hand-made client reads nothing, so it answers no ping.
        const silentSince = performance.now();
        await t.step("the silent one is closed within the bound and leaves the hub", async () => {
          await eventually(
            async () => (await departures()).length > 0,
            3 * TIMEOUT_S * 1000,
            "the silent subscriber's departure in the log",
          );
          const seconds = (performance.now() - silentSince) / 1000;
          ok(seconds < 3 * TIMEOUT_S, `closed after ${seconds.toFixed(2)} s`);
          const [departure] = await departures();
          equal(departure?.reason, "no answer to ping");
          equal(departure?.subscribers, 1, "the polite subscriber is left");
        });
        await t.step("it was pinged, then sent a close frame 1001", async () => {
          const frames = await vanishing.readToClose();
          const kinds = frames.map((frame) => frame.opcode);
          const close = frames.find((frame) => frame.opcode === CLOSE);
          ok(close && kinds.includes(PING), `frames: ${kinds}`);
          equal(describe(close), "1001 No response from ping frame.");
          ok(kinds.indexOf(PING) < kinds.indexOf(CLOSE));
        });
        await t.step("the one answering pings stays subscribed past several timeouts", async () => {
          const until = silentSince + 3 * TIMEOUT_S * 1000;
          await new Promise((resolve) => setTimeout(resolve, until - performance.now()));
          equal(polite.socket.readyState, WebSocket.OPEN);
          equal((await departures()).length, 1);
          await unsubscribe(polite);
          await eventually(async () => (await departures()).length === 2, 10_000);
          const [, last] = await departures();
          deepEqual([last?.reason, last?.subscribers], ["closed", 0]);
        });
      } finally {
        vanishing.close();
        await unsubscribe(polite);
      }
    } finally {
      await session.cleanup();
    }
  },
);
