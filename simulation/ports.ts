/**
 * Streaming-port allocation: Webots instances stream on `port+1` … `port+maxConnections`.
 *
 * Unlike the reference (bug #7), exhaustion yields `undefined` rather than port 0, and a port is
 * reserved synchronously at the moment it is handed out, so two clients never get the same one.
 * The bind test still cannot stop a foreign program from taking the port before Webots binds it.
 *
 * @module
 */

/** Ports for Webots instances. */
export interface PortPool {
  /** The lowest free port that can be bound, now reserved; `undefined` when none is left. */
  acquire(): number | undefined;
  /** Gives a port back; releasing a port that is not held does nothing. */
  release(port: number): void;
  /** How many ports are held. */
  readonly inUse: number;
}

/** A pool over `first` … `last` (inclusive); `canBind` tells whether a port is free on the host. */
export function createPortPool(
  first: number,
  last: number,
  canBind: (port: number) => boolean,
): PortPool {
  const held = new Set<number>();
  return {
    acquire() {
      for (let port = first; port <= last; port++) {
        if (held.has(port) || !canBind(port)) continue;
        held.add(port);
        return port;
      }
      return undefined;
    },
    release(port) {
      held.delete(port);
    },
    get inUse() {
      return held.size;
    },
  };
}

/** Whether a TCP listener can be opened on `0.0.0.0:port` right now (it is closed at once). */
export function canBindPort(port: number): boolean {
  try {
    Deno.listen({ hostname: "0.0.0.0", port, transport: "tcp" }).close();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse || error instanceof Deno.errors.PermissionDenied) {
      return false;
    }
    throw error;
  }
}
