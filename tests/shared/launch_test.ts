import { equal, match } from "node:assert/strict";
import { isAlive } from "../helpers/simulation_fixture.ts";
import { join } from "node:path";
import { runLauncher, serverPid, serverTest, startServer } from "../helpers/server_process.ts";

Deno.test("--help prints usage and exits 0", async () => {
  const result = await runLauncher("session", ["--help"]);
  equal(result.code, 0);
  match(result.stdout, /^Usage: deno task session \[CONFIG\]/);
  match(result.stdout, /config\/session\/default\.json/);
});

Deno.test("more than one argument stops with the reference's message", async () => {
  const result = await runLauncher("simulation", ["a.json", "b.json"]);
  equal(result.code, 2);
  equal(result.stderr.trim(), "Too many arguments.");
});

Deno.test("a config error is one line naming the file and the key, exit status 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "bad.json");
    await Deno.writeTextFile(file, '{ "port": 1999, "simulationServers": [], "colour": "red" }');
    const result = await runLauncher("session", [file]);
    equal(result.code, 1);
    equal(result.stderr, `${file}: unknown key "colour"\n`);
    const missing = await runLauncher("session", [join(dir, "none.json")]);
    equal(missing.code, 1);
    equal(missing.stderr, `${join(dir, "none.json")}: cannot read the config file: no such file\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

serverTest(
  "a server whose launcher is killed hard shuts down instead of running orphaned",
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      for (
        const [server, config] of [
          ["session", { port: 0, simulationServers: ["127.0.0.1:9"], logDir: dir }],
          ["simulation", { port: 0, logDir: dir, instancesDir: join(dir, "instances") }],
        ] as const
      ) {
        const launched = await startServer(server, config, { dir });
        const pid = serverPid(launched.pid);
        Deno.kill(launched.pid, "SIGKILL");
        // Poll the server itself: the launcher's output only ends once the server has let go of it.
        const deadline = Date.now() + 10_000;
        while (isAlive(pid) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        const orphaned = isAlive(pid);
        if (orphaned) Deno.kill(pid, "SIGKILL");
        await launched.status;
        if (orphaned) throw new Error(`the ${server} server outlived its launcher`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
