/**
 * The baseline servers of the throughput benchmark, each run as its own small Deno process on
 * 127.0.0.1 and a free port (it prints `listening <port>`):
 *
 * - `bare`: `Deno.serve(() => new Response("ok"))`, the fastest a Deno server answers anything;
 * - `answer <json>`: the least a Deno server can do to give one exact answer: the status, body and
 *   headers in `<json>` (`{status, headers: [[name, value], …], body}`, taken from a real response
 *   of the project's server in the same run), built once, and nothing else per request. Its
 *   handler takes no argument, so Deno.serve does not even build a `Request` object;
 * - `cloned <json>`: the same answer, but built once and cloned per request (a clone copies the
 *   already validated headers): the cheapest way known here to give that answer, and what the
 *   project's servers do for `/session` and `/load` (`cachedResponses` in shared/http.ts);
 * - `routed <json> <path>`: the cloned answer for `GET <path>` and a 404 otherwise: the least a
 *   server that looks at the request's method and path at all can do (Deno then builds the
 *   `Request`, and reading its method and URL is one call into the runtime each).
 *
 * - `engine <json>`: the same answer on the project's own HTTP engine (shared/http_server.ts),
 *   prepared once (`preparedResponses`) and written for every request whatever it asks: the
 *   engine's floor for that answer, what `/session` costs without its routing and handler.
 *
 * Usage: `deno run --allow-net=127.0.0.1 bench/baseline.ts bare | answer <json> | cloned <json> |
 * routed <json> <path> | engine <json>`.
 *
 * @module
 */

import { listenHttp } from "../shared/http_server.ts";
import { preparedResponses } from "../shared/http_response.ts";

/** One HTTP answer, as the baseline replays it. */
export interface Answer {
  readonly status: number;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
}

/** Headers that the HTTP layer writes itself: a baseline must not set them again. */
export const SERVER_HEADERS: readonly string[] = ["content-length", "date"];

/** The answer of `response`, without the headers the HTTP layer adds on its own. */
export async function answerOf(response: Response): Promise<Answer> {
  return {
    status: response.status,
    headers: [...response.headers].filter(([name]) => !SERVER_HEADERS.includes(name)),
    body: await response.text(),
  };
}

function serve(handler: (request: Request) => Response): void {
  Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(`listening ${port}`),
  }, handler);
}

if (import.meta.main) {
  const [role, json, path] = Deno.args;
  const answer = json === undefined ? undefined : JSON.parse(json) as Answer;
  const body = answer?.body;
  const init: ResponseInit = Object.freeze({
    status: answer?.status ?? 200,
    headers: Object.freeze(Object.fromEntries(answer?.headers ?? [])),
  });
  if (role === "bare") {
    serve(() => new Response("ok"));
  } else if (role === "answer" && answer !== undefined) {
    serve(() => new Response(body, init));
  } else if (role === "cloned" && answer !== undefined) {
    const prototype = new Response(body, init);
    serve(() => prototype.clone());
  } else if (role === "routed" && answer !== undefined && path !== undefined) {
    const prototype = new Response(body, init);
    serve((request: Request) =>
      request.method === "GET" && request.url.endsWith(path)
        ? prototype.clone()
        : new Response("Not found", { status: 404 })
    );
  } else if (role === "engine" && answer !== undefined) {
    const respond = preparedResponses(init);
    const server = listenHttp({ hostname: "127.0.0.1", port: 0, handler: () => respond(body!) });
    console.log(`listening ${server.port}`);
  } else {
    console.error(
      "usage: baseline.ts bare | answer <json> | cloned <json> | routed <json> <path> | engine <json>",
    );
    Deno.exit(2);
  }
}
