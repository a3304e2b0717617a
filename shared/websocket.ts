/**
 * Server-side WebSockets (RFC 6455) over a connection of the shared HTTP engine: the handshake,
 * a socket object with the parts of the web `WebSocket` the servers use (`send`, `close`,
 * `readyState`, `on…` handlers and `addEventListener`), a message size limit enforced while
 * receiving (close 1009, see websocket_frames.ts), and the heartbeat: a socket that has received
 * nothing for half of `heartbeatTimeout` is pinged, and closed with 1001 if nothing has come back
 * by the other half.
 *
 * Events: `open` once the 101 answer is written; `message` (`data` a string, or an `ArrayBuffer`
 * for binary messages); `error` before a `close` that was not clean; `close` exactly once, with
 * the code (1005 when the peer's close frame had none, 1006 when the connection just ended).
 *
 * @example
 * ```ts
 * const { socket, response } = upgradeWebSocket(request, { maxMessageSize: 4096, heartbeatTimeout: 30 });
 * socket?.addEventListener("message", (event) => socket.send(String((event as MessageEvent).data)));
 * return response;
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { concatBytes } from "./bytes.ts";
import { type Clock, systemClock, type TimerId } from "./clock.ts";
import { acceptUpgrade, type HttpRequest } from "./http_request.ts";
import {
  CLOSE_CODE,
  encodeClose,
  encodeFrame,
  encodeText,
  type FrameEvent,
  FrameParser,
  OPCODE,
} from "./websocket_frames.ts";

/** How a socket is limited and watched. */
export interface WebSocketOptions {
  /** Largest message accepted, in bytes (all fragments together); larger → close 1009. */
  readonly maxMessageSize: number;
  /** Seconds; 0 turns the heartbeat off. */
  readonly heartbeatTimeout: number;
  /** Times the heartbeat and the close handshake; defaults to the wall clock. */
  readonly clock?: Clock;
  /**
   * Told when an event listener throws; the socket is then closed with 1011. Default:
   * `console.error`. A listener's error never reaches the runtime (it would end the process).
   */
  readonly onListenerError?: (error: unknown) => void;
}

/** The reason of the heartbeat's close frame (the one Deno used, which logs already quote). */
export const PING_TIMEOUT_REASON = "No response from ping frame.";

/** How long a close waits for the peer's close frame before dropping the connection. */
const CLOSE_WAIT_MS = 5_000;
/** The most bytes a socket keeps unwritten for a peer that does not read; more ends it. */
export const MAX_UNSENT_BYTES = 8 * 1024 * 1024;
/** How long, and how much, a closed socket's connection may still drain of what its peer sends. */
const LINGER_MS = 2_000;
const LINGER_BYTES = 256 * 1024;
/** Bytes read from the connection at a time: the most a socket holds besides one message. */
const READ_CHUNK = 16 * 1024;
/**
 * What a socket reads into until a read fills it, then READ_CHUNK. Most sockets (the session
 * server's availability subscribers) only ever receive a few short messages, and a 16 KiB buffer
 * each was half of a subscriber's memory (BENCHMARKS.md, "availability subscribers").
 */
const FIRST_READ_CHUNK = 1024;

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The `sec-websocket-accept` value for a client's key. */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

/** Why a request is not a valid WebSocket opening handshake, or undefined if it is. */
export function handshakeProblem(request: HttpRequest): string | undefined {
  const headers = request.headers;
  if (request.method !== "GET") return "the handshake must be a GET";
  if (headers.get("upgrade")?.toLowerCase() !== "websocket") return "upgrade must be websocket";
  const connection = headers.get("connection")?.toLowerCase() ?? "";
  if (!connection.split(",").some((token) => token.trim() === "upgrade")) {
    return "connection must include upgrade";
  }
  if (headers.get("sec-websocket-version") !== "13") return "sec-websocket-version must be 13";
  const key = headers.get("sec-websocket-key") ?? "";
  let decoded = "";
  try {
    decoded = atob(key);
  } catch { /* not base64 */ }
  if (decoded.length !== 16) return "sec-websocket-key must be 16 bytes in base64";
  return undefined;
}

