/**
 * `sandbox: "firejail"`: Webots itself runs in firejail, confined to its instance folder.
 */
import { serverTest } from "../helpers/server_process.ts";
import { match } from "node:assert/strict";
import { join } from "node:path";
import { connect } from "../helpers/ws_client.ts";
import {
  eventually,
  isAlive,
  startFile,
  startSimulationServer,
} from "../helpers/simulation_fixture.ts";

const FIREJAIL = "/usr/bin/firejail";
const hasFirejail = await Deno.stat(FIREJAIL).then(() => true, () => false);

serverTest({
  name: "in the firejail sandbox Webots can write its instance folder and nothing outside it",
  ignore: !hasFirejail,
  async fn() {
    const outside = await Deno.makeTempDir({ prefix: "outside-sandbox-" });
    try {
      await using fixture = await startSimulationServer({
        config: { sandbox: "firejail", debug: true },
        worlds: {
          p: {
            "w.wbt": `#fake try-write ${join(outside, "escape.txt")}\n#fake try-write inside.txt\n`,
          },
        },
      });
      const client = await connect(fixture.clientUrl);
      client.send(startFile(fixture, "p", "w.wbt"));
      await client.waitFor((m) => m.startsWith("webots:"), 20_000);
      await eventually(
        () => /try-write inside\.txt (ok|denied)/.test(fixture.server.output()),
        10_000,
        "the stand-in's write reports",
      );
      const output = fixture.server.output();
      match(output, new RegExp(`try-write ${join(outside, "escape.txt")} denied`));
      match(output, /try-write inside\.txt ok/);
      // The stand-in cannot reach its record folder from inside the sandbox: take the pid of the
      // sandbox (firejail, the process-group leader) from the server's log.
      const started = output.match(/"pid":(\d+),"port":\d+,"msg":"Webots started"/);
      if (!started) throw new Error(`no "Webots started" line in:\n${output}`);
      const pid = Number(started[1]);
      await client.close();
      await eventually(() => !isAlive(pid), 15_000, "the sandboxed Webots to end");
      await eventually(async () => (await fixture.instances()).length === 0, 15_000);
      await Deno.stat(join(outside, "escape.txt")).then(
        () => {
          throw new Error("the sandboxed Webots wrote outside its folder");
        },
        () => {},
      );
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  },
});
