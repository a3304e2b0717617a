/**
 * Collects two snapshots the way the simulation server would, for the permission test: it runs
 * under exactly the server's permissions (`-P=simulation` plus the flags derived from its config)
 * and prints `{snapshots, host, load}` as JSON.
 *
 * Usage: deno run -P=simulation <derived flags> tests/simulation/collect_snapshot.ts CONFIG
 *
 * @module
 */
import { loadConfig } from "../../shared/config.ts";
import { simulationConfigEnv } from "../../simulation/config.ts";
import { createLogger } from "../../shared/log.ts";
import { simulationSchema } from "../../simulation/config.ts";
import { createCommandRunner } from "../../simulation/command_runner.ts";
import { createMetrics, type Snapshot } from "../../simulation/metrics.ts";

async function main(configFile: string): Promise<void> {
  const config = await loadConfig(simulationSchema, configFile, simulationConfigEnv());
  const logger = createLogger({ server: "simulation", logDir: config.logDir, debug: false });
  const snapshots: Snapshot[] = [];
  const { promise: two, resolve } = Promise.withResolvers<void>();
  const metrics = createMetrics({
    config,
    logger,
    now: Date.now,
    runCommand: createCommandRunner(),
    probeBudgetMs: 30_000,
    onSnapshot(snapshot) {
      snapshots.push(snapshot);
      if (snapshots.length === 2) resolve();
    },
  });
  metrics.start(() => ({ running: 1, idle: 2 }));
  await two;
  const host = metrics.hostInfo();
  const load = metrics.load();
  await metrics.stop();
  await logger.close();
  console.log(JSON.stringify({ snapshots, host, load }));
}

if (import.meta.main) {
  const [configFile] = Deno.args;
  if (!configFile) throw new Error("usage: collect_snapshot.ts CONFIG");
  await main(configFile);
}
