/**
 * The simulation server as a process while the stand-in Webots prints a 16 MiB line: the server
 * stays responsive, the session still gets ready, and the cut is logged once.
 */
import { serverTest } from "../helpers/server_process.ts";
import { equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { connect } from "../helpers/ws_client.ts";
import { eventually, startFile, startSimulationServer } from "../helpers/simulation_fixture.ts";
import { MAX_LINE_BYTES } from "../../simulation/line_splitter.ts";

const LONG_LINE_BYTES = 16 * 1024 * 1024;

/**
 * Deliberately loose: before the line was split in linear time, a 16 MiB line blocked `/load` for
 * about 2 s; a responsive server answers in milliseconds.
 */
const LOAD_BOUND_MS = 500;

serverTest("a 16 MiB line without newline neither blocks /load nor the session", async (t) => {
  await using fixture = await startSimulationServer({
    worlds: {
      p: { "w.wbt": `#fake long-line ${LONG_LINE_BYTES}\n#fake activity-every 50\n` },
    },
  });
  const loadUrl = `${fixture.server.baseUrl}/load`;
  const timings: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const started = performance.now();
      const response = await fetch(loadUrl);
      await response.text();
      timings.push(performance.now() - started);
      equal(response.status, 200);
    }
  })();
  const client = await connect(fixture.clientUrl);
  try {
    await t.step("the session gets ready after the line", async () => {
      client.send(startFile(fixture, "p", "w.wbt"));
      match(await client.waitFor((m) => m.startsWith("webots:"), 20_000), /^webots:ws:/);
      await client.waitFor((m) => m === ".");
    });
  } finally {
    polling = false;
    await poller;
  }
  await t.step(`every /load answered within ${LOAD_BOUND_MS} ms`, () => {
    ok(timings.length > 0);
    const slowest = Math.max(...timings);
    console.log(`${timings.length} /load requests, slowest ${slowest.toFixed(0)} ms`);
    ok(slowest < LOAD_BOUND_MS, `slowest /load took ${slowest.toFixed(0)} ms`);
  });
  await t.step("one warning says the line was cut and how much was dropped", async () => {
    const logFile = join(fixture.logDir, "simulation", "output.log");
    const cuts = async () =>
      (await Deno.readTextFile(logFile)).split("\n").filter((line) =>
        line.includes("output line too long")
      );
    await eventually(async () => (await cuts()).length > 0, 10_000, "the cut to be logged");
    const [line, ...others] = await cuts();
    equal(others.length, 0);
    const entry = JSON.parse(line!);
    equal(entry.keptBytes, MAX_LINE_BYTES);
    equal(entry.droppedBytes, LONG_LINE_BYTES - MAX_LINE_BYTES);
    equal(entry.stream, "stdout");
    ok(Number.isInteger(entry.pid));
  });
  await client.close();
  await eventually(async () => (await fixture.instances()).length === 0, 10_000, "no instance");
});
