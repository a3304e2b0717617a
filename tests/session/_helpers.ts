/**
 * Helpers of the session-server tests: start the real server on port 0 with a temp log folder,
 * wait for a condition, subscribe to the availability feed, make a TLS certificate.
 *
 * @module
 */
import { join } from "node:path";
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

/** Starts the session server with quick polling and a temp `logDir`; `config` overrides. */
export async function startSession(
  config: Record<string, unknown>,
  env: Record<string, string> = {},
): Promise<SessionUnderTest> {
  const dir = await Deno.makeTempDir({ prefix: "session-test-" });
  const logDir = join(dir, "log");
  let server: ServerProcess;
  try {
    server = await startServer("session", {
      port: 0,
      logDir,
      loadRefresh: 0.2,
      loadTimeout: 0.5,
      ...config,
    }, { dir, env });
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

/** Waits until `check` returns a value other than undefined; fails after `timeoutMs`. */
export async function waitFor<T>(
  label: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${label}${last ? `: ${last}` : ""}`);
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

/** Waits until `GET <base>/session` answers `expected`. */
export function waitForSession(base: string, expected: string, timeoutMs = 10_000) {
  return waitFor(`/session = ${expected}`, async () => {
    const { body } = await get(`${base}/session`);
    return body === expected ? body : undefined;
  }, timeoutMs);
}

/** A subscriber of the availability feed. */
export interface Subscriber {
  readonly socket: WebSocket;
  readonly messages: string[];
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseEvent>;
  /** Resolves once `count` messages have arrived. */
  messageCount(count: number): Promise<void>;
}

/** Opens a WebSocket to `url` and records what arrives. */
export function subscribe(url: string, client?: Deno.HttpClient): Subscriber {
  const socket = client
    ? new WebSocket(url, { client } as unknown as string[])
    : new WebSocket(url);
  const messages: string[] = [];
  const waiters: { count: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  socket.onmessage = (event) => {
    messages.push(String(event.data));
    for (const waiter of [...waiters]) {
      if (messages.length >= waiter.count) {
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
          new Error(
            `socket closed (${event.code}) after ${messages.length} of ${waiter.count} messages`,
          ),
        );
      }
      resolve(event);
    };
  });
  const subscriber: Subscriber = {
    socket,
    messages,
    opened,
    closed,
    messageCount: (count) =>
      messages.length >= count
        ? Promise.resolve()
        : subscriber.socket.readyState === WebSocket.CLOSED
        ? Promise.reject(new Error(`socket closed after ${messages.length} of ${count} messages`))
        : new Promise((resolve, reject) => waiters.push({ count, resolve, reject })),
  };
  return subscriber;
}

/** Closes a subscriber and waits for the close. */
export async function unsubscribe(subscriber: Subscriber): Promise<void> {
  if (subscriber.socket.readyState !== WebSocket.CLOSED) subscriber.socket.close();
  await subscriber.closed;
}

export { makeCertificate } from "../helpers/cert.ts";
