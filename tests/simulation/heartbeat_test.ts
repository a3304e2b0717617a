/**
 * The `/client` heartbeat as a process: a browser that stops answering pings is closed after
 * `heartbeatTimeout` and its simulation cleaned up; one that answers stays.
 */
import { serverTest } from "../helpers/server_process.ts";
import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { connect } from "../helpers/ws_client.ts";
import { CLOSE, describe, PING, rawConnect } from "../helpers/raw_ws.ts";
import {
  eventually,
  isAlive,
  type SimulationFixture,
  startFile,
  startSimulationServer,
  type WebotsRecord,
} from "../helpers/simulation_fixture.ts";

const TIMEOUT_S = 2;

/** The log's JSON lines. */
async function logLines(fixture: SimulationFixture): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(join(fixture.logDir, "simulation", "output.log"));
  return text.split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line));
}

/** The crash-recovery records in `<instancesDir>/.webots-runs/`. */
async function runRecords(fixture: SimulationFixture): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(join(fixture.instancesDir, ".webots-runs"))))
    .map((entry) => entry.name);
}

/** The stand-in's record of the Webots streaming on `port`. */
async function webotsOn(fixture: SimulationFixture, port: number): Promise<WebotsRecord> {
  const found = (await fixture.records()).find((record) =>
    record.args.some((arg) => arg.startsWith(`--stream="port=${port};`))
  );
  if (found === undefined) throw new Error(`no Webots record for port ${port}`);
  return found;
}

const portOf = (webots: string) => Number(webots.slice(webots.lastIndexOf(":") + 1));

serverTest(
  "a browser that stops answering pings is closed and its simulation cleaned up; one that answers stays",
  async (t) => {
    await using fixture = await startSimulationServer({
      config: { heartbeatTimeout: TIMEOUT_S },
      worlds: { "p": { "w.wbt": "#fake children 1\n" } },
    });
    const polite = await connect(fixture.clientUrl);
    const vanishing = await rawConnect(fixture.clientUrl);
    try {
      polite.send(startFile(fixture, "p", "w.wbt"));
      await vanishing.sendText(startFile(fixture, "p", "w.wbt"));
      const politePort = portOf(await polite.waitFor((m) => m.startsWith("webots:")));
      // Pings that arrive before webots: are answered, as a live browser would.
      const vanishingPort = portOf(await vanishing.readUntilText((m) => m.startsWith("webots:")));
      const politeWebots = await webotsOn(fixture, politePort);
      const vanishingWebots = await webotsOn(fixture, vanishingPort);
      equal((await fixture.instances()).length, 2);
      equal((await runRecords(fixture)).length, 2);

      // From here on the hand-made client reads nothing, so it answers no ping.
      const silentSince = performance.now();
      await t.step("the silent one is closed within the bound, logged as such", async () => {
        await eventually(
          async () =>
            (await logLines(fixture)).some((line) =>
              line.msg === "Client disconnected" && line.reason === "no answer to ping"
            ),
          3 * TIMEOUT_S * 1000,
          "the silent client's departure in the log",
        );
        const seconds = (performance.now() - silentSince) / 1000;
        ok(seconds < 3 * TIMEOUT_S, `closed after ${seconds.toFixed(2)} s`);
      });
      await t.step("its Webots is gone, its folder, run record and port released", async () => {
        for (const pid of [vanishingWebots.pid, ...vanishingWebots.childPids]) {
          equal(isAlive(pid), false, `process ${pid} still runs`);
        }
        equal((await fixture.instances()).length, 1);
        equal((await runRecords(fixture)).length, 1);
        const listener = Deno.listen({ hostname: "127.0.0.1", port: vanishingPort });
        listener.close();
      });
      await t.step("it was pinged, then sent a close frame 1001", async () => {
        const frames = await vanishing.readToClose();
        const kinds = frames.map((frame) => frame.opcode);
        ok(kinds.includes(PING), `frames: ${kinds}`);
        const close = frames.find((frame) => frame.opcode === CLOSE);
        ok(close, `frames: ${kinds}`);
        equal(describe(close), "1001 No response from ping frame.");
        ok(kinds.indexOf(PING) < kinds.indexOf(CLOSE));
      });
      await t.step("the one answering pings stays connected past several timeouts", async () => {
        // The built-in client answers every ping by itself; wait out three full timeouts.
        const until = silentSince + 3 * TIMEOUT_S * 1000;
        await new Promise((resolve) => setTimeout(resolve, until - performance.now()));
        equal(polite.socket.readyState, WebSocket.OPEN);
        ok(isAlive(politeWebots.pid));
        equal((await fixture.instances()).length, 1);
        const departures = (await logLines(fixture)).filter((line) =>
          line.msg === "Client disconnected"
        );
        deepEqual(departures.map((line) => line.reason), ["no answer to ping"]);
      });
      await t.step("closing it normally still cleans up as a departure", async () => {
        await polite.close();
        for (const pid of [politeWebots.pid, ...politeWebots.childPids]) {
          await eventually(() => !isAlive(pid), 10_000, `process ${pid} to end`);
        }
        await eventually(async () => (await fixture.instances()).length === 0, 10_000);
        await eventually(async () => (await runRecords(fixture)).length === 0, 10_000);
        // The log file is written asynchronously: the line may follow the record's removal.
        const reasons = async () =>
          (await logLines(fixture))
            .filter((line) => line.msg === "Client disconnected")
            .map((line) => line.reason);
        await eventually(async () => (await reasons()).length === 2, 10_000, "two departures");
        deepEqual(await reasons(), ["no answer to ping", "browser left"]);
      });
    } finally {
      vanishing.close();
      await polite.close();
    }
  },
);
