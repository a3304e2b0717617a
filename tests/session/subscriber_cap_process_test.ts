/**
 * The session server under a small open-files limit (`prlimit --nofile`, as a systemd
 * `LimitNOFILE=` would set) with `maxSubscribers` as the README advises for it: it refuses
 * the next one with 503 and one log line, keeps polling and answering `/session`, and accepts
 * subscribers again once some leave. A stand-in simulation server on loopback.
 */
import assert from "node:assert/strict";
import { serverTest } from "../helpers/server_process.ts";
import { startFakeSimServer } from "../fakes/sim_server.ts";
import { eventually } from "../helpers/simulation_fixture.ts";
import { sample } from "../helpers/prometheus.ts";
import { advisedMaxSubscribers } from "../../session/subscriber_cap.ts";
import { get, startSession, subscribe, type Subscriber } from "./_helpers.ts";

const LIMIT = 320;

/** The status line a WebSocket handshake on `/` gets. */
async function upgradeStatus(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(
      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ));
    const buffer = new Uint8Array(1024);
    const n = await conn.read(buffer);
    return new TextDecoder().decode(buffer.subarray(0, n ?? 0)).split("\r\n")[0]!;
  } finally {
    conn.close();
  }
}

serverTest(
  "under a small open-files limit the subscribers stop below it and the server goes on serving",
  async (t) => {
    await using sim = startFakeSimServer({ load: 10 });
    // The cap the README advises for this limit and one simulation server.
    const cap = advisedMaxSubscribers(LIMIT, 1);
    const session = await startSession(
      { simulationServers: [sim.entry], loadRefresh: 0.3, maxSubscribers: cap },
      {},
      ["/usr/bin/prlimit", `--nofile=${LIMIT}:${LIMIT}`, "--"],
    );
    const subscribers: Subscriber[] = [];
    const url = session.baseUrl.replace("http", "ws") + "/";
    const lines = async (msg: string) =>
      (await session.logLines()).filter((line) => line.msg === msg).length;
    const atLimit =
      `subscribers at their limit (${cap}): new ones are refused with 503 until some leave`;
    try {
      await t.step(`${cap} subscribers are accepted and told the availability`, async () => {
        for (let i = 0; i < cap; i++) subscribers.push(subscribe(url));
        await Promise.all(subscribers.map((s) => s.opened));
        await Promise.all(subscribers.map((s) => s.lastIs("1")));
      });
      await t.step("the next one gets 503, logged once; polls and /session go on", async () => {
        assert.equal(await upgradeStatus(session.port), "HTTP/1.1 503 Service Unavailable");
        assert.equal(await upgradeStatus(session.port), "HTTP/1.1 503 Service Unavailable");
        await eventually(async () => (await lines(atLimit)) === 1, 5000, "the limit line");
        const before = sim.served().length;
        await eventually(() => sim.served().length >= before + 2, 5000, "two more polls");
        assert.equal((await get(`${session.baseUrl}/session`)).body, `ws://${sim.entry}`);
        const metrics = (await get(`${session.baseUrl}/metrics`)).body;
        assert.equal(
          sample(metrics, "webots_session_upgrades_refused_total", { reason: "capacity" }),
          2,
        );
        assert.equal(sample(metrics, "webots_session_subscribers"), cap);
      });
      await t.step("once one leaves, the next is accepted, logged once", async () => {
        const leaving = subscribers.pop()!;
        leaving.socket.close();
        await leaving.closed;
        await eventually(
          async () =>
            sample((await get(`${session.baseUrl}/metrics`)).body, "webots_session_subscribers") ===
              cap - 1,
          5000,
          "the departure seen",
        );
        const next = subscribe(url);
        subscribers.push(next);
        await next.opened;
        await eventually(async () => (await lines("subscribers accepted again")) === 1, 5000);
        assert.equal(await lines(atLimit), 1);
      });
    } finally {
      for (const s of subscribers) s.socket.close();
      await Promise.all(subscribers.map((s) => s.closed));
      await session.cleanup();
    }
  },
);
