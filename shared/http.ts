/**
 * HTTP helpers both servers use: plain-text and HTML responses, CORS, HTML escaping, and a
 * handler wrapper that maps any thrown error to a 500 and logs it once.
 *
 * @module
 */
import type { Logger } from "./log.ts";

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
export function isGetOrHead(request: Request): boolean {
  return request.method === "GET" || request.method === "HEAD";
}

/** Wraps a read-only route: other methods than GET and HEAD get 405. */
export function getOnly<A extends unknown[]>(
  route: (request: Request, ...rest: A) => Response,
): (request: Request, ...rest: A) => Response {
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
export function isWebSocketUpgrade(request: Request): boolean {
  return request.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/** Wraps a handler so that a thrown error becomes a logged 500 and never reaches Deno.serve. */
export function guard(
  logger: Logger,
  handler: (request: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>,
): (request: Request, info: Deno.ServeHandlerInfo) => Promise<Response> {
  return async (request, info) => {
    try {
      return await handler(request, info);
    } catch (error) {
      logger.error(
        { method: request.method, url: request.url, err: error },
        "request failed",
      );
      return text("Internal server error\n", { status: 500 });
    }
  };
}

/** An `application/json` response that no cache keeps (live monitor data). */
export function json(value: unknown, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  headers.set("content-type", "application/json; charset=utf-8");
  if (!headers.has("cache-control")) headers.set("cache-control", "no-store");
  return new Response(JSON.stringify(value), { ...init, headers });
}
