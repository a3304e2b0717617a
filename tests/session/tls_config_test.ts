/**
 * TLS, config errors and the log file, against the real server process. The URL forms that SSL
 * and portRewrite give are tested in-process in server_test.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runLauncher } from "../helpers/server_process.ts";
import { startFakeSimServer } from "../fakes/sim_server.ts";
import { get, makeCertificate, startSession, subscribe, unsubscribe } from "./_helpers.ts";
import { serverTest } from "../helpers/server_process.ts";

serverTest(
  "with a certificate the server speaks HTTPS and WSS and hands out wss URLs",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "session-tls-" });
    const { cert, key, certFile, keyFile } = await makeCertificate(dir);
    await using sim = startFakeSimServer({ load: 5, tls: { cert, key } });
    const client = Deno.createHttpClient({ caCerts: [cert] });
    // The server polls https://<entry>/load; DENO_CERT makes it trust the test certificate.
    const session = await startSession({
      simulationServers: [sim.entry],
      sslCertificate: certFile,
      sslKey: keyFile,
    }, { DENO_CERT: certFile });
    const base = `https://localhost:${session.port}`;
    const subscriber = subscribe(`wss://localhost:${session.port}/`, client);
    try {
      assert.match(session.output(), /Session server running on port \d+ \(SSL\)/);
      // "1" arrives once the https poll of the simulation server has been answered.
      await subscriber.lastIs("1");
      assert.equal((await get(`${base}/session`, { client })).body, `wss://${sim.entry}`);
      const monitor = await get(`${base}/monitor`, { client });
      assert.ok(monitor.body.includes(`<a href="https://${sim.entry}/monitor">`));
    } catch (error) {
      console.error(session.output());
      throw error;
    } finally {
      await unsubscribe(subscriber);
      await session.cleanup();
      client.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("config errors exit non-zero with one line naming the file and the key", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "session-config-" });
  try {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["unknown key", { simulationServers: ["a:1"], colour: "red" }, /unknown key "colour"/],
      ["wrong type", { simulationServers: ["a:1"], port: "1999" }, /key "port" must be an integer/],
      ["missing simulationServers", { port: 1999 }, /missing required key "simulationServers"/],
    ];
    for (const [name, config, expected] of cases) {
      await t.step(name, async () => {
        const file = join(dir, `${name.replaceAll(" ", "_")}.json`);
        await Deno.writeTextFile(file, JSON.stringify(config));
        const { code, stderr } = await runLauncher("session", [file]);
        assert.notEqual(code, 0);
        const lines = stderr.split("\n").filter((l) => l.trim() && !l.includes("experimental"));
        assert.equal(lines.length, 1, stderr);
        assert.ok(lines[0]!.includes(file), lines[0]!);
        assert.match(lines[0]!, expected);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

serverTest("without debug the log goes to <logDir>/session/output.log, not to stdout", async () => {
  await using sim = startFakeSimServer({ load: 10 });
  const session = await startSession({ simulationServers: [sim.entry], debug: false });
  try {
    const status = await session.stop("SIGTERM");
    assert.equal(status.code, 0);
    const lines = await session.logLines();
    const messages = lines.map((l) => l.msg);
    assert.ok(messages.includes(`Session server running on port ${session.port} (no SSL)`));
    assert.deepEqual(messages.slice(-2), ["shutting down", "stopped"]);
    assert.ok(lines.every((l) => l.server === "session"));
    assert.ok(!session.output().includes('"msg"'), "no log line on stdout");
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await session.cleanup();
  }
});
