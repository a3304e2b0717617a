/**
 * The messages the servers exchange with browsers and with Webots, parsed once at the edge into
 * typed unions, and the exact strings the Webots browser client depends on.
 *
 * @module
 */

/** Thrown when a message cannot be parsed; the message is sent back as `error: <message>`. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

// ---------------------------------------------------------------------------------------------
// Session server

/** The reply of `GET /session` when no simulation server is available. */
export const NO_SERVER_AVAILABLE = "Error: no simulation server available at the moment.";

/** The availability message sent on the session server's WebSocket. */
export function formatAvailability(available: boolean): "1" | "0" {
  return available ? "1" : "0";
}

/** A message a page sends on the session server's `/`: a queue request, or anything else. */
export type SubscriberMessage =
  | { readonly kind: "queue" }
  /** Not a queue request: logged and ignored, as every message was before the queue. */
  | { readonly kind: "other"; readonly text: string };

/**
 * Parses a message of the availability feed. `{"queue": {}}` asks for a place in the queue; a
 * JSON object whose `queue` is not an object is an error; any other text is `other`.
 */
export function parseSubscriberMessage(text: string): SubscriberMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: "other", text };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value) || !("queue" in value)) {
    return { kind: "other", text };
  }
  const queue = (value as Record<string, unknown>).queue;
  if (typeof queue !== "object" || queue === null || Array.isArray(queue)) {
    throw new ProtocolError('Cannot parse message: "queue" must be an object');
  }
  return { kind: "queue" };
}

/**
 * Why a page is not (or no longer) in the queue: `full` (`queueMax` pages wait), `limit` (its
 * address holds `queuePerAddress` places), `timeout` (it waited `queueTimeout` seconds), `off`
 * (`queueMax` is 0).
 */
export type QueueRefusal = "full" | "limit" | "timeout" | "off";

/** A page's place in the queue (1 = next), with the estimated wait in seconds when known. */
export function formatQueuePosition(position: number, waitSeconds?: number): string {
  return waitSeconds === undefined ? `queue: ${position}` : `queue: ${position} ~${waitSeconds}`;
}

/** Tells a page why it is not in the queue. */
export function formatQueueRefusal(reason: QueueRefusal): string {
  return `queue: ${reason}`;
}

/** Hands a queued page its simulation server: it opens `<url>/client` next. */
export function formatSessionGranted(url: string): string {
  return `session: ${url}`;
}

// ---------------------------------------------------------------------------------------------
// Browser → simulation server (`/client`)

/** The 9 fields of the legacy `init` message, in order. */
export interface InitFields {
  readonly host: string;
  readonly app: string;
  readonly world: string;
  readonly user1Id: string;
  readonly user1Name: string;
  readonly user1Authentication: string;
  readonly user2Id: string;
  readonly user2Name: string;
  readonly customData: string;
}

/** Streaming modes a browser may ask for. */
export type StreamMode = "x3d" | "mjpeg";

/** A message a browser sends on `/client`. */
export type ClientMessage =
  | { readonly kind: "init"; readonly init: InitFields }
  | { readonly kind: "start"; readonly url: string; readonly mode: StreamMode | undefined }
  | { readonly kind: "reset controller"; readonly path: string };

const INIT_KEYS = [
  "host",
  "app",
  "world",
  "user1Id",
  "user1Name",
  "user1Authentication",
  "user2Id",
  "user2Name",
  "customData",
] as const;

/**
 * Parses a `/client` text message. Dispatch follows the reference: the first of `init`,
 * `reset controller`, `start` present in the object wins.
 */
export function parseClientMessage(text: string): ClientMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProtocolError("Cannot parse message: not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError("Cannot parse message: expected a JSON object");
  }
  const message = value as Record<string, unknown>;
  if ("init" in message) {
    const init = message.init;
    if (
      !Array.isArray(init) || init.length !== INIT_KEYS.length ||
      !init.every((v) => typeof v === "string")
    ) {
      throw new ProtocolError(
        `Cannot parse message: "init" must be an array of ${INIT_KEYS.length} strings`,
      );
    }
    const fields = Object.fromEntries(INIT_KEYS.map((key, i) => [key, init[i]]));
    return { kind: "init", init: fields as unknown as InitFields };
  }
  if ("reset controller" in message) {
    const path = message["reset controller"];
    if (typeof path !== "string") {
      throw new ProtocolError('Cannot parse message: "reset controller" must be a string');
    }
    return { kind: "reset controller", path };
  }
  if ("start" in message) {
    const start = message.start;
    if (typeof start !== "object" || start === null || Array.isArray(start)) {
      throw new ProtocolError('Cannot parse message: "start" must be an object');
    }
    const { url, mode } = start as Record<string, unknown>;
    if (typeof url !== "string") {
      throw new ProtocolError('Cannot parse message: "start.url" must be a string');
    }
    if (mode !== undefined && mode !== "x3d" && mode !== "mjpeg") {
      throw new ProtocolError('Cannot parse message: "start.mode" must be "x3d" or "mjpeg"');
    }
    return { kind: "start", url, mode };
  }
  throw new ProtocolError(
    'Cannot parse message: expected one of "init", "start" or "reset controller"',
  );
}

