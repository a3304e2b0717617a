/**
 * Every descendant of a Webots run ends with it, also those that left Webots' process group and
 * session (a daemonising controller, a `roslaunch`), and nothing else does: real servers, the
 * stand-in Webots with `#fake escaped-children`, strangers started by the test.
 */
import { serverTest } from "../helpers/server_process.ts";
import { deepEqual, equal, ok } from "node:assert/strict";
import { connect } from "../helpers/ws_client.ts";
import {
  eventually,
  isAlive,
  startFile,
  startSimulationServer,
} from "../helpers/simulation_fixture.ts";
import {
  allEnd,
  type EscapingRecord,
  killAll,
  markedPids,
  recordedMarkers,
  stranger,
} from "../helpers/run_marker.ts";
import type { SimulationFixture } from "../helpers/simulation_fixture.ts";

const FIREJAIL = "/usr/bin/firejail";
const hasFirejail = await Deno.stat(FIREJAIL).then(() => true, () => false);

/** Starts `world` of project `p` on `fixture`; resolves with the client and the stand-in's record. */
async function startRun(fixture: SimulationFixture) {
  const client = await connect(fixture.clientUrl);
  client.send(startFile(fixture, "p", "w.wbt"));
  await client.waitFor((m) => m.startsWith("webots:"));
  const [record] = await fixture.records() as unknown as EscapingRecord[];
  ok(record, "the stand-in wrote its record");
  return { client, record };
}

serverTest(
  "a browser leaving ends Webots' escaped children, also those ignoring SIGTERM, and nothing else",
  async () => {
    const leftovers: number[] = [];
    try {
      await using other = await startSimulationServer({
        worlds: { p: { "w.wbt": "#fake escaped-children 1\n#fake activity-every 3600000\n" } },
      });
      await using fixture = await startSimulationServer({
        config: { killTimeout: 1 },
        worlds: {
          p: {
            "w.wbt":
              "#fake escaped-children 2\n#fake escaped-ignore-term\n#fake children 1\n#fake activity-every 3600000\n",
          },
        },
      });
      await using unrelated = stranger();
      await using otherMarker = stranger({ WEBOTS_SERVER_RUN: "0123456789abcdef0123456789abcdef" });
      const theirs = await startRun(other);
      const ours = await startRun(fixture);
      const theirPids = [theirs.record.pid, ...theirs.record.escapedPids];
      const ourPids = [ours.record.pid, ...ours.record.childPids, ...ours.record.escapedPids];
      leftovers.push(...theirPids, ...ourPids);
      equal(ours.record.escapedPids.length, 2);
      for (const pid of ourPids) ok(isAlive(pid), `${pid} runs`);
      // They left Webots' process group and session, and are found by the marker alone.
      const marker = ours.record.env.WEBOTS_SERVER_RUN!;
      deepEqual(await recordedMarkers(fixture.instancesDir), [marker]);
      deepEqual(markedPids(marker), [...ourPids].sort((a, b) => a - b));

      const started = performance.now();
      await ours.client.close();
      await allEnd(ourPids);
      const ms = performance.now() - started;
      // They ignore SIGTERM: only SIGKILL, after killTimeout, ended them.
      ok(ms >= 1000, `ended after ${ms} ms`);
      await eventually(async () => (await fixture.instances()).length === 0, 10_000, "no folder");

      for (const pid of [unrelated.pid, otherMarker.pid, ...theirPids]) {
        ok(isAlive(pid), `${pid} was killed`);
      }
      await theirs.client.close();
      await allEnd(theirPids);
      ok(isAlive(unrelated.pid) && isAlive(otherMarker.pid));
    } finally {
      killAll(leftovers);
    }
  },
);

serverTest("Webots exiting by itself ends its escaped children", async () => {
  const leftovers: number[] = [];
  try {
    await using fixture = await startSimulationServer({
      worlds: { p: { "w.wbt": "#fake escaped-children 2\n#fake crash-after 500\n" } },
    });
    const { client, record } = await startRun(fixture);
    leftovers.push(...record.escapedPids);
    for (const pid of record.escapedPids) ok(isAlive(pid), `${pid} runs`);
    equal(await client.waitFor((m) => m.startsWith("error:")), "error: Webots exited (code 1)");
    await client.closed;
    await allEnd([record.pid, ...record.escapedPids]);
    deepEqual(markedPids(record.env.WEBOTS_SERVER_RUN!), []);
  } finally {
    killAll(leftovers);
  }
});

serverTest({
  name:
    "in the firejail sandbox too, a browser leaving ends every process carrying the run's marker",
  ignore: !hasFirejail,
  async fn() {
    let marked: number[] = [];
    try {
      await using fixture = await startSimulationServer({
        config: { sandbox: "firejail", killTimeout: 1 },
        worlds: { p: { "w.wbt": "#fake escaped-children 2\n#fake escaped-ignore-term\n" } },
      });
      const client = await connect(fixture.clientUrl);
      client.send(startFile(fixture, "p", "w.wbt"));
      await client.waitFor((m) => m.startsWith("webots:"), 20_000);
      const [marker] = await recordedMarkers(fixture.instancesDir);
      ok(marker);
      // Jailed, the stand-in cannot write its record: the marker in /proc says which are its.
      // firejail passes the environment on: firejail itself, the stand-in and its two children.
      await eventually(() => markedPids(marker).length >= 4, 10_000, "the jailed processes");
      marked = markedPids(marker);
      await client.close();
      await allEnd(marked);
      deepEqual(markedPids(marker), []);
    } finally {
      killAll(marked);
    }
  },
});

serverTest("a Webots that never gets ready is ended with its escaped children", async () => {
  const leftovers: number[] = [];
  try {
    await using fixture = await startSimulationServer({
      config: { startTimeout: 0.5 },
      worlds: { p: { "w.wbt": "#fake escaped-children 2\n#fake never-ready\n" } },
    });
    const client = await connect(fixture.clientUrl);
    client.send(startFile(fixture, "p", "w.wbt"));
    await eventually(async () => (await fixture.records()).length === 1, 10_000, "a record");
    const [record] = await fixture.records() as unknown as EscapingRecord[];
    leftovers.push(record!.pid, ...record!.escapedPids);
    equal(
      await client.waitFor((m) => m.startsWith("error:")),
      "error: Webots did not get ready within 0.5 s",
    );
    await allEnd(leftovers);
  } finally {
    killAll(leftovers);
  }
});

serverTest("a server shutting down ends its runs' escaped children first", async () => {
  const leftovers: number[] = [];
  try {
    await using fixture = await startSimulationServer({
      config: { killTimeout: 0.5 },
      worlds: { p: { "w.wbt": "#fake escaped-children 2\n#fake escaped-ignore-term\n" } },
    });
    const { record } = await startRun(fixture);
    leftovers.push(record.pid, ...record.escapedPids);
    const status = await fixture.server.stop("SIGTERM");
    equal(status.code, 0);
    // Gone by the time the server has exited: ended, not orphaned.
    for (const pid of leftovers) ok(!isAlive(pid), `${pid} outlived the server`);
  } finally {
    killAll(leftovers);
  }
});
