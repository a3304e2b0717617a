/**
 * What each generation of the stock browser client sees from the real server process (launcher,
 * stand-in Webots, real WebSockets): the R2021b client exactly `webots:` and `.`, the current
 * client `loading:` steps, `shutdownTimeout:` and `webots:`, and the `timeout` limit ending a
 * simulation with nothing left behind.
 */
import { serverTest } from "../helpers/server_process.ts";
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { strToU8, zipSync } from "fflate";
import { startFileServer, zipResponse } from "../fakes/http_files.ts";
import { connect, type TestSocket } from "../helpers/ws_client.ts";
import {
  eventually,
  isAlive,
  type SimulationFixture,
  startFile,
  startSimulationServer,
} from "../helpers/simulation_fixture.ts";

const WORLD = "#VRML_SIM R2021b utf8\n#fake activity-every 50\n";
const WEBOTS_URL = /^webots:ws:\/\/127\.0\.0\.1:\d+$/;

// Laid out like a GitHub archive: one top folder <repo>-<ref>/.
const ARCHIVE = zipSync({
  "robots-main": {
    "projects": { "demo": { "worlds": { "arm.wbt": strToU8(WORLD) } } },
    // Some bulk, so that the download has more than one chunk to report.
    "data.bin": crypto.getRandomValues(new Uint8Array(60_000)),
  },
}, { level: 0 });
const GITHUB_URL = "https://github.com/cyberbotics/robots/blob/main/projects/demo/worlds/arm.wbt";

/** Every Webots the stand-in ran is gone, and so are the instance folders and run records. */
async function nothingLeft(fixture: SimulationFixture) {
  for (const record of await fixture.records()) {
    for (const pid of [record.pid, ...record.childPids]) {
      await eventually(() => !isAlive(pid), 10_000, `process ${pid} to end`);
    }
  }
  await eventually(async () => (await fixture.instances()).length === 0, 10_000, "no instance");
  await eventually(
    async () => {
      try {
        const runs = join(fixture.instancesDir, ".webots-runs");
        return (await Array.fromAsync(Deno.readDir(runs))).length === 0;
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return true;
        throw error;
      }
    },
    10_000,
    "no run record",
  );
}

/** Waits for `count` activity dots after `webots:`, then checks the whole sequence. */
async function assertOldClientSequence(client: TestSocket, count: number) {
  await client.waitFor(() => client.messages.filter((m) => m === ".").length >= count);
  match(client.messages[0]!, WEBOTS_URL);
  deepEqual(client.messages.slice(1), client.messages.slice(1).map(() => "."));
}

serverTest(
  "an R2021b-style client sees exactly webots: then . , even with a time limit configured",
  async (t) => {
    await using fixture = await startSimulationServer({
      worlds: { "robots/demo": { "demo.wbt": WORLD } },
      config: { timeout: 3600 },
    });
    await t.step("start with a file:// world", async () => {
      const client = await connect(fixture.clientUrl);
      client.send(startFile(fixture, "robots/demo", "demo.wbt"));
      await assertOldClientSequence(client, 3);
      await client.close();
    });
    await t.step("init", async () => {
      const client = await connect(fixture.clientUrl);
      client.send(JSON.stringify({
        init: ["http://localhost", "robots/demo", "demo.wbt", "", "", "", "", "", ""],
      }));
      await assertOldClientSequence(client, 3);
      await client.close();
    });
    await nothingLeft(fixture);
  },
);

serverTest(
  "a current client (GitHub blob URL) sees loading: steps, shutdownTimeout:, then webots:",
  async () => {
    await using github = await startFileServer((request) =>
      request.path === "/cyberbotics/robots/zip/main"
        ? zipResponse(ARCHIVE)
        : new Response("Not Found", { status: 404 })
    );
    await using fixture = await startSimulationServer({
      config: { githubArchiveBase: github.base, timeout: 3600 },
    });
    const client = await connect(fixture.clientUrl);
    client.send(JSON.stringify({ start: { url: GITHUB_URL } }));
    await client.waitFor((m) => m.startsWith("webots:"));
    const ready = client.messages.findIndex((m) => m.startsWith("webots:"));
    const before = client.messages.slice(0, ready);
    const downloads = before.filter((m) => m.startsWith("loading: downloading "));
    ok(downloads.length >= 1, JSON.stringify(before));
    for (const line of downloads) {
      match(line, /^loading: downloading cyberbotics\/robots@main \((\d|[1-9]\d|100)%\)$/);
    }
    // Each download line names a new whole percent, in increasing order, ending at 100 %.
    const percents = downloads.map((m) => Number(/\((\d+)%\)/.exec(m)![1]));
    deepEqual(percents, [...new Set(percents)].sort((a, b) => a - b));
    equal(percents.at(-1), 100);
    // As the 2023 Cyberbotics server does, shutdownTimeout: follows the spawn, before webots:.
    deepEqual(before.slice(downloads.length), [
      "loading: unpacking",
      "loading: starting Webots R2021b",
      "shutdownTimeout: 3600",
    ]);
    match(client.messages[ready]!, WEBOTS_URL);
    await client.close();
    await nothingLeft(fixture);
  },
);

serverTest(
  "timeout: the simulation ends at the limit and nothing is left behind",
  async (t) => {
    await using fixture = await startSimulationServer({
      worlds: { "robots/demo": { "demo.wbt": WORLD } },
      config: { timeout: 1 },
    });
    await t.step(
      "an R2021b client's socket closes at the limit, without a line it does not know",
      async () => {
        const client = await connect(fixture.clientUrl);
        client.send(startFile(fixture, "robots/demo", "demo.wbt"));
        const closed = await client.closed;
        equal(closed.code, 1000);
        match(client.messages[0]!, WEBOTS_URL);
        ok(!client.messages.some((m) => m.startsWith("error:") || m.startsWith("shutdown")));
        await nothingLeft(fixture);
      },
    );
  },
);

serverTest(
  "timeout with clientProtocol r2023: shutdownTimeout: 1, webots:, error: at the limit, nothing left",
  async () => {
    await using fixture = await startSimulationServer({
      worlds: { "robots/demo": { "demo.wbt": WORLD } },
      config: { timeout: 1, clientProtocol: "r2023" },
    });
    const client = await connect(fixture.clientUrl);
    const sent = Date.now();
    client.send(startFile(fixture, "robots/demo", "demo.wbt"));
    const closed = await client.closed;
    const elapsed = Date.now() - sent;
    equal(closed.code, 1000);
    ok(elapsed >= 1000, `closed after ${elapsed} ms`);
    const ready = client.messages.findIndex((m) => m.startsWith("webots:"));
    deepEqual(client.messages.slice(0, ready), [
      "loading: copying project",
      "loading: starting Webots R2021b",
      "shutdownTimeout: 1",
    ]);
    match(client.messages[ready]!, WEBOTS_URL);
    equal(client.messages.at(-1), "error: time limit of 1 s reached");
    deepEqual(
      client.messages.slice(ready + 1, -1),
      client.messages.slice(ready + 1, -1).map(() => "."),
    );
    await nothingLeft(fixture);
  },
);
