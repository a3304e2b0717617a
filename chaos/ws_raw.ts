/**
 * A WebSocket client made by hand over TCP, for the campaign's faults a browser's WebSocket
 * cannot make: binary and garbage frames, a message larger than the server's limit in one frame
 * or in many fragments, endless fragments, a client that stops reading (and so stops answering
 * pings), and a client that drops its connection without a close frame.
 *
 * A reader runs in the background while the client is not silent: it answers pings, keeps every
 * text message with its arrival time, and notes the server's close frame (code, time).
 *
 * @module
 */
import { maskedFrame, parseFrame } from "../tests/helpers/raw_ws.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const TEXT = 0x1;
const BINARY = 0x2;
const CONTINUATION = 0x0;
const CLOSE = 0x8;
const PING = 0x9;
const PONG = 0xa;

/** The server's close frame, or the end of the connection without one (`code` undefined). */
export interface Closed {
  readonly code: number | undefined;
  readonly reason: string;
  /** `performance.now()` when it was seen. */
  readonly at: number;
}

/** One text message from the server. */
export interface Received {
  readonly text: string;
  readonly at: number;
}

/** A connected client. */
export interface RawClient {
  /** Text messages received so far. */
  readonly received: readonly Received[];
  /** Resolves when the server closed the connection (close frame or end of stream). */
  readonly closed: Promise<Closed>;
  /** The close, once seen. */
  readonly closedState: Closed | undefined;
  sendText(text: string): Promise<void>;
  sendBinary(bytes: Uint8Array): Promise<void>;
  /**
   * Sends one text message of `totalBytes` bytes (`x`) in fragments of `fragmentBytes`; stops at
   * the first write that fails or once the server closed. Returns the bytes sent.
   */
  sendFragmented(totalBytes: number, fragmentBytes: number): Promise<number>;
  /** Resolves with the first text message from the start that satisfies `predicate`. */
  waitFor(predicate: (text: string) => boolean, timeoutMs: number): Promise<Received>;
  /** Resolves with the close, or undefined after `timeoutMs`. */
  waitClosed(timeoutMs: number): Promise<Closed | undefined>;
  /** Stops reading: pings go unanswered, as from a browser that vanished. */
  goSilent(): void;
  /** Sends a close frame (1000), waits up to `timeoutMs` for the server's, then drops the connection. */
  leave(timeoutMs?: number): Promise<void>;
  /** Drops the TCP connection without a close frame; idempotent. */
  drop(): void;
}

