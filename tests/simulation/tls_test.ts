/**
 * The simulation server serving HTTPS and WSS itself, with a certificate made by openssl.
 */
import { serverTest } from "../helpers/server_process.ts";
import { equal, match } from "node:assert/strict";
import { join } from "node:path";
import { makeCertificate } from "../helpers/cert.ts";
import { connect } from "../helpers/ws_client.ts";
import { eventually, startSimulationServer } from "../helpers/simulation_fixture.ts";

serverTest(
  "with a certificate the server speaks HTTPS and WSS and Webots streams with ssl",
  async () => {
    const certDir = await Deno.makeTempDir();
    try {
      const { certFile: cert, keyFile: key } = await makeCertificate(certDir);
      await using fixture = await startSimulationServer({
        config: { sslCertificate: cert, sslKey: key },
      });
      match(fixture.server.output(), /Simulation server running on port \d+ \(SSL\)/);
      using client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(cert)] });
      const load = await fetch(`https://localhost:${fixture.server.port}/load`, { client });
      equal(load.status, 200);
      await load.body?.cancel();
      const socket = await connect(`wss://localhost:${fixture.server.port}/client`, 10_000, {
        client,
      });
      const url = `file://${join(fixture.projectsDir, "robots/demo/worlds/demo.wbt")}`;
      socket.send(JSON.stringify({ start: { url } }));
      const reply = await socket.waitFor((m) => m.startsWith("webots:"));
      match(reply, /^webots:wss:\/\/localhost:\d+$/);
      const [record] = await fixture.records();
      match(record!.args.find((a) => a.startsWith("--stream="))!, /;ssl"$/);
      await socket.close();
      await eventually(async () => (await fixture.instances()).length === 0);
    } finally {
      await Deno.remove(certDir, { recursive: true });
    }
  },
);

serverTest("a config with only one of sslCertificate and sslKey is refused at start", async () => {
  await startSimulationServer({ config: { sslCertificate: "/nonexistent/cert.pem" } }).then(
    () => {
      throw new Error("the server started");
    },
    (error: Error) => match(error.message, /key "sslCertificate" needs key "sslKey" as well/),
  );
});
