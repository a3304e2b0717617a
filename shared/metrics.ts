/**
 * The glue between a server and its Prometheus metrics: a registry each server creates and passes
 * to whoever records something (never a global), metric factories that create every label value
 * up front, and the `GET /metrics` answer.
 *
 * The format is written by prom-client (npm), the Node.js Prometheus client: counters, gauges and
 * histograms, label escaping and the text exposition format come from there. Its default metrics
 * (`collectDefaultMetrics`) are not registered: under the servers' permissions they read 0 or NaN
 * (resident memory and open descriptors need `/proc`, which Deno reads only with `--allow-all`;
 * the event-loop lag relies on `perf_hooks.monitorEventLoopDelay`, which Deno does not fill).
 *
 * ```ts
 * import { createRegistry, counter } from "./metrics.ts";
 * const registry = createRegistry();
 * const failures = counter(registry, {
 *   name: "webots_simulation_start_failures_total",
 *   help: "Simulation starts that failed, by reason.",
 *   labels: { reason: ["no_slot", "start_timeout"] },
 * });
 * failures.inc({ reason: "no_slot" });
 * ```
 *
 * @module
 */
import type { HttpRequest } from "./http_request.ts";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { isGetOrHead, methodNotAllowed } from "./http.ts";

export type { Counter, Gauge, Histogram, Registry } from "prom-client";

/** A server's metrics registry: what `/metrics` renders. */
export type MetricsRegistry = Registry;

/** A new, empty registry. */
export function createRegistry(): MetricsRegistry {
  return new Registry();
}

/** Every value each label may take; all combinations exist (at 0) from the start. */
export type LabelValues<L extends string> = { readonly [K in L]: readonly string[] };

/** What every metric is defined by. */
export interface MetricSpec<L extends string> {
  readonly name: string;
  readonly help: string;
  /** Label names and all their values. Omit for a metric without labels. */
  readonly labels?: LabelValues<L>;
}

/** Every combination of the label values, e.g. `{a: [1, 2], b: [x]}` → `{a:1,b:x}, {a:2,b:x}`. */
export function labelCombinations<L extends string>(
  labels: LabelValues<L> | undefined,
): Record<L, string>[] {
  let combinations: Record<string, string>[] = [{}];
  for (const [name, values] of Object.entries<readonly string[]>(labels ?? {} as LabelValues<L>)) {
    combinations = combinations.flatMap((partial) =>
      values.map((value) => ({ ...partial, [name]: value }))
    );
  }
  return combinations as Record<L, string>[];
}

function labelNames<L extends string>(spec: MetricSpec<L>): L[] {
  return Object.keys(spec.labels ?? {}) as L[];
}

/** A counter whose every label combination reads 0 before its first event. */
export function counter<L extends string = never>(
  registry: MetricsRegistry,
  spec: MetricSpec<L>,
): Counter<L> {
  const metric = new Counter<L>({
    name: spec.name,
    help: spec.help,
    labelNames: labelNames(spec),
    registers: [registry],
  });
  if (spec.labels === undefined) metric.inc(0);
  else for (const labels of labelCombinations(spec.labels)) metric.inc(labels, 0);
  return metric;
}

/**
 * A gauge. With `read`, its value is read when `/metrics` is rendered (counts of live things:
 * sessions, sockets, subscribers), so that nothing has to keep it up to date; `read` gets the gauge
 * to `set` each label combination on.
 */
export function gauge<L extends string = never>(
  registry: MetricsRegistry,
  spec: MetricSpec<L> & { readonly read?: (gauge: Gauge<L>) => void },
): Gauge<L> {
  const read = spec.read;
  const metric: Gauge<L> = new Gauge<L>({
    name: spec.name,
    help: spec.help,
    labelNames: labelNames(spec),
    registers: [registry],
    ...(read ? { collect: () => read(metric) } : {}),
  });
  if (spec.labels === undefined) metric.set(0);
  else for (const labels of labelCombinations(spec.labels)) metric.set(labels, 0);
  return metric;
}

/** A histogram with these bucket bounds; every label combination has its (empty) series. */
export function histogram<L extends string = never>(
  registry: MetricsRegistry,
  spec: MetricSpec<L> & { readonly buckets: readonly number[] },
): Histogram<L> {
  const metric = new Histogram<L>({
    name: spec.name,
    help: spec.help,
    labelNames: labelNames(spec),
    buckets: [...spec.buckets],
    registers: [registry],
  });
  // Without labels prom-client creates the empty series itself; `zero` is missing from its types.
  const zero = (metric as unknown as { zero(labels: Record<L, string>): void }).zero.bind(metric);
  if (spec.labels !== undefined) {
    for (const labels of labelCombinations(spec.labels)) {
      zero(labels);
    }
  }
  return metric;
}

/**
 * Headers of the read-only probe routes (`/metrics`, `/health`, `/ready`): a proxy or a browser
 * must never answer them from a cache, or a dead server would look alive.
 */
export const NO_STORE = "no-store";

/** `GET /metrics`: the registry in the Prometheus text format; GET and HEAD only. */
export function metricsRoute(
  registry: MetricsRegistry,
): (request: HttpRequest) => Promise<Response> {
  return async (request) => {
    if (!isGetOrHead(request)) return methodNotAllowed("GET, HEAD");
    const body = await registry.metrics();
    return new Response(request.method === "HEAD" ? null : body, {
      headers: { "content-type": registry.contentType, "cache-control": NO_STORE },
    });
  };
}
