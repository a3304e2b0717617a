/**
 * WebSocket frames (RFC 6455), server side: an incremental parser of what a client sends and the
 * encoding of what a server sends.
 *
 * The parser is fed read chunks as they come and never holds more than one message of at most
 * `maxMessageBytes`: a frame's declared length is checked against the limit (and against what the
 * message's earlier fragments already used) as soon as its header is read, before any of its
 * payload is kept, so an oversized message fails with 1009 while its first bytes are still in the
 * read chunk. Every protocol error ends the parse with the close code to send (1002, 1007, 1009).
 *
 * @example
 * ```ts
 * const parser = new FrameParser(65536);
 * for (const event of parser.push(chunk)) if (event.kind === "text") console.log(event.data);
 * ```
 *
 * @module
 */
import { concatBytes } from "./bytes.ts";

export const OPCODE = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

/** Close codes this side sends. */
export const CLOSE_CODE = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  NO_STATUS: 1005,
  ABNORMAL: 1006,
  INVALID_DATA: 1007,
  TOO_BIG: 1009,
} as const;

/** What a chunk of client bytes amounted to, in order. */
export type FrameEvent =
  | { readonly kind: "text"; readonly data: string }
  | { readonly kind: "binary"; readonly data: Uint8Array }
  | { readonly kind: "ping"; readonly payload: Uint8Array }
  | { readonly kind: "pong"; readonly payload: Uint8Array }
  /** The client's close frame; `code` is undefined when it carried none. */
  | { readonly kind: "close"; readonly code: number | undefined; readonly reason: string }
  /** A protocol violation: close with `code`, drop the connection, parse nothing more. */
  | { readonly kind: "fail"; readonly code: number; readonly reason: string };

const fatalDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/** True for a close code a peer may send (RFC 6455 §7.4, IANA registry). */
function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

/** Incremental parser of client frames with a message size limit. */
export class FrameParser {
  readonly #max: number;
  /** Header bytes of the frame being read (at most 14). */
  readonly #header = new Uint8Array(14);
  #headerLength = 0;
  /** Payload of the frame being read, allocated once its length passed the checks. */
  #payload: Uint8Array | undefined;
  #payloadFilled = 0;
  #opcode = 0;
  #fin = false;
  #mask = new Uint8Array(4);
  /** Opcode of the fragmented message in progress (TEXT or BINARY), or 0. */
  #messageOpcode = 0;
  #fragments: Uint8Array[] = [];
  #messageBytes = 0;
  #failed = false;

  /** `maxMessageBytes`: the largest message (all fragments together) accepted. */
  constructor(maxMessageBytes: number) {
    this.#max = maxMessageBytes;
  }

  /** Bytes held for frames and messages not yet complete (never more than the limit + 139). */
  get heldBytes(): number {
    return this.#headerLength + (this.#payload?.length ?? 0) + this.#messageBytes;
  }

