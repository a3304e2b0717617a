/** bench/proc_stats.ts's per-thread CPU against a real Deno process whose Worker burns CPU. */
import assert from "node:assert/strict";
import { threadCpuSeconds } from "../../bench/proc_stats.ts";
import { stdoutLines } from "../../bench/stdout_lines.ts";

const SCRIPT = `
const worker = new Worker(
  "data:text/javascript," + encodeURIComponent(
    "const end = Date.now() + 800; while (Date.now() < end); postMessage('spun');",
  ),
  { type: "module" },
);
worker.onmessage = () => console.log("spun");
`;

Deno.test("a Worker's CPU counts for the workers, not the main thread", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", SCRIPT],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const line = stdoutLines(child.stdout);
    await line(/^spun$/);
    const cpu = threadCpuSeconds(child.pid);
    assert.ok(cpu.workers >= 0.6, JSON.stringify(cpu));
    assert.ok(cpu.main < 0.5, JSON.stringify(cpu));
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});
