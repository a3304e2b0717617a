/**
 * The WebSocket heartbeat of both servers' browser sockets (`/client` and the session server's
 * `/`): a browser that vanishes without closing its connection (sleep, cable pulled, a proxy that
 * drops the connection silently) must not keep its Webots or its subscription forever.
 *
 * Deno does it itself (ext/websocket, checked against Deno 2.9.6 by experiment): with
 * `idleTimeout: T` a server socket that has received nothing (no message, no pong) for T/2
 * seconds is sent a ping; if still nothing has come back T/2 later, Deno sends a close frame with
 * code 1001, reason `No response from ping frame.`, and dispatches `error` then `close`
 * (`wasClean: false`, code 1001). A peer that answers pings (every browser does, below any
 * script) is never closed. `idleTimeout: 0` turns it off; leaving it out means 30 s in
 * Deno 2.9.6 (older Deno sources say 120).
 *
 * Beware: after such a close Deno may dispatch a second `close` event (code 1005) for the same
 * socket, so close handlers must be idempotent (both servers' are).
 *
 * @module
 */
import type { KeySpec } from "./config.ts";

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

/** Upgrades a request to a WebSocket pinged and closed per `heartbeatTimeout` seconds (0: off). */
export function upgradeWithHeartbeat(
  request: Request,
  heartbeatTimeout: number,
): Deno.WebSocketUpgrade {
  return Deno.upgradeWebSocket(request, { idleTimeout: heartbeatTimeout });
}

/** True for the close event of a socket the heartbeat closed (its peer did not answer a ping). */
export function closedByHeartbeat(event: unknown): boolean {
  return event instanceof CloseEvent && event.code === 1001 && !event.wasClean;
}