  /** Parses a chunk; after a `fail` event everything else is ignored. */
  push(chunk: Uint8Array): FrameEvent[] {
    const events: FrameEvent[] = [];
    let offset = 0;
    while (!this.#failed && offset < chunk.length) {
      if (this.#payload === undefined) {
        // Take header bytes one need at a time: 2, then the extended length, then the mask.
        const needed = this.#headerNeeded();
        const take = Math.min(needed - this.#headerLength, chunk.length - offset);
        this.#header.set(chunk.subarray(offset, offset + take), this.#headerLength);
        this.#headerLength += take;
        offset += take;
        const failure = this.#checkHeader();
        if (failure !== undefined) {
          this.#failed = true;
          events.push(failure);
          break;
        }
        if (this.#headerLength === this.#headerNeeded() && this.#headerLength >= 2) {
          this.#startPayload();
          if (this.#payload!.length === 0) this.#endFrame(events);
        }
        continue;
      }
      const payload = this.#payload;
      const take = Math.min(payload.length - this.#payloadFilled, chunk.length - offset);
      const mask = this.#mask;
      const start = this.#payloadFilled;
      for (let i = 0; i < take; i++) {
        payload[start + i] = chunk[offset + i]! ^ mask[(start + i) & 3]!;
      }
      this.#payloadFilled += take;
      offset += take;
      if (this.#payloadFilled === payload.length) this.#endFrame(events);
    }
    return events;
  }

  /** Header length as far as the bytes read so far tell it. */
  #headerNeeded(): number {
    if (this.#headerLength < 2) return 2;
    const length7 = this.#header[1]! & 0x7f;
    return 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + 4;
  }

  /** The declared payload length, once the extended length bytes are in; else undefined. */
  #declaredLength(): number | undefined {
    const h = this.#header;
    const length7 = h[1]! & 0x7f;
    if (length7 < 126) return length7;
    if (length7 === 126) return this.#headerLength >= 4 ? (h[2]! << 8) | h[3]! : undefined;
    if (this.#headerLength < 10) return undefined;
    const high = ((h[2]! << 24) | (h[3]! << 16) | (h[4]! << 8) | h[5]!) >>> 0;
    const low = ((h[6]! << 24) | (h[7]! << 16) | (h[8]! << 8) | h[9]!) >>> 0;
    return high * 2 ** 32 + low;
  }

  /** Checks what the header bytes read so far allow to check; a failure event or undefined. */
  #checkHeader(): FrameEvent | undefined {
    if (this.#headerLength < 2) return undefined;
    const h = this.#header;
    const opcode = h[0]! & 0x0f;
    const fin = (h[0]! & 0x80) !== 0;
    const fail = (code: number, reason: string): FrameEvent => ({ kind: "fail", code, reason });
    if ((h[0]! & 0x70) !== 0) return fail(CLOSE_CODE.PROTOCOL_ERROR, "reserved bits set");
    if ((h[1]! & 0x80) === 0) return fail(CLOSE_CODE.PROTOCOL_ERROR, "unmasked client frame");
    const control = opcode >= 0x8;
    if (control) {
      if (opcode > OPCODE.PONG) return fail(CLOSE_CODE.PROTOCOL_ERROR, "unknown opcode");
      if (!fin) return fail(CLOSE_CODE.PROTOCOL_ERROR, "fragmented control frame");
      if ((h[1]! & 0x7f) > 125) return fail(CLOSE_CODE.PROTOCOL_ERROR, "control frame too long");
      return undefined;
    }
    if (opcode > OPCODE.BINARY) return fail(CLOSE_CODE.PROTOCOL_ERROR, "unknown opcode");
    if (opcode === OPCODE.CONTINUATION && this.#messageOpcode === 0) {
      return fail(CLOSE_CODE.PROTOCOL_ERROR, "continuation without a message");
    }
    if (opcode !== OPCODE.CONTINUATION && this.#messageOpcode !== 0) {
      return fail(CLOSE_CODE.PROTOCOL_ERROR, "new message inside a fragmented one");
    }
    if ((h[1]! & 0x7f) === 127 && this.#headerLength >= 3 && (h[2]! & 0x80) !== 0) {
      return fail(CLOSE_CODE.PROTOCOL_ERROR, "payload length out of range");
    }
    const length = this.#declaredLength();
    if (length !== undefined && this.#messageBytes + length > this.#max) {
      return fail(CLOSE_CODE.TOO_BIG, "message too big");
    }
    return undefined;
  }

  #startPayload() {
    const h = this.#header;
    this.#opcode = h[0]! & 0x0f;
    this.#fin = (h[0]! & 0x80) !== 0;
    const maskAt = this.#headerLength - 4;
    this.#mask = h.slice(maskAt, maskAt + 4);
    this.#payload = new Uint8Array(this.#declaredLength()!);
    this.#payloadFilled = 0;
  }

  #endFrame(events: FrameEvent[]) {
    const payload = this.#payload!;
    const opcode = this.#opcode;
    this.#payload = undefined;
    this.#headerLength = 0;
    switch (opcode) {
      case OPCODE.PING:
        events.push({ kind: "ping", payload });
        return;
      case OPCODE.PONG:
        events.push({ kind: "pong", payload });
        return;
      case OPCODE.CLOSE:
        events.push(this.#closeEvent(payload));
        return;
    }
    if (opcode !== OPCODE.CONTINUATION) this.#messageOpcode = opcode;
    // Empty fragments are not kept: endless ones would otherwise grow the list.
    if (payload.length > 0) this.#fragments.push(payload);
    this.#messageBytes += payload.length;
    if (!this.#fin) return;
    const data = this.#fragments.length === 1 ? this.#fragments[0]! : concatBytes(this.#fragments);
    const messageOpcode = this.#messageOpcode;
    this.#fragments = [];
    this.#messageBytes = 0;
    this.#messageOpcode = 0;
    if (messageOpcode === OPCODE.BINARY) {
      events.push({ kind: "binary", data });
      return;
    }
    try {
      events.push({ kind: "text", data: fatalDecoder.decode(data) });
    } catch {
      this.#failed = true;
      events.push({ kind: "fail", code: CLOSE_CODE.INVALID_DATA, reason: "invalid UTF-8" });
    }
  }

  #closeEvent(payload: Uint8Array): FrameEvent {
    if (payload.length === 0) return { kind: "close", code: undefined, reason: "" };
    const fail = (code: number, reason: string): FrameEvent => {
      this.#failed = true;
      return { kind: "fail", code, reason };
    };
    if (payload.length === 1) return fail(CLOSE_CODE.PROTOCOL_ERROR, "close payload of 1 byte");
    const code = (payload[0]! << 8) | payload[1]!;
    if (!isValidCloseCode(code)) return fail(CLOSE_CODE.PROTOCOL_ERROR, "invalid close code");
    try {
      return { kind: "close", code, reason: fatalDecoder.decode(payload.subarray(2)) };
    } catch {
      return fail(CLOSE_CODE.INVALID_DATA, "invalid UTF-8");
    }
  }
}

/** An unmasked frame (servers never mask), FIN set. */
export function encodeFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const length = payload.length;
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = new Uint8Array(headerLength + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) {
    frame[1] = length;
  } else if (length < 65536) {
    frame[1] = 126;
    frame[2] = length >> 8;
    frame[3] = length & 0xff;
  } else {
    frame[1] = 127;
    const view = new DataView(frame.buffer);
    view.setUint32(2, Math.floor(length / 2 ** 32));
    view.setUint32(6, length >>> 0);
  }
  frame.set(payload, headerLength);
  return frame;
}

/** A text frame. */
export function encodeText(text: string): Uint8Array {
  return encodeFrame(OPCODE.TEXT, encoder.encode(text));
}

/** A close frame with `code` and `reason` (cut to the 123 bytes a control frame leaves it). */
export function encodeClose(code: number | undefined, reason = ""): Uint8Array {
  if (code === undefined) return encodeFrame(OPCODE.CLOSE, new Uint8Array(0));
  let bytes = encoder.encode(reason);
  if (bytes.length > 123) {
    // Cut on a character boundary so that the reason stays valid UTF-8.
    let end = 123;
    while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
    bytes = bytes.subarray(0, end);
  }
  const payload = new Uint8Array(2 + bytes.length);
  payload[0] = code >> 8;
  payload[1] = code & 0xff;
  payload.set(bytes, 2);
  return encodeFrame(OPCODE.CLOSE, payload);
}
