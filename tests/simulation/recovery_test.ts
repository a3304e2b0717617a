/**
 * What happens when processes die hard: the server, or the launcher in front of it.
 */
import { serverTest } from "../helpers/server_process.ts";
import { deepEqual, equal, ok } from "node:assert/strict";
import { basename, join } from "node:path";
import { connect } from "../helpers/ws_client.ts";
import { serverPid } from "../helpers/server_process.ts";
import {
  eventually,
  isAlive,
  type SimulationFixture,
  startFile,
  startSimulationServer,
} from "../helpers/simulation_fixture.ts";
import { allEnd, type EscapingRecord, killAll, stranger } from "../helpers/run_marker.ts";

serverTest(
  "after a server is killed hard, the next start ends its Webots and removes its folder and record, and nothing else",
  async () => {
    const shared = await Deno.makeTempDir({ prefix: "recovery-" });
    const serverDir = join(shared, "server");
    const instancesDir = join(shared, "instances");
    const foreign = join(instancesDir, "not-ours");
    const survivors: number[] = [];
    try {
      await Deno.mkdir(foreign, { recursive: true });
      await Deno.mkdir(serverDir);
      await Deno.writeTextFile(join(foreign, "keep.txt"), "someone else's");
      const worlds = { p: { "w.wbt": "#fake children 1\n#fake activity-every 3600000\n" } };
      let port: number;
      let webotsPids: number[];
      {
        await using first = await startSimulationServer({
          config: { instancesDir },
          worlds,
          dir: serverDir,
        });
        port = first.server.port;
        const client = await connect(first.clientUrl);
        client.send(startFile(first, "p", "w.wbt"));
        await client.waitFor((m) => m.startsWith("webots:"));
        const [record] = await first.records();
        ok(record);
        webotsPids = [record.pid, ...record.childPids];
        survivors.push(...webotsPids);
        Deno.kill(serverPid(first.server.pid), "SIGKILL");
        await first.server.status;
        await client.closed;
      }
      for (const pid of webotsPids) ok(isAlive(pid), `Webots ${pid} outlived its server`);
      equal((await dirNames(instancesDir)).length, 2);
      equal((await dirNames(join(instancesDir, ".webots-runs"), true)).length, 1);

      // The same server again: same port, same config file.
      await using second = await startSimulationServer({
        config: { instancesDir, port },
        worlds,
        dir: serverDir,
      });
      for (const pid of webotsPids) {
        await eventually(() => !isAlive(pid), 10_000, `leftover Webots ${pid} to end`);
      }
      deepEqual(await dirNames(instancesDir), ["not-ours"]);
      deepEqual(await dirNames(join(instancesDir, ".webots-runs"), true), []);
      equal(await Deno.readTextFile(join(foreign, "keep.txt")), "someone else's");
      const log = await Deno.readTextFile(join(second.logDir, "simulation", "output.log"));
      const line = log.split("\n").findLast((l) => l.includes('"msg":"Cleaned up leftovers'));
      ok(line, log);
      const cleaned = JSON.parse(line);
      deepEqual(cleaned.killed, [webotsPids[0]]);
      deepEqual(cleaned.gone, []);
      // Webots and its controller carry the run's marker.
      deepEqual(cleaned.ended.sort(), [...webotsPids].sort());
      equal(cleaned.removedFolders, 1);
    } finally {
      for (const pid of survivors) {
        if (isAlive(pid)) Deno.kill(pid, "SIGKILL");
      }
      await Deno.remove(shared, { recursive: true });
    }
  },
);

serverTest(
  "a launcher killed hard takes its server down, which stops its Webots first",
  async () => {
    await using fixture = await startSimulationServer({
      worlds: { p: { "w.wbt": "#fake children 1\n" } },
    });
    const client = await connect(fixture.clientUrl);
    client.send(startFile(fixture, "p", "w.wbt"));
    await client.waitFor((m) => m.startsWith("webots:"));
    const server = serverPid(fixture.server.pid);
    const [record] = await fixture.records();
    ok(record);
    Deno.kill(fixture.server.pid, "SIGKILL");
    await fixture.server.status;
    equal((await client.closed).code, 1001);
    await eventually(() => !isAlive(server), 10_000, "the server to exit");
    for (const pid of [record.pid, ...record.childPids]) {
      await eventually(() => !isAlive(pid), 10_000, `Webots ${pid} to end`);
    }
    equal((await fixture.instances()).length, 0);
  },
);

