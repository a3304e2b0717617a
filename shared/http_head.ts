/**
 * The head of an HTTP/1.1 request (request line and header fields, RFC 9112), parsed once from
 * the bytes received: the end of the head is searched only in bytes not searched before, a head
 * longer than the limit is refused (431) without waiting for its end, and anything malformed is
 * refused (400) rather than guessed at.
 *
 * @example
 * ```ts
 * const result = parseHead(bytes, 0, bytes.length, 0, 16384);
 * if (result.kind === "head") console.log(result.head.method, result.head.target);
 * ```
 *
 * @module
 */

/** A parsed request head. Header names are lower-case; values are Latin-1 strings. */
export interface RequestHead {
  readonly method: string;
  /** The request target as sent (`/session?x=1`, or an absolute URL). */
  readonly target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minor: 0 | 1;
  /** Name, value, name, value, … in the order received. */
  readonly fields: readonly string[];
  readonly host: string | undefined;
  /** The `connection` field, lower-cased, or "". */
  readonly connection: string;
  /** The `content-length` field as a number; -1 when absent; NaN when invalid. */
  readonly contentLength: number;
  readonly transferEncoding: boolean;
  /** Bytes of the head, from `start`, final empty line included. */
  readonly length: number;
}

/** What the bytes received so far amount to. */
export type HeadResult =
  /** The head is not complete yet; search again from `scanned`. */
  | { readonly kind: "incomplete"; readonly scanned: number }
  | { readonly kind: "head"; readonly head: RequestHead }
  | { readonly kind: "error"; readonly status: 400 | 431 | 505; readonly reason: string };

const CR = 0x0d;
const LF = 0x0a;

/** `!#$%&'*+-.^_|~`, digits and letters: the characters of a token (method, field name). */
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN[c] = TOKEN[c + 0x20] = 1;

const ascii = new TextDecoder();

/** Latin-1 string of `bytes[start, end)`: every byte is one character, none is lost. */
export function latin1(bytes: Uint8Array, start: number, end: number): string {
  // Heads are ASCII in practice, and then UTF-8 decoding (native) gives the same string, faster
  // than building it from character codes.
  let plain = true;
  for (let i = start; i < end; i++) {
    if (bytes[i]! >= 0x80) {
      plain = false;
      break;
    }
  }
  if (plain) return ascii.decode(bytes.subarray(start, end));
  let out = "";
  for (let at = start; at < end; at += 4096) {
    out += String.fromCharCode.apply(
      null,
      bytes.subarray(at, Math.min(end, at + 4096)) as unknown as number[],
    );
  }
  return out;
}

/**
 * Parses the head in `bytes[start, end)`; `scanned` is where an earlier call stopped searching
 * for its end (pass `start` the first time). `limit` bounds the head's length in bytes.
 */
export function parseHead(
  bytes: Uint8Array,
  start: number,
  end: number,
  scanned: number,
  limit: number,
): HeadResult {
  // Blank lines before a request line are allowed (RFC 9112 §2.2) and skipped.
  let headStart = start;
  while (headStart + 1 < end && bytes[headStart] === CR && bytes[headStart + 1] === LF) {
    headStart += 2;
  }
  let headEnd = -1;
  const searchEnd = Math.min(end, start + limit);
  // Each LF is found by the native indexOf; only there are the three bytes before it checked.
  for (let i = Math.max(scanned, headStart + 3); i < searchEnd; i++) {
    i = bytes.indexOf(LF, i);
    if (i === -1 || i >= searchEnd) break;
    if (bytes[i - 1] === CR && bytes[i - 2] === LF && bytes[i - 3] === CR) {
      headEnd = i + 1;
      break;
    }
  }
  if (headEnd === -1) {
    if (end - start >= limit) {
      return { kind: "error", status: 431, reason: "request head too large" };
    }
    // Not a method's first character (a TLS hello on a plain port, say): no need to wait.
    const first = bytes[headStart];
    if (headStart < end && first !== CR && !(first! < 128 && TOKEN[first!] === 1)) {
      return bad("malformed request line");
    }
    return { kind: "incomplete", scanned: end };
  }
  return parseLines(bytes, headStart, headEnd - 2, headEnd - start);
}

