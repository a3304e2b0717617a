/**
 * The registry glue of `shared/metrics.ts`: every label combination exists from the start, gauges
 * with `read` are read at each render, and `/metrics` answers as promised.
 */
import assert from "node:assert/strict";
import {
  counter,
  createRegistry,
  gauge,
  histogram,
  labelCombinations,
  metricsRoute,
} from "../../shared/metrics.ts";
import { promtoolCheck, sample } from "../helpers/prometheus.ts";

Deno.test("label combinations are the product of every label's values", () => {
  assert.deepEqual(labelCombinations({ a: ["1", "2"], b: ["x"] }), [
    { a: "1", b: "x" },
    { a: "2", b: "x" },
  ]);
  assert.deepEqual(labelCombinations(undefined), [{}]);
});

Deno.test("counters, gauges and histograms exist at 0 for every label combination before any event", async () => {
  const registry = createRegistry();
  counter(registry, {
    name: "t_events_total",
    help: "Events.",
    labels: { kind: ["a", "b"], where: ["here", "there"] },
  });
  gauge(registry, { name: "t_level", help: "Level.", labels: { part: ["x", "y"] } });
  histogram(registry, {
    name: "t_wait_seconds",
    help: "Waits.",
    labels: { queue: ["q1", "q2"] },
    buckets: [1, 5],
  });
  const body = await registry.metrics();
  for (const kind of ["a", "b"]) {
    for (const where of ["here", "there"]) {
      assert.equal(sample(body, "t_events_total", { kind, where }), 0);
    }
  }
  assert.equal(sample(body, "t_level", { part: "y" }), 0);
  for (const queue of ["q1", "q2"]) {
    assert.equal(sample(body, "t_wait_seconds_bucket", { queue, le: "5" }), 0);
    assert.equal(sample(body, "t_wait_seconds_count", { queue }), 0);
  }
  assert.deepEqual(await promtoolCheck(body), { code: 0, output: "" });
});

Deno.test("a gauge with read is read again at each render", async () => {
  const registry = createRegistry();
  let open = 3;
  gauge(registry, { name: "t_open", help: "Open.", read: (g) => g.set(open) });
  assert.equal(sample(await registry.metrics(), "t_open"), 3);
  open = 0;
  assert.equal(sample(await registry.metrics(), "t_open"), 0);
});

Deno.test("the /metrics route: the text format for GET, no body for HEAD, 405 otherwise", async () => {
  const registry = createRegistry();
  counter(registry, { name: "t_total", help: "T." }).inc(2);
  const route = metricsRoute(registry);
  const got = await route(new Request("http://x/metrics"));
  assert.equal(got.status, 200);
  assert.equal(got.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  assert.equal(got.headers.get("cache-control"), "no-store");
  assert.equal(await got.text(), "# HELP t_total T.\n# TYPE t_total counter\nt_total 2\n");
  const head = await route(new Request("http://x/metrics", { method: "HEAD" }));
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
  const post = await route(new Request("http://x/metrics", { method: "POST" }));
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET, HEAD");
  await post.body?.cancel();
});
