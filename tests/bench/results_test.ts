/** bench/results.json after a partial run (`--only`): the parts not rerun are kept, with their date. */
import { deepEqual } from "node:assert/strict";
import { join } from "node:path";
import { withEarlierParts } from "../../bench/main.ts";

Deno.test("a run with --only keeps the other parts of results.json, each with the date it was measured", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bench-results-" });
  try {
    const file = join(dir, "results.json");
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        date: "2026-01-01T00:00:00.000Z",
        machine: { cores: 2 },
        http: { old: true },
        session: { p99: 128 },
        simulation: { p50: 6.6, measured: "2025-12-31T00:00:00.000Z" },
      }),
    );
    const merged = await withEarlierParts(
      file,
      { date: "2026-02-02T00:00:00.000Z", machine: { cores: 2 }, http: { fresh: true } },
      ["http"],
    );
    deepEqual(merged, {
      date: "2026-02-02T00:00:00.000Z",
      machine: { cores: 2 },
      http: { fresh: true },
      session: { p99: 128, measured: "2026-01-01T00:00:00.000Z" },
      simulation: { p50: 6.6, measured: "2025-12-31T00:00:00.000Z" },
    });
    // No earlier file: the run's own results.
    const alone = { date: "d", machine: {}, http: {} };
    deepEqual(await withEarlierParts(join(dir, "missing.json"), alone, ["http"]), alone);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
