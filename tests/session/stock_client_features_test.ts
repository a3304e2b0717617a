/**
 * Issue 10's promise to stock clients, end to end with real processes: the reference browser
 * sequence (`GET /session` from the page, alert on `Error:`, else a WebSocket on the answer +
 * `/client`, the start message on open; /work/shared/reference §5) runs a simulation unchanged with
 * every feature turned on that needs no help from the client: slot leases (required), the
 * hysteresis band, the load window, drain and idle limits, the per-address limit, allowed origins,
 * the admin API, metrics, the heartbeat.
 */
import assert from "node:assert/strict";
import { serverTest } from "../helpers/server_process.ts";
import {
  eventually,
  isAlive,
  startFile,
  startSimulationServer,
} from "../helpers/simulation_fixture.ts";
import { connect } from "../helpers/ws_client.ts";
import { startSession } from "./_helpers.ts";

const SECRET = "stock-client-lease-secret-41d9";
const ADMIN = "stock-client-admin-token-8c2e";
const PAGE = "http://webots-page.example";

serverTest(
  "a stock client runs a simulation unchanged with every server-side feature of issue 10 on",
  async (t) => {
    await using fixture = await startSimulationServer({
      worlds: { "robots/demo": { "demo.wbt": "#VRML_SIM R2021b utf8\n#fake activity-every 50\n" } },
      config: {
        leaseSecret: SECRET,
        requireLease: true,
        leaseTimeout: 30,
        drainTimeout: 30,
        idleTimeout: 600,
        maxSessionsPerAddress: 2,
        allowedOrigins: [PAGE],
        adminToken: ADMIN,
        loadWindow: 5,
        heartbeatTimeout: 30,
      },
    });
    const entry = `127.0.0.1:${fixture.server.port}`;
    const simulationUrl = `http://${entry}`;
    const session = await startSession({
      simulationServers: [entry],
      leaseSecret: SECRET,
      fullAt: 99,
      availableAt: 90,
      allowedOrigins: [PAGE],
      adminToken: ADMIN,
      heartbeatTimeout: 30,
    });
    try {
      await eventually(
        async () => (await (await fetch(`${session.baseUrl}/ready`)).text()).startsWith("ready"),
        20_000,
        "session server ready",
      );
      await t.step(
        "the reference sequence runs: GET /session, <answer>/client, webots:, .",
        async () => {
          let answer = "";
          await eventually(
            async () => {
              const response = await fetch(`${session.baseUrl}/session`, {
                headers: { origin: PAGE },
              });
              assert.equal(response.headers.get("access-control-allow-origin"), PAGE);
              answer = await response.text();
              return !answer.startsWith("Error:");
            },
            20_000,
            "a server handed out",
          );
          assert.match(answer, /^ws:\/\/127\.0\.0\.1:\d+\/lease\/[A-Za-z0-9_-]+$/);
          const client = await connect(answer + "/client", 10_000, { headers: { origin: PAGE } });
          client.send(startFile(fixture, "robots/demo", "demo.wbt"));
          await client.waitFor(() => client.messages.filter((m) => m === ".").length >= 3);
          assert.match(client.messages[0]!, /^webots:ws:\/\/127\.0\.0\.1:\d+$/);
          assert.deepEqual(client.messages.slice(1), client.messages.slice(1).map(() => "."));
          // The operator sees it: admin API and metrics.
          const listed = await fetch(`${simulationUrl}/admin/sessions`, {
            headers: { authorization: `Bearer ${ADMIN}` },
          });
          assert.equal(listed.status, 200);
          const listing = JSON.stringify(await listed.json());
          assert.ok(listing.includes("demo.wbt"), listing);
          const metrics = await (await fetch(`${simulationUrl}/metrics`)).text();
          assert.match(metrics, /^webots_simulation_leases_used_total 1$/m);
          const [record] = await fixture.records();
          assert.ok(record);
          await client.close();
          await eventually(() => !isAlive(record.pid), 10_000, "Webots ended");
          await eventually(
            async () => (await fixture.instances()).length === 0,
            10_000,
            "no folder",
          );
        },
      );
    } finally {
      await session.cleanup();
    }
  },
);
