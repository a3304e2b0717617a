/**
 * The session server's /monitor page in headless Chromium while DNS discovery changes the fleet:
 * the page, loaded once, shows a server that joins in the table and as `joined` in the list of
 * changes, one that leaves as `left`, and the "Discovery (DNS)" section, without a reload. A real
 * dnsmasq on loopback and stand-in simulation servers.
 */
import assert from "node:assert/strict";
import { serverTest } from "../helpers/server_process.ts";
import { startDnsServer } from "../helpers/dns_server.ts";
import { startFakeSimServer } from "../fakes/sim_server.ts";
import { startSession } from "../session/_helpers.ts";
import { backgroundColor, launchBrowser, newPage, screenshot } from "./_helpers.ts";

/** What shared/web/live_chart.js exposes in the page: the uPlot charts by name. */
interface ChartWindow {
  webotsCharts?: Record<string, { series: { label: string }[] }>;
}

const BLUE = "rgb(21, 101, 192)";
const PURPLE = "rgb(106, 27, 154)";

serverTest("the session monitor shows servers joining and leaving through DNS, live", async (t) => {
  await using a = startFakeSimServer({ hostname: "127.0.0.41", load: 10 });
  await using b = startFakeSimServer({ hostname: "127.0.0.42", port: a.port, load: 60 });
  const dns = await startDnsServer({ hosts: { "sim.test": ["127.0.0.41"] } });
  const source = `dns:sim.test:${a.port}`;
  const session = await startSession({
    simulationServers: [source],
    nameServer: dns.nameServer,
    loadRefresh: 0.3,
    dnsMinInterval: 0.3,
    loadTimeout: 1,
  });
  await using browser = await launchBrowser();
  const page = await newPage(browser);
  const rows = page.locator("#servers tr");
  const changes = page.locator("#changes tbody tr");
  try {
    await page.goto(`${session.baseUrl}/monitor`);
    await t.step(
      "the discovered server is listed, and the discovery section says what gave it",
      async () => {
        await rows.nth(0).locator("span.state").filter({ hasText: "available" }).waitFor({
          timeout: 10_000,
        });
        assert.equal(await rows.count(), 1);
        assert.equal((await rows.nth(0).locator("td").allTextContents())[1], a.entry);
        assert.match(
          (await page.locator("#discovery li").first().textContent())!,
          new RegExp(`^${source}: 1 server, answered \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d$`),
        );
        const joined = changes.filter({ hasText: `${a.entry} (${source})` });
        assert.equal(await joined.locator("span.state").textContent(), "joined");
        assert.equal(await backgroundColor(joined.locator("span.state")), BLUE);
      },
    );
    await t.step("a record swapped in DNS: one row joins, the other leaves, live", async () => {
      await dns.setHosts({ "sim.test": ["127.0.0.42"] });
      const left = changes.filter({ hasText: `${a.entry} (${source})` }).filter({
        hasText: "left",
      });
      await left.waitFor({ timeout: 10_000 });
      assert.equal(await backgroundColor(left.locator("span.state")), PURPLE);
      assert.deepEqual(
        (await left.locator("td").allTextContents()).slice(1, 4),
        [`${a.entry} (${source})`, "available", "left"],
      );
      await rows.nth(0).locator("td").filter({ hasText: b.entry }).waitFor({ timeout: 10_000 });
      assert.equal(await rows.count(), 1);
      // The chart, mounted for the first server, now draws the one that joined, under its name.
      await page.waitForFunction(
        (entry) => (globalThis as ChartWindow).webotsCharts?.load?.series[2]?.label === entry,
        b.entry,
        { timeout: 10_000 },
      );
      const labels = await page.evaluate(() =>
        (globalThis as ChartWindow).webotsCharts!.load!.series.map((s) => s.label)
      );
      assert.deepEqual(labels, ["time", "average", b.entry]);
      assert.equal(await page.locator("#managed").textContent(), "1 simulation server");
      await screenshot(page, "session-monitor-discovery");
    });
    assert.deepEqual(page.problems, []);
  } finally {
    await session.cleanup();
    await dns.close();
  }
});
