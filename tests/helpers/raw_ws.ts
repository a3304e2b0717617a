/**
 * A WebSocket client made by hand over a TCP connection, for the heartbeat tests: unlike the
 * built-in client, which answers pings below any script, it answers them only while the test
 * reads, and a test can stop reading altogether, as a browser that vanished without closing.
 *
 * @module
 */

/** One frame as received (unfragmented; the servers send no fragments). */
export interface Frame {
  /** 0x1 text, 0x2 binary, 0x8 close, 0x9 ping, 0xA pong. */
  readonly opcode: number;
  readonly payload: Uint8Array;
}

export const CONTINUATION = 0x0;
export const TEXT = 0x1;
export const BINARY = 0x2;
export const CLOSE = 0x8;
export const PING = 0x9;
export const PONG = 0xa;

/** A connected hand-made client. */
export interface RawWebSocket {
  /** Sends a text frame. */
  sendText(text: string): Promise<void>;
  /** Sends bytes as they are (frames made with `maskedFrame`, or anything else). */
  sendRaw(bytes: Uint8Array): Promise<void>;
  /**
   * Reads frames, answering each ping with a pong, until a text frame satisfies `predicate`;
   * returns its text. Nothing is read once this returns.
   */
  readUntilText(predicate: (text: string) => boolean): Promise<string>;
  /**
   * Reads, without answering anything, every frame up to the server's close frame (included) or
   * the end of the connection; after `timeoutMs` the connection is dropped and this throws.
   */
  readToClose(timeoutMs?: number): Promise<Frame[]>;
  /** Closes the TCP connection (no close frame); idempotent. */
  close(): void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Opens `url` (`ws://host:port/path`) with a hand-made handshake; throws unless it gets 101. */
export async function rawConnect(url: string): Promise<RawWebSocket> {
  const { hostname, port, pathname } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  let buffered = new Uint8Array(0);
  let ended = false;
  let closed = false;

  /** Reads more bytes into the buffer; false at the end of the stream. */
  const fill = async (): Promise<boolean> => {
    const chunk = new Uint8Array(16 * 1024);
    let n: number | null;
    try {
      n = await conn.read(chunk);
    } catch (error) {
      // Reset by the server, or closed here by a deadline while reading.
      if (error instanceof Deno.errors.ConnectionReset || closed) n = null;
      else throw error;
    }
    if (n === null) {
      ended = true;
      return false;
    }
    const joined = new Uint8Array(buffered.length + n);
    joined.set(buffered);
    joined.set(chunk.subarray(0, n), buffered.length);
    buffered = joined;
    return true;
  };

  const take = (count: number): Uint8Array => {
    const out = buffered.slice(0, count);
    buffered = buffered.slice(count);
    return out;
  };

  /** The next whole frame, or undefined at the end of the stream. */
  const nextFrame = async (): Promise<Frame | undefined> => {
    for (;;) {
      const frame = parseFrame(buffered);
      if (frame !== undefined) {
        take(frame.length);
        return { opcode: frame.opcode, payload: frame.payload };
      }
      if (ended || !(await fill())) return undefined;
    }
  };

  function dropConnection() {
    if (closed) return;
    closed = true;
    conn.close();
  }

  const sendFrame = async (opcode: number, payload: Uint8Array) => {
    await writeAll(conn, maskedFrame(opcode, payload));
  };

  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  await writeAll(
    conn,
    encoder.encode(
      `GET ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ),
  );
  for (;;) {
    const end = decoder.decode(buffered).indexOf("\r\n\r\n");
    if (end !== -1) {
      const head = decoder.decode(take(end + 4));
      if (!head.startsWith("HTTP/1.1 101")) {
        conn.close();
        throw new Error(`no WebSocket upgrade: ${head.split("\r\n")[0]}`);
      }
      break;
    }
    if (!(await fill())) {
      conn.close();
      throw new Error("connection ended during the handshake");
    }
  }

  return {
    sendText: (text) => sendFrame(TEXT, encoder.encode(text)),
    sendRaw: (bytes) => writeAll(conn, bytes),
    async readUntilText(predicate) {
      for (;;) {
        const frame = await nextFrame();
        if (frame === undefined) throw new Error("connection ended before the expected text");
        if (frame.opcode === PING) await sendFrame(PONG, frame.payload);
        if (frame.opcode === CLOSE) throw new Error(`closed by the server: ${describe(frame)}`);
        if (frame.opcode === TEXT) {
          const text = decoder.decode(frame.payload);
          if (predicate(text)) return text;
        }
      }
    },
    async readToClose(timeoutMs = 10_000) {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        dropConnection();
      }, timeoutMs);
      const frames: Frame[] = [];
      try {
        for (let frame = await nextFrame(); frame !== undefined; frame = await nextFrame()) {
          frames.push(frame);
          if (frame.opcode === CLOSE) break;
        }
      } finally {
        clearTimeout(timer);
      }
      if (timedOut) {
        const kinds = frames.map((frame) => frame.opcode);
        throw new Error(`no close frame within ${timeoutMs} ms; frames: ${kinds}`);
      }
      return frames;
    },
    close: dropConnection,
  };
}

/** A close frame's code and reason, e.g. `1001 No response from ping frame.` */
export function describe(frame: Frame): string {
  if (frame.payload.length < 2) return "(no code)";
  const code = (frame.payload[0]! << 8) | frame.payload[1]!;
  return `${code} ${decoder.decode(frame.payload.subarray(2))}`.trim();
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array) {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/**
 * A client frame, masked as RFC 6455 requires of clients; FIN set unless `fin` is false. The mask
 * key is random unless given; an all-zero key (still a valid mask) leaves the payload as it is,
 * without the byte-by-byte xor that would hold a sender of hundreds of MiB for seconds.
 */
export function maskedFrame(
  opcode: number,
  payload: Uint8Array,
  fin = true,
  mask: Uint8Array = crypto.getRandomValues(new Uint8Array(4)),
): Uint8Array {
  const length = payload.length;
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = new Uint8Array(header + 4 + length);
  frame[0] = (fin ? 0x80 : 0) | opcode;
  if (length < 126) {
    frame[1] = 0x80 | length;
  } else if (length < 65536) {
    frame[1] = 0x80 | 126;
    new DataView(frame.buffer).setUint16(2, length);
  } else {
    frame[1] = 0x80 | 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(length));
  }
  frame.set(mask, header);
  if (mask.every((byte) => byte === 0)) {
    frame.set(payload, header + 4);
    return frame;
  }
  for (let i = 0; i < length; i++) frame[header + 4 + i] = payload[i]! ^ mask[i % 4]!;
  return frame;
}

/** The first frame of `bytes` (server frames are unmasked) and its size, if it is all there. */
export function parseFrame(
  bytes: Uint8Array,
): { opcode: number; payload: Uint8Array; length: number } | undefined {
  if (bytes.length < 2) return undefined;
  const opcode = bytes[0]! & 0x0f;
  let length = bytes[1]! & 0x7f;
  let offset = 2;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (length === 126) {
    if (bytes.length < 4) return undefined;
    length = view.getUint16(2);
    offset = 4;
  } else if (length === 127) {
    if (bytes.length < 10) return undefined;
    length = Number(view.getBigUint64(2));
    offset = 10;
  }
  if (bytes.length < offset + length) return undefined;
  return { opcode, payload: bytes.slice(offset, offset + length), length: offset + length };
}
