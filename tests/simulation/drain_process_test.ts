/**
 * Drain and the admin API with real processes over loopback: the simulation server started
 * through the launcher with the stand-in Webots, browsers on real WebSockets, real signals, and
 * (last test) a real session server in front of a draining simulation server.
 */
import assert from "node:assert/strict";
import { serverTest } from "../helpers/server_process.ts";
import {
  eventually,
  isAlive,
  type SimulationFixture,
  startFile,
  startSimulationServer,
} from "../helpers/simulation_fixture.ts";
import { connect, type TestSocket } from "../helpers/ws_client.ts";
import { get, startSession } from "../session/_helpers.ts";

const TOKEN = "admin-token-for-tests-0123456789";
const AUTH = { authorization: `Bearer ${TOKEN}` };
const WORLD = "#VRML_SIM R2021b utf8\n#fake modes real-time\n";

async function startFixture(config: Record<string, unknown>): Promise<SimulationFixture> {
  return await startSimulationServer({
    // Current clients: they understand shutdownTimeout:.
    config: { clientProtocol: "r2023", adminToken: TOKEN, ...config },
    worlds: { "robots/demo": { "demo.wbt": WORLD } },
  });
}

/** A browser with a running simulation; returns its socket and the Webots pid. */
async function runningBrowser(f: SimulationFixture): Promise<{ ws: TestSocket; pid: number }> {
  const ws = await connect(f.clientUrl);
  ws.send(startFile(f, "robots/demo", "demo.wbt"));
  await ws.waitFor((m) => m.startsWith("webots:"));
  const [record] = await f.records();
  return { ws, pid: record!.pid };
}

async function admin(f: SimulationFixture, method: string, path: string) {
  const response = await fetch(`${f.server.baseUrl}${path}`, { method, headers: AUTH });
  return { status: response.status, body: await response.json() };
}

/** The pid of the simulation server itself (the launcher's only child). */
function serverPidOf(f: SimulationFixture): number {
  const children = Deno.readTextFileSync(`/proc/${f.server.pid}/task/${f.server.pid}/children`)
    .trim().split(/\s+/).filter(Boolean).map(Number);
  assert.equal(children.length, 1);
  return children[0]!;
}

serverTest(
  "SIGTERM with drainTimeout: /ready 503, /load 100, new starts refused, shutdownTimeout: to the running client, ended at the deadline, everything released, exit 0",
  async (t) => {
    await using f = await startFixture({ drainTimeout: 3 });
    const { ws, pid } = await runningBrowser(f);
    const base = f.server.baseUrl;
    assert.equal((await get(`${base}/ready`)).status, 200);
    const began = Date.now();
    Deno.kill(f.server.pid, "SIGTERM");

    await t.step("the running client is told the deadline", async () => {
      assert.equal(await ws.waitFor((m) => m.startsWith("shutdownTimeout:")), "shutdownTimeout: 3");
    });
    await t.step("/ready 503 draining, /load 100 with x-webots-state: draining", async () => {
      const ready = await get(`${base}/ready`);
      assert.deepEqual([ready.status, ready.body], [503, "draining\n"]);
      const load = await get(`${base}/load`);
      assert.deepEqual([load.status, load.body, load.headers.get("x-webots-state")], [
        200,
        "100",
        "draining",
      ]);
      const metrics = (await get(`${base}/metrics`)).body;
      assert.match(metrics, /^webots_simulation_draining 1$/m);
    });
    await t.step("a new start gets error: and a close", async () => {
      const late = await connect(f.clientUrl);
      late.send(startFile(f, "robots/demo", "demo.wbt"));
      assert.equal(
        await late.waitFor((m) => m.startsWith("error:")),
        "error: the server is draining: no new simulations",
      );
      assert.equal((await late.closed).code, 1013);
      assert.equal((await f.records()).length, 1, "no second Webots");
    });
    await t.step(
      "at the deadline: error:, close, Webots gone, folder removed, exit 0",
      async () => {
        assert.equal(
          await ws.waitFor((m) => m.startsWith("error:"), 10_000),
          "error: the server is shutting down: simulation ended",
        );
        const closed = await ws.closed;
        assert.equal(closed.code, 1000);
        assert.ok(Date.now() - began >= 2_500, `ended after ${Date.now() - began} ms`);
        const status = await f.server.status;
        assert.equal(status.code, 0);
        assert.equal(isAlive(pid), false);
        assert.deepEqual(await f.instances(), []);
      },
    );
  },
);

