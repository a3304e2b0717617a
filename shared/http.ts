/**
 * HTTP helpers both servers use: plain-text and HTML responses, CORS, HTML escaping, and a
 * handler wrapper that maps any thrown error to a 500 and logs it once.
 *
 * @module
 */
import type { Logger } from "./log.ts";
import type { ConnInfo, Handler, HttpRequest } from "./http_request.ts";
import { preparedResponses } from "./http_response.ts";

export type { ConnInfo, Handler, HttpRequest };

/** Headers the reference sends on `/session` (the Webots client fetches it cross-origin). */
export const CORS_HEADERS: Readonly<Record<string, string>> = {
  "access-control-allow-origin": "*",
  "access-control-allow-headers": "x-requested-with",
  "access-control-allow-methods": "POST, GET, OPTIONS",
};

/** A `text/plain` response. */
export function text(body: string, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  if (!headers.has("content-type")) headers.set("content-type", "text/plain; charset=utf-8");
  return new Response(body, { ...init, headers });
}

/** A `text/html` response. */
export function html(body: string, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  headers.set("content-type", "text/html; charset=utf-8");
  return new Response(body, { ...init, headers });
}

/** 404 for routes that do not exist. */
export function notFound(): Response {
  return text("Not found\n", { status: 404 });
}

/** 405 naming the methods a route accepts. */
export function methodNotAllowed(allow: string): Response {
  return text("Method not allowed\n", { status: 405, headers: { allow } });
}

/** True for the methods a read-only route answers. */
export function isGetOrHead(request: HttpRequest): boolean {
  return request.method === "GET" || request.method === "HEAD";
}

/** Wraps a read-only route: other methods than GET and HEAD get 405. */
export function getOnly<A extends unknown[]>(
  route: (request: HttpRequest, ...rest: A) => Response,
): (request: HttpRequest, ...rest: A) => Response {
  return (request, ...rest) =>
    isGetOrHead(request) ? route(request, ...rest) : methodNotAllowed("GET, HEAD");
}

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** True when the request asks for a WebSocket upgrade. */
export function isWebSocketUpgrade(request: HttpRequest): boolean {
  return request.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/**
 * Wraps a handler so that a thrown error (or a rejected promise) becomes a logged 500 and never
 * reaches the HTTP engine. A synchronous answer is passed on as it is: wrapping every answer in an async
 * function would cost each request a promise and a microtask.
 */
export function guard(logger: Logger, handler: Handler): Handler {
  const fail = (request: HttpRequest, error: unknown): Response => {
    logger.error({ method: request.method, url: request.url, err: error }, "request failed");
    return text("Internal server error\n", { status: 500 });
  };
  return (request, info) => {
    let answer: Response | Promise<Response>;
    try {
      answer = handler(request, info);
    } catch (error) {
      return fail(request, error);
    }
    return answer instanceof Response ? answer : answer.catch((error) => fail(request, error));
  };
}

/** True for the characters a URL path keeps as they are: `A-Z a-z 0-9 - _ ~ /`. */
function isPlainPathChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x2f && c <= 0x39) ||
    c === 0x2d || c === 0x5f || c === 0x7e;
}

/** True for the characters of a plain `host[:port]` (name, IPv4 or IPv6 in brackets). */
function isPlainHostChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x3a) ||
    c === 0x2d || c === 0x2e || c === 0x5b || c === 0x5d;
}

/**
 * The path of a request URL, as `new URL(url).pathname` gives it. Routing needs only this, and a
 * request line such as `GET /session?url=… HTTP/1.1` is already in normal form: the path is then
 * cut out of the string. Anything the URL parser could rewrite (dot segments, `%`, `\`, other
 * characters, an unusual host) goes through `new URL`.
 */
export function requestPath(url: string): string {
  const authority = url.indexOf("://") + 3;
  const start = url.indexOf("/", authority);
  if (authority === 2 || start <= authority) return new URL(url).pathname;
  for (let i = authority; i < start; i++) {
    if (!isPlainHostChar(url.charCodeAt(i))) return new URL(url).pathname;
  }
  let end = start + 1;
  for (; end < url.length; end++) {
    const c = url.charCodeAt(end);
    if (c === 0x3f /* ? */) break;
    if (!isPlainPathChar(c)) return new URL(url).pathname;
  }
  return url.slice(start, end);
}

/**
 * Answers of a hot route whose body changes rarely (`/session` between polls, `/load` between
 * snapshots): each request gets an ordinary `Response` (a clone of one built when the body
 * changed), and the HTTP engine writes the bytes serialized when the body changed instead of
 * serializing that response again (see `preparedResponses` in http_response.ts).
 */
export const cachedResponses: (init: ResponseInit) => (body: string) => Response =
  preparedResponses;

/** An `application/json` response that no cache keeps (live monitor data). */
export function json(value: unknown, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  headers.set("content-type", "application/json; charset=utf-8");
  if (!headers.has("cache-control")) headers.set("cache-control", "no-store");
  return new Response(JSON.stringify(value), { ...init, headers });
}
