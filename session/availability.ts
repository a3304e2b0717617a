/**
 * The availability feed of `/` (WebSocket): every subscriber gets `1` or `0` at once, then only
 * when availability changes, never the same value twice in a row.
 *
 * Broadcasting to thousands of sockets is done in slices that yield to the event loop in between,
 * so `/session` requests keep being answered during a broadcast. Each subscriber remembers the last
 * value it was sent; a pass sends the current value to those whose last value differs, so a change
 * during a pass can neither duplicate nor reorder values.
 *
 * A subscriber that sends `{"queue": {}}` is handed to the queue (session/queue.ts), which then
 * talks to it as well; its `1`/`0` go on as before. Closing the socket takes it out of the queue.
 *
 * @module
 */
import { type Clock, sleep } from "../shared/clock.ts";
import { closedByHeartbeat } from "../shared/heartbeat.ts";
import {
  formatAvailability,
  formatError,
  parseSubscriberMessage,
  ProtocolError,
} from "../shared/protocol.ts";
import type { Logger } from "../shared/log.ts";
import type { WaitQueue } from "./queue.ts";

/** Subscribers sent to per slice before yielding to the event loop. */
const SLICE = 1000;

/** What the hub uses of a server-side WebSocket (tests pass a small stand-in). */
export interface HubSocket {
  /** `WebSocket.CONNECTING`, `OPEN`, `CLOSING` or `CLOSED`. */
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(
    type: "open" | "message" | "close" | "error",
    listener: (event: unknown) => void,
  ): void;
}

/** The subscriber hub. */
export interface AvailabilityHub {
  /**
   * Registers an accepted socket; it is sent the current value once open. `address`: the client's
   * address, which the queue's per-address limit counts (default: `host`).
   */
  add(socket: HubSocket, host: string, address?: string): void;
  /** Sets the availability; subscribers are told if it changed. */
  set(available: boolean): void;
  /** Number of open subscribers. */
  readonly size: number;
  /** Closes every subscriber with `code` and resolves once they are closed (or after `waitMs`). */
  closeAll(code: number, reason: string, waitMs: number): Promise<void>;
}

interface Subscriber {
  readonly socket: HubSocket;
  last: "1" | "0" | undefined;
}

/**
 * Creates an empty hub; availability starts false. `clock` times the yields between slices and
 * the wait of `closeAll`; without `queue`, `{"queue": {}}` is ignored like any other message.
 */
export function createAvailabilityHub(
  logger: Logger,
  clock: Clock,
  queue?: WaitQueue<HubSocket>,
): AvailabilityHub {
  const subscribers = new Map<HubSocket, Subscriber>();
  let current: "1" | "0" = "0";
  let passRunning = false;
  let passAgain = false;

  const sendCurrent = (subscriber: Subscriber) => {
    if (subscriber.last === current || subscriber.socket.readyState !== WebSocket.OPEN) return;
    try {
      subscriber.socket.send(current);
      subscriber.last = current;
    } catch (error) {
      // A socket closing under us: its close event removes it.
      logger.debug({ err: error }, "sending availability failed");
    }
  };

  const pass = async () => {
    if (passRunning) {
      passAgain = true;
      return;
    }
    passRunning = true;
    try {
      do {
        passAgain = false;
        const snapshot = [...subscribers.values()];
        for (let i = 0; i < snapshot.length; i += SLICE) {
          if (i > 0) await sleep(clock, 0);
          for (const subscriber of snapshot.slice(i, i + SLICE)) sendCurrent(subscriber);
        }
      } while (passAgain);
    } finally {
      passRunning = false;
    }
  };

  return {
    add(socket, host, address = host) {
      const subscriber: Subscriber = { socket, last: undefined };
      socket.addEventListener("open", () => {
        subscribers.set(socket, subscriber);
        logger.info({ host, subscribers: subscribers.size }, `[${host}] New client`);
        sendCurrent(subscriber);
      });
      const send = (text: string) => socket.send(text);
      socket.addEventListener("message", (event) => {
        const data = event instanceof MessageEvent ? String(event.data) : "";
        let message;
        try {
          message = parseSubscriberMessage(data);
        } catch (error) {
          if (!(error instanceof ProtocolError)) throw error;
          logger.info({ host, address }, `[${host}] ${error.message}`);
          if (socket.readyState === WebSocket.OPEN) socket.send(formatError(error.message));
          return;
        }
        switch (message.kind) {
          case "queue":
            if (queue !== undefined && subscribers.has(socket)) {
              queue.join(socket, address, send);
              return;
            }
            break;
          case "other":
            break;
          default:
            message satisfies never;
        }
        logger.debug({ host }, `[${host}] Ignored client message: ${data.slice(0, 200)}`);
      });
      socket.addEventListener("close", (event) => {
        // Deno may report one close twice: only the first removes the subscriber.
        queue?.leave(socket);
        if (subscribers.delete(socket)) {
          const reason = closedByHeartbeat(event) ? "no answer to ping" : "closed";
          logger.info(
            { host, subscribers: subscribers.size, reason },
            `[${host}] Client disconnected`,
          );
        }
      });
      socket.addEventListener("error", () => {
        // The close event follows; nothing else to do.
      });
    },
    set(available) {
      const value = formatAvailability(available);
      if (value === current) return;
      current = value;
      logger.info({ available }, `availability changed to ${value}`);
      void pass();
    },
    get size() {
      return subscribers.size;
    },
    async closeAll(code, reason, waitMs) {
      const sockets = [...subscribers.keys()];
      const closed = sockets.map((socket) =>
        socket.readyState === WebSocket.CLOSED
          ? Promise.resolve()
          : new Promise<void>((resolve) => socket.addEventListener("close", () => resolve()))
      );
      for (const socket of sockets) {
        try {
          socket.close(code, reason);
        } catch { /* already closing */ }
      }
      const deadline = new AbortController();
      await Promise.race([Promise.all(closed), sleep(clock, waitMs, deadline.signal)]);
      deadline.abort();
    },
  };
}
