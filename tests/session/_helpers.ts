/**
 * Helpers of the session-server process tests: start the real server on port 0 with a temp log
 * folder, subscribe to the availability feed, make a TLS certificate.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { connect } from "../helpers/ws_client.ts";
import { type ServerProcess, startServer } from "../helpers/server_process.ts";

/** A session server under test and its temp folder. */
export interface SessionUnderTest extends ServerProcess {
  readonly dir: string;
  readonly logDir: string;
  /** The log file's lines parsed as JSON (when `debug` is false). */
  logLines(): Promise<Record<string, unknown>[]>;
  /** Stops the server and removes the folder. */
  cleanup(): Promise<void>;
}

/**
 * Starts the session server with a temp `logDir`; `config` overrides. Polling is slow on purpose:
 * these tests prove the wiring with the first round (polled at start), and the rounds after it
 * are tested in-process on a fake clock.
 */
export async function startSession(
  config: Record<string, unknown>,
  env: Record<string, string> = {},
  wrap?: readonly string[],
): Promise<SessionUnderTest> {
  const dir = await Deno.makeTempDir({ prefix: "session-test-" });
  const logDir = join(dir, "log");
  let server: ServerProcess;
  try {
    server = await startServer("session", {
      port: 0,
      logDir,
      loadRefresh: 60,
      loadTimeout: 5,
      // The tests read the log as JSON lines.
      logFormat: "json",
      ...config,
    }, { dir, env, ...(wrap === undefined ? {} : { wrap }) });
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  return {
    ...server,
    dir,
    logDir,
    async logLines() {
      const text = await Deno.readTextFile(join(logDir, "session", "output.log"));
      return text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
    },
    async cleanup() {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** GET a URL and return status, content type and body. */
export async function get(
  url: string,
  init: RequestInit & { client?: Deno.HttpClient } = {},
): Promise<{ status: number; type: string | null; body: string; headers: Headers }> {
  const response = await fetch(url, init);
  return {
    status: response.status,
    type: response.headers.get("content-type"),
    body: await response.text(),
    headers: response.headers,
  };
}

/** A subscriber of the availability feed. */
export interface Subscriber {
  readonly socket: WebSocket;
  readonly messages: string[];
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseEvent>;
  /** Resolves once `count` messages have arrived. */
  messageCount(count: number): Promise<void>;
  /** Resolves once the last message received is `value` (at once if it already is). */
  lastIs(value: string): Promise<void>;
}

/** Opens a WebSocket to `url` and records what arrives. */
export function subscribe(url: string, client?: Deno.HttpClient): Subscriber {
  const socket = client
    ? new WebSocket(url, { client } as unknown as string[])
    : new WebSocket(url);
  const messages: string[] = [];
  const waiters: { done: () => boolean; resolve: () => void; reject: (e: Error) => void }[] = [];
  socket.onmessage = (event) => {
    messages.push(String(event.data));
    for (const waiter of [...waiters]) {
      if (waiter.done()) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };
  const opened = new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = (e) => reject(new Error((e as ErrorEvent).message ?? "socket error"));
  });
  opened.catch(() => {});
  const closed = new Promise<CloseEvent>((resolve) => {
    socket.onclose = (event) => {
      for (const waiter of waiters.splice(0)) {
        waiter.reject(
          new Error(`socket closed (${event.code}) after messages ${messages.join()}`),
        );
      }
      resolve(event);
    };
  });
  const until = (done: () => boolean): Promise<void> =>
    done()
      ? Promise.resolve()
      : socket.readyState === WebSocket.CLOSED
      ? Promise.reject(new Error(`socket closed after messages ${messages.join()}`))
      : new Promise((resolve, reject) => waiters.push({ done, resolve, reject }));
  const subscriber: Subscriber = {
    socket,
    messages,
    opened,
    closed,
    messageCount: (count) => until(() => messages.length >= count),
    lastIs: (value) => until(() => messages.at(-1) === value),
  };
  return subscriber;
}

/** Closes a subscriber and waits for the close. */
export async function unsubscribe(subscriber: Subscriber): Promise<void> {
  if (subscriber.socket.readyState !== WebSocket.CLOSED) subscriber.socket.close();
  await subscriber.closed;
}

export { makeCertificate } from "../helpers/cert.ts";

/** Opens each lease's `/client` once more and asserts that each is refused: the error, then 1008. */
export async function assertLeasesUsedUp(leased: readonly string[]): Promise<void> {
  const again = await Promise.all(leased.map((url) => connect(`${url}/client`)));
  for (const socket of again) {
    const closed = await socket.closed;
    assert.deepEqual(socket.messages, [
      "error: this simulation slot lease is unknown, used or expired",
    ]);
    assert.equal(closed.code, 1008);
  }
}
