/**
 * E-mail notifications, against a real SMTP server on loopback.
 */
import assert from "node:assert/strict";
import { freePort } from "../helpers/server_process.ts";
import { startFakeSimServer } from "../fakes/sim_server.ts";
import { startFakeSmtpServer } from "../fakes/smtp_server.ts";
import { makeCertificate, startSession, waitFor, waitForSession } from "./_helpers.ts";
import { NO_SERVER_AVAILABLE } from "../../shared/protocol.ts";

const ADMIN = "admin@example.test";
const SENDER = "sessions@example.test";

Deno.test("transitions are e-mailed with the reference's subjects and bodies", async () => {
  const smtp = await startFakeSmtpServer();
  await using sim = startFakeSimServer({ load: 10 });
  const session = await startSession({
    simulationServers: [sim.entry],
    administrator: ADMIN,
    mailServer: "127.0.0.1",
    mailServerPort: smtp.port,
    mailSender: SENDER,
  });
  try {
    await waitForSession(session.baseUrl, `ws://${sim.entry}`);
    sim.setLoad(99.5);
    await smtp.waitForMails(1);
    sim.setLoad(20);
    await smtp.waitForMails(2);
    await sim.stop();
    await smtp.waitForMails(3);
    sim.start();
    const mails = await smtp.waitForMails(4);
    const check = `Check it at http://localhost:${session.port}/monitor\n\n-Simulation Server`;
    const e = sim.entry;
    assert.deepEqual(mails.map((m) => [m.subject, m.body.trimEnd()]), [
      [
        "Simulation server reached maximum load",
        `Hello,\n\n${e} simulation server has reached maximum load (99.5%).\n${check}`,
      ],
      [
        "Simulation server available again",
        `Hello,\n\n${e} simulation server is available again (load = 20.0%).\n${check}`,
      ],
      [
        "Simulation server not responding",
        `Hello,\n\n${e} simulation server may be down, as it is not responding to the requests of the session server...\n${check}`,
      ],
      [
        "Simulation server working again",
        `Hello,\n\n${e} simulation server is up and running again (load = 20.0%).\n${check}`,
      ],
    ]);
    for (const mail of mails) {
      assert.equal(mail.from, `Simulation Server <${SENDER}>`);
      assert.equal(mail.to, `Administrator <${ADMIN}>`);
      assert.deepEqual(mail.rcptTo, [ADMIN]);
      assert.equal(mail.mailFrom, SENDER);
    }
    const lines = await session.logLines();
    const transition = lines.find((l) =>
      l.msg === `${e} simulation server has reached maximum load (99.5%)`
    );
    assert.deepEqual([transition?.entry, transition?.load], [e, 99.5]);
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await session.cleanup();
    await smtp.close();
  }
});

Deno.test("with a password the e-mail goes over STARTTLS with a login", async () => {
  const dir = await Deno.makeTempDir({ prefix: "session-mail-tls-" });
  const { cert, key, certFile } = await makeCertificate(dir);
  const smtp = await startFakeSmtpServer({ tls: { cert, key } });
  const dead = `127.0.0.1:${freePort()}`;
  // DENO_CERT makes the server process trust the test certificate (node:tls in Deno honours it).
  const session = await startSession({
    simulationServers: [dead],
    administrator: ADMIN,
    mailServer: "127.0.0.1",
    mailServerPort: smtp.port,
    mailSender: SENDER,
    mailSenderUser: "robot",
    mailSenderPassword: "s3cret",
  }, { DENO_CERT: certFile });
  try {
    const [mail] = await smtp.waitForMails(1);
    assert.equal(mail!.subject, "Simulation server not responding");
    assert.equal(mail!.secure, true);
    assert.equal(mail!.user, "robot");
    assert.equal(mail!.password, "s3cret");
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await session.cleanup();
    await smtp.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a mail server that refuses connections is logged and polling goes on", async () => {
  await using sim = startFakeSimServer({ load: 10 });
  const session = await startSession({
    simulationServers: [sim.entry],
    administrator: ADMIN,
    mailServer: "127.0.0.1",
    mailServerPort: freePort(),
    mailSender: SENDER,
  });
  try {
    await waitForSession(session.baseUrl, `ws://${sim.entry}`);
    sim.setLoad(100);
    await waitForSession(session.baseUrl, NO_SERVER_AVAILABLE);
    sim.setLoad(30);
    await waitForSession(session.baseUrl, `ws://${sim.entry}`);
    const errors = await waitFor("two mail errors in the log", async () => {
      const found = (await session.logLines()).filter((l) =>
        l.msg === `Error: unable to send email to ${ADMIN}`
      );
      return found.length >= 2 ? found : undefined;
    });
    assert.equal(errors[0]!.level, 50);
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await session.cleanup();
  }
});

Deno.test("an administrator without mail server or sender disables e-mails with the reference message", async () => {
  for (
    const [missing, extra] of [["server", { mailSender: SENDER }], ["sender", {
      mailServer: "127.0.0.1",
    }]] as const
  ) {
    const session = await startSession({
      simulationServers: [`127.0.0.1:${freePort()}`],
      administrator: ADMIN,
      ...extra,
    });
    try {
      const line = await waitFor(
        "the sanity message",
        async () =>
          (await session.logLines()).find((l) =>
            l.msg ===
              `No mail ${missing} defined in configuration, disabling e-mail notifications to ${ADMIN}.`
          ),
      );
      assert.ok(line);
    } catch (error) {
      console.error(session.output());
      throw error;
    } finally {
      await session.cleanup();
    }
  }
});
