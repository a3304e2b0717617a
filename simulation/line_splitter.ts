/**
 * Splits a byte stream into text lines in time proportional to the bytes received.
 *
 * Each chunk is scanned once for `\n`; the pending partial line is kept as a list of byte pieces
 * and decoded once, when its line ends, so a line without a newline costs nothing per chunk
 * beyond storing (or discarding) that chunk. A line longer than `maxLineBytes` is cut: its first
 * `maxLineBytes` bytes (backed off to a whole UTF-8 character) are kept and emitted when the line
 * ends; the rest is discarded as it arrives and reported once through `onCut`. The kept head is
 * emitted rather than dropped because it is what an operator needs in the log (and a cut line
 * is never a line the session acts on: those are a few bytes long).
 *
 * ```ts
 * const splitter = new LineSplitter();
 * splitter.push(new TextEncoder().encode("open\r\npa")); // ["open"]
 * splitter.push(new TextEncoder().encode("use\n")); // ["pause"]
 * ```
 *
 * @module
 */

/** Longest line kept, in bytes; the rest of a longer line is discarded. */
export const MAX_LINE_BYTES = 64 * 1024;

/** A line that was cut because it was longer than the cap. */
export interface CutLine {
  /** Bytes kept (the emitted head of the line). */
  readonly keptBytes: number;
  /** Bytes discarded (the rest of the line, without its `\n`). */
  readonly droppedBytes: number;
}

/** Options of a `LineSplitter`. */
export interface LineSplitterOptions {
  /** The cap on a line's length in bytes (default `MAX_LINE_BYTES`). */
  readonly maxLineBytes?: number;
  /** Called once per cut line, when the line ends. */
  readonly onCut?: (cut: CutLine) => void;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/** Turns chunks of UTF-8 bytes into lines without their `\n` or `\r\n`. */
export class LineSplitter {
  readonly #max: number;
  readonly #onCut: ((cut: CutLine) => void) | undefined;
  readonly #decoder = new TextDecoder();
  #pieces: Uint8Array[] = [];
  #pendingBytes = 0;
  #droppedBytes = 0;
  #scannedBytes = 0;

  constructor(options: LineSplitterOptions = {}) {
    this.#max = options.maxLineBytes ?? MAX_LINE_BYTES;
    this.#onCut = options.onCut;
  }

  /** Bytes examined so far: each received byte is scanned exactly once. */
  get scannedBytes(): number {
    return this.#scannedBytes;
  }

  /** Bytes of the current, unfinished line held in memory (never more than the cap). */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Takes the next chunk; returns the lines it completes. */
  push(chunk: Uint8Array): string[] {
    const lines: string[] = [];
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, start);
      const end = newline < 0 ? chunk.length : newline;
      this.#scannedBytes += (newline < 0 ? end : end + 1) - start;
      this.#keep(chunk.subarray(start, end));
      if (newline < 0) break;
      lines.push(this.#finishLine());
      start = newline + 1;
    }
    return lines;
  }

  /** Ends the input: returns the last line if it had no newline. */
  end(): string[] {
    if (this.#pendingBytes === 0 && this.#droppedBytes === 0) return [];
    return [this.#finishLine()];
  }

  #keep(part: Uint8Array): void {
    if (part.length === 0) return;
    const room = this.#max - this.#pendingBytes;
    const kept = part.length <= room ? part : part.subarray(0, room);
    this.#droppedBytes += part.length - kept.length;
    if (kept.length === 0) return;
    // A copy: the caller may reuse its buffer, and a small piece must not pin a large chunk.
    this.#pieces.push(kept.slice());
    this.#pendingBytes += kept.length;
  }

  #finishLine(): string {
    let bytes = concat(this.#pieces, this.#pendingBytes);
    let dropped = this.#droppedBytes;
    if (dropped === 0) {
      if (bytes.at(-1) === CARRIAGE_RETURN) bytes = bytes.subarray(0, -1);
    } else {
      const whole = wholeCharacters(bytes);
      dropped += bytes.length - whole;
      bytes = bytes.subarray(0, whole);
    }
    this.#pieces = [];
    this.#pendingBytes = 0;
    this.#droppedBytes = 0;
    if (dropped > 0) this.#onCut?.({ keptBytes: bytes.length, droppedBytes: dropped });
    return this.#decoder.decode(bytes);
  }
}

function concat(pieces: readonly Uint8Array[], total: number): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const piece of pieces) {
    out.set(piece, offset);
    offset += piece.length;
  }
  return out;
}

/** Length of the longest prefix of `bytes` that does not end inside a UTF-8 character. */
function wholeCharacters(bytes: Uint8Array): number {
  // Find the start of the last character (at most 3 continuation bytes back).
  let lead = bytes.length - 1;
  while (lead >= 0 && lead > bytes.length - 4 && (bytes[lead]! & 0xc0) === 0x80) lead--;
  if (lead < 0) return bytes.length;
  const byte = bytes[lead]!;
  const size = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
  return lead + size <= bytes.length ? bytes.length : lead;
}
