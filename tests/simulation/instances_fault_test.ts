/**
 * An instances folder that cannot be written (read-only, or full) refuses new simulations with a
 * clear `error:`, leaves nothing behind, logs one line for any number of refused browsers, and
 * never disturbs a simulation already running; once it can be written again, simulations start
 * again and the log says so. The real simulation server, its instances folder a small tmpfs
 * (root only).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { serverTest } from "../helpers/server_process.ts";
import { eventually, startFile, startSimulationServer } from "../helpers/simulation_fixture.ts";
import { fill, mountTmpfs, remount, tmpfsUnavailable, unmount } from "../helpers/tmpfs.ts";
import { connect } from "../helpers/ws_client.ts";

const unavailable = await tmpfsUnavailable();
if (unavailable) console.error(`instances folder fault tests skipped: ${unavailable}`);

/** Every file and folder under `dir`, relative, sorted. */
async function tree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(join(dir, prefix))) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    out.push(path);
    if (entry.isDirectory) out.push(...await tree(dir, path));
  }
  return out.sort();
}

async function logEntries(logDir: string): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(join(logDir, "simulation", "output.log"));
  return text.trim().split("\n").map((line) => JSON.parse(line));
}

const REFUSED = "error: this server cannot store a simulation at the moment " +
  "(its instances folder is not writable)";

for (const fault of ["read-only", "full"] as const) {
  serverTest({
    name: `a ${fault} instances folder refuses new simulations clearly, once in the log, ` +
      "and leaves running ones alone",
    ignore: unavailable !== undefined,
    fn: async (t) => {
      const dir = await Deno.makeTempDir({ prefix: "instances-fault-test-" });
      const instancesDir = join(dir, "instances");
      await Deno.mkdir(instancesDir);
      await mountTmpfs(instancesDir, 1024 * 1024);
      try {
        await using fixture = await startSimulationServer({
          dir,
          worlds: { p: { "w.wbt": "#fake activity-every 100\n" } },
        });
        const running = await connect(fixture.clientUrl);
        running.send(startFile(fixture, "p", "w.wbt"));
        await running.waitFor((m) => m.startsWith("webots:"));
        const before = await tree(instancesDir);
        let filler = "";
        await t.step(
          `with the folder ${fault}, three browsers each get a clear error:`,
          async () => {
            if (fault === "full") filler = await fill(instancesDir);
            else await remount(instancesDir, "ro");
            for (let i = 0; i < 3; i++) {
              const refused = await connect(fixture.clientUrl);
              refused.send(startFile(fixture, "p", "w.wbt"));
              assert.equal(await refused.waitFor((m) => m.startsWith("error:")), REFUSED);
              await refused.closed;
            }
          },
        );
        await t.step("nothing of theirs is left in the instances folder", async () => {
          const after = (await tree(instancesDir)).filter((p) => p !== "filler");
          assert.deepEqual(after, before);
        });
        await t.step("the running simulation goes on", async () => {
          const seen = running.messages.length;
          await running.waitFor((m) => m === "." && running.messages.length > seen);
          assert.equal(running.socket.readyState, WebSocket.OPEN);
        });
        await t.step("one error line in the log for the three", async () => {
          const errors = (await logEntries(fixture.logDir)).filter((e) => e.level === 50);
          assert.equal(errors.length, 1, JSON.stringify(errors));
          assert.match(
            String(errors[0]!.msg),
            new RegExp(
              `^Cannot create simulation folders in ${instancesDir}: .*` +
                (fault === "full" ? "No space left on device" : "Read-only file system") +
                ".*; new simulations are refused until it works again$",
              "i",
            ),
          );
        });
        await t.step("once writable again, a simulation starts and the log says so", async () => {
          if (fault === "full") await Deno.remove(filler);
          else await remount(instancesDir, "rw");
          const next = await connect(fixture.clientUrl);
          next.send(startFile(fixture, "p", "w.wbt"));
          await next.waitFor((m) => m.startsWith("webots:"));
          await next.close();
          const infos = (await logEntries(fixture.logDir)).filter((e) =>
            e.msg === "Simulation folders can be created again"
          );
          assert.equal(infos.length, 1);
        });
        await running.close();
        await eventually(async () => (await fixture.instances()).length === 0);
      } finally {
        await unmount(instancesDir).catch(() => {});
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    },
  });
}
