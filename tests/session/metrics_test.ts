/**
 * The session server's `/metrics`, `/health` and `/ready` in-process: the handler called with
 * `new Request(…)`, a scripted fetch playing the simulation servers (one of them answering only
 * after a delay on the fake clock, one never), and a registry of the test's own.
 */
import assert from "node:assert/strict";
import { sessionSchema } from "../../session/config.ts";
import { createSessionServer } from "../../session/server.ts";
import { validateConfig } from "../../shared/config.ts";
import { createRegistry } from "../../shared/metrics.ts";
import { FakeClock } from "../fakes/fake_clock.ts";
import { sample } from "../helpers/prometheus.ts";
import { FakeFetch, recordingLogger } from "./_fakes.ts";

const A = "a.test:2000";
const B = "b.test:2000";
const C = "c.test:2000";
/** C answers this many ms after it is asked. */
const C_DELAY_MS = 30;

const INFO = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 50000 },
  completed: Promise.resolve(),
} as Deno.ServeHandlerInfo<Deno.NetAddr>;

function sessionServer() {
  const clock = new FakeClock();
  const net = new FakeFetch();
  net.load(`http://${A}/load`, 50);
  net.answer(`http://${B}/load`, { hang: true });
  net.load(`http://${C}/load`, 99.5);
  const delayed: typeof fetch = (input, init) => {
    if (String(input) !== `http://${C}/load`) return net.fetch(input, init);
    return new Promise((resolve, reject) => {
      clock.setTimeout(() => net.fetch(input, init).then(resolve, reject), C_DELAY_MS);
    });
  };
  const registry = createRegistry();
  const server = createSessionServer({
    config: validateConfig(
      sessionSchema,
      // One round only within the test: the poll timeout (4 s) is shorter than the period.
      { simulationServers: [A, B, C], loadRefresh: 60, loadTimeout: 4 },
      "test.json",
      { root: "/srv", vars: {}, tmpDir: "/tmp" },
    ),
    logger: recordingLogger(),
    fetch: delayed,
    clock,
    mail: undefined,
    assets: { names: [], respond: () => undefined },
    registry,
  });
  const request = (path: string, method = "GET") =>
    server.handler(new Request(`http://session.test${path}`, { method }), INFO);
  const metrics = async () => await (await request("/metrics")).text();
  return { clock, server, request, metrics };
}

Deno.test("the fleet's states, loads, polls and /session answers in /metrics after one round of polls", async (t) => {
  const s = sessionServer();
  await t.step("before any poll: every server unknown, every series at 0", async () => {
    const body = await s.metrics();
    for (const server of [A, B, C]) {
      const state = (name: string) =>
        sample(body, "webots_session_simulation_server_state", { server, state: name });
      assert.deepEqual(
        ["available", "full", "not_responding", "unknown"].map(state),
        [0, 0, 0, 1],
        server,
      );
      assert.ok(
        Number.isNaN(sample(body, "webots_session_simulation_server_load_percent", { server })),
      );
      for (const outcome of ["ok", "refused", "timeout", "status", "body"]) {
        assert.equal(sample(body, "webots_session_polls_total", { server, outcome }), 0);
      }
      assert.equal(sample(body, "webots_session_poll_duration_seconds_count", { server }), 0);
    }
    assert.equal(sample(body, "webots_session_answers_total", { outcome: "none" }), 0);
    assert.equal(sample(body, "webots_session_subscribers"), 0);
  });
  await t.step("a /session answered before any poll counts as none", async () => {
    s.server.start(1999);
    const response = await s.request("/session");
    await response.body?.cancel();
    const body = await s.metrics();
    assert.equal(sample(body, "webots_session_answers_total", { outcome: "none" }), 1);
    assert.equal(sample(body, "webots_session_answers_total", { outcome: "server" }), 0);
  });
  await t.step("after the round: states, loads, outcomes and durations on the clock", async () => {
    await s.clock.advance(4000);
    const body = await s.metrics();
    const state = (server: string, name: string) =>
      sample(body, "webots_session_simulation_server_state", { server, state: name });
    assert.equal(state(A, "available"), 1);
    assert.equal(state(B, "not_responding"), 1);
    assert.equal(state(C, "full"), 1);
    assert.equal(state(A, "unknown"), 0);
    const load = (server: string) =>
      sample(body, "webots_session_simulation_server_load_percent", { server });
    assert.equal(load(A), 50);
    assert.ok(Number.isNaN(load(B)));
    assert.equal(load(C), 99.5);
    const polls = (server: string, outcome: string) =>
      sample(body, "webots_session_polls_total", { server, outcome });
    assert.deepEqual([polls(A, "ok"), polls(B, "timeout"), polls(C, "ok")], [1, 1, 1]);
    assert.equal(polls(B, "ok"), 0);
    const duration = (server: string, suffix: string, labels: Record<string, string> = {}) =>
      sample(body, `webots_session_poll_duration_seconds_${suffix}`, { server, ...labels });
    assert.equal(duration(A, "sum"), 0);
    assert.equal(duration(C, "sum"), C_DELAY_MS / 1000);
    assert.equal(duration(C, "bucket", { le: "0.025" }), 0);
    assert.equal(duration(C, "bucket", { le: "0.05" }), 1);
    assert.equal(duration(B, "sum"), 4);
    assert.equal(duration(B, "bucket", { le: "2.5" }), 0);
    assert.equal(duration(B, "bucket", { le: "5" }), 1);
  });
  await t.step("GET and HEAD /session count as handed out; OPTIONS does not count", async () => {
    for (const method of ["GET", "HEAD", "OPTIONS"]) {
      const response = await s.request("/session", method);
      await response.body?.cancel();
    }
    const body = await s.metrics();
    assert.equal(sample(body, "webots_session_answers_total", { outcome: "server" }), 2);
    assert.equal(sample(body, "webots_session_answers_total", { outcome: "none" }), 1);
  });
  await t.step("/ready turns 503 at shutdown, /health stays 200", async () => {
    assert.equal((await s.request("/ready")).status, 200);
    await s.server.shutdown();
    const ready = await s.request("/ready");
    assert.deepEqual([ready.status, await ready.text()], [503, "shutting down\n"]);
    const health = await s.request("/health");
    assert.deepEqual([health.status, await health.text()], [200, "ok\n"]);
  });
});

Deno.test("the session server's /metrics, /health and /ready: GET and HEAD only, never cached; /ready follows draining", async () => {
  const s = sessionServer();
  for (const path of ["/metrics", "/health", "/ready"]) {
    const head = await s.request(path, "HEAD");
    assert.equal(head.status, 200, path);
    assert.equal(head.headers.get("cache-control"), "no-store", path);
    assert.equal(await head.text(), "", path);
    const post = await s.request(path, "POST");
    assert.equal(post.status, 405, path);
    assert.equal(post.headers.get("allow"), "GET, HEAD", path);
    await post.body?.cancel();
  }
  const metrics = await s.request("/metrics");
  assert.equal(metrics.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  await metrics.body?.cancel();
  s.server.readiness.setDraining(true);
  const draining = await s.request("/ready");
  assert.deepEqual([draining.status, await draining.text()], [503, "draining\n"]);
  s.server.readiness.setDraining(false);
  const ready = await s.request("/ready");
  assert.deepEqual([ready.status, await ready.text()], [200, "ready\n"]);
});
