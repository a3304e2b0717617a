/**
 * Both servers behind a real Apache, then a real nginx, over TLS on 127.0.0.1:443, configured
 * with the shipped docs/apache.conf and docs/nginx.conf (only their ports, certificate and host
 * name substituted). Everything the test sends goes through the proxy, in the browser client's
 * order (reference §5): GET /session, the /client socket, then the Webots stream. The session
 * server polls the simulation server's /load through the proxy as well; it trusts the test
 * certificate through `DENO_CERT`, the test process through `Deno.createHttpClient`.
 *
 * Needs root (port 443), apache2, nginx and openssl.
 */
import { serverTest } from "../helpers/server_process.ts";
import { equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { NO_SERVER_AVAILABLE } from "../../shared/protocol.ts";
import { type ServerProcess, startServer } from "../helpers/server_process.ts";
import {
  eventually,
  isAlive,
  type SimulationFixture,
  startSimulationServer,
} from "../helpers/simulation_fixture.ts";
import { connect, type TestSocket } from "../helpers/ws_client.ts";
import { type ProxyKind, SHIPPED_PORTS } from "./proxy/configs.ts";
import {
  assertProxyPortFree,
  makeCertificate,
  type ProxyProcess,
  startProxy,
} from "./proxy/proxy_process.ts";

const MAX_CONNECTIONS = 2;

interface Reply {
  status: number;
  type: string | null;
  body: string;
}

async function readOrNothing(file: string): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch {
    return "";
  }
}

async function allGone(fixture: SimulationFixture): Promise<void> {
  const records = await fixture.records();
  ok(records.length > 0, "the stand-in Webots ran");
  for (const record of records) {
    for (const pid of [record.pid, ...record.childPids]) {
      await eventually(() => !isAlive(pid), 10_000, `process ${pid} to end`);
    }
  }
  await eventually(async () => (await fixture.instances()).length === 0, 10_000, "no instance");
}

Deno.test("the shipped proxy configs forward exactly ports 1999, 2000 and 2001-2100", () => {
  const rule = new RegExp(`^/(${SHIPPED_PORTS})/(.*)$`);
  for (let port = 1900; port <= 2200; port++) {
    equal(rule.test(`/${port}/x`), port >= 1999 && port <= 2100, `port ${port}`);
  }
  equal(rule.test("/12000/x"), false);
  equal(rule.test("/20001/x"), false);
});

