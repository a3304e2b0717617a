/**
 * A WebSocket test client that records every message and the close event, and can wait for them.
 *
 * @module
 */

/** A connected test client. */
export interface TestSocket {
  readonly socket: WebSocket;
  /** Every text message received so far, in order. */
  readonly messages: string[];
  /** Resolves with the close event. */
  readonly closed: Promise<CloseEvent>;
  send(text: string | Uint8Array): void;
  /** Waits for the first message (from the start) that satisfies `predicate`. */
  waitFor(predicate: (message: string) => boolean, timeoutMs?: number): Promise<string>;
  close(): Promise<CloseEvent>;
}

/** Opens `url` and resolves once connected (`options` may carry a `client` trusting a test CA). */
export async function connect(
  url: string,
  timeoutMs = 10_000,
  options?: WebSocketOptions,
): Promise<TestSocket> {
  const socket = new WebSocket(url, options);
  const messages: string[] = [];
  const waiters = new Set<() => void>();
  socket.onmessage = (event) => {
    messages.push(typeof event.data === "string" ? event.data : "<binary>");
    for (const wake of [...waiters]) wake();
  };
  const closed = new Promise<CloseEvent>((resolve) => {
    socket.addEventListener("close", (event) => {
      resolve(event);
      for (const wake of [...waiters]) wake();
    });
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cannot connect to ${url}`)), timeoutMs);
    socket.onopen = () => {
      clearTimeout(timer);
      resolve();
    };
    socket.onerror = () => {
      clearTimeout(timer);
      reject(new Error(`cannot connect to ${url}`));
    };
  });
  let isClosed = false;
  void closed.then(() => (isClosed = true));
  return {
    socket,
    messages,
    closed,
    send: (text) => socket.send(text),
    waitFor(predicate, waitMs = 10_000) {
      return new Promise<string>((resolve, reject) => {
        const check = () => {
          const found = messages.find(predicate);
          if (found !== undefined) {
            done();
            resolve(found);
          } else if (isClosed) {
            done();
            reject(new Error(`socket closed; messages: ${JSON.stringify(messages)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out; messages: ${JSON.stringify(messages)}`));
        }, waitMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async close() {
      if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) {
        socket.close();
      }
      return await closed;
    },
  };
}