serverTest(
  "after the server and its Webots are killed hard, the restart ends the escaped children that ignore SIGTERM, and nothing else",
  async () => {
    const shared = await Deno.makeTempDir({ prefix: "recovery-escaped-" });
    const instancesDir = join(shared, "instances");
    const leftovers: number[] = [];
    try {
      await Deno.mkdir(join(shared, "a"), { recursive: true });
      await Deno.mkdir(join(shared, "b"));
      const config = { instancesDir, killTimeout: 1 };
      const escaping = "#fake escaped-children 2\n#fake escaped-ignore-term\n#fake children 1\n" +
        "#fake activity-every 3600000\n";
      // A second server on the same instancesDir (other port and config), with its own escapes.
      await using other = await startSimulationServer({
        config,
        worlds: { p: { "w.wbt": "#fake escaped-children 1\n#fake activity-every 3600000\n" } },
        dir: join(shared, "b"),
      });
      const theirs = await startRun(other);
      const theirPids = [theirs.record.pid, ...theirs.record.escapedPids];
      leftovers.push(...theirPids);
      await using unrelated = stranger();
      await using otherMarker = stranger({ WEBOTS_SERVER_RUN: "0123456789abcdef0123456789abcdef" });
      await using recycled = stranger();

      let port: number;
      let ours: EscapingRecord;
      let reusedFolder: string;
      {
        await using first = await startSimulationServer({
          config,
          worlds: { p: { "w.wbt": escaping } },
          dir: join(shared, "a"),
        });
        port = first.server.port;
        ours = (await startRun(first)).record;
        leftovers.push(ours.pid, ...ours.childPids, ...ours.escapedPids);
        // A record of the older layout (no marker) whose pid now belongs to a stranger.
        // The other server's record is in the same folder: take ours, by its marker.
        const record = (await runRecordFiles(instancesDir))
          .find((r) => r.marker === ours.env.WEBOTS_SERVER_RUN);
        ok(record);
        reusedFolder = join(instancesDir, "reused");
        await Deno.mkdir(reusedFolder);
        await Deno.writeTextFile(
          join(instancesDir, ".webots-runs", "reused.json"),
          JSON.stringify({
            owner: record.owner,
            instanceDir: reusedFolder,
            pid: recycled.pid,
            startTime: "1",
            bootId: record.bootId,
          }),
        );
        Deno.kill(serverPid(first.server.pid), "SIGKILL");
        await first.server.status;
      }
      // Webots dies too: its controllers live on, in a group and sessions without a leader.
      Deno.kill(ours.pid, "SIGKILL");
      await eventually(() => !isAlive(ours.pid), 10_000, "Webots to die");
      const escaped = [...ours.childPids, ...ours.escapedPids];
      for (const pid of escaped) ok(isAlive(pid), `${pid} outlived its server and Webots`);

      await using second = await startSimulationServer({
        config: { ...config, port },
        worlds: { p: { "w.wbt": escaping } },
        dir: join(shared, "a"),
      });
      await allEnd(escaped);
      for (const pid of [unrelated.pid, otherMarker.pid, recycled.pid, ...theirPids]) {
        ok(isAlive(pid), `${pid} was killed`);
      }
      // Only the other server's run is left: its record and its folder.
      const left = await runRecordFiles(instancesDir);
      deepEqual(left.map((r) => r.marker), [theirs.record.env.WEBOTS_SERVER_RUN]);
      deepEqual(await dirNames(instancesDir), [basename(left[0].instanceDir)]);
      const log = await Deno.readTextFile(join(second.logDir, "simulation", "output.log"));
      const line = log.split("\n").findLast((l) => l.includes("Cleaned up leftovers"));
      ok(line, log);
      const cleaned = JSON.parse(line);
      deepEqual(cleaned.killed, []);
      deepEqual(cleaned.gone.sort(), [ours.pid, recycled.pid].sort());
      deepEqual(cleaned.ended.sort(), [...escaped].sort());
      equal(cleaned.removedFolders, 2);
      await theirs.client.close();
      await allEnd(theirPids);
    } finally {
      killAll(leftovers);
      await Deno.remove(shared, { recursive: true });
    }
  },
);

/** Starts the world `p/w.wbt` on `fixture`; resolves with the client and the stand-in's record. */
async function startRun(fixture: SimulationFixture) {
  const client = await connect(fixture.clientUrl);
  client.send(startFile(fixture, "p", "w.wbt"));
  await client.waitFor((m) => m.startsWith("webots:"));
  const [record] = await fixture.records() as unknown as EscapingRecord[];
  ok(record, "the stand-in wrote its record");
  return { client, record };
}

/** The run records in `<instancesDir>/.webots-runs/`, parsed. */
async function runRecordFiles(instancesDir: string) {
  const folder = join(instancesDir, ".webots-runs");
  const records = [];
  for (const name of await dirNames(folder, true)) {
    records.push(JSON.parse(await Deno.readTextFile(join(folder, name))));
  }
  return records;
}

/** Folder names in `dir` (hidden ones left out), or file names with `files`. */
async function dirNames(dir: string, files = false): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (files ? entry.isFile : entry.isDirectory && !entry.name.startsWith(".")) {
      names.push(entry.name);
    }
  }
  return names.sort();
}
