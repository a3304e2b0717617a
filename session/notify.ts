/**
 * Tells the administrator about simulation-server transitions: always in the log (fields
 * `entry`, `load`), and by e-mail when mail is configured, with the reference's exact subjects and
 * bodies. Sending is asynchronous with a timeout; a failing mail server is logged and never stops
 * or delays polling.
 *
 * @module
 */
// @ts-types="npm:@types/nodemailer@^8.0.2"
import nodemailer from "nodemailer";
import type { Logger } from "../shared/log.ts";
import type { SessionConfig } from "./config.ts";
import type { Transition } from "./fleet.ts";

/** One e-mail. */
export interface Mail {
  readonly from: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
}

/** Something that sends e-mails. */
export interface Mailer {
  send(mail: Mail): Promise<void>;
}

/** Who gets notified, from whom, over what. */
export interface MailSettings {
  readonly administrator: string;
  readonly sender: string;
  readonly mailer: Mailer;
}

/** Milliseconds an SMTP exchange may take before it counts as failed. */
const MAIL_TIMEOUT_MS = 5000;

/** Python's `str(float)`: `50` → `50.0`, `12.5` → `12.5`. */
export function pythonFloat(value: number): string {
  return Number.isInteger(value) && Math.abs(value) < 1e16 ? value.toFixed(1) : String(value);
}

/** The log line (and e-mail sentence) of a transition, as the reference words it. */
export function transitionMessage(transition: Transition): string {
  const { entry } = transition;
  switch (transition.kind) {
    case "not-responding":
      return transition.reason === "timeout"
        ? `${entry} simulation server is taking too long to respond (assuming 100% load)`
        : `${entry} simulation server is not responding (assuming 100% load)`;
    case "working-again":
      return `${entry} simulation server is up and running again (load = ${
        pythonFloat(transition.load)
      }%)`;
    case "full":
      return `${entry} simulation server has reached maximum load (${
        pythonFloat(transition.load)
      }%)`;
    case "available-again":
      return `${entry} simulation server is available again (load = ${
        pythonFloat(transition.load)
      }%)`;
    default:
      return transition satisfies never;
  }
}

const SUBJECTS: Record<Transition["kind"], string> = {
  "not-responding": "Simulation server not responding",
  "working-again": "Simulation server working again",
  "full": "Simulation server reached maximum load",
  "available-again": "Simulation server available again",
};

/** Subject and body of the reference's e-mail for a transition; `check` is the "Check it at" URL. */
export function transitionMail(transition: Transition, check: string): {
  subject: string;
  text: string;
} {
  const checkString = `Check it at ${check}\n\n-Simulation Server`;
  const sentence = transition.kind === "not-responding"
    ? `${transition.entry} simulation server may be down, as it is not responding to the requests of the session server...`
    : `${transitionMessage(transition)}.`;
  return { subject: SUBJECTS[transition.kind], text: `Hello,\n\n${sentence}\n${checkString}` };
}

/**
 * The reference's startup sanity check: an administrator without mail server or sender disables
 * notifications, with the reference's log message. Returns the recipient and sender, or nothing.
 */
export function mailAddresses(
  config: SessionConfig,
  logger: Logger,
): { administrator: string; sender: string } | undefined {
  const { administrator, mailServer, mailSender } = config;
  if (administrator === undefined) return undefined;
  if (mailServer === undefined) {
    logger.info(
      {},
      `No mail server defined in configuration, disabling e-mail notifications to ${administrator}.`,
    );
    return undefined;
  }
  if (mailSender === undefined) {
    logger.info(
      {},
      `No mail sender defined in configuration, disabling e-mail notifications to ${administrator}.`,
    );
    return undefined;
  }
  return { administrator, sender: mailSender };
}

/**
 * An SMTP mailer (nodemailer) for the configured mail server: port `mailServerPort` (0 → 587 with
 * a password, else 25); with a password, STARTTLS is required and the login is `mailSenderUser` or
 * the sender.
 */
export function createSmtpMailer(config: SessionConfig): Mailer {
  const password = config.mailSenderPassword;
  const port = config.mailServerPort || (password ? 587 : 25);
  const transport = nodemailer.createTransport({
    host: config.mailServer,
    port,
    secure: port === 465,
    ...(password
      ? {
        requireTLS: true,
        auth: { user: config.mailSenderUser ?? config.mailSender ?? "", pass: password },
      }
      : { ignoreTLS: false }),
    connectionTimeout: MAIL_TIMEOUT_MS,
    greetingTimeout: MAIL_TIMEOUT_MS,
    socketTimeout: MAIL_TIMEOUT_MS,
  });
  return {
    async send(mail) {
      await transport.sendMail(mail);
    },
  };
}

/** What a notifier needs. */
export interface NotifierDeps {
  readonly logger: Logger;
  readonly mail: MailSettings | undefined;
  /** The "Check it at" URL: the session server's own monitor page. */
  readonly checkUrl: () => string;
}

/** A notifier: logs each transition and e-mails it when mail is configured. */
export interface Notifier {
  notify(transition: Transition): void;
  /** Resolves when the e-mails being sent are done (for shutdown). */
  idle(): Promise<void>;
}

/** Creates the notifier. */
export function createNotifier(deps: NotifierDeps): Notifier {
  const pending = new Set<Promise<void>>();
  return {
    notify(transition) {
      const load = "load" in transition ? transition.load : 100;
      deps.logger.info({ entry: transition.entry, load }, transitionMessage(transition));
      const mail = deps.mail;
      if (!mail) return;
      const { subject, text } = transitionMail(transition, deps.checkUrl());
      const sending = mail.mailer.send({
        from: `Simulation Server <${mail.sender}>`,
        to: `Administrator <${mail.administrator}>`,
        subject,
        text,
      }).then(
        () => deps.logger.info({ to: mail.administrator, subject }, "e-mail sent"),
        (error) =>
          deps.logger.error(
            // The reason in a field of its own: the text line shows it without the stack.
            {
              to: mail.administrator,
              subject,
              reason: error instanceof Error ? error.message : String(error),
              err: error,
            },
            `Error: unable to send email to ${mail.administrator}`,
          ),
      ).finally(() => pending.delete(sending));
      pending.add(sending);
    },
    async idle() {
      await Promise.all([...pending]);
    },
  };
}
