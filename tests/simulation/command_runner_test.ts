/**
 * The command runner's time limit on real child processes: a helper that ignores SIGTERM (the
 * `nvidia-smi` stand-in in its hang mode) is killed after the grace period, at the limit or when
 * the caller aborts, and a child left holding its pipes does not hold up the caller.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createCommandRunner } from "../../simulation/command_runner.ts";
import { ROOT } from "../helpers/server_process.ts";

const NVIDIA_SMI = join(ROOT, "tests", "fakes", "nvidia-smi");
const DEAF = { FAKE_NVIDIA_SMI_MODE: "hang-ignore-term" };

Deno.test("a helper deaf to SIGTERM is killed after the grace period and reported as timed out", async () => {
  // The stand-in needs a moment to start and install its SIGTERM handler before the limit.
  const run = createCommandRunner({ env: DEAF, timeoutMs: 1000, graceMs: 300 });
  const began = performance.now();
  const out = await run(NVIDIA_SMI, []);
  const took = performance.now() - began;
  assert.equal(out.success, false);
  assert.equal(out.timedOutAfterMs, 1000);
  assert.ok(took >= 1300 && took < 4000, `took ${took} ms`);
});

Deno.test("aborting the caller's signal ends a deaf helper the same way, without a timeout", async () => {
  const run = createCommandRunner({ env: DEAF, timeoutMs: 60_000, graceMs: 200 });
  const abort = new AbortController();
  setTimeout(() => abort.abort(), 1000);
  const began = performance.now();
  const out = await run(NVIDIA_SMI, [], { signal: abort.signal });
  assert.equal(out.success, false);
  assert.equal(out.timedOutAfterMs, undefined);
  assert.ok(performance.now() - began < 3000);
});

Deno.test("a helper that answers in time is not signalled and its output is kept", async () => {
  const run = createCommandRunner({ timeoutMs: 5000, graceMs: 100 });
  const out = await run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"]);
  assert.deepEqual(out, { success: false, stdout: "out\n", stderr: "err\n" });
});

Deno.test("a child the helper leaves holding its pipes does not hold up the caller", async () => {
  const run = createCommandRunner({ timeoutMs: 5000, graceMs: 200 });
  const began = performance.now();
  // `sleep` outlives the shell and keeps its stdout open for 3 s.
  const out = await run("/bin/sh", ["-c", "echo before; sleep 3 & echo after"]);
  const took = performance.now() - began;
  assert.equal(out.success, true);
  assert.equal(out.stdout, "before\nafter\n");
  assert.ok(took < 2000, `took ${took} ms`);
});
