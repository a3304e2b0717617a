/**
 * What a handler receives: a request with the shape of a web `Request` as far as the servers use
 * it (`method`, `url`, `headers`), so that in-process tests can pass a real `Request`. The engine's
 * own request builds its URL and its `Headers` only when they are read: `/session` reads the method
 * and the URL and nothing else, and a `Headers` costs more than the rest of such a request.
 *
 * @module
 */
import type { RequestHead } from "./http_head.ts";

/** The part of a web `Request` the handlers use; a real `Request` satisfies it. */
export interface HttpRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Headers;
}

/** Where a request came from; `Deno.ServeHandlerInfo` satisfies it. */
export interface ConnInfo {
  readonly remoteAddr: Deno.Addr;
}

/** A handler: synchronous routes answer without a promise. */
export type Handler = (
  request: HttpRequest,
  info: ConnInfo,
) => Response | Promise<Response>;

/** Takes over a connection after a 101 answer: its bytes from then on belong to the taker. */
export type TakeOver = (conn: Deno.Conn, leftover: Uint8Array) => void;

/** An upgrade a handler accepted: the answer it returned and who takes the connection. */
export interface Upgrade {
  readonly response: Response;
  readonly takeOver: TakeOver;
}

const ACCEPT_UPGRADE = Symbol("acceptUpgrade");

/** A request as the engine received it. */
export class IncomingRequest implements HttpRequest {
  readonly method: string;
  readonly #head: RequestHead;
  readonly #origin: string;
  #url: string | undefined;
  #headers: Headers | undefined;
  /** Set by `acceptUpgrade` when the handler upgrades the connection. */
  upgrade: Upgrade | undefined;

  /** `origin`: `http://host` or `https://host` when the request names no host. */
  constructor(head: RequestHead, scheme: "http" | "https", fallbackHost: string) {
    this.method = head.method;
    this.#head = head;
    this.#origin = `${scheme}://${head.host || fallbackHost}`;
  }

  get url(): string {
    if (this.#url === undefined) {
      const target = this.#head.target;
      this.#url = target.charCodeAt(0) === 0x2f /* / */ ? this.#origin + target : target;
    }
    return this.#url;
  }

  get headers(): Headers {
    if (this.#headers === undefined) {
      const headers = new Headers();
      const fields = this.#head.fields;
      for (let i = 0; i < fields.length; i += 2) headers.append(fields[i]!, fields[i + 1]!);
      this.#headers = headers;
    }
    return this.#headers;
  }

  /** HTTP/1.0 or 1.1, as `1.0` / `1.1`. */
  get httpVersion(): string {
    return `1.${this.#head.minor}`;
  }

  [ACCEPT_UPGRADE](upgrade: Upgrade): void {
    this.upgrade = upgrade;
  }
}

/**
 * Registers an upgrade on a request from the engine: once the handler returns `response`, the
 * engine writes it with status 101 and hands the connection to `takeOver`. Throws for any other
 * request (a plain `Request` in an in-process test cannot be upgraded).
 */
export function acceptUpgrade(request: HttpRequest, upgrade: Upgrade): void {
  if (!(request instanceof IncomingRequest)) {
    throw new TypeError("only a request received by the shared HTTP engine can be upgraded");
  }
  request[ACCEPT_UPGRADE](upgrade);
}
