/**
 * `allowedOrigins` in headless Chromium: with both servers set to the origin of the session
 * server's home page, the page still runs a simulation from Start to `webots:`; a page of another
 * origin can neither read `/session` nor open the availability feed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, serverTest, startServer } from "../helpers/server_process.ts";
import { startSimulationServer } from "../helpers/simulation_fixture.ts";
import { launchBrowser, newPage, screenshot } from "./_helpers.ts";

const FAST_WORLD = "#fake activity-every 150\n#fake modes real-time\n";

serverTest(
  "with allowedOrigins set to the home page's origin, the page still runs a simulation; other origins are refused",
  async (t) => {
    const sessionPort = freePort();
    const origin = `http://127.0.0.1:${sessionPort}`;
    await using simulation = await startSimulationServer({
      worlds: { "robots/demo": { "demo.wbt": FAST_WORLD } },
      config: { allowedOrigins: [origin] },
    });
    const session = await startServer("session", {
      port: sessionPort,
      simulationServers: [`127.0.0.1:${simulation.server.port}`],
      logDir: join(simulation.dir, "session-log"),
      loadRefresh: 0.2,
      loadTimeout: 0.5,
      allowedOrigins: [origin],
    }, { dir: simulation.dir });
    assert.equal(session.baseUrl, origin, "the pages below are served from this origin");
    await using browser = await launchBrowser();
    try {
      await t.step("the home page's origin: availability, Start, webots:", async () => {
        const page = await newPage(browser);
        const world = `file://${join(simulation.projectsDir, "robots/demo/worlds/demo.wbt")}`;
        await page.goto(`${origin}/?url=${encodeURIComponent(world)}`);
        await page.locator("#availability.available").waitFor({ timeout: 10_000 });
        await page.locator("#start").click();
        await page.locator("#webots").filter({ hasText: /^webots:/ }).waitFor({ timeout: 15_000 });
        assert.match(
          (await page.locator("#webots").textContent())!,
          /^webots:ws:\/\/127\.0\.0\.1:\d+$/,
        );
        await screenshot(page, "origins-allowed");
        await page.locator("#stop").click();
        await page.locator("#socket").filter({ hasText: /^closed \(code 1000/ }).waitFor({
          timeout: 10_000,
        });
        assert.deepEqual(page.problems, []);
        await page.close();
      });

      await t.step("a page of another origin cannot read /session nor open the feed", async () => {
        const page = await browser.newPage();
        // The simulation server's monitor page: another port, so another origin.
        await page.goto(`http://127.0.0.1:${simulation.server.port}/monitor`);
        const outcome = await page.evaluate(`(async () => {
        const fetched = await fetch(${JSON.stringify(`${origin}/session`)})
          .then((r) => "read: " + r.status, (e) => "blocked: " + e.name);
        const feed = await new Promise((resolve) => {
          const socket = new WebSocket(${JSON.stringify(`ws://127.0.0.1:${sessionPort}/`)});
          socket.onopen = () => resolve("open");
          socket.onclose = (event) => resolve("closed " + event.code);
        });
        return { fetched, feed };
      })()`);
        assert.deepEqual(outcome, { fetched: "blocked: TypeError", feed: "closed 1006" });
        await page.close();
      });
    } finally {
      await browser.close();
    }
  },
);
