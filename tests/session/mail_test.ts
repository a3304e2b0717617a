/**
 * E-mail notifications through the real SMTP mailer (nodemailer) and a real SMTP server on
 * loopback: in-process for what goes over the wire, and once through the real server process for
 * STARTTLS with a login. Which transitions are e-mailed, and when, is tested in-process with a
 * fake mailer in server_test.ts.
 */
import assert from "node:assert/strict";
import { sessionSchema } from "../../session/config.ts";
import { createNotifier, createSmtpMailer, mailAddresses } from "../../session/notify.ts";
import { validateConfig } from "../../shared/config.ts";
import { freePort } from "../helpers/server_process.ts";
import { startFakeSmtpServer } from "../fakes/smtp_server.ts";
import { recordingLogger } from "./_fakes.ts";
import { makeCertificate, startSession } from "./_helpers.ts";
import { serverTest } from "../helpers/server_process.ts";

const ADMIN = "admin@example.test";
const SENDER = "sessions@example.test";
const CHECK = "http://sessions.test:1999/monitor";

/** A validated session config with `raw` added to one simulation server. */
function configOf(raw: Record<string, unknown>) {
  return validateConfig(
    sessionSchema,
    { simulationServers: ["sim.test:2000"], ...raw },
    "test.json",
    { root: "/srv", vars: {}, tmpDir: "/tmp" },
  );
}

/** The notifier main.ts builds for `config`, logging to `logger`. */
function smtpNotifier(config: ReturnType<typeof configOf>, logger = recordingLogger()) {
  const addresses = mailAddresses(config, logger);
  assert.ok(addresses, "mail is configured");
  return createNotifier({
    logger,
    mail: { ...addresses, mailer: createSmtpMailer(config) },
    checkUrl: () => CHECK,
  });
}

Deno.test("a transition reaches the SMTP server with the reference's envelope, headers and body", async () => {
  const smtp = await startFakeSmtpServer();
  try {
    const notifier = smtpNotifier(configOf({
      administrator: ADMIN,
      mailServer: "127.0.0.1",
      mailServerPort: smtp.port,
      mailSender: SENDER,
    }));
    notifier.notify({ kind: "full", entry: "sim.test:2000", load: 99.5 });
    await notifier.idle();
    const [mail, ...more] = await smtp.waitForMails(1);
    assert.equal(more.length, 0);
    assert.equal(mail!.subject, "Simulation server reached maximum load");
    assert.equal(
      mail!.body.trimEnd(),
      `Hello,\n\nsim.test:2000 simulation server has reached maximum load (99.5%).\nCheck it at ${CHECK}\n\n-Simulation Server`,
    );
    assert.equal(mail!.from, `Simulation Server <${SENDER}>`);
    assert.equal(mail!.to, `Administrator <${ADMIN}>`);
    assert.deepEqual(mail!.rcptTo, [ADMIN]);
    assert.equal(mail!.mailFrom, SENDER);
    assert.equal(mail!.secure, false);
    assert.equal(mail!.user, undefined, "no login without a password");
  } finally {
    await smtp.close();
  }
});

Deno.test("a mail server that refuses connections is logged as the reference does", async () => {
  const logger = recordingLogger();
  const notifier = smtpNotifier(
    configOf({
      administrator: ADMIN,
      mailServer: "127.0.0.1",
      mailServerPort: freePort(),
      mailSender: SENDER,
    }),
    logger,
  );
  notifier.notify({ kind: "available-again", entry: "sim.test:2000", load: 20 });
  await notifier.idle();
  const error = logger.lines.find((l) => l.message === `Error: unable to send email to ${ADMIN}`);
  assert.equal(error?.level, "error");
  assert.equal(error?.fields.subject, "Simulation server available again");
  assert.match(String(error?.fields.err), /ECONNREFUSED/);
});

Deno.test("an administrator without mail server or sender disables e-mails with the reference message", () => {
  const cases = [
    ["server", { mailSender: SENDER }],
    ["sender", { mailServer: "127.0.0.1" }],
  ] as const;
  for (const [missing, extra] of cases) {
    const logger = recordingLogger();
    assert.equal(mailAddresses(configOf({ administrator: ADMIN, ...extra }), logger), undefined);
    assert.deepEqual(logger.lines.map((l) => [l.level, l.message]), [[
      "info",
      `No mail ${missing} defined in configuration, disabling e-mail notifications to ${ADMIN}.`,
    ]]);
  }
  const logger = recordingLogger();
  assert.equal(mailAddresses(configOf({ mailServer: "127.0.0.1" }), logger), undefined);
  assert.deepEqual(logger.lines, [], "no administrator: nothing to say");
});

serverTest("with a password the e-mail goes over STARTTLS with a login", async () => {
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