/** Opens `url` (`ws://host:port/path`); throws unless the server answers 101. */
export async function rawConnect(url: string, timeoutMs = 5000): Promise<RawClient> {
  const { hostname, port, pathname } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  let dropped = false;
  const drop = () => {
    if (dropped) return;
    dropped = true;
    try {
      conn.close();
    } catch { /* already closed */ }
  };
  let pending = new Uint8Array(0);
  const readMore = async (): Promise<boolean> => {
    const chunk = new Uint8Array(64 * 1024);
    let n: number | null = null;
    try {
      n = await conn.read(chunk);
    } catch {
      n = null;
    }
    if (n === null) return false;
    const joined = new Uint8Array(pending.length + n);
    joined.set(pending);
    joined.set(chunk.subarray(0, n), pending.length);
    pending = joined;
    return true;
  };

  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const handshake = (async () => {
    await writeAll(
      conn,
      encoder.encode(
        `GET ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    for (;;) {
      const end = indexOfHeadEnd(pending);
      if (end !== -1) {
        const head = decoder.decode(pending.subarray(0, end));
        pending = pending.slice(end + 4);
        if (!head.startsWith("HTTP/1.1 101")) {
          throw new Error(`no WebSocket upgrade: ${head.split("\r\n")[0]}`);
        }
        return;
      }
      if (!(await readMore())) throw new Error("connection ended during the handshake");
    }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      handshake,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no handshake within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } catch (error) {
    drop();
    await handshake.catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }

  const received: Received[] = [];
  let closedState: Closed | undefined;
  const closedSignal = Promise.withResolvers<Closed>();
  const wakers = new Set<() => void>();
  const wake = () => {
    for (const w of [...wakers]) w();
  };
  const markClosed = (code: number | undefined, reason: string) => {
    if (closedState) return;
    closedState = { code, reason, at: performance.now() };
    closedSignal.resolve(closedState);
    wake();
  };
  let silent = false;
  let writeChain: Promise<void> = Promise.resolve();
  /** Serializes writes so that a pong never lands inside a data frame. */
  const write = (bytes: Uint8Array): Promise<void> => {
    const next = writeChain.then(() => (dropped ? undefined : writeAll(conn, bytes)));
    writeChain = next.catch(() => {});
    return next;
  };

  const reader = (async () => {
    for (;;) {
      if (silent) return;
      const frame = parseFrame(pending);
      if (frame === undefined) {
        if (!(await readMore())) {
          markClosed(undefined, "connection ended");
          return;
        }
        continue;
      }
      pending = pending.slice(frame.length);
      if (frame.opcode === PING) {
        await write(frameOf(PONG, frame.payload, true)).catch(() => {});
      } else if (frame.opcode === TEXT) {
        received.push({ text: decoder.decode(frame.payload), at: performance.now() });
        wake();
      } else if (frame.opcode === CLOSE) {
        const code = frame.payload.length >= 2
          ? (frame.payload[0]! << 8) | frame.payload[1]!
          : undefined;
        markClosed(code, decoder.decode(frame.payload.subarray(2)));
        // Answer the close handshake, then let the server end the connection.
        await write(frameOf(CLOSE, frame.payload.subarray(0, 2), true)).catch(() => {});
      }
    }
  })();
  void reader;

  const waitUntil = <T>(probe: () => T | undefined, timeoutMs: number) =>
    new Promise<T | undefined>((resolve) => {
      const check = () => {
        const value = probe();
        if (value !== undefined) finish(value);
      };
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      const finish = (value: T | undefined) => {
        clearTimeout(timer);
        wakers.delete(check);
        resolve(value);
      };
      wakers.add(check);
      check();
    });

  return {
    received,
    closed: closedSignal.promise,
    get closedState() {
      return closedState;
    },
    sendText: (text) => write(frameOf(TEXT, encoder.encode(text), true)),
    sendBinary: (bytes) => write(frameOf(BINARY, bytes, true)),
    async sendFragmented(totalBytes, fragmentBytes) {
      const piece = new Uint8Array(fragmentBytes).fill(0x78);
      let sent = 0;
      try {
        while (sent < totalBytes && closedState === undefined && !dropped) {
          const size = Math.min(fragmentBytes, totalBytes - sent);
          const last = sent + size >= totalBytes;
          const opcode = sent === 0 ? TEXT : CONTINUATION;
          await write(frameOf(opcode, piece.subarray(0, size), last));
          sent += size;
        }
      } catch {
        // The server closed the connection under us.
      }
      return sent;
    },
    async waitFor(predicate, timeoutMs) {
      const found = await waitUntil(() => {
        const hit = received.find((r) => predicate(r.text));
        if (hit) return hit;
        if (closedState) return null;
        return undefined;
      }, timeoutMs);
      if (!found) {
        const texts = received.map((r) => r.text.slice(0, 80));
        const why = closedState
          ? `closed (${closedState.code})`
          : `timed out after ${timeoutMs} ms`;
        throw new Error(`${why}; received ${JSON.stringify(texts)}`);
      }
      return found;
    },
    async waitClosed(timeoutMs) {
      return await waitUntil(() => closedState, timeoutMs);
    },
    goSilent() {
      silent = true;
    },
    async leave(timeoutMs = 2000) {
      if (!closedState && !dropped) {
        await write(frameOf(CLOSE, new Uint8Array([0x03, 0xe8]), true)).catch(() => {});
        if (!silent) await waitUntil(() => closedState, timeoutMs);
      }
      drop();
    },
    drop,
  };
}

function indexOfHeadEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array) {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/** The mask key of payloads of 1 KiB or more: all zero (see `maskedFrame`'s own word on it). */
const ZERO_MASK = new Uint8Array(4);

/**
 * A client frame, masked as RFC 6455 requires. The mask key is zero for payloads of 1 KiB or
 * more: still a valid mask, and the payload needs no byte-by-byte xor, which for the hundreds of
 * MiB the campaign sends would hold its own event loop for seconds (and with it the stand-in
 * simulation server it runs in-process).
 */
function frameOf(opcode: number, payload: Uint8Array, fin: boolean): Uint8Array {
  return payload.length >= 1024
    ? maskedFrame(opcode, payload, fin, ZERO_MASK)
    : maskedFrame(opcode, payload, fin);
}
