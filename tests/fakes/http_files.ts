/**
 * A loopback HTTP server for download tests: it records every request (method, path, headers,
 * body) and answers with a handler the test supplies, e.g. a ZIP made with fflate, an `Error:`
 * text, a 404, or an answer held back until the server closes (timeouts).
 *
 * @module
 */

/** One request the server received. */
export interface RecordedRequest {
  readonly method: string;
  /** Path and query, e.g. `/ajax/download-project.php`. */
  readonly path: string;
  readonly headers: Headers;
  readonly body: string;
}

/** How the handler is called. */
export interface HandlerContext {
  /** Resolves when `close()` starts: a handler that awaits it never answers in time. */
  readonly closing: Promise<void>;
}

/** Answers one request. */
export type FileHandler = (
  request: RecordedRequest,
  context: HandlerContext,
) => Response | Promise<Response>;

/** A running loopback file server. */
export interface FileServer {
  /** `http://127.0.0.1:<port>` */
  readonly base: string;
  readonly requests: RecordedRequest[];
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts the server on 127.0.0.1 and a free port. */
export function startFileServer(handler: FileHandler): Promise<FileServer> {
  const requests: RecordedRequest[] = [];
  let release!: () => void;
  const closing = new Promise<void>((resolve) => (release = resolve));
  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen({ port }) {
        const close = async () => {
          release();
          await server.shutdown();
        };
        resolve({
          base: `http://127.0.0.1:${port}`,
          requests,
          close,
          [Symbol.asyncDispose]: close,
        });
      },
    }, async (req) => {
      const url = new URL(req.url);
      const recorded = {
        method: req.method,
        path: url.pathname + url.search,
        headers: req.headers,
        body: await req.text(),
      };
      requests.push(recorded);
      return await handler(recorded, { closing });
    });
  });
}

/** A 200 answer carrying `bytes` as `application/zip`. */
export function zipResponse(bytes: Uint8Array): Response {
  return new Response(bytes as Uint8Array<ArrayBuffer>, {
    headers: { "content-type": "application/zip" },
  });
}