serverTest(
  "a second SIGTERM during a drain ends everything at once, with the clean-up",
  async () => {
    await using f = await startFixture({ drainTimeout: 600 });
    const { ws, pid } = await runningBrowser(f);
    const server = serverPidOf(f);
    Deno.kill(f.server.pid, "SIGTERM");
    await ws.waitFor((m) => m === "shutdownTimeout: 600");
    assert.equal((await get(`${f.server.baseUrl}/ready`)).status, 503);
    const began = Date.now();
    // To the server itself: the launcher forwards each signal, but two in a row are what is tested.
    Deno.kill(server, "SIGTERM");
    const status = await f.server.status;
    assert.equal(status.code, 0);
    assert.ok(Date.now() - began < 10_000);
    assert.equal((await ws.closed).code, 1001);
    assert.equal(isAlive(pid), false);
    assert.deepEqual(await f.instances(), []);
  },
);

serverTest(
  "without drainTimeout SIGTERM ends running simulations at once (as before)",
  async () => {
    await using f = await startFixture({});
    const { ws, pid } = await runningBrowser(f);
    Deno.kill(f.server.pid, "SIGTERM");
    assert.equal((await f.server.status).code, 0);
    assert.equal((await ws.closed).code, 1001);
    assert.ok(!ws.messages.some((m) => m.startsWith("shutdownTimeout:")));
    assert.equal(isAlive(pid), false);
    assert.deepEqual(await f.instances(), []);
  },
);

serverTest(
  "admin API over HTTP: sessions listed, drain and undrain, DELETE ends one session cleanly",
  async (t) => {
    await using f = await startFixture({ drainTimeout: 600 });
    const base = f.server.baseUrl;
    const { ws, pid } = await runningBrowser(f);

    await t.step("without the token: 401; GET /admin/sessions lists the session", async () => {
      const refused = await fetch(`${base}/admin/sessions`);
      await refused.body?.cancel();
      assert.equal(refused.status, 401);
      const { status, body } = await admin(f, "GET", "/admin/sessions");
      assert.equal(status, 200);
      assert.equal(body.draining, false);
      assert.equal(body.sessions.length, 1);
      const [s] = body.sessions;
      assert.equal(s.address, "127.0.0.1");
      assert.equal(s.state, "running");
      assert.equal(s.release, "R2021b");
      assert.match(s.world, /demo\.wbt$/);
      assert.equal(s.port, f.server.port + 1);
      assert.equal(s.idle, 0, "real-time: not idle");
      assert.equal(typeof s.age, "number");
    });
    await t.step("POST /admin/drain: /ready 503, /load 100; undrain: back to normal", async () => {
      const drained = await admin(f, "POST", "/admin/drain");
      assert.equal(drained.status, 200);
      assert.equal(drained.body.draining, true);
      assert.ok(drained.body.remaining > 590);
      assert.equal(
        await ws.waitFor((m) => m.startsWith("shutdownTimeout:")),
        "shutdownTimeout: 600",
      );
      assert.equal((await get(`${base}/ready`)).status, 503);
      assert.equal((await get(`${base}/load`)).body, "100");
      const undrained = await admin(f, "POST", "/admin/undrain");
      assert.deepEqual(undrained, { status: 200, body: { draining: false, remaining: null } });
      assert.equal((await get(`${base}/ready`)).status, 200);
      const load = await get(`${base}/load`);
      assert.notEqual(load.headers.get("x-webots-state"), "draining");
      const again = await admin(f, "POST", "/admin/undrain");
      assert.equal(again.status, 409);
      assert.equal(again.body.error, "not draining");
    });
    await t.step("wrong methods: 405; an unknown admin path: 404", async () => {
      const status = async (method: string, path: string) => {
        const response = await fetch(`${base}${path}`, { method, headers: AUTH });
        await response.body?.cancel();
        return response.status;
      };
      assert.equal(await status("GET", "/admin/drain"), 405);
      assert.equal(await status("POST", "/admin/sessions"), 405);
      assert.equal(await status("GET", "/admin/sessions/c1"), 405);
      assert.equal(await status("GET", "/admin/nothing"), 404);
    });
    await t.step(
      "DELETE an unknown id: 404; the session's id: error:, close, released",
      async () => {
        assert.equal((await admin(f, "DELETE", "/admin/sessions/nope")).status, 404);
        const { body } = await admin(f, "GET", "/admin/sessions");
        const id = body.sessions[0].id;
        const ended = await admin(f, "DELETE", `/admin/sessions/${id}`);
        assert.deepEqual(ended, { status: 200, body: { ended: id } });
        assert.equal(
          await ws.waitFor((m) => m.startsWith("error:")),
          "error: ended by the server's administrator",
        );
        const closed = await ws.closed;
        assert.deepEqual([closed.code, closed.reason], [1000, "ended by an administrator"]);
        assert.equal(isAlive(pid), false);
        assert.deepEqual(await f.instances(), []);
        await eventually(
          async () => (await admin(f, "GET", "/admin/sessions")).body.sessions.length === 0,
          5_000,
          "the session to leave the list",
        );
        const metrics = (await get(`${base}/metrics`)).body;
        assert.match(metrics, /^webots_simulation_sessions_ended_total\{reason="admin"\} 1$/m);
      },
    );
  },
);