/** What `upgradeWebSocket` gives: a socket and the answer to return, or a 400 alone. */
export type UpgradeResult =
  | { readonly socket: ServerWebSocket; readonly response: Response }
  | { readonly socket: undefined; readonly response: Response };

/**
 * Upgrades a request of the shared HTTP engine: returns the socket (open once the handler's
 * answer, `response`, is written) or, for an invalid handshake, no socket and a 400.
 */
export function upgradeWebSocket(request: HttpRequest, options: WebSocketOptions): UpgradeResult {
  const problem = handshakeProblem(request);
  if (problem !== undefined) {
    return {
      socket: undefined,
      response: new Response(`Bad WebSocket handshake: ${problem}\n`, {
        status: 400,
        headers: { "content-type": "text/plain; charset=utf-8", "sec-websocket-version": "13" },
      }),
    };
  }
  const socket = new ServerWebSocket(options);
  // The engine writes this answer with status 101 (a web Response cannot carry 1xx).
  const response = new Response(null, {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-accept": acceptKey(request.headers.get("sec-websocket-key")!),
    },
  });
  acceptUpgrade(request, { response, takeOver: (conn, leftover) => socket.start(conn, leftover) });
  return { socket, response };
}

type Listener = (event: Event) => void;

/** A server-side WebSocket. */
export class ServerWebSocket {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;

  onopen: Listener | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onerror: Listener | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;

  readonly #options: WebSocketOptions;
  readonly #clock: Clock;
  readonly #parser: FrameParser;
  #conn: Deno.Conn | undefined;
  #state = 0;
  /** Frames waiting to be written, and whether the writer loop runs. */
  #queue: Uint8Array[] = [];
  /** Bytes in `#queue` and in the write under way. */
  #queued = 0;
  #writing = false;
  #connClosed = false;
  #writeShut = false;
  #linger: TimerId | undefined;
  /** Bytes read and dropped since the socket closed. */
  #dropped = 0;
  #lastReceived = 0;
  #pingSentAt: number | undefined;
  #heartbeat: TimerId | undefined;
  #closeTimer: TimerId | undefined;
  /** The code and reason of a close this side started. */
  #sentClose: { code: number | undefined; reason: string } | undefined;

  readonly #listeners = new Map<string, Listener[]>();

  constructor(options: WebSocketOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#parser = new FrameParser(options.maxMessageSize);
  }

  /** `CONNECTING` (0), `OPEN` (1), `CLOSING` (2) or `CLOSED` (3), as `WebSocket`'s. */
  get readyState(): number {
    return this.#state;
  }

  /** Bytes sent and not yet written to the connection. */
  get bufferedAmount(): number {
    return this.#queued;
  }

  /** Sends a text (or binary) message; ignored unless open. */
  send(data: string | Uint8Array): void {
    if (this.#state === ServerWebSocket.CONNECTING) {
      throw new DOMException("WebSocket is not open yet", "InvalidStateError");
    }
    if (this.#state !== ServerWebSocket.OPEN) return;
    this.#enqueue(typeof data === "string" ? encodeText(data) : encodeFrame(OPCODE.BINARY, data));
  }

  /** Starts the closing handshake; the connection is dropped if the peer does not answer. */
  close(code?: number, reason = ""): void {
    if (this.#state >= ServerWebSocket.CLOSING) return;
    this.#sentClose = { code, reason };
    if (this.#state === ServerWebSocket.CONNECTING) {
      // Not started yet: `start` closes it at once.
      this.#state = ServerWebSocket.CLOSING;
      return;
    }
    this.#state = ServerWebSocket.CLOSING;
    this.#enqueue(encodeClose(code, reason));
    this.#closeTimer = this.#clock.setTimeout(() => {
      this.#finish(code ?? CLOSE_CODE.NO_STATUS, reason, false);
    }, CLOSE_WAIT_MS);
  }

