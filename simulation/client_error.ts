/**
 * The error type whose message may be shown to the browser as `error: <message>`.
 *
 * @module
 */

/** An error whose message is safe and useful to show the browser as `error: <message>`. */
export class ClientError extends Error {
  override name = "ClientError";
}

/** Every simulation slot of the server is taken. */
export class NoSlotError extends ClientError {
  override name = "NoSlotError";
}