async function throughProxy(t: Deno.TestContext, kind: ProxyKind): Promise<void> {
  assertProxyPortFree();
  const dir = await Deno.makeTempDir({ prefix: `proxy-test-${kind}-` });
  const { certFile, keyFile, cert } = await makeCertificate(dir);
  const http = Deno.createHttpClient({ caCerts: [cert] });
  const get = async (path: string): Promise<Reply> => {
    const response = await fetch(`https://localhost${path}`, { client: http });
    const body = await response.text();
    return { status: response.status, type: response.headers.get("content-type"), body };
  };
  // Something listening on a port the proxy must not forward to.
  let outsiderHits = 0;
  const outsider = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    outsiderHits++;
    return new Response("outsider");
  });
  // The flow's stages depend on each other: stop at the first failing one.
  const step = async (name: string, fn: () => Promise<void>) => {
    if (!(await t.step(name, fn))) throw new Error(`step failed: ${name}`);
  };
  const sockets: TestSocket[] = [];
  let simulation: SimulationFixture | undefined;
  let session: ServerProcess | undefined;
  let proxy: ProxyProcess | undefined;
  try {
    simulation = await startSimulationServer({
      config: { portRewrite: true },
      maxConnections: MAX_CONNECTIONS,
      worlds: { "robots/demo": { "demo.wbt": "#fake activity-every 100\n#fake children 1\n" } },
    });
    const simPort = simulation.server.port;
    session = await startServer("session", {
      port: 0,
      portRewrite: true,
      simulationServers: [`localhost/${simPort}`],
      loadRefresh: 0.2,
      logDir: join(dir, "log"),
    }, { dir, env: { DENO_CERT: certFile } });
    const sessionPort = session.port;
    const ports = [sessionPort, simPort];
    for (let i = 1; i <= MAX_CONNECTIONS; i++) ports.push(simPort + i);
    const outsiderPath = `/${outsider.addr.port}/`;
    proxy = await startProxy(kind, { ports, certFile, keyFile }, async () => {
      try {
        await get(outsiderPath);
        return true;
      } catch {
        return false;
      }
    });

    await step(
      "GET /<session port>/session answers wss://localhost/<simulation port> once /load is polled through the proxy",
      async () => {
        let reply: Reply | undefined;
        await eventually(
          async () => {
            reply = await get(`/${sessionPort}/session`);
            return reply.body !== NO_SERVER_AVAILABLE;
          },
          30_000,
          "the session server to see the simulation server through the proxy",
        );
        equal(reply?.status, 200);
        match(reply?.type ?? "", /^text\/html/);
        equal(reply?.body, `wss://localhost/${simPort}`);
        ok(
          (await proxy!.accessLog()).includes(`"GET /${simPort}/load HTTP/1.1" 200`),
          "the session server polled /load through the proxy",
        );
      },
    );

    await step("GET /<simulation port>/load answers the load", async () => {
      const reply = await get(`/${simPort}/load`);
      equal(reply.status, 200);
      ok(Number.isFinite(Number(reply.body)), `load: ${reply.body}`);
    });

    let streamPort = 0;
    let client: TestSocket | undefined;
    await step("the /client socket answers webots:wss://localhost/<port>", async () => {
      client = await connect(`wss://localhost/${simPort}/client`, 10_000, { client: http });
      sockets.push(client);
      const world = join(simulation!.projectsDir, "robots", "demo", "worlds", "demo.wbt");
      client.send(JSON.stringify({ start: { url: `file://${world}` } }));
      const reply = await client.waitFor((m) => m.startsWith("webots:"), 30_000);
      const found = /^webots:wss:\/\/localhost\/(\d+)$/.exec(reply);
      ok(found, `webots: reply ${reply}`);
      streamPort = Number(found[1]);
      ok(streamPort > simPort && streamPort <= simPort + MAX_CONNECTIONS);
      await client.waitFor((m) => m === ".");
    });

    let stream: TestSocket | undefined;
    await step("the stand-in Webots answers at wss://localhost/<port>/", async () => {
      stream = await connect(`wss://localhost/${streamPort}/`, 10_000, { client: http });
      sockets.push(stream);
      stream.send("x3d");
      await stream.waitFor((m) => m === "fake webots received: x3d");
    });

    await step("closing the sockets ends Webots and removes its instance folder", async () => {
      await stream?.close();
      await client?.close();
      await allGone(simulation!);
    });

    await step("a port outside the allowed set is refused by the proxy", async () => {
      const reply = await get(outsiderPath);
      equal(reply.status, 403);
      ok(!reply.body.includes("outsider"));
      equal(outsiderHits, 0);
    });
  } catch (error) {
    if (proxy) console.error(await proxy.output());
    if (session) {
      console.error(`session output:\n${session.output()}`);
      console.error(
        `session log:\n${await readOrNothing(join(dir, "log", "session", "output.log"))}`,
      );
    }
    if (simulation) {
      console.error(`simulation output:\n${simulation.server.output()}`);
      const log = join(simulation.logDir, "simulation", "output.log");
      console.error(`simulation log:\n${await readOrNothing(log)}`);
    }
    throw error;
  } finally {
    for (const socket of sockets) await socket.close();
    http.close();
    await proxy?.stop();
    await session?.stop();
    await simulation?.[Symbol.asyncDispose]();
    await outsider.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

serverTest(
  "through Apache on 443 with docs/apache.conf, a browser session runs end to end",
  async (t) => {
    await throughProxy(t, "apache");
  },
);

serverTest(
  "through nginx on 443 with docs/nginx.conf, a browser session runs end to end",
  async (t) => {
    await throughProxy(t, "nginx");
  },
);
