/**
 * Whether a browser's start may go ahead now: not while the server shuts down or drains, and not
 * beyond `maxSessionsPerAddress` simulations from one client address. The refusal is the text the
 * browser gets after `error: `.
 *
 * @module
 */
import type { ClientSession } from "./client_session.ts";

/** What admission reads. */
export interface AdmissionDeps {
  /** The server's live sessions. */
  readonly sessions: () => Iterable<ClientSession>;
  /** Simulations one address may hold at once; 0: no limit. */
  readonly maxSessionsPerAddress: number;
  readonly shuttingDown: () => boolean;
  readonly draining: () => boolean;
}

/** A session holding (or preparing) a simulation counts towards its address's limit. */
function holdsSlot(session: ClientSession): boolean {
  return session.state !== "waiting" && session.state !== "closed";
}

/** The admission check `ClientSession` calls on a start: the refusal, or undefined. */
export function createAdmission(
  deps: AdmissionDeps,
): (session: ClientSession) => string | undefined {
  const limit = deps.maxSessionsPerAddress;
  return (session) => {
    if (deps.shuttingDown()) return "the server is shutting down: no new simulations";
    if (deps.draining()) return "the server is draining: no new simulations";
    if (limit > 0) {
      let count = 0;
      for (const other of deps.sessions()) {
        if (other !== session && other.address === session.address && holdsSlot(other)) count++;
      }
      if (count >= limit) return `too many simulations from your address (at most ${limit})`;
    }
    return undefined;
  };
}
