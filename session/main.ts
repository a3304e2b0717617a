/**
 * Entry point of the session server: reads the config, builds the real collaborators (logger,
 * fetch, clock, SMTP mailer), serves until SIGINT/SIGTERM and exits 0; SIGHUP reloads the config.
 *
 * @module
 */
import { loadAssets } from "../shared/assets.ts";
import { systemClock } from "../shared/clock.ts";
import { loadConfig } from "../shared/config.ts";
import { createLogger } from "../shared/log.ts";
import { readLeaseSecret } from "../shared/lease_secret.ts";
import { createRegistry } from "../shared/metrics.ts";
import { reloadOnSighup } from "../shared/reload_signal.ts";
import { serveUntilSignal, WATCH_STDIN_FLAG } from "../shared/serve.ts";
import { type SessionConfig, sessionConfigEnv, sessionSchema } from "./config.ts";
import type { PathAccess } from "./reload.ts";
import { createSmtpMailer, mailAddresses } from "./notify.ts";
import { sessionAssets } from "./page_assets.ts";
import { createSessionServer } from "./server.ts";
import { fetchLoadProbe } from "./load_probe.ts";
import { startPollWorker } from "./poll_worker_probe.ts";

async function main(configFile: string, watchStdin: boolean): Promise<number> {
  const config = await loadConfig(sessionSchema, configFile, sessionConfigEnv());
  let logger, assets, leaseSecret;
  try {
    assets = await loadAssets(sessionAssets());
    leaseSecret = await readLeaseSecret(config);
    logger = createLogger({
      server: "session",
      logDir: config.logDir,
      debug: config.debug,
      format: config.logFormat,
    });
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 1;
  }
  const mailFor = (c: SessionConfig) => {
    const addresses = mailAddresses(c, logger);
    return addresses && { ...addresses, mailer: createSmtpMailer(c) };
  };
  // The polls of /load run in a Worker, off the thread that answers /session.
  const polls = startPollWorker({
    logger,
    fallback: fetchLoadProbe(globalThis.fetch, systemClock),
  });
  const server = createSessionServer({
    config,
    logger,
    fetch: globalThis.fetch,
    clock: systemClock,
    mail: mailFor(config),
    assets,
    registry: createRegistry(),
    ...(leaseSecret === undefined ? {} : { leaseSecret }),
    readConfig: () => loadConfig(sessionSchema, configFile, sessionConfigEnv()),
    mayAccess: granted,
    mailFor,
    loadProbe: polls.probe,
  });
  const stopReloading = reloadOnSighup(() => server.reload("SIGHUP"));
  const ssl = config.sslCertificate !== undefined && config.sslKey !== undefined;
  await serveUntilSignal({
    name: "Session",
    port: config.port,
    cert: ssl ? await Deno.readTextFile(config.sslCertificate!) : undefined,
    key: ssl ? await Deno.readTextFile(config.sslKey!) : undefined,
    handler: server.handler,
    onError: (error, what) => logger.error({ err: error }, what),
    onAcceptResumed: ({ failures, ms }) =>
      logger.warn({ failures, ms }, "accepting connections again"),
    clock: systemClock,
    stopOnStdinEnd: watchStdin,
    onListen: (port) => {
      logger.info(
        // Said only when on: without leases the line is as before.
        { port, ssl, ...(leaseSecret === undefined ? {} : { leases: "on" }) },
        `Session server running on port ${port} (${ssl ? "SSL" : "no SSL"})`,
      );
      server.start(port);
    },
    onShutdown: () => server.shutdown(),
  });
  stopReloading();
  polls.close();
  logger.info({}, "stopped");
  await logger.close();
  return 0;
}

/** Whether this process was granted the access a reloaded config needs. */
function granted(need: PathAccess): boolean {
  return Deno.permissions.querySync({ name: need.access, path: need.path }).state === "granted";
}

if (import.meta.main) {
  const [configFile] = Deno.args;
  if (configFile === undefined) {
    console.error("Usage: main.ts CONFIG (start it with deno task session)");
    Deno.exit(2);
  }
  Deno.exit(await main(configFile, Deno.args.includes(WATCH_STDIN_FLAG)));
}
