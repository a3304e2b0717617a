/**
 * The simulation server's /monitor page in headless Chromium: live uPlot charts and a live table
 * of simulations, served entirely by the server itself.
 */
import { serverTest } from "../helpers/server_process.ts";
import assert from "node:assert/strict";
import { connect, type TestSocket } from "../helpers/ws_client.ts";
import { startFile, startSimulationServer } from "../helpers/simulation_fixture.ts";
import { backgroundColor, launchBrowser, newPage, screenshot } from "./_helpers.ts";

/** What shared/web/live_chart.js exposes in the page: the uPlot charts by name. */
interface ChartWindow {
  webotsCharts?: Record<string, { data: (number | null)[][] }>;
}

serverTest(
  "the simulation monitor charts fill up live and the table follows the simulations",
  async (t) => {
    await using fixture = await startSimulationServer({
      worlds: {
        "robots/demo": { "demo.wbt": "#fake activity-every 200\n#fake modes real-time\n" },
      },
    });
    await using browser = await launchBrowser();
    const page = await newPage(browser);
    let client: TestSocket | undefined;
    try {
      await page.goto(`${fixture.server.baseUrl}/monitor`);

      await t.step("three uPlot charts gather points without a reload", async () => {
        await page.waitForFunction(
          () => {
            const charts = (globalThis as ChartWindow).webotsCharts ?? {};
            return ["load", "network", "simulations"].every((name) =>
              (charts[name]?.data[0]?.length ?? 0) >= 3
            );
          },
          undefined,
          { timeout: 20_000 },
        );
        // The stand-in nvidia-smi reports a GPU: once it has answered, the page has the GPU series
        // (timestamps + /load, slots, CPU mean, memory, swap, GPU compute and memory means).
        await page.waitForFunction(
          () => (globalThis as ChartWindow).webotsCharts?.load?.data.length === 1 + 7,
          undefined,
          { timeout: 20_000 },
        );
        assert.match(
          (await page.locator("#host").textContent())!,
          /GPU: NVIDIA GeForce RTX 3090/,
        );
        assert.equal(await page.locator("figure.live canvas").count(), 3);
        assert.equal(await page.locator("#live").textContent(), "(live)");
      });

      await t.step("a simulation started elsewhere appears as running, in green", async () => {
        assert.equal(await page.locator("#sessions p.none").isVisible(), true);
        client = await connect(fixture.clientUrl);
        client.send(startFile(fixture, "robots/demo", "demo.wbt"));
        await client.waitFor((m) => m.startsWith("webots:"));
        const badge = page.locator("#sessions tbody tr td span.state");
        await badge.filter({ hasText: "running" }).waitFor({ timeout: 10_000 });
        const cells = await page.locator("#sessions tbody tr").first().locator("td")
          .allTextContents();
        assert.equal(cells[0], "c1");
        assert.match(cells[1]!, /demo\.wbt$/);
        assert.equal(cells[2], "R2021b");
        assert.equal(cells[6], "127.0.0.1");
        assert.equal(Number(cells[7]), fixture.server.port + 1);
        assert.equal(await backgroundColor(badge), "rgb(46, 125, 50)");
        assert.equal(await page.locator("#sessions p.none").isVisible(), false);
        await page.waitForFunction(
          () => {
            const running = (globalThis as ChartWindow).webotsCharts?.simulations?.data[1] ?? [];
            return running.at(-1) === 1;
          },
          undefined,
          { timeout: 10_000 },
        );
        await screenshot(page, "simulation-monitor");
      });

      await t.step("the row goes away when the browser leaves", async () => {
        await client?.close();
        await page.locator("#sessions p.none").waitFor({ state: "visible", timeout: 10_000 });
        assert.equal(await page.locator("#sessions tbody tr").count(), 0);
      });
      assert.deepEqual(page.problems, []);
    } catch (error) {
      console.error(fixture.server.output());
      throw error;
    } finally {
      await client?.close();
      await browser.close();
    }
  },
);
