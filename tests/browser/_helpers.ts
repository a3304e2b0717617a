/**
 * Helpers of the browser tests: headless Debian Chromium driven by playwright-core, the two real
 * servers wired together (the simulation server with the stand-in Webots, a session server polling
 * it quickly), and screenshots under tests/output/.
 *
 * @module
 */
import { join } from "node:path";
import { type Browser, chromium, type Locator, type Page } from "playwright-core";
import { ROOT, type ServerProcess, startServer } from "../helpers/server_process.ts";
import {
  type FixtureOptions,
  type SimulationFixture,
  startSimulationServer,
} from "../helpers/simulation_fixture.ts";

/** Debian's Chromium (`apt-get install -y chromium`). */
export const CHROMIUM = "/usr/bin/chromium";

/** Where the screenshots go (gitignored). */
export const OUTPUT_DIR: string = join(ROOT, "tests", "output");

/** Launches headless Chromium; close it in `finally` (or `await using`). */
export async function launchBrowser(): Promise<Browser & AsyncDisposable> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return Object.assign(browser, { [Symbol.asyncDispose]: () => browser.close() });
}

/** A new page of a fixed size that records console errors and failed requests. */
export async function newPage(browser: Browser): Promise<Page & { problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    // HTTP errors are reported with their URL below.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
      problems.push(`console error: ${message.text()}`);
    }
  });
  page.on("response", (response) => {
    if (response.status() >= 400 && !response.url().endsWith("/favicon.ico")) {
      problems.push(`HTTP ${response.status()}: ${response.url()}`);
    }
  });
  page.on("requestfailed", (request) => {
    // A WebSocket or fetch cut by the test itself is not a page problem.
    if (!request.url().includes("/monitor/data")) {
      problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
    }
  });
  return Object.assign(page, { problems });
}

/** Saves a full-page screenshot as tests/output/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await Deno.mkdir(OUTPUT_DIR, { recursive: true });
  const path = join(OUTPUT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** A simulation server and a session server that balances it (and maybe more entries). */
export interface Stack {
  readonly simulation: SimulationFixture;
  readonly session: ServerProcess;
  /** The file:// URL of a world of the simulation fixture's projects. */
  worldUrl(project: string, world: string): string;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts the simulation server, then a session server polling it every 0.2 s. */
export async function startStack(
  options: FixtureOptions & {
    readonly extraEntries?: readonly string[];
    /** Session-server config keys to add or override. */
    readonly sessionConfig?: Record<string, unknown>;
  } = {},
): Promise<Stack> {
  const simulation = await startSimulationServer(options);
  let session: ServerProcess;
  try {
    session = await startServer("session", {
      port: 0,
      simulationServers: [`127.0.0.1:${simulation.server.port}`, ...(options.extraEntries ?? [])],
      logDir: join(simulation.dir, "session-log"),
      loadRefresh: 0.2,
      loadTimeout: 0.5,
      ...options.sessionConfig,
    }, { dir: simulation.dir });
  } catch (error) {
    await simulation[Symbol.asyncDispose]();
    throw error;
  }
  return {
    simulation,
    session,
    worldUrl: (project, world) =>
      `file://${join(simulation.projectsDir, project, "worlds", world)}`,
    async [Symbol.asyncDispose]() {
      try {
        await session.stop();
      } finally {
        await simulation[Symbol.asyncDispose]();
      }
    },
  };
}

/** The computed background colour of the first element `locator` matches, e.g. `rgb(0, 0, 0)`. */
export function backgroundColor(locator: Locator): Promise<string> {
  // A string body: the test files are type-checked without the DOM library.
  return locator.first().evaluate(
    new Function("el", "return getComputedStyle(el).backgroundColor") as (el: unknown) => string,
  );
}
