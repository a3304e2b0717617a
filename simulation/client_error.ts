/**
 * The error type whose message may be shown to the browser as `error: <message>`.
 *
 * @module
 */

/** An error whose message is safe and useful to show the browser as `error: <message>`. */
export class ClientError extends Error {
  override name = "ClientError";
}

/**
 * A failure of this server rather than of the browser's request (a full or read-only disk),
 * already logged once where it was found: each refused session logs it at debug level only.
 */
export class UnavailableError extends ClientError {
  override name = "UnavailableError";
}

/** Every simulation slot of the server is taken. */
export class NoSlotError extends ClientError {
  override name = "NoSlotError";
}
