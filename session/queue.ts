/**
 * The queue of pages waiting for a simulation slot, on the availability feed `/`. A page that sent
 * `{"queue": {}}` is told `queue: <position>` (1 = next) each time its position changes, and
 * `session: <url>` when a slot has been granted for it; it then leaves the queue. A page that
 * leaves (socket closed) loses its place and each page behind it is told its new position once.
 *
 * Granting: `kick()` (a poll shows room, a page joins, or every `retryMs` while pages wait) asks
 * the injected `grant()` for a slot and hands it to the head of the queue, again and again until
 * `grant()` answers undefined. One grant is in flight at a time: a grant is a reservation of a few
 * milliseconds, far shorter than the time between two sessions ending, so running them one by one
 * costs no throughput, and it makes "strictly in order" and "one slot for one page" hold by
 * construction (the slot a grant returns goes to whoever is the head when it returns).
 *
 * Estimated wait: the session server does not see sessions end, but it sees grants. While pages
 * wait, the fleet is full, so each grant marks a slot that freed up: the gap between two grants
 * with pages waiting throughout is the time the fleet takes to free one slot. The estimate for
 * position p is p times the mean of the last {@link ESTIMATE_WINDOW} such gaps, rounded up to a
 * second; it is only given once one gap has been measured. It is a rate, not a promise: it is as
 * coarse as the polls that reveal free slots, and it knows nothing of sessions started elsewhere.
 *
 * @module
 */
import { type Clock, every, type TimerId } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import {
  formatQueuePosition,
  formatQueueRefusal,
  formatSessionGranted,
  type QueueRefusal,
} from "../shared/protocol.ts";

/** Reserves a simulation slot and answers its URL, or undefined when none is granted. */
export type { Grant } from "./grant.ts";
import type { Grant } from "./grant.ts";

/** Gaps between grants the estimate averages over. */
export const ESTIMATE_WINDOW = 10;

/** The limits of the queue, read at each join (so that a reloaded config applies at once). */
export interface QueueSettings {
  /** Most pages waiting at once; 0: the queue is off. */
  readonly max: number;
  /** Milliseconds a page may wait before `queue: timeout`; 0: no limit. */
  readonly timeoutMs: number;
  /** Places one client address may hold; 0: no limit. */
  readonly perAddress: number;
}

/** How a page's time in the queue ended (or why it never began). */
export type QueueOutcome = "granted" | "timeout" | "full" | "limit" | "left";

/** What the queue reports to `/metrics`. */
export interface QueueRecorder {
  outcome(outcome: QueueOutcome): void;
  /** A page was granted a slot after `seconds` in the queue. */
  waited(seconds: number): void;
}

/** Collaborators of the queue. */
export interface QueueDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly grant: Grant;
  readonly settings: () => QueueSettings;
  /** While pages wait, `grant()` is tried at least this often (ms). */
  readonly retryMs: number;
  readonly recorder?: QueueRecorder;
}

/** The queue; `K` identifies a page (its socket). */
export interface WaitQueue<K> {
  /** A page asks for a place; `send` delivers text to it. Asking again resends its position. */
  join(key: K, address: string, send: (text: string) => void): void;
  /** The page is gone: it loses its place (no-op when it holds none). */
  leave(key: K): void;
  /** A slot may be free: serve the head of the queue. */
  kick(): void;
  /** Pages waiting. */
  readonly length: number;
  /** When the page at the head of the queue joined (clock ms), while one waits. */
  readonly headJoinedAt: number | undefined;
  /** Estimated wait of `position` in seconds, when one gap between grants has been measured. */
  estimate(position: number): number | undefined;
  /** Clears every timer; pages keep their sockets (their owner closes them). */
  stop(): void;
}

interface Entry<K> {
  readonly key: K;
  readonly address: string;
  readonly send: (text: string) => void;
  readonly joinedAt: number;
  timer: TimerId | undefined;
  /** The position this page was last told. */
  told: number | undefined;
}

