/**
 * A hung `nvidia-smi` (stuck in the driver, deaf to SIGTERM) never slows `/load`, is ended by the
 * command runner's time limit, gives one log line, and never holds up the server's shutdown. The
 * real simulation server with the `nvidia-smi` stand-in in its hang modes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { serverTest } from "../helpers/server_process.ts";
import { eventually, isAlive, startSimulationServer } from "../helpers/simulation_fixture.ts";

async function pids(file: string): Promise<number[]> {
  try {
    return (await Deno.readTextFile(file)).trim().split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function logEntries(logDir: string): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(join(logDir, "simulation", "output.log"));
  return text.trim().split("\n").map((line) => JSON.parse(line));
}

serverTest(
  "a hung nvidia-smi is ended at helperTimeout with one log line while /load answers at once",
  async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "helper-timeout-test-" });
    const pidFile = join(dir, "nvidia-smi.pids");
    try {
      await using fixture = await startSimulationServer({
        dir,
        config: { helperTimeout: 1 },
        env: { FAKE_NVIDIA_SMI_MODE: "hang-ignore-term", FAKE_NVIDIA_SMI_PIDS: pidFile },
      });
      await eventually(async () => (await pids(pidFile)).length === 1, 10_000, "nvidia-smi run");
      const [pid] = await pids(pidFile);
      await t.step("/load answers within 100 ms, 20 times, while nvidia-smi hangs", async () => {
        for (let i = 0; i < 20; i++) {
          const began = performance.now();
          const response = await fetch(`${fixture.server.baseUrl}/load`);
          const body = await response.text();
          const took = performance.now() - began;
          assert.equal(response.status, 200);
          assert.match(body, /^\d+(\.\d+)?$/);
          assert.ok(took < 100, `GET /load took ${took.toFixed(0)} ms`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      });
      await t.step("the helper, deaf to SIGTERM, is killed after the time limit", async () => {
        await eventually(() => !isAlive(pid!), 5000, `nvidia-smi ${pid} to end`);
      });
      await t.step(
        "one log line says nvidia-smi did not answer, and it is not run again",
        async () => {
          await eventually(
            async () => (await logEntries(fixture.logDir)).some((e) => e.probe === "gpu"),
            5000,
            "the gpu log line",
          );
          // Snapshots go on every second; the failing helper is retried only after a minute.
          await new Promise((resolve) => setTimeout(resolve, 2000));
          const gpu = (await logEntries(fixture.logDir)).filter((e) => e.probe === "gpu");
          assert.equal(gpu.length, 1, JSON.stringify(gpu));
          assert.match(
            String(gpu[0]!.msg),
            /^GPU figures unavailable, reported as 0: .*nvidia-smi did not answer within 1 s and was ended$/,
          );
          assert.deepEqual(await pids(pidFile), [pid]);
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

serverTest(
  "the simulation server shuts down promptly while nvidia-smi hangs, and the helper ends with it",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "helper-timeout-test-" });
    const pidFile = join(dir, "nvidia-smi.pids");
    try {
      const fixture = await startSimulationServer({
        dir,
        config: { helperTimeout: 60 },
        env: { FAKE_NVIDIA_SMI_MODE: "hang-ignore-term", FAKE_NVIDIA_SMI_PIDS: pidFile },
      });
      await eventually(async () => (await pids(pidFile)).length === 1, 10_000, "nvidia-smi run");
      const [pid] = await pids(pidFile);
      const began = performance.now();
      const status = await fixture.server.stop("SIGTERM");
      const took = performance.now() - began;
      assert.equal(status.code, 0);
      assert.ok(took < 5000, `shutdown took ${took.toFixed(0)} ms`);
      assert.ok(!isAlive(pid!), `nvidia-smi ${pid} outlived the server`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
