/**
 * A single-consumer queue of output lines with a bounded buffer that drops the lines that do not
 * matter first.
 *
 * Up to `maxLines` unread lines (and `maxChars` characters: a line may be 64 KiB) are buffered as
 * they come. Beyond that, while the consumer lags
 * (a burst of output pushed in one go), lines are sorted by what the caller's `classify` says:
 * - `other` lines are dropped;
 * - `activity` lines are coalesced: one is kept after any line that is not itself activity, the
 *   rest of the run is dropped (the consumer only needs to know activity happened);
 * - `keep` lines (for Webots: `open`, the mode lines, and — always — the first activity line,
 *   which is the readiness line from R2022b on) are kept.
 * Kept and coalesced lines beyond `maxLines` are themselves bounded by `maxExtraLines`, so the
 * buffer never holds more than `maxLines + maxExtraLines` lines nor much more than `2 × maxChars`
 * characters: reaching that takes more than
 * `maxExtraLines / 2` mode changes unread at once, which Webots does not print (one per change
 * of simulation mode); past it even `keep` lines are dropped, and counted.
 *
 * Drops are reported once per overflow, through `onDropped`, when the consumer has caught up (or
 * the output ended). Every operation is O(1) amortised, so a burst costs time linear in its size.
 *
 * @module
 */

/** How the queue treats a line once its buffer is full. */
export type LineKind = "keep" | "activity" | "other";

/** Lines dropped during one overflow. */
export interface DroppedLines {
  readonly other: number;
  readonly activity: number;
  readonly keep: number;
}

/** Options of a `LineQueue`. */
export interface LineQueueOptions {
  readonly classify: (line: string) => LineKind;
  /** Unread lines buffered as they come (default `MAX_BUFFERED_LINES`). */
  readonly maxLines?: number;
  /** Characters buffered as they come (default `MAX_BUFFERED_CHARS`). */
  readonly maxChars?: number;
  /** `keep` and coalesced activity lines buffered beyond `maxLines` (default `MAX_EXTRA_LINES`). */
  readonly maxExtraLines?: number;
  /** Called once per overflow, when the buffer has been read empty or the output ended. */
  readonly onDropped?: (dropped: DroppedLines) => void;
}

/** Unread lines kept per process before lines that do not matter are dropped. */
export const MAX_BUFFERED_LINES = 10_000;

/** Characters of unread lines kept before lines that do not matter are dropped. */
export const MAX_BUFFERED_CHARS = 4 * 1024 * 1024;

/** Lines that matter (and one activity line after each) kept beyond `MAX_BUFFERED_LINES`. */
export const MAX_EXTRA_LINES = 10_000;

/** Lines of a process, read by one consumer; ends once `end()` is called and all is read. */
export class LineQueue implements AsyncIterable<string> {
  readonly #classify: (line: string) => LineKind;
  readonly #maxLines: number;
  readonly #maxExtra: number;
  readonly #maxChars: number;
  readonly #onDropped: ((dropped: DroppedLines) => void) | undefined;
  #items: (string | undefined)[] = [];
  #head = 0;
  #chars = 0;
  #lastKind: LineKind | undefined;
  #seenActivity = false;
  #dropped = { other: 0, activity: 0, keep: 0 };
  #ended = false;
  #abandoned = false;
  #waiting: ((result: IteratorResult<string>) => void) | undefined;

  constructor(options: LineQueueOptions) {
    this.#classify = options.classify;
    this.#maxLines = options.maxLines ?? MAX_BUFFERED_LINES;
    this.#maxExtra = options.maxExtraLines ?? MAX_EXTRA_LINES;
    this.#maxChars = options.maxChars ?? MAX_BUFFERED_CHARS;
    this.#onDropped = options.onDropped;
  }

  /** Unread lines in the buffer. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Characters of the unread lines. */
  get chars(): number {
    return this.#chars;
  }

  /** Adds a line (dropped silently once the consumer has stopped listening). */
  push(line: string): void {
    if (this.#abandoned) return;
    let kind = this.#classify(line);
    if (kind === "activity") {
      if (!this.#seenActivity) kind = "keep";
      this.#seenActivity = true;
    }
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      waiting({ value: line, done: false });
      return;
    }
    if (this.size < this.#maxLines && this.#chars < this.#maxChars) {
      return this.#append(line, kind);
    }
    if (kind === "other") {
      this.#dropped.other++;
    } else if (kind === "activity" && this.#lastKind === "activity") {
      this.#dropped.activity++;
    } else if (
      this.size < this.#maxLines + this.#maxExtra && this.#chars < 2 * this.#maxChars
    ) {
      this.#append(line, kind);
    } else {
      this.#dropped[kind]++;
    }
  }

  /** No more lines will come. */
  end(): void {
    this.#ended = true;
    this.#reportDrops();
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<string> {
    return {
      next: () => {
        const line = this.#shift();
        if (line !== undefined) return Promise.resolve({ value: line, done: false });
        if (this.#ended || this.#abandoned) {
          return Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve) => this.#waiting = resolve);
      },
      return: () => {
        // The consumer stopped listening; the pipes are still drained but what comes is dropped.
        this.#abandoned = true;
        this.#items = [];
        this.#head = 0;
        this.#chars = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  #append(line: string, kind: LineKind): void {
    this.#items.push(line);
    this.#chars += line.length;
    this.#lastKind = kind;
  }

  #shift(): string | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const line = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head++;
    this.#chars -= line?.length ?? 0;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
      this.#lastKind = undefined;
      this.#reportDrops();
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      // Amortised O(1): the read part is released once it is half the array.
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return line;
  }

  #reportDrops(): void {
    const dropped = this.#dropped;
    if (dropped.other + dropped.activity + dropped.keep === 0) return;
    this.#dropped = { other: 0, activity: 0, keep: 0 };
    if (!this.#abandoned) this.#onDropped?.(dropped);
  }
}
