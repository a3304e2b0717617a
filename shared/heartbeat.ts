/**
 * The WebSocket heartbeat of both servers' browser sockets (`/client` and the session server's
 * `/`): a browser that vanishes without closing its connection (sleep, cable pulled, a proxy that
 * drops the connection silently) must not keep its Webots or its subscription forever.
 *
 * The sockets of the shared engine (websocket.ts) do it: with `heartbeatTimeout: T` a socket that
 * has received nothing (no message, no pong) for T/2 seconds is sent a ping; if still nothing has
 * come back T/2 later, it is sent a close frame with code 1001 and reason
 * `No response from ping frame.` (the reason Deno's own sockets gave), the connection is dropped,
 * and `error` then `close` (`wasClean: false`, code 1001) are dispatched. A peer that answers
 * pings (every browser does, below any script) is never closed. `T = 0` turns it off.
 *
 * @module
 */
import type { KeySpec } from "./config.ts";
import { PING_TIMEOUT_REASON } from "./websocket.ts";

/** The config key `heartbeatTimeout`, with the consequence of a close on this server. */
export function heartbeatTimeoutKey(consequence: string) {
  return {
    type: "number",
    default: 30,
    min: 0,
    check: (value: unknown) =>
      typeof value === "number" && value > 0 && value < 1
        ? "must be 0 (off) or at least 1 second"
        : undefined,
    doc:
      `Pings every browser socket that has sent nothing for half this many seconds; one that does not answer within the other half is closed, ${consequence}. 0: no pings.`,
  } as const satisfies KeySpec;
}

/** True for the close event of a socket the heartbeat closed (its peer did not answer a ping). */
export function closedByHeartbeat(event: unknown): boolean {
  return event instanceof CloseEvent && event.code === 1001 && !event.wasClean &&
    event.reason === PING_TIMEOUT_REASON;
}
