/**
 * The session server's home page in headless Chromium, against a real simulation server running
 * the stand-in Webots: the client sequence from Start to Stop, live availability, the error path.
 */
import { serverTest } from "../helpers/server_process.ts";
import assert from "node:assert/strict";
import { connect } from "../helpers/ws_client.ts";
import { eventually, isAlive, startFile } from "../helpers/simulation_fixture.ts";
import { launchBrowser, newPage, screenshot, startStack } from "./_helpers.ts";

const FAST_WORLD = "#fake activity-every 150\n#fake modes real-time\n";

serverTest(
  "Start runs a simulation from the home page, shows webots: and the dots; Stop ends it",
  async (t) => {
    await using stack = await startStack({ worlds: { "robots/demo": { "demo.wbt": FAST_WORLD } } });
    await using browser = await launchBrowser();
    const page = await newPage(browser);
    const world = stack.worldUrl("robots/demo", "demo.wbt");
    try {
      await page.goto(`${stack.session.baseUrl}/?url=${encodeURIComponent(world)}`);

      await t.step(
        "the world URL is prefilled from ?url= and the servers show as available",
        async () => {
          assert.equal(await page.locator("#url").inputValue(), world);
          await page.locator("#availability.available").waitFor({ timeout: 10_000 });
          assert.equal(await page.locator("#availability").textContent(), "available");
        },
      );

      await t.step("Start: /session's answer, then the webots: URL", async () => {
        await page.locator("#start").click();
        await page.locator("#webots").filter({ hasText: /^webots:/ }).waitFor({ timeout: 15_000 });
        const simulationUrl = `ws://127.0.0.1:${stack.simulation.server.port}`;
        assert.equal(await page.locator("#answer").textContent(), simulationUrl);
        assert.equal(await page.locator("#socket").textContent(), `open: ${simulationUrl}/client`);
        const webots = await page.locator("#webots").textContent();
        assert.match(webots!, /^webots:ws:\/\/127\.0\.0\.1:(\d+)$/);
        assert.equal(Number(webots!.split(":").at(-1)), stack.simulation.server.port + 1);
        assert.equal(await page.locator("#stop").isEnabled(), true);
        assert.equal(await page.locator("#start").isEnabled(), false);
        const log = await page.locator("#log").textContent();
        assert.ok(log!.includes(`sent {"start":{"url":"${world}"}}`), log!);
      });

      await t.step("activity dots are counted", async () => {
        await page.waitForFunction(
          "Number(document.getElementById('dots').textContent) >= 3",
          undefined,
          { timeout: 10_000 },
        );
        assert.equal(await page.locator("#error").textContent(), "–");
        assert.equal((await stack.simulation.instances()).length, 1);
        await screenshot(page, "session-home");
      });

      await t.step("Stop closes the socket: Webots gone, instance folder removed", async () => {
        const [record] = await stack.simulation.records();
        assert.ok(record && isAlive(record.pid));
        await page.locator("#stop").click();
        await page.locator("#socket").filter({ hasText: /^closed \(code 1000/ }).waitFor({
          timeout: 10_000,
        });
        await eventually(() => !isAlive(record.pid), 10_000, "Webots to end");
        await eventually(
          async () => (await stack.simulation.instances()).length === 0,
          10_000,
          "no instance folder",
        );
        assert.equal(await page.locator("#start").isEnabled(), true);
      });
      assert.deepEqual(page.problems, []);
    } finally {
      await browser.close();
    }
  },
);

serverTest(
  "the home page shows full while the only simulation server is full, available after",
  async () => {
    await using stack = await startStack({
      maxConnections: 1,
      worlds: { "robots/demo": { "demo.wbt": FAST_WORLD } },
    });
    await using browser = await launchBrowser();
    const page = await newPage(browser);
    const badge = page.locator("#availability");
    try {
      await page.goto(`${stack.session.baseUrl}/`);
      await page.locator("#availability.available").waitFor({ timeout: 10_000 });
      const client = await connect(stack.simulation.clientUrl);
      try {
        client.send(startFile(stack.simulation, "robots/demo", "demo.wbt"));
        await client.waitFor((m) => m.startsWith("webots:"));
        await page.locator("#availability.full").waitFor({ timeout: 10_000 });
        assert.equal(await badge.textContent(), "full");
        await screenshot(page, "session-home-full");
      } finally {
        await client.close();
      }
      await page.locator("#availability.available").waitFor({ timeout: 10_000 });
      assert.equal(await badge.textContent(), "available");
      const log = await page.locator("#log").textContent();
      assert.match(log!, /availability: 1.*availability: 0.*availability: 1/s);
      assert.deepEqual(page.problems, []);
    } finally {
      await browser.close();
    }
  },
);

serverTest(
  "a world the simulation server refuses shows its error: message on the page",
  async () => {
    await using stack = await startStack();
    await using browser = await launchBrowser();
    const page = await newPage(browser);
    try {
      await page.goto(`${stack.session.baseUrl}/`);
      await page.locator("#availability.available").waitFor({ timeout: 10_000 });
      await page.locator("#url").fill("file:///etc/passwd");
      await page.locator("#start").click();
      await page.locator("#error").filter({ hasText: /^error: / }).waitFor({ timeout: 10_000 });
      await page.locator("#socket").filter({ hasText: /^closed/ }).waitFor({ timeout: 10_000 });
      assert.equal(await page.locator("#webots").textContent(), "–");
      assert.equal(await page.locator("#start").isEnabled(), true);
      assert.deepEqual(await stack.simulation.instances(), []);
      await screenshot(page, "session-home-error");
      assert.deepEqual(page.problems, []);
    } finally {
      await browser.close();
    }
  },
);