serverTest(
  "a session server shows a draining simulation server as draining and never hands it out",
  async () => {
    await using f = await startFixture({ drainTimeout: 600 });
    assert.equal((await admin(f, "POST", "/admin/drain")).status, 200);
    const entry = `127.0.0.1:${f.server.port}`;
    const session = await startSession({ simulationServers: [entry] });
    try {
      await eventually(
        async () => {
          const data = JSON.parse((await get(`${session.baseUrl}/monitor/data`)).body);
          return data.servers?.[0]?.state === "draining";
        },
        10_000,
        "the session server's monitor to show draining",
      );
      const answer = await get(`${session.baseUrl}/session`);
      assert.equal(answer.body, "Error: no simulation server available at the moment.");
      const metrics = (await get(`${session.baseUrl}/metrics`)).body;
      const line = (state: string) =>
        new RegExp(
          `^webots_session_simulation_server_state\\{server="${entry}",state="${state}"\\} (\\d)$`,
          "m",
        );
      assert.equal(metrics.match(line("draining"))?.[1], "1");
      assert.equal(metrics.match(line("full"))?.[1], "0");
      const logged = await session.logLines();
      assert.ok(
        !logged.some((l) => /maximum load/i.test(JSON.stringify(l))),
        "no 'reached maximum load' for a drain",
      );
    } finally {
      await session.cleanup();
    }
  },
);

serverTest(
  "the stock R2021b client sequence is unchanged with drainTimeout, idleTimeout, maxSessionsPerAddress and adminToken set",
  async () => {
    await using f = await startSimulationServer({
      config: { drainTimeout: 600, idleTimeout: 600, maxSessionsPerAddress: 1, adminToken: TOKEN },
      worlds: {
        "robots/demo": { "demo.wbt": "#VRML_SIM R2021b utf8\n#fake activity-every 100\n" },
      },
    });
    const session = await startSession({ simulationServers: [`127.0.0.1:${f.server.port}`] });
    try {
      // The session server polls at start; its first answer may not be in yet.
      let answer = await get(`${session.baseUrl}/session`);
      await eventually(
        async () => {
          answer = await get(`${session.baseUrl}/session`);
          return !answer.body.startsWith("Error:");
        },
        10_000,
        "the first poll",
      );
      assert.equal(answer.body, `ws://127.0.0.1:${f.server.port}`);
      const ws = await connect(`${answer.body}/client`);
      ws.send(
        '{ "init" : [ "https://robotbenchmark.net", "robots/demo", "demo.wbt", "", "", "", "", "", "" ] }',
      );
      const url = await ws.waitFor((m) => m.startsWith("webots:"));
      assert.equal(url, `webots:ws://127.0.0.1:${f.server.port + 1}`);
      await ws.waitFor((m) => m === ".");
      await ws.close();
      assert.deepEqual(
        [...new Set(ws.messages)].sort(),
        [".", url],
        "only what the R2021b client knows",
      );
      await eventually(async () => (await f.instances()).length === 0, 10_000, "the clean-up");
    } finally {
      await session.cleanup();
    }
  },
);
