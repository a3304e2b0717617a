/**
 * Entry point of the simulation server: reads the config, builds the real collaborators, reaps
 * this server's leftovers from a previous run, serves until SIGINT/SIGTERM. Wiring only.
 *
 * Run through `deno task simulation [CONFIG]`, which derives the permissions from the config.
 *
 * @module
 */
import { AssetError, loadAssets } from "../shared/assets.ts";
import { ConfigError, loadConfig } from "../shared/config.ts";
import { createLogger } from "../shared/log.ts";
import { serveUntilSignal, WATCH_STDIN_FLAG } from "../shared/serve.ts";
import { createCommandRunner } from "./command_runner.ts";
import { simulationConfigEnv, simulationSchema } from "./config.ts";
import { createMetrics } from "./metrics.ts";
import { monitorData, type MonitorPageData, renderMonitorPage } from "./monitor_page.ts";
import { simulationAssets } from "./page_assets.ts";
import { canBindPort, createPortPool } from "./ports.ts";
import { createSpawner } from "./process.ts";
import {
  prepareInit,
  prepareStart,
  type ProjectDeps,
  removeLeftoverInstances,
  resetController,
} from "./projects.ts";
import type { ClientSession } from "./client_session.ts";
import { createSimulationServer } from "./server.ts";
import { createWebotsRegistry, launchWebots } from "./webots.ts";

const KILL = "/usr/bin/kill";
const CAT = "/usr/bin/cat";

async function main(args: string[]): Promise<number> {
  const [configFile] = args;
  if (configFile === undefined) {
    console.error("Usage: main.ts CONFIG (use `deno task simulation`)");
    return 2;
  }
  const config = await loadConfig(simulationSchema, configFile, simulationConfigEnv());
  const assets = await loadAssets(simulationAssets());
  const logger = createLogger({ server: "simulation", logDir: config.logDir, debug: config.debug });
  const ssl = config.sslCertificate !== undefined && config.sslKey !== undefined;
  const cert = config.sslCertificate ? await Deno.readTextFile(config.sslCertificate) : undefined;
  const key = config.sslKey ? await Deno.readTextFile(config.sslKey) : undefined;

  await Deno.mkdir(config.instancesDir, { recursive: true });
  const registry = createWebotsRegistry({
    instancesDir: config.instancesDir,
    catBinary: CAT,
    killBinary: KILL,
    logger,
  });
  const reaped = await registry.reapLeftovers(config.killTimeout * 1000);
  const projectDeps: ProjectDeps = { config, fetch, logger };
  const removed = await removeLeftoverInstances(projectDeps);
  logger.info(
    { killed: reaped.killed, removedFolders: reaped.removedDirs.length + removed },
    "Cleaned up leftovers of a previous run",
  );

  const spawner = createSpawner({ killBinary: KILL, logger });
  const ports = createPortPool(config.port + 1, config.port + config.maxConnections, canBindPort);
  const metrics = createMetrics({
    config,
    logger,
    now: Date.now,
    runCommand: createCommandRunner(),
  });
  const display = Deno.env.get("DISPLAY");
  const fqdn = config.fullyQualifiedDomainName ?? Deno.hostname();
  let nextId = 0;
  const pageData = (sessions: readonly ClientSession[]): MonitorPageData => ({
    fqdn,
    host: metrics.hostInfo(),
    history: metrics.history,
    sessions: sessions.map((s) => s.info()).map((s) => ({
      id: s.id,
      world: s.world,
      port: s.port ?? 0,
      state: s.state === "running" ? (s.idle ? "idle" : "running") : s.state,
      startedAt: s.startedAt,
      remote: s.remote,
    })),
  });

  const server = createSimulationServer({
    config,
    logger,
    ports,
    ssl,
    now: Date.now,
    newId: () => `c${++nextId}`,
    prepareInit: (init, signal) => prepareInit(init, projectDeps, signal),
    prepareStart: (url, signal) => prepareStart(url, projectDeps, signal),
    resetController: (instance, path) => resetController(instance, path, projectDeps),
    launchWebots: (launch) => launchWebots(spawner, config, launch, ssl, display, registry),
    load: () => metrics.load(),
    monitorPage: (sessions) => renderMonitorPage(pageData(sessions)),
    monitorData: (sessions) => monitorData(pageData(sessions)),
    assets,
  });
  metrics.start(() => server.counts());
  logger.info({ port: config.port, ssl }, "Running simulation server");

  await serveUntilSignal({
    name: "Simulation",
    port: config.port,
    cert,
    key,
    handler: server.handler,
    stopOnStdinEnd: args.includes(WATCH_STDIN_FLAG),
    onShutdown: async () => {
      logger.info({}, "Shutting down");
      await server.shutdown();
      await metrics.stop();
    },
  });
  await logger.close();
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    const known = error instanceof ConfigError || error instanceof AssetError;
    console.error(known ? error.message : error);
    Deno.exit(1);
  }
}
