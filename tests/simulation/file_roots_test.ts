/**
 * `fileRoots` with the real server process: the launcher grants read access to each root, and
 * worlds from any root start; symlinks out of a root and paths outside every root are refused.
 */
import { deepEqual, equal, match } from "node:assert/strict";
import { join } from "node:path";
import { serverTest } from "../helpers/server_process.ts";
import { connect } from "../helpers/ws_client.ts";
import { eventually, startSimulationServer, writeProject } from "../helpers/simulation_fixture.ts";

const OUTSIDE = "error: The world file must lie in the projects folder of this server";

serverTest(
  "a file:// world under a second root starts; outside every root it is refused",
  async (t) => {
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "file-roots-test-" }));
    try {
      // A second root outside the server's other folders, as `$WEBOTS_HOME/projects` would be.
      const samples = join(dir, "webots", "projects");
      await writeProject(join(samples, "robots", "nao"), {
        "nao_room.wbt": "#VRML_SIM R2021b utf8\n",
      });
      await writeProject(join(dir, "outside"), { "w.wbt": "#VRML_SIM R2021b utf8\n" });
      await Deno.symlink(join(dir, "outside"), join(samples, "escape"));
      await using fixture = await startSimulationServer({
        dir,
        config: { fileRoots: [join(dir, "projects"), samples] },
      });
      const start = (path: string) => JSON.stringify({ start: { url: `file://${path}` } });

      await t.step("a world of the second root runs", async () => {
        const client = await connect(fixture.clientUrl);
        client.send(start(join(samples, "robots", "nao", "worlds", "nao_room.wbt")));
        match(
          await client.waitFor((m) => m.startsWith("webots:") || m.startsWith("error:")),
          /^webots:ws:\/\/127\.0\.0\.1:\d+$/,
        );
        const [record] = await fixture.records();
        match(record!.args[record!.args.length - 1]!, /\/nao\/worlds\/nao_room\.wbt$/);
        await client.close();
        await eventually(
          async () => (await fixture.instances()).length === 0,
          10_000,
          "no instance",
        );
      });

      await t.step("a world of the first root still runs", async () => {
        const client = await connect(fixture.clientUrl);
        client.send(start(join(fixture.projectsDir, "robots", "demo", "worlds", "demo.wbt")));
        match(
          await client.waitFor((m) => m.startsWith("webots:") || m.startsWith("error:")),
          /^webots:/,
        );
        await client.close();
      });

      await t.step(
        "a symlink from a root to outside, and a path outside every root, are refused",
        async () => {
          for (
            const path of [
              join(samples, "escape", "worlds", "w.wbt"),
              join(dir, "outside", "worlds", "w.wbt"),
            ]
          ) {
            const client = await connect(fixture.clientUrl);
            client.send(start(path));
            equal(
              await client.waitFor((m) => m.startsWith("error:") || m.startsWith("webots:")),
              OUTSIDE,
            );
            await client.close();
          }
        },
      );
      await eventually(async () => (await fixture.instances()).length === 0, 10_000, "no instance");
      deepEqual(await fixture.instances(), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
