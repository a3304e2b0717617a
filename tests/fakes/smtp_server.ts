/**
 * A real SMTP server on 127.0.0.1 (npm smtp-server) that keeps what it receives, for the session
 * server's notification tests: plain, or with STARTTLS and required login.
 *
 * @module
 */
// @ts-types="npm:@types/smtp-server@^3.5.13"
import { SMTPServer } from "smtp-server";

/** One received message. */
export interface ReceivedMail {
  readonly raw: string;
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  /** Login used, if any. */
  readonly user: string | undefined;
  readonly password: string | undefined;
  /** Whether the connection was upgraded to TLS. */
  readonly secure: boolean;
  readonly subject: string;
  readonly from: string;
  readonly to: string;
  /** Decoded text body with `\n` line ends. */
  readonly body: string;
}

/** A running fake SMTP server. */
export interface FakeSmtpServer {
  readonly port: number;
  readonly mails: readonly ReceivedMail[];
  /** Resolves once `count` mails have arrived (rejects after `timeoutMs`). */
  waitForMails(count: number, timeoutMs?: number): Promise<readonly ReceivedMail[]>;
  close(): Promise<void>;
}

/** Options: `tls` enables STARTTLS and requires login. */
export interface FakeSmtpOptions {
  readonly tls?: { readonly cert: string; readonly key: string };
}

function decodeQuotedPrintable(text: string): string {
  return text.replace(/=\r?\n/g, "").replace(
    /=([0-9A-F]{2})/gi,
    (_, hex: string) => String.fromCharCode(parseInt(hex, 16)),
  );
}

/** Splits a raw RFC 5322 message into unfolded headers (lower-case names) and decoded body. */
export function parseMail(raw: string): { headers: Record<string, string>; body: string } {
  const normalized = raw.replace(/\r\n/g, "\n");
  const split = normalized.indexOf("\n\n");
  const head = normalized.slice(0, split).replace(/\n[ \t]+/g, " ");
  let body = normalized.slice(split + 2);
  const headers: Record<string, string> = {};
  for (const line of head.split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const encoding = (headers["content-transfer-encoding"] ?? "").toLowerCase();
  if (encoding === "quoted-printable") body = decodeQuotedPrintable(body);
  if (encoding === "base64") {
    body = new TextDecoder().decode(
      Uint8Array.from(atob(body.replace(/\s+/g, "")), (c) => c.charCodeAt(0)),
    );
  }
  return { headers, body };
}

/** Starts the SMTP server on 127.0.0.1 and a free port. */
export async function startFakeSmtpServer(options: FakeSmtpOptions = {}): Promise<FakeSmtpServer> {
  const mails: ReceivedMail[] = [];
  let notify = () => {};
  const server = new SMTPServer({
    logger: false,
    ...(options.tls
      ? { key: options.tls.key, cert: options.tls.cert, authOptional: false }
      : { authOptional: true, disabledCommands: ["STARTTLS"] }),
    onAuth(auth, _session, callback) {
      callback(null, { user: { name: auth.username, password: auth.password } });
    },
    onData(stream, session, callback) {
      const chunks: Uint8Array[] = [];
      stream.on("data", (chunk: Uint8Array) => chunks.push(chunk));
      stream.on("end", () => {
        const raw = new TextDecoder().decode(
          Uint8Array.from(chunks.flatMap((c) => [...c])),
        );
        const { headers, body } = parseMail(raw);
        const user = session.user as { name: string; password: string } | undefined;
        mails.push({
          raw,
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          user: user?.name,
          password: user?.password,
          secure: session.secure,
          subject: headers["subject"] ?? "",
          from: headers["from"] ?? "",
          to: headers["to"] ?? "",
          body,
        });
        notify();
        callback();
      });
    },
  });
  // A client that rejects our certificate makes the TLS layer emit an error: keep serving.
  server.on("error", () => {});
  const port = await new Promise<number>((resolve) => {
    server.listen(
      0,
      "127.0.0.1",
      () => resolve((server.server.address() as { port: number }).port),
    );
  });
  return {
    port,
    mails,
    async waitForMails(count, timeoutMs = 15_000) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          new Promise<void>((resolve) => {
            const check = () => {
              if (mails.length >= count) resolve();
            };
            notify = check;
            check();
          }),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () =>
                reject(
                  new Error(`expected ${count} mails, got ${mails.length}: ${
                    mails.map((m) => m.subject).join(", ")
                  }`),
                ),
              timeoutMs,
            );
          }),
        ]);
      } finally {
        clearTimeout(timer);
        notify = () => {};
      }
      return mails;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
