/**
 * The poll worker (session/poll_worker.ts, session/poll_worker_probe.ts): the polls of `/load` in
 * a real Worker against a real HTTP server on loopback, compared with the same polls in this
 * thread; aborts, a worker that cannot start or fails, and the batching of requests and answers.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fetchLoadProbe, type LoadProbe } from "../../session/load_probe.ts";
import type { PollOutcome } from "../../session/load_rules.ts";
import { type PollAnswer, servePolls } from "../../session/poll_worker.ts";
import { type PollWorker, startPollWorker } from "../../session/poll_worker_probe.ts";
import { systemClock } from "../../shared/clock.ts";
import { recordingLogger } from "../fakes/logger.ts";

/** A simulation server's `/load` on loopback, answering per path; `/hang` answers never. */
function loadServer() {
  const hung: AbortSignal[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    switch (new URL(request.url).pathname) {
      case "/up":
        return new Response("12.5\n", {
          headers: { "x-webots-slots": "1/4", "x-webots-simulations": "1" },
        });
      case "/draining":
        return new Response("100", { headers: { "x-webots-state": "draining" } });
      case "/error":
        return new Response("oops", { status: 500 });
      case "/text":
        return new Response("not a load");
      case "/hang":
        hung.push(request.signal);
        // Answers only once its client is gone (so that the server can shut down).
        return new Promise<Response>((resolve) =>
          request.signal.addEventListener("abort", () => resolve(new Response("late")))
        );
      default:
        return new Response("no", { status: 404 });
    }
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  return { server, base, hung };
}

/** A port nothing listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

async function until(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const never = () => new AbortController().signal;

/** Runs `test` with a load server and a poll worker (of `url`, default the real one), both ended after. */
async function withPollWorker(
  test: (
    context: ReturnType<typeof loadServer> & {
      polls: PollWorker;
      logger: ReturnType<typeof recordingLogger>;
    },
  ) => Promise<void>,
  url?: URL,
): Promise<void> {
  const server = loadServer();
  const logger = recordingLogger();
  const polls = startPollWorker({
    logger,
    fallback: fetchLoadProbe(fetch, systemClock),
    ...(url === undefined ? {} : { url }),
  });
  try {
    await test({ ...server, polls, logger });
  } finally {
    polls.close();
    await server.server.shutdown();
  }
}

Deno.test("polls in the worker find what the same polls find in this thread", async () => {
  const here = fetchLoadProbe(fetch, systemClock);
  await withPollWorker(async ({ polls, base, logger }) => {
    const urls = ["/up", "/draining", "/error", "/text"].map((path) => `${base}${path}`);
    urls.push(`http://127.0.0.1:${closedPort()}/load`);
    const inWorker = await Promise.all(urls.map((url) => polls.probe(url, 5000, never())));
    const inThread = await Promise.all(urls.map((url) => here(url, 5000, never())));
    assert.deepEqual(inWorker, inThread);
    assert.deepEqual(inWorker.slice(0, 4), [
      { kind: "up", load: 12.5, slots: { used: 1, max: 4, simulations: 1 } },
      { kind: "up", load: 100, draining: true },
      { kind: "down", reason: "status", detail: "HTTP 500" },
      { kind: "down", reason: "body", detail: "not a number: not a load" },
    ]);
    assert.equal(inWorker[4]?.kind === "down" && inWorker[4].reason, "refused");
    assert.deepEqual(logger.lines, [], "the worker started and never failed");
  });
});

Deno.test("an aborted poll ends at once and the worker gives up its request", async () => {
  await withPollWorker(async ({ polls, base, hung }) => {
    const abort = new AbortController();
    let outcome: PollOutcome | undefined;
    void polls.probe(`${base}/hang`, 5000, abort.signal).then((o) => outcome = o);
    await until(() => hung.length === 1, "the request to reach the server");
    abort.abort();
    // Answered in this thread, before anything comes back from the worker.
    await Promise.resolve();
    assert.equal(outcome?.kind, "down");
    await until(() => hung[0]!.aborted, "the worker to cancel its request");
    // A poll whose signal is already aborted never reaches the worker.
    const before = hung.length;
    const late = await polls.probe(`${base}/hang`, 5000, AbortSignal.abort());
    assert.equal(late.kind, "down");
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(hung.length, before);
  });
});

Deno.test("a poll with no answer within its timeout ends as a timeout, kept by the worker", async () => {
  await withPollWorker(async ({ polls, base, hung }) => {
    const outcome = await polls.probe(`${base}/hang`, 200, never());
    assert.deepEqual(outcome, { kind: "down", reason: "timeout", detail: "no answer in 200 ms" });
    await until(() => hung[0]?.aborted === true, "the worker to drop the request");
  });
});

Deno.test("close ends the worker: polls still waiting end as aborted", async () => {
  await withPollWorker(async ({ polls, base, hung }) => {
    const waiting = polls.probe(`${base}/hang`, 5000, never());
    await until(() => hung.length === 1, "the request to reach the server");
    polls.close();
    const outcome = await waiting;
    assert.equal(outcome.kind === "down" && outcome.detail, "poll aborted");
    // The terminated worker's connection is gone with it.
    await until(() => hung[0]!.aborted, "the worker's request to end");
  });
});

for (
  const [name, source] of [
    ["fails as it starts", `throw new Error("broken worker");\n`],
    [
      "fails later",
      `self.onmessage = () => { setTimeout(() => { throw new Error("broken later"); }); };\n`,
    ],
  ] as const
) {
  Deno.test(`a worker that ${name} leaves the polls to this thread, logged once`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "poll-worker-test-" });
    const file = join(dir, "worker.ts");
    await Deno.writeTextFile(file, source);
    try {
      await withPollWorker(async ({ polls, base, logger }) => {
        const first = await polls.probe(`${base}/up`, 5000, never());
        const second = await polls.probe(`${base}/up`, 5000, never());
        for (const outcome of [first, second]) {
          assert.equal(outcome.kind === "up" && outcome.load, 12.5);
        }
        const failures = logger.lines.filter((l) => l.message.includes("poll worker failed"));
        assert.equal(failures.length, 1, JSON.stringify(logger.lines));
        assert.equal(failures[0]?.level, "error");
      }, new URL(`file://${file}`));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("the worker answers polls that end together in one message, and none for a cancel", async () => {
  const posted: PollAnswer[][] = [];
  const deferred: (() => void)[] = [];
  const release: ((outcome: PollOutcome) => void)[] = [];
  const signals: AbortSignal[] = [];
  const probe: LoadProbe = (_url, _timeoutMs, signal) => {
    signals.push(signal);
    return new Promise((resolve) => release.push(resolve));
  };
  const take = servePolls({
    probe,
    post: (answers) => posted.push(answers),
    defer: (task) => deferred.push(task),
  });
  take([
    { kind: "poll", id: 1, url: "http://a/load", timeoutMs: 5000 },
    { kind: "poll", id: 2, url: "http://b/load", timeoutMs: 5000 },
    { kind: "poll", id: 3, url: "http://c/load", timeoutMs: 5000 },
  ]);
  take([{ kind: "cancel", id: 2 }]);
  assert.deepEqual(signals.map((s) => s.aborted), [false, true, false]);
  const up: PollOutcome = { kind: "up", load: 1 };
  for (const resolve of release) resolve(up);
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(deferred.length, 1, "one send for the answers ready together");
  deferred[0]!();
  assert.deepEqual(posted, [[{ id: 1, outcome: up }, { id: 3, outcome: up }]]);
});