// ---------------------------------------------------------------------------------------------
// Simulation server → browser

/** Tells the browser where Webots streams: `webots:ws://host:2001`. */
export function formatWebotsUrl(url: string): string {
  return `webots:${url}`;
}

/** Activity keep-alive forwarded from Webots. */
export const ACTIVITY = ".";

/** An error the newer Webots client shows before the socket closes. */
export function formatError(reason: string): string {
  return `error: ${reason}`;
}

/**
 * A step of the simulation's set-up, for current clients only. The R2023b client shows the text
 * under its progress bar (`message.substring(9)`, so exactly one space after the colon); its
 * percentage guess only knows Docker's output, so any progress figure belongs in the text.
 */
export function formatLoading(text: string): string {
  return `loading: ${text}`;
}

/**
 * The simulation's time limit, for current clients only: the R2023b client parses the number
 * after `shutdownTimeout: ` and warns the user 300 s before the end.
 */
export function formatShutdownTimeout(seconds: number): string {
  return `shutdownTimeout: ${seconds}`;
}

/** Acknowledges a `reset controller` request. */
export function formatResetController(path: string): string {
  return `reset controller: ${path}`;
}

// ---------------------------------------------------------------------------------------------
// Client generations

/**
 * The two contracts of the stock browser client. `r2021b`: the R2019b–R2021b client, which knows
 * `webots:`, `.`, `reset controller:`, `controller:`, `queue:` and logs anything else to its
 * console as unknown. `r2023`: the client of R2022a and later, which also knows `error:`; the
 * R2023 clients add `loading:` and `shutdownTimeout:` (R2022a/b log those two as unknown).
 */
export type ClientGeneration = "r2021b" | "r2023";

/** `clientProtocol` in the config: a fixed generation, or `auto` (`clientGeneration`). */
export type ClientProtocol = "auto" | ClientGeneration;

const CURRENT_START_URL = /^https:\/\/github\.com\/[^/]+\/[^/]+\/blob\//;

/**
 * The generation of the client that sent a simulation's first message. The R2022a+ client only
 * ever sends `start` with the `?url=https://github.com/…` value of its page (it looks for exactly
 * that prefix and sends nothing else), and `blob` URLs came with it (Webots PR #3977); the
 * R2021b client sends `init`, or `start` with its `?url=` value, documented as `webots://…` or
 * `file://…`. Anything that is not a GitHub blob URL is therefore taken as the older client:
 * when in doubt, silence.
 */
export function clientGeneration(
  message: Extract<ClientMessage, { kind: "init" | "start" }>,
): ClientGeneration {
  return message.kind === "start" && CURRENT_START_URL.test(message.url) ? "r2023" : "r2021b";
}

// ---------------------------------------------------------------------------------------------
// Webots stdout (with `monitorActivity`)

/** A line Webots prints on stdout that the simulation server acts upon. */
export type WebotsEvent =
  | { readonly kind: "open" }
  | { readonly kind: "activity" }
  | { readonly kind: "mode"; readonly running: boolean; readonly mode: WebotsRunMode }
  | { readonly kind: "other"; readonly line: string };

/** Run modes Webots reports when a web client changes them. */
export type WebotsRunMode = "pause" | "real-time" | "fast" | "step";

/** Classifies one line of Webots' stdout. */
export function parseWebotsLine(line: string): WebotsEvent {
  const trimmed = line.trim();
  if (trimmed.startsWith("open")) return { kind: "open" };
  if (trimmed === ".") return { kind: "activity" };
  switch (trimmed) {
    case "pause":
      return { kind: "mode", running: false, mode: "pause" };
    case "real-time":
    case "fast":
    case "step":
      return { kind: "mode", running: true, mode: trimmed };
  }
  return { kind: "other", line };
}

/**
 * The header of a simulation server's `/load` answer that names a state the number cannot:
 * `x-webots-state: draining` (the number is then 100). Stock session servers ignore it.
 */
export const LOAD_STATE_HEADER = "x-webots-state";
