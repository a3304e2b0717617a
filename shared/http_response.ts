/**
 * HTTP/1.1 response bytes: the status line and header fields of a web `Response`, and prepared
 * answers whose bytes are built once per body (and per second, for the `date` field) instead of
 * once per request: `/session` and `/load` are answered that way.
 *
 * @module
 */

const encoder = new TextEncoder();

const REASONS: Readonly<Record<number, string>> = {
  101: "Switching Protocols",
  200: "OK",
  204: "No Content",
  301: "Moved Permanently",
  302: "Found",
  304: "Not Modified",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/** `HTTP/1.1 <status> <reason>\r\n`. */
export function statusLine(status: number): string {
  return `HTTP/1.1 ${status} ${REASONS[status] ?? "Unknown"}\r\n`;
}

/** Fields the engine writes itself; a handler's own values for them are not used. */
const ENGINE_FIELDS = new Set(["content-length", "transfer-encoding", "connection", "date"]);

/** The header lines of `headers`, minus the fields the engine writes, each ending in CRLF. */
export function headerLines(headers: Headers): string {
  let out = "";
  for (const [name, value] of headers) {
    if (!ENGINE_FIELDS.has(name)) out += `${name}: ${value}\r\n`;
  }
  return out;
}

/** True for statuses whose responses never have a body (nor a content-length). */
export function bodyless(status: number): boolean {
  return status < 200 || status === 204 || status === 304;
}

/** The `date` field, rebuilt once per second of `now`. */
export class DateField {
  #second = -1;
  #line = "";

  /** `date: <IMF-fixdate>\r\n` for `now` (ms since the epoch). */
  line(now: number): string {
    const second = Math.floor(now / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#line = `date: ${new Date(second * 1000).toUTCString()}\r\n`;
    }
    return this.#line;
  }

  /** The second of the last `line` call. */
  get second(): number {
    return this.#second;
  }
}

/** An answer serialized once: what the engine writes for a response built by `prepared`. */
export class PreparedAnswer {
  readonly #prefix: string;
  readonly #body: Uint8Array;
  #second = -1;
  #bytes: Uint8Array = new Uint8Array(0);
  #headLength = 0;

  constructor(status: number, headers: Headers, body: Uint8Array) {
    this.#prefix = statusLine(status) + headerLines(headers) +
      (bodyless(status) ? "" : `content-length: ${body.length}\r\n`);
    this.#body = bodyless(status) ? new Uint8Array(0) : body;
  }

  /**
   * The bytes to write: head and body, or the head alone (HEAD). Serialized again only when the
   * second of the `date` field changed.
   */
  bytes(date: DateField, now: number, withBody: boolean): Uint8Array {
    const line = date.line(now);
    if (date.second !== this.#second) {
      this.#second = date.second;
      const head = encoder.encode(this.#prefix + line + "\r\n");
      this.#bytes = new Uint8Array(head.length + this.#body.length);
      this.#bytes.set(head);
      this.#bytes.set(this.#body, head.length);
      this.#headLength = head.length;
    }
    return withBody ? this.#bytes : this.#bytes.subarray(0, this.#headLength);
  }
}

/** Responses handed out with their prepared bytes (each a clone of one prototype). */
const PREPARED = new WeakMap<Response, PreparedAnswer>();

/** The prepared bytes of `response`, if it was made by `preparedResponses`. */
export function preparedAnswerOf(response: Response): PreparedAnswer | undefined {
  return PREPARED.get(response);
}

/**
 * Answers of a route whose body changes rarely (`/session` between polls, `/load` between
 * snapshots). Each call returns a `Response` (a clone of one built when the body changed: handlers
 * and in-process tests see an ordinary response), and the engine writes the bytes serialized
 * when the body changed instead of serializing the response again.
 */
export function preparedResponses(init: ResponseInit): (body: string) => Response {
  let lastBody: string | undefined;
  let prototype: Response | undefined;
  let answer: PreparedAnswer | undefined;
  return (body) => {
    if (prototype === undefined || body !== lastBody) {
      lastBody = body;
      prototype = new Response(body, init);
      answer = new PreparedAnswer(prototype.status, prototype.headers, encoder.encode(body));
    }
    const response = prototype.clone();
    PREPARED.set(response, answer!);
    return response;
  };
}
