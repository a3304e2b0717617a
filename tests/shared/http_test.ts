import assert, { deepEqual, ok } from "node:assert/strict";
import { cachedResponses, guard, requestPath } from "../../shared/http.ts";
import type { Logger } from "../../shared/log.ts";

/** A logger that keeps its error lines. */
function recordingLogger(): Logger & {
  errors: { fields: Record<string, unknown>; message: string }[];
} {
  const errors: { fields: Record<string, unknown>; message: string }[] = [];
  const logger: Logger & { errors: typeof errors } = {
    errors,
    debug() {},
    info() {},
    warn() {},
    error(fields, message) {
      errors.push({ fields, message });
    },
    child: () => logger,
    close: () => Promise.resolve(),
  };
  return logger;
}

const INFO = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
  completed: Promise.resolve(),
} as Deno.ServeHandlerInfo;

Deno.test("requestPath gives what new URL(url).pathname gives", () => {
  const urls = [
    "http://127.0.0.1:1999/session",
    "http://127.0.0.1:1999/session?url=webots://github.com/a/b/c.wbt",
    "http://localhost/",
    "http://localhost/?url=x",
    "https://example.com:443/monitor/data",
    "http://example.com/load?",
    "http://[::1]:1999/session",
    "http://EXAMPLE.com/session",
    "http://x/./session",
    "http://x/a/../session",
    "http://x/%73ession",
    "http://x/session/",
    "http://x//session",
    "http://x/ses sion",
    "http://x/séssion",
    "http://x/a\\b",
    "http://x/assets/uplot.min.js",
    "http://x/session#frag",
    "http://a\\b/session",
    "http://x?y/session",
    "http://x#y/session",
    "http://user@x/session",
    "http://x:1999/session;a=b",
    "http://x/~user/a_b-c",
  ];
  for (const url of urls) {
    deepEqual(requestPath(url), new URL(url).pathname, url);
  }
});

Deno.test("guard passes a synchronous answer on as it is, without a promise", () => {
  const logger = recordingLogger();
  const answer = new Response("ok");
  const handler = guard(logger, () => answer);
  ok(handler(new Request("http://x/"), INFO) === answer);
  deepEqual(logger.errors.length, 0);
});

Deno.test("guard turns a thrown error into a logged 500", async () => {
  const logger = recordingLogger();
  const handler = guard(logger, () => {
    throw new Error("boom");
  });
  const response = handler(new Request("http://x/session"), INFO);
  ok(response instanceof Response);
  deepEqual(response.status, 500);
  deepEqual(await response.text(), "Internal server error\n");
  deepEqual(logger.errors.length, 1);
  deepEqual(logger.errors[0]!.message, "request failed");
  deepEqual(logger.errors[0]!.fields.url, "http://x/session");
  deepEqual((logger.errors[0]!.fields.err as Error).message, "boom");
});

Deno.test("guard turns a rejected promise into a logged 500 and passes an async answer on", async () => {
  const logger = recordingLogger();
  const failing = guard(logger, () => Promise.reject(new Error("late")));
  const failed = await failing(new Request("http://x/a", { method: "POST" }), INFO);
  deepEqual(failed.status, 500);
  deepEqual(await failed.text(), "Internal server error\n");
  deepEqual(logger.errors.map((e) => [e.fields.method, e.message]), [["POST", "request failed"]]);

  const answer = new Response("later");
  const working = guard(logger, () => Promise.resolve(answer));
  ok((await working(new Request("http://x/"), INFO)) === answer);
  deepEqual(logger.errors.length, 1);
});

Deno.test("cachedResponses gives each request its own response, rebuilt only when the body changes", async () => {
  const respond = cachedResponses({ headers: { "content-type": "text/plain; charset=utf-8" } });
  const first = respond("ws://a:2000");
  const second = respond("ws://a:2000");
  assert.notEqual(first, second);
  // Each can be read on its own: a clone, not a shared body.
  assert.equal(await first.text(), "ws://a:2000");
  assert.equal(await second.text(), "ws://a:2000");
  assert.equal(second.headers.get("content-type"), "text/plain; charset=utf-8");
  const changed = respond("ws://b:2000");
  assert.equal(await changed.text(), "ws://b:2000");
  assert.equal(await respond("ws://b:2000").text(), "ws://b:2000");
  assert.equal(await respond("ws://a:2000").text(), "ws://a:2000");
});
