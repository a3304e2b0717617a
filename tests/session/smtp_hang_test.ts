/**
 * A mail server that accepts the connection and never says a word: the session server's e-mail
 * gives up after its timeout with one log line, while polling, transitions and `/session` go on
 * and shutdown is not held up. The real session server, a stand-in simulation server and a
 * silent TCP listener on loopback.
 */
import assert from "node:assert/strict";
import { serverTest } from "../helpers/server_process.ts";
import { startFakeSimServer } from "../fakes/sim_server.ts";
import { eventually } from "../helpers/simulation_fixture.ts";
import { get, startSession } from "./_helpers.ts";

const ADMIN = "admin@example.test";

/** Accepts TCP connections and holds them, silent, until closed. */
function silentSmtp() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  let accepted = 0;
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        accepted++;
        conns.push(conn);
      }
    } catch {
      // Closed.
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    accepted: () => accepted,
    async close() {
      listener.close();
      await accepting;
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // The client closed it.
        }
      }
    },
  };
}

serverTest(
  "a silent SMTP server costs one log line per e-mail and never holds up polling or /session",
  async (t) => {
    const smtp = silentSmtp();
    await using sim = startFakeSimServer({ load: 10 });
    const session = await startSession({
      simulationServers: [sim.entry],
      loadRefresh: 0.2,
      loadTimeout: 0.5,
      administrator: ADMIN,
      mailServer: "127.0.0.1",
      mailServerPort: smtp.port,
      mailSender: "sessions@example.test",
    });
    try {
      const lines = () => session.logLines();
      const mailErrors = async () =>
        (await lines()).filter((l) => l.msg === `Error: unable to send email to ${ADMIN}`);
      await eventually(async () =>
        (await get(`${session.baseUrl}/session`)).body.startsWith("ws://")
      );
      await t.step("a transition is e-mailed: the SMTP server holds the connection", async () => {
        sim.setLoad("garbage");
        await eventually(() => smtp.accepted() === 1, 5000, "the e-mail connection");
      });
      await t.step("meanwhile polling goes on and /session answers at once", async () => {
        sim.setLoad(20);
        const before = sim.served().length;
        const slowest = [];
        for (let i = 0; i < 30; i++) {
          const began = performance.now();
          const answer = await get(`${session.baseUrl}/session`);
          slowest.push(performance.now() - began);
          assert.equal(answer.status, 200);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assert.ok(Math.max(...slowest) < 100, `slowest /session ${Math.max(...slowest)} ms`);
        assert.ok(sim.served().length - before >= 5, "polls went on");
        // The server came back: that transition is logged (and e-mailed) too.
        const back = (await lines()).filter((l) => String(l.msg).includes("up and running again"));
        assert.equal(back.length, 1);
      });
      await t.step("each e-mail gives up after the timeout with exactly one log line", async () => {
        await eventually(async () => (await mailErrors()).length === 2, 15_000, "two mail errors");
        const errors = await mailErrors();
        assert.deepEqual(errors.map((e) => e.subject), [
          "Simulation server not responding",
          "Simulation server working again",
        ]);
        // nodemailer's greeting and socket timers are both MAIL_TIMEOUT_MS: whichever fires first
        // names the reason.
        for (const error of errors) {
          assert.match(String(error.reason), /^(Greeting never received|Timeout)$/);
        }
        assert.equal((await lines()).filter((l) => l.level === 50).length, 2);
      });
      await t.step(
        "shutdown with an e-mail still hanging waits for its timeout at most",
        async () => {
          const errors = (await mailErrors()).length;
          sim.setLoad("garbage");
          await eventually(() => smtp.accepted() === 3, 5000, "the third e-mail connection");
          const began = performance.now();
          const status = await session.stop();
          const took = performance.now() - began;
          assert.equal(status.code, 0);
          assert.ok(took < 6000, `shutdown took ${took} ms`);
          assert.equal((await mailErrors()).length, errors + 1);
        },
      );
    } finally {
      await session.cleanup();
      await smtp.close();
    }
  },
);
