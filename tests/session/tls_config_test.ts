/**
 * TLS, port-rewrite URL forms, config errors and the log file, against the real server.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, runLauncher } from "../helpers/server_process.ts";
import { startFakeSimServer } from "../fakes/sim_server.ts";
import { get, makeCertificate, startSession, subscribe, unsubscribe, waitFor } from "./_helpers.ts";

Deno.test("with a certificate the server speaks HTTPS and WSS and hands out wss URLs", async () => {
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
  let subscriber;
  try {
    assert.match(session.output(), /Session server running on port \d+ \(SSL\)/);
    await waitFor("a wss answer", async () => {
      const { body } = await get(`${base}/session`, { client });
      return body === `wss://${sim.entry}` ? body : undefined;
    });
    const monitor = await get(`${base}/monitor`, { client });
    assert.ok(monitor.body.includes(`<a href="https://${sim.entry}/monitor">`));
    subscriber = subscribe(`wss://localhost:${session.port}/`, client);
    await subscriber.messageCount(1);
    assert.deepEqual(subscriber.messages, ["1"]);
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    if (subscriber) await unsubscribe(subscriber);
    await session.cleanup();
    client.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with portRewrite the monitor links use https://host/port", async () => {
  const session = await startSession({
    simulationServers: ["127.0.0.1/2000"],
    portRewrite: true,
    loadTimeout: 0.2,
  });
  try {
    const page = (await get(`${session.baseUrl}/monitor`)).body;
    assert.ok(page.includes(`<a href="https://127.0.0.1/2000/monitor">127.0.0.1/2000</a>`));
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await session.cleanup();
  }
});

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

Deno.test("without debug the log goes to <logDir>/session/output.log", async () => {
  const dead = `127.0.0.1:${freePort()}`;
  const session = await startSession({ simulationServers: [dead], debug: false });
  try {
    const lines = await waitFor("the not-responding line", async () => {
      const all = await session.logLines();
      return all.some((l) => l.entry === dead) ? all : undefined;
    });
    assert.ok(
      lines.some((l) => l.msg === `Session server running on port ${session.port} (no SSL)`),
    );
    const line = lines.find((l) => l.entry === dead)!;
    assert.equal(line.msg, `${dead} simulation server is not responding (assuming 100% load)`);
    assert.equal(line.server, "session");
    assert.ok(!session.output().includes("not responding"), "nothing logged on stdout");
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await session.cleanup();
  }
});
