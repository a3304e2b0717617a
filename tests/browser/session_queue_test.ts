/**
 * The home page's "Wait in line" path in headless Chromium: the only slot of a real simulation
 * server (stand-in Webots) is taken, the page takes a place behind another queued page, sees its
 * position move and, once the slot frees, opens the granted URL as its simulation.
 */
import assert from "node:assert/strict";
import { serverTest } from "../helpers/server_process.ts";
import { startFile } from "../helpers/simulation_fixture.ts";
import { connect } from "../helpers/ws_client.ts";
import { launchBrowser, newPage, screenshot, startStack } from "./_helpers.ts";

const FAST_WORLD = "#fake activity-every 150\n#fake modes real-time\n";

serverTest(
  "Wait in line shows the page's place as the queue moves, then runs the granted simulation",
  async (t) => {
    await using stack = await startStack({
      maxConnections: 1,
      // Every page here comes from 127.0.0.1.
      sessionConfig: { queuePerAddress: 0 },
      worlds: { "robots/demo": { "demo.wbt": FAST_WORLD } },
    });
    await using browser = await launchBrowser();
    const page = await newPage(browser);
    const world = stack.worldUrl("robots/demo", "demo.wbt");
    const simulationUrl = `ws://127.0.0.1:${stack.simulation.server.port}`;
    // The first simulation, from a stock client, holds the only slot.
    const first = await connect(stack.simulation.clientUrl);
    first.send(startFile(stack.simulation, "robots/demo", "demo.wbt"));
    await first.waitFor((m) => m.startsWith("webots:"), 15_000);
    // Another page is ahead in the line.
    const ahead = await connect(`ws://127.0.0.1:${stack.session.port}/`);
    const sockets = [first, ahead];
    try {
      await page.goto(`${stack.session.baseUrl}/?url=${encodeURIComponent(world)}`);
      await page.locator("#availability.full").waitFor({ timeout: 10_000 });
      ahead.send(JSON.stringify({ queue: {} }));
      await ahead.waitFor((m) => m === "queue: 1");

      await t.step("Wait in line: the page is second in line", async () => {
        await page.locator("#queue-button").click();
        await page.locator("#queue").filter({ hasText: /^position 2/ }).waitFor({
          timeout: 10_000,
        });
        assert.equal(await page.locator("#stop").isEnabled(), true);
        assert.equal(await page.locator("#start").isEnabled(), false);
        assert.equal(await page.locator("#webots").textContent(), "–");
        await screenshot(page, "session-queue-waiting");
      });

      await t.step("the slot frees: the page ahead is served, this one moves up", async () => {
        await first.close();
        const granted = await ahead.waitFor((m) => m.startsWith("session: "), 30_000);
        assert.equal(granted, `session: ${simulationUrl}`);
        await page.locator("#queue").filter({ hasText: /^next in line/ }).waitFor({
          timeout: 10_000,
        });
        // The page ahead takes its slot for a while, then leaves it.
        const second = await connect(`${simulationUrl}/client`);
        sockets.push(second);
        second.send(startFile(stack.simulation, "robots/demo", "demo.wbt"));
        await second.waitFor((m) => m.startsWith("webots:"), 15_000);
        await screenshot(page, "session-queue-next");
        await second.close();
      });

      await t.step("its turn: the granted URL is opened and the simulation runs", async () => {
        await page.locator("#webots").filter({ hasText: /^webots:/ }).waitFor({ timeout: 20_000 });
        assert.equal(await page.locator("#queue").textContent(), "your turn");
        assert.equal(await page.locator("#answer").textContent(), simulationUrl);
        assert.equal(await page.locator("#socket").textContent(), `open: ${simulationUrl}/client`);
        const log = await page.locator("#log").textContent();
        assert.ok(log!.includes(`session: ${simulationUrl}`), log!);
        await screenshot(page, "session-queue-granted");
      });

      await t.step("Stop ends it", async () => {
        await page.locator("#stop").click();
        await page.locator("#socket").filter({ hasText: /^closed \(code 1000/ }).waitFor({
          timeout: 10_000,
        });
        assert.equal(await page.locator("#start").isEnabled(), true);
      });
      assert.deepEqual(page.problems, []);
    } finally {
      await Promise.all(sockets.map((s) => s.close()));
      await browser.close();
    }
  },
);
