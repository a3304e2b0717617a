/**
 * Entry point of the simulation server: reads the config, builds the real collaborators, reaps
 * this server's leftovers from a previous run, says so when no Webots is installed, serves until
 * SIGINT/SIGTERM (with `drainTimeout`, the first SIGTERM drains first). Wiring only.
 *
 * Run through `deno task simulation [CONFIG]`, which derives the permissions from the config.
 *
 * @module
 */
import { AssetError, loadAssets } from "../shared/assets.ts";
import { ConfigError, loadConfig } from "../shared/config.ts";
import { createLogger } from "../shared/log.ts";
import { LeaseSecretError, readLeaseSecret } from "../shared/lease_secret.ts";
import { createRegistry } from "../shared/metrics.ts";
import { serveUntilSignal, WATCH_STDIN_FLAG } from "../shared/serve.ts";
import { resolve } from "node:path";
import { systemClock } from "../shared/clock.ts";
import { createCommandRunner } from "./command_runner.ts";
import { simulationConfigEnv, simulationSchema } from "./config.ts";
import { createMetrics } from "./metrics.ts";
import { exportLoadMetrics } from "./metrics_export.ts";
import { createMonitorView } from "./monitor_view.ts";
import { simulationAssets } from "./page_assets.ts";
import { canBindPort, createPortPool } from "./ports.ts";
import { createSpawner } from "./process.ts";
import { guardInstances } from "./instances_health.ts";
import { createProjects } from "./projects.ts";
import { createRunProcesses } from "./run_processes.ts";
import { createRunRecords } from "./run_records.ts";
import { createSimulationServer } from "./server.ts";
import { resolveInstallations, WebotsVersionError } from "./webots_installations.ts";
import { createWebotsRuns, noWebotsNotice, webotsInstalled } from "./webots_run.ts";

const KILL = "/usr/bin/kill";
const CAT = "/usr/bin/cat";
const PS = "/usr/bin/ps";
const GREP = "/usr/bin/grep";

async function main(args: string[]): Promise<number> {
  const [configFile] = args;
  if (configFile === undefined) {
    console.error("Usage: main.ts CONFIG (use `deno task simulation`)");
    return 2;
  }
  const config = await loadConfig(simulationSchema, configFile, simulationConfigEnv());
  const assets = await loadAssets(simulationAssets());
  const leaseSecret = await readLeaseSecret(config);
  const logger = createLogger({
    server: "simulation",
    logDir: config.logDir,
    debug: config.debug,
    format: config.logFormat,
  });
  const ssl = config.sslCertificate !== undefined && config.sslKey !== undefined;
  const cert = config.sslCertificate ? await Deno.readTextFile(config.sslCertificate) : undefined;
  const key = config.sslKey ? await Deno.readTextFile(config.sslKey) : undefined;
  const clock = systemClock;
  const runCommand = createCommandRunner({ clock, timeoutMs: config.helperTimeout * 1000 });

  // Who this server is to the run records it shares an instancesDir with.
  const owner = { port: config.port, config: resolve(configFile) };
  await Deno.mkdir(config.instancesDir, { recursive: true });
  const processes = createRunProcesses({
    runCommand,
    psBinary: PS,
    grepBinary: GREP,
    catBinary: CAT,
    killBinary: KILL,
    uid: Deno.uid() ?? 0,
    selfPid: Deno.pid,
    clock,
    logger,
  });
  const records = createRunRecords({
    instancesDir: config.instancesDir,
    owner,
    runCommand,
    catBinary: CAT,
    killBinary: KILL,
    processes,
    clock,
    logger,
  });
  const reaped = await records.reap(config.killTimeout * 1000);
  logger.info(
    {
      killed: reaped.killed,
      gone: reaped.gone,
      ended: reaped.ended,
      removedFolders: reaped.removedFolders.length,
    },
    "Cleaned up leftovers of a previous run",
  );
  const installations = await resolveInstallations(
    config,
    webotsInstalled,
    (message) => logger.warn({}, message),
  );
  if (installations.list.length === 0) {
    const notice = noWebotsNotice(config.webotsHome);
    logger.warn({ webotsHome: config.webotsHome }, notice);
    // In debug mode the log already goes to stdout.
    if (!config.debug) console.log(notice);
  }
  for (const { release, home, dialect } of installations.list) {
    logger.info({ release, webotsHome: home, family: dialect.family }, "Webots installation");
  }

  const metrics = createMetrics({ config, logger, now: clock.now, timers: clock, runCommand });
  const monitor = createMonitorView({
    fqdn: config.fullyQualifiedDomainName ?? Deno.hostname(),
    metrics,
    loadWindow: config.loadWindow,
    now: clock.now,
  });
  let nextId = 0;
  const registry = createRegistry();
  const ports = createPortPool(config.port + 1, config.port + config.maxConnections, canBindPort);
  const server = createSimulationServer({
    config,
    logger,
    ssl,
    clock,
    newId: () => `c${++nextId}`,
    projects: createProjects({ config, fetch, logger }),
    webotsRuns: guardInstances(
      createWebotsRuns({
        config,
        installations,
        owner,
        ssl,
        display: Deno.env.get("DISPLAY"),
        ports,
        spawner: createSpawner({ killBinary: KILL, runCommand, clock, logger }),
        processes,
        records,
        clock,
        logger,
      }),
      config.instancesDir,
      logger,
    ),
    load: metrics.load,
    monitorPage: monitor.page,
    monitorData: monitor.data,
    assets,
    registry,
    ...(leaseSecret === undefined ? {} : { lease: { secret: leaseSecret, ports } }),
  });
  exportLoadMetrics(registry, {
    load: metrics.load,
    figures: metrics.loadFigures,
    counts: server.counts,
    slotsInUse: () => ports.inUse,
    maxConnections: config.maxConnections,
  });
  metrics.start(server.counts);
  logger.info(
    // Said only when on: without leases the line is as before.
    { port: config.port, ssl, ...(leaseSecret === undefined ? {} : { leases: "on" }) },
    "Running simulation server",
  );

  await serveUntilSignal({
    name: "Simulation",
    port: config.port,
    cert,
    key,
    handler: server.handler,
    onError: (error, what) => logger.error({ err: error }, what),
    onAcceptResumed: ({ failures, ms }) =>
      logger.warn({ failures, ms }, "accepting connections again"),
    clock: clock,
    stopOnStdinEnd: args.includes(WATCH_STDIN_FLAG),
    ...(config.drainTimeout > 0 ? { drainFirst: () => server.drain.drainThenStop() } : {}),
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
    const known = error instanceof ConfigError || error instanceof AssetError ||
      error instanceof WebotsVersionError || error instanceof LeaseSecretError;
    console.error(known ? error.message : error);
    Deno.exit(1);
  }
}