function bad(reason: string): HeadResult {
  return { kind: "error", status: 400, reason };
}

/** Parses the lines of a complete head, `bytes[start, end)` ending with CRLF. */
function parseLines(bytes: Uint8Array, start: number, end: number, length: number): HeadResult {
  // The head is made a string once; its parts are slices of it (a slice copies nothing).
  const text = latin1(bytes, start, end);
  const part = (from: number, to: number) => text.slice(from - start, to - start);
  // Request line: method SP target SP HTTP/1.x CRLF
  let i = start;
  while (i < end && bytes[i]! < 128 && TOKEN[bytes[i]!] === 1) i++;
  if (i === start || bytes[i] !== 0x20) return bad("malformed request line");
  const method = part(start, i);
  const targetStart = ++i;
  while (i < end && bytes[i]! > 0x20 && bytes[i] !== 0x7f) i++;
  if (i === targetStart || bytes[i] !== 0x20) return bad("malformed request target");
  const target = part(targetStart, i);
  const versionStart = ++i;
  while (i < end && bytes[i] !== CR) i++;
  const version = part(versionStart, i);
  let minor: 0 | 1;
  if (version === "HTTP/1.1") minor = 1;
  else if (version === "HTTP/1.0") minor = 0;
  else if (/^HTTP\/\d\.\d$/.test(version)) {
    return { kind: "error", status: 505, reason: "HTTP version not supported" };
  } else return bad("malformed HTTP version");
  if (bytes[i + 1] !== LF) return bad("malformed request line");
  i += 2;

  const fields: string[] = [];
  let host: string | undefined;
  let connection = "";
  let contentLength = -1;
  let transferEncoding = false;
  while (i < end) {
    const nameStart = i;
    while (i < end && bytes[i]! < 128 && TOKEN[bytes[i]!] === 1) i++;
    // A line starting with whitespace (obsolete folding) or a space before the colon: refused.
    if (i === nameStart || bytes[i] !== 0x3a) return bad("malformed header field");
    const name = part(nameStart, i).toLowerCase();
    i++;
    while (bytes[i] === 0x20 || bytes[i] === 0x09) i++;
    const valueStart = i;
    let valueEnd = i;
    for (; i < end && bytes[i] !== CR; i++) {
      const c = bytes[i]!;
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) return bad("control character in a header");
      if (c !== 0x20 && c !== 0x09) valueEnd = i + 1;
    }
    if (bytes[i + 1] !== LF) return bad("malformed header field");
    i += 2;
    const value = part(valueStart, valueEnd);
    fields.push(name, value);
    switch (name) {
      case "host":
        if (host !== undefined) return bad("more than one host field");
        host = value;
        break;
      case "connection":
        connection = connection === ""
          ? value.toLowerCase()
          : `${connection}, ${value.toLowerCase()}`;
        break;
      case "content-length": {
        const n = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
        if (Number.isNaN(n) || (contentLength !== -1 && contentLength !== n)) {
          return bad("invalid content-length");
        }
        contentLength = n;
        break;
      }
      case "transfer-encoding":
        transferEncoding = true;
        break;
    }
  }
  if (minor === 1 && host === undefined) return bad("missing host field");
  return {
    kind: "head",
    head: {
      method,
      target,
      minor,
      fields,
      host,
      connection,
      contentLength,
      transferEncoding,
      length,
    },
  };
}

/** True when the comma-separated `list` (lower-case) contains `token`. */
export function hasToken(list: string, token: string): boolean {
  if (list === "") return false;
  if (list === token) return true;
  for (const part of list.split(",")) if (part.trim() === token) return true;
  return false;
}
