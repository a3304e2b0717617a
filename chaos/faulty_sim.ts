/**
 * Faulty simulation servers for part (c): a raw TCP listener on 127.0.0.1 whose `/load` answer
 * can be healthy, hang (never answered), garbage bytes, a non-number body, a 500, slow (answered
 * after a delay), or a reset (the connection closed at once); the mode can change at any time.
 *
 * @module
 */

/** How a faulty server answers. */
export type FaultyMode =
  | { readonly kind: "healthy"; readonly load: number }
  | { readonly kind: "hang" }
  | { readonly kind: "garbage-bytes" }
  | { readonly kind: "garbage-body" }
  | { readonly kind: "status-500" }
  | { readonly kind: "slow"; readonly delayMs: number }
  | { readonly kind: "reset" };

/** A running faulty server. */
export interface FaultyServer {
  readonly port: number;
  /** `127.0.0.1:<port>`, for `simulationServers`. */
  readonly entry: string;
  setMode(mode: FaultyMode): void;
  close(): Promise<void>;
}

const encoder = new TextEncoder();

function response(status: string, body: string): Uint8Array {
  return encoder.encode(
    `HTTP/1.1 ${status}\r\ncontent-type: text/plain\r\ncontent-length: ${
      encoder.encode(body).length
    }\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Starts a faulty server in `mode`, on `port` (default: a free one). */
export function startFaultyServer(mode: FaultyMode, port = 0): FaultyServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  let current = mode;
  const open = new Set<Deno.Conn>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const handle = async (conn: Deno.Conn) => {
    open.add(conn);
    try {
      // Read the request head (or whatever comes first), then act on the mode of that moment.
      await conn.read(new Uint8Array(4096));
      const now = current;
      const write = async (bytes: Uint8Array) => {
        for (let n = 0; n < bytes.length;) n += await conn.write(bytes.subarray(n));
      };
      switch (now.kind) {
        case "healthy":
          await write(response("200 OK", String(now.load)));
          break;
        case "hang":
          // Keep the connection open and silent until the poller gives up or close() runs.
          await conn.read(new Uint8Array(4096));
          return;
        case "garbage-bytes":
          await write(crypto.getRandomValues(new Uint8Array(512)));
          break;
        case "garbage-body":
          await write(response("200 OK", "not a load \u0000\u00ff"));
          break;
        case "status-500":
          await write(response("500 Internal Server Error", "boom"));
          break;
        case "slow":
          await new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              timers.delete(timer);
              resolve();
            }, now.delayMs);
            timers.add(timer);
          });
          await write(response("200 OK", "1"));
          break;
        case "reset":
          break;
      }
    } catch {
      // The poller hung up first.
    } finally {
      open.delete(conn);
      try {
        conn.close();
      } catch { /* closed by close() */ }
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) void handle(conn);
  })().catch(() => {});
  const bound = (listener.addr as Deno.NetAddr).port;
  return {
    port: bound,
    entry: `127.0.0.1:${bound}`,
    setMode(mode) {
      current = mode;
    },
    async close() {
      listener.close();
      for (const timer of timers) clearTimeout(timer);
      for (const conn of open) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await accepting;
    },
  };
}
