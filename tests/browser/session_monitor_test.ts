/**
 * The session server's /monitor page in headless Chromium: a live load chart and a live table of
 * simulation servers whose state is shown in colour.
 */
import { serverTest } from "../helpers/server_process.ts";
import assert from "node:assert/strict";
import { freePort } from "../helpers/server_process.ts";
import { startFile } from "../helpers/simulation_fixture.ts";
import { connect } from "../helpers/ws_client.ts";
import { backgroundColor, launchBrowser, newPage, screenshot, startStack } from "./_helpers.ts";

/** What shared/web/live_chart.js exposes in the page: the uPlot charts by name. */
interface ChartWindow {
  webotsCharts?: Record<string, { data: (number | null)[][] }>;
}

const GREEN = "rgb(46, 125, 50)";
const RED = "rgb(198, 40, 40)";
const GREY = "rgb(117, 117, 117)";

serverTest(
  "the session monitor charts the loads live and colours each server's state",
  async (t) => {
    const dead = `127.0.0.1:${freePort()}`;
    await using stack = await startStack({
      maxConnections: 1,
      extraEntries: [dead],
      worlds: { "robots/demo": { "demo.wbt": "#fake modes real-time\n" } },
    });
    await using browser = await launchBrowser();
    const page = await newPage(browser);
    const live = `127.0.0.1:${stack.simulation.server.port}`;
    const rows = page.locator("#servers tr");
    const state = (row: number) => rows.nth(row).locator("span.state");
    try {
      await page.goto(`${stack.session.baseUrl}/monitor`);

      await t.step("one row per server: available in green, not responding in grey", async () => {
        await state(0).filter({ hasText: "available" }).waitFor({ timeout: 10_000 });
        await state(1).filter({ hasText: "not responding" }).waitFor({ timeout: 10_000 });
        const cells = await rows.nth(0).locator("td").allTextContents();
        assert.deepEqual(cells.slice(0, 3), ["1", live, "available"]);
        assert.match(cells[3]!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/, "last answer, UTC");
        assert.match(cells[4]!, /^\d+\.\d%$/, "one decimal");
        assert.deepEqual(cells.slice(5), ["0", "1 of 1"]);
        assert.equal(await rows.nth(1).locator("td.load").textContent(), "N/A");
        assert.equal(await rows.nth(0).locator("a").getAttribute("href"), `http://${live}/monitor`);
        assert.equal(await backgroundColor(state(0)), GREEN);
        assert.equal(await backgroundColor(state(1)), GREY);
        assert.match(
          (await page.locator("#totals tr td.load").textContent())!,
          /^\d+\.\d%$/,
          "the average in the same form as the rows",
        );
      });

      await t.step("the chart gathers points without a reload", async () => {
        await page.waitForFunction(
          () => ((globalThis as ChartWindow).webotsCharts?.load?.data[0]?.length ?? 0) >= 3,
          undefined,
          { timeout: 20_000 },
        );
        const data = await page.evaluate(() =>
          (globalThis as ChartWindow).webotsCharts!.load!.data
        );
        assert.equal(data.length, 1 + 3); // timestamps, average, the two servers
        // The first sample may predate the live server's first answer (null, like a dead one).
        assert.equal(typeof data[2]!.at(-1), "number", "the live server has loads");
        assert.ok(data[3]!.every((v) => v === null), "the dead server has none");
        assert.equal(await page.locator("#live").textContent(), "(live)");
      });

      await t.step("a filled server turns full, in red, in the table and the chart", async () => {
        const client = await connect(stack.simulation.clientUrl);
        try {
          client.send(startFile(stack.simulation, "robots/demo", "demo.wbt"));
          await client.waitFor((m) => m.startsWith("webots:"));
          await state(0).filter({ hasText: "full" }).waitFor({ timeout: 10_000 });
          assert.equal(await backgroundColor(state(0)), RED);
          // 100.0% (its one slot taken), unless the shared machine's CPU is at 99% or more.
          const load = await rows.nth(0).locator("td.load").textContent();
          assert.ok(Number(load!.replace(/%$/, "")) >= 99, load!);
          await page.waitForFunction(
            () => ((globalThis as ChartWindow).webotsCharts?.load?.data[2]?.at(-1) ?? 0) >= 99,
            undefined,
            { timeout: 10_000 },
          );
          await screenshot(page, "session-monitor");
        } finally {
          await client.close();
        }
        await state(0).filter({ hasText: "available" }).waitFor({ timeout: 10_000 });
      });
      assert.deepEqual(page.problems, []);
    } finally {
      await browser.close();
    }
  },
);
