/**
 * What happens when processes die hard: the server, or the launcher in front of it.
 */
import { serverTest } from "../helpers/server_process.ts";
import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { connect } from "../helpers/ws_client.ts";
import { serverPid } from "../helpers/server_process.ts";
import {
  eventually,
  isAlive,
  startFile,
  startSimulationServer,
} from "../helpers/simulation_fixture.ts";

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
      ok(log.includes('"msg":"Cleaned up leftovers of a previous run"'));
      ok(log.includes(`"killed":[${webotsPids[0]}],"gone":[],"removedFolders":1`), log);
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