/** Creates an empty queue. */
export function createWaitQueue<K>(deps: QueueDeps): WaitQueue<K> {
  const { clock, logger } = deps;
  const entries: Entry<K>[] = [];
  const byKey = new Map<K, Entry<K>>();
  const perAddress = new Map<string, number>();
  const gaps: number[] = [];
  /** Time of the last grant after which pages still waited (the start of a measurable gap). */
  let lastGrantAt: number | undefined;
  let granting = false;
  let kickedWhileGranting = false;
  let stopRetries: (() => void) | undefined;
  let stopped = false;

  const estimate = (position: number): number | undefined => {
    if (gaps.length === 0) return undefined;
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    return Math.ceil((position * mean) / 1000);
  };

  const deliver = (entry: Entry<K>, text: string) => {
    try {
      entry.send(text);
    } catch (error) {
      // A socket closing under us: its close event makes the page leave.
      logger.debug({ err: error, address: entry.address }, "sending to a queued page failed");
    }
  };

  /** Tells each page from index `from` on its position, if it changed. */
  const tellPositions = (from: number) => {
    for (let i = from; i < entries.length; i++) {
      const entry = entries[i]!;
      const position = i + 1;
      if (entry.told === position) continue;
      entry.told = position;
      deliver(entry, formatQueuePosition(position, estimate(position)));
    }
  };

  const remove = (entry: Entry<K>) => {
    const index = entries.indexOf(entry);
    if (index < 0) return;
    entries.splice(index, 1);
    byKey.delete(entry.key);
    const held = (perAddress.get(entry.address) ?? 1) - 1;
    if (held > 0) perAddress.set(entry.address, held);
    else perAddress.delete(entry.address);
    if (entry.timer !== undefined) clock.clearTimeout(entry.timer);
    if (entries.length === 0) {
      lastGrantAt = undefined;
      stopRetries?.();
      stopRetries = undefined;
    }
    tellPositions(index);
  };

  const handOut = (entry: Entry<K>, url: string) => {
    const now = clock.now();
    if (lastGrantAt !== undefined) {
      gaps.push(now - lastGrantAt);
      if (gaps.length > ESTIMATE_WINDOW) gaps.shift();
    }
    const waited = (now - entry.joinedAt) / 1000;
    deps.recorder?.waited(waited);
    deps.recorder?.outcome("granted");
    logger.info(
      { address: entry.address, url, waited, queued: entries.length - 1 },
      "queue: granted",
    );
    // Told before the others move up, so that the page hears its grant first.
    deliver(entry, formatSessionGranted(url));
    remove(entry);
    lastGrantAt = entries.length > 0 ? now : undefined;
  };

  const serve = async () => {
    if (granting || stopped) {
      kickedWhileGranting = true;
      return;
    }
    granting = true;
    try {
      while (entries.length > 0 && !stopped) {
        kickedWhileGranting = false;
        let url: string | undefined;
        try {
          url = await deps.grant();
        } catch (error) {
          logger.error({ err: error }, "queue: granting a slot failed");
          return;
        }
        if (url === undefined) {
          if (kickedWhileGranting) continue;
          return;
        }
        const head = entries[0];
        if (head === undefined || stopped) {
          // The pages left while the slot was reserved: a lease expires unused.
          logger.warn({ url }, "queue: a slot was granted with nobody left waiting");
          return;
        }
        handOut(head, url);
      }
    } finally {
      granting = false;
    }
  };

  const refuse = (send: (text: string) => void, reason: QueueRefusal, address: string) => {
    try {
      send(formatQueueRefusal(reason));
    } catch { /* closing: nothing to tell */ }
    logger.info({ address, reason, queued: entries.length }, `queue: refused (${reason})`);
  };

  return {
    join(key, address, send) {
      const existing = byKey.get(key);
      if (existing !== undefined) {
        const position = entries.indexOf(existing) + 1;
        deliver(existing, formatQueuePosition(position, estimate(position)));
        return;
      }
      const settings = deps.settings();
      if (settings.max === 0) return refuse(send, "off", address);
      if (entries.length >= settings.max) {
        deps.recorder?.outcome("full");
        return refuse(send, "full", address);
      }
      const held = perAddress.get(address) ?? 0;
      if (settings.perAddress > 0 && held >= settings.perAddress) {
        deps.recorder?.outcome("limit");
        return refuse(send, "limit", address);
      }
      const entry: Entry<K> = {
        key,
        address,
        send,
        joinedAt: clock.now(),
        timer: undefined,
        told: undefined,
      };
      if (settings.timeoutMs > 0) {
        entry.timer = clock.setTimeout(() => {
          entry.timer = undefined;
          deps.recorder?.outcome("timeout");
          logger.info({ address }, "queue: timeout");
          deliver(entry, formatQueueRefusal("timeout"));
          remove(entry);
        }, settings.timeoutMs);
      }
      entries.push(entry);
      byKey.set(key, entry);
      perAddress.set(address, held + 1);
      logger.info({ address, position: entries.length }, "queue: joined");
      tellPositions(entries.length - 1);
      stopRetries ??= every(clock, deps.retryMs, () => void serve());
      void serve();
    },
    leave(key) {
      const entry = byKey.get(key);
      if (entry === undefined) return;
      deps.recorder?.outcome("left");
      logger.info({ address: entry.address }, "queue: left");
      remove(entry);
    },
    kick() {
      if (entries.length > 0) void serve();
    },
    get length() {
      return entries.length;
    },
    get headJoinedAt() {
      return entries[0]?.joinedAt;
    },
    estimate,
    stop() {
      stopped = true;
      stopRetries?.();
      stopRetries = undefined;
      for (const entry of entries) {
        if (entry.timer !== undefined) clock.clearTimeout(entry.timer);
        entry.timer = undefined;
      }
    },
  };
}
