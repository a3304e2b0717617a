/**
 * `allowedOrigins` on real server processes: a WebSocket upgrade from a page of another origin
 * gets 403 on the session server's `/` and the simulation server's `/client`, while one from an
 * allowed origin, or from a client that sends no `Origin`, works.
 */
import assert from "node:assert/strict";
import { serverTest } from "../helpers/server_process.ts";
import { eventually, startFile, startSimulationServer } from "../helpers/simulation_fixture.ts";
import { connect } from "../helpers/ws_client.ts";
import { startFakeSimServer } from "../fakes/sim_server.ts";
import { startSession } from "../session/_helpers.ts";

const ALLOWED = "https://robots.example.test";
const OTHER = "https://elsewhere.example.test";

/** Sends a WebSocket opening handshake with `origin` and returns the answer's status line. */
async function handshakeStatus(url: string, origin: string): Promise<string> {
  const { hostname, port, pathname } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    await conn.write(new TextEncoder().encode(
      `GET ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: ${origin}\r\n\r\n`,
    ));
    let head = "";
    const buffer = new Uint8Array(4096);
    while (!head.includes("\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      head += new TextDecoder().decode(buffer.subarray(0, n));
    }
    return head.split("\r\n")[0]!;
  } finally {
    conn.close();
  }
}

serverTest(
  "session server: an upgrade of / from another origin gets 403, an allowed one is fed",
  async () => {
    await using sim = startFakeSimServer({ load: 10 });
    const session = await startSession({
      simulationServers: [sim.entry],
      allowedOrigins: [ALLOWED],
    });
    try {
      const url = `ws://127.0.0.1:${session.port}/`;
      assert.equal(await handshakeStatus(url, OTHER), "HTTP/1.1 403 Forbidden");
      const allowed = await connect(
        url,
        10_000,
        { headers: { origin: ALLOWED } } as WebSocketOptions,
      );
      assert.equal(await allowed.waitFor((m) => m === "1"), "1");
      await allowed.close();
      const noOrigin = await connect(url);
      assert.equal(await noOrigin.waitFor((m) => m === "1"), "1");
      await noOrigin.close();
      const refusedLines = async () =>
        (await session.logLines()).filter((l) =>
          l.msg === "WebSocket refused: origin not in allowedOrigins"
        );
      await eventually(async () => (await refusedLines()).length > 0, 10_000, "the log line");
      const refused = await refusedLines();
      assert.equal(refused.length, 1);
      assert.equal(refused[0]?.origin, OTHER);
    } finally {
      await session.cleanup();
    }
  },
);

serverTest(
  "simulation server: /client from another origin gets 403, an allowed one runs a simulation",
  async () => {
    await using fixture = await startSimulationServer({ config: { allowedOrigins: [ALLOWED] } });
    assert.equal(await handshakeStatus(fixture.clientUrl, OTHER), "HTTP/1.1 403 Forbidden");
    assert.deepEqual(await fixture.records(), [], "no Webots was started for it");
    const client = await connect(fixture.clientUrl, 10_000, {
      headers: { origin: ALLOWED },
    } as WebSocketOptions);
    client.send(startFile(fixture, "robots/demo", "demo.wbt"));
    assert.match(
      await client.waitFor((m) => m.startsWith("webots:")),
      /^webots:ws:\/\/127\.0\.0\.1:\d+$/,
    );
    await client.close();
    const refusedLines = async () =>
      (await Deno.readTextFile(`${fixture.logDir}/simulation/output.log`)).split("\n")
        .filter((l) => l.includes("origin not in allowedOrigins"));
    await eventually(async () => (await refusedLines()).length > 0, 10_000, "the log line");
    const refused = await refusedLines();
    assert.equal(refused.length, 1);
    assert.equal(JSON.parse(refused[0]!).origin, OTHER);
  },
);