  /** Called by the engine once the 101 answer is written: the connection is this socket's. */
  start(conn: Deno.Conn, leftover: Uint8Array): void {
    this.#conn = conn;
    this.#lastReceived = this.#clock.now();
    if (this.#state === ServerWebSocket.CLOSING) {
      this.#enqueue(encodeClose(this.#sentClose?.code, this.#sentClose?.reason));
      this.#finish(this.#sentClose?.code ?? CLOSE_CODE.NO_STATUS, "", true);
      return;
    }
    this.#state = ServerWebSocket.OPEN;
    this.#emit(new Event("open"));
    this.#armHeartbeat(this.#halfTimeout());
    if (leftover.length > 0) this.#received(leftover);
    void this.#readLoop();
  }

  #halfTimeout(): number {
    return this.#options.heartbeatTimeout * 500;
  }

  async #readLoop(): Promise<void> {
    let chunk = new Uint8Array(FIRST_READ_CHUNK);
    const conn = this.#conn!;
    try {
      // Once closed, what still comes is read and dropped (see #endConnection) in this chunk.
      for (;;) {
        const n = await conn.read(chunk);
        if (n === null) break;
        if (this.#state !== ServerWebSocket.CLOSED) this.#received(chunk.subarray(0, n));
        else if ((this.#dropped += n) > LINGER_BYTES) break;
        // The parser copied what it needs: the chunk may be replaced.
        if (n === chunk.length && chunk.length < READ_CHUNK) chunk = new Uint8Array(READ_CHUNK);
      }
    } catch {
      // Reset by the peer or closed here: either way the connection is over.
    }
    this.#finish(CLOSE_CODE.ABNORMAL, "", false);
    this.#closeConn();
  }

  #received(bytes: Uint8Array) {
    this.#lastReceived = this.#clock.now();
    for (const event of this.#parser.push(bytes)) this.#handle(event);
  }

  #handle(event: FrameEvent) {
    if (this.#state === ServerWebSocket.CLOSED) return;
    switch (event.kind) {
      case "text":
      case "binary":
        if (this.#state !== ServerWebSocket.OPEN) return;
        this.#emit(
          new MessageEvent("message", {
            data: event.kind === "text" ? event.data : event.data.slice().buffer,
          }),
        );
        return;
      case "ping":
        if (this.#state === ServerWebSocket.OPEN) {
          this.#enqueue(encodeFrame(OPCODE.PONG, event.payload));
        }
        return;
      case "pong":
        return;
      case "close":
        if (this.#state === ServerWebSocket.OPEN) {
          // Echo the peer's code, then end the connection (the server closes TCP first).
          this.#enqueue(encodeClose(event.code));
          this.#finish(event.code ?? CLOSE_CODE.NO_STATUS, event.reason, true);
        } else {
          this.#finish(
            this.#sentClose?.code ?? event.code ?? CLOSE_CODE.NO_STATUS,
            event.reason,
            true,
          );
        }
        return;
      case "fail":
        if (this.#state === ServerWebSocket.OPEN) {
          this.#enqueue(encodeClose(event.code, event.reason));
        }
        this.#finish(event.code, event.reason, false);
        return;
    }
  }

  #armHeartbeat(ms: number) {
    if (this.#options.heartbeatTimeout <= 0) return;
    this.#heartbeat = this.#clock.setTimeout(() => this.#beat(), ms);
  }

  #beat() {
    this.#heartbeat = undefined;
    if (this.#state !== ServerWebSocket.OPEN) return;
    const half = this.#halfTimeout();
    const now = this.#clock.now();
    if (this.#pingSentAt !== undefined && this.#lastReceived < this.#pingSentAt) {
      this.#enqueue(encodeClose(CLOSE_CODE.GOING_AWAY, PING_TIMEOUT_REASON));
      this.#finish(CLOSE_CODE.GOING_AWAY, PING_TIMEOUT_REASON, false);
      return;
    }
    this.#pingSentAt = undefined;
    const quiet = now - this.#lastReceived;
    if (quiet < half) {
      this.#armHeartbeat(half - quiet);
      return;
    }
    this.#pingSentAt = now;
    this.#enqueue(encodeFrame(OPCODE.PING, new Uint8Array(0)));
    this.#armHeartbeat(half);
  }

  #enqueue(frame: Uint8Array) {
    if (this.#connClosed) return;
    this.#queued += frame.length;
    if (this.#queued > MAX_UNSENT_BYTES) {
      // A peer that reads nothing must not make the server hold everything sent to it.
      this.#queue = [];
      this.#queued = 0;
      this.#finish(CLOSE_CODE.ABNORMAL, "too much unsent data", false);
      this.#closeConn();
      return;
    }
    this.#queue.push(frame);
    if (!this.#writing) void this.#writeLoop();
  }

  async #writeLoop() {
    this.#writing = true;
    const conn = this.#conn!;
    try {
      while (this.#queue.length > 0 && !this.#connClosed) {
        const frames = this.#queue;
        this.#queue = [];
        const bytes = frames.length === 1 ? frames[0]! : concatBytes(frames);
        for (let written = 0; written < bytes.length;) {
          written += await conn.write(bytes.subarray(written));
        }
        this.#queued -= bytes.length;
      }
    } catch {
      // The peer is gone: the read side ends the socket.
      this.#queue = [];
      this.#queued = 0;
      this.#closeConn();
    } finally {
      this.#writing = false;
    }
    if (this.#state === ServerWebSocket.CLOSED) this.#endConnection();
  }

  /** Ends the socket: state CLOSED, timers stopped, events; the connection ends after writes. */
  #finish(code: number, reason: string, wasClean: boolean) {
    if (this.#state === ServerWebSocket.CLOSED) return;
    this.#state = ServerWebSocket.CLOSED;
    if (this.#heartbeat !== undefined) this.#clock.clearTimeout(this.#heartbeat);
    if (this.#closeTimer !== undefined) this.#clock.clearTimeout(this.#closeTimer);
    this.#heartbeat = this.#closeTimer = undefined;
    // A peer that reads nothing cannot hold the connection open with unwritten frames.
    this.#linger = this.#clock.setTimeout(() => this.#closeConn(), LINGER_MS);
    if (!this.#writing) this.#endConnection();
    if (!wasClean) this.#emit(new Event("error"));
    this.#emit(new CloseEvent("close", { code, reason, wasClean }));
  }

  /**
   * Ends the connection after the last frame (a close frame) is written: the sending side is
   * shut, and what the peer still sends is read into the one read chunk and dropped until it
   * closes its side, `LINGER_MS` pass or `LINGER_BYTES` were dropped. Closing at once with unread bytes would make the
   * kernel reset the connection, and the peer could lose the close frame (and its code, 1009).
   */
  #endConnection() {
    if (this.#connClosed || this.#writeShut) return;
    this.#writeShut = true;
    try {
      void this.#conn?.closeWrite().catch(() => this.#closeConn());
    } catch {
      this.#closeConn();
    }
  }

  #closeConn() {
    if (this.#linger !== undefined) this.#clock.clearTimeout(this.#linger);
    this.#linger = undefined;
    if (this.#connClosed) return;
    this.#connClosed = true;
    try {
      this.#conn?.close();
    } catch { /* already closed */ }
  }

  /** Adds a listener for `open`, `message`, `error` or `close`. */
  addEventListener(type: string, listener: (event: never) => void): void {
    const list = this.#listeners.get(type) ?? [];
    list.push(listener as Listener);
    this.#listeners.set(type, list);
  }

  /** Removes a listener added by `addEventListener`. */
  removeEventListener(type: string, listener: (event: never) => void): void {
    const list = this.#listeners.get(type);
    if (list) this.#listeners.set(type, list.filter((l) => l !== listener));
  }

  #emit(event: Event) {
    const handler = event.type === "open"
      ? this.onopen
      : event.type === "message"
      ? this.onmessage
      : event.type === "error"
      ? this.onerror
      : this.onclose;
    const listeners = [
      ...(handler ? [handler as Listener] : []),
      ...(this.#listeners.get(event.type) ?? []),
    ];
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        (this.#options.onListenerError ?? console.error)(error);
        if (this.#state === ServerWebSocket.OPEN) {
          this.#enqueue(encodeClose(1011, "internal error"));
          this.#finish(1011, "internal error", false);
        }
      }
    }
  }
}
