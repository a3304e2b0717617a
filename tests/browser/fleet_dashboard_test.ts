/**
 * Both /monitor pages in headless Chromium with a busy fleet: a real session server in front of
 * three of our simulation servers (one with room and simulations running, paused and starting;
 * one full; one draining), a stock simulation server (no slot headers) and one that does not
 * answer. The screenshots are kept under tests/output/ (fleet-*.png).
 */
import assert from "node:assert/strict";
import { freePort, serverTest } from "../helpers/server_process.ts";
import {
  type SimulationFixture,
  startFile,
  startSimulationServer,
} from "../helpers/simulation_fixture.ts";
import { connect, type TestSocket } from "../helpers/ws_client.ts";
import { startFakeSimServer } from "../fakes/sim_server.ts";
import { startSession } from "../session/_helpers.ts";
import { launchBrowser, newPage, screenshot } from "./_helpers.ts";

const TOKEN = "admin-token-for-tests-0123456789";
const SECRET = "lease-secret-for-tests-0123";
const WORLDS = {
  "robots/demo": {
    "run.wbt": "#fake modes real-time\n",
    "pause.wbt": "#fake modes pause\n",
    "slow.wbt": "#fake never-ready\n",
  },
};

/** What shared/web/live_chart.js exposes in the page: the uPlot charts by name. */
interface ChartWindow {
  webotsCharts?: Record<string, { data: (number | null)[][] }>;
}

async function simulation(maxConnections: number): Promise<SimulationFixture> {
  return await startSimulationServer({
    maxConnections,
    worlds: WORLDS,
    config: { adminToken: TOKEN, drainTimeout: 600, startTimeout: 600, leaseSecret: SECRET },
  });
}

/** Opens a browser socket on `f` and starts `world`; waits for `webots:` unless `starting`. */
async function open(
  sockets: TestSocket[],
  f: SimulationFixture,
  world: string,
  starting = false,
): Promise<void> {
  const ws = await connect(f.clientUrl);
  sockets.push(ws);
  ws.send(startFile(f, "robots/demo", world));
  if (!starting) await ws.waitFor((m) => m.startsWith("webots:"));
}

serverTest(
  "the fleet dashboard: both monitor pages show a busy fleet's states, slots, simulations and changes",
  async (t) => {
    await using roomy = await simulation(5);
    await using full = await simulation(1);
    await using draining = await simulation(2);
    const stock = startFakeSimServer({ load: 20 });
    const dead = `127.0.0.1:${freePort()}`;
    const entry = (f: SimulationFixture) => `127.0.0.1:${f.server.port}`;
    const sockets: TestSocket[] = [];
    const session = await startSession({
      simulationServers: [entry(roomy), entry(full), entry(draining), stock.entry, dead],
      loadRefresh: 0.2,
      loadTimeout: 0.5,
      leaseSecret: SECRET,
      // Only slots make a server full here, not the busy test machine's CPU.
      fullAt: 100,
      availableAt: 99,
    });
    await using browser = await launchBrowser();
    try {
      await open(sockets, roomy, "run.wbt");
      await open(sockets, roomy, "pause.wbt");
      await open(sockets, roomy, "slow.wbt", true);
      await open(sockets, full, "run.wbt");
      await open(sockets, draining, "run.wbt");
      const drained = await fetch(`${draining.server.baseUrl}/admin/drain`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(drained.status, 200);
      await drained.body?.cancel();

      await t.step("session /monitor: one row per server in each state, with slots", async () => {
        const page = await newPage(browser);
        await page.goto(`${session.baseUrl}/monitor`);
        const rows = page.locator("#servers tr");
        const states = ["available", "full", "draining", "available", "not responding"];
        for (const [i, state] of states.entries()) {
          await rows.nth(i).locator("span.state").filter({ hasText: state })
            .waitFor({ timeout: 15_000 });
        }
        // A browser asks for a session: the stock server (least loaded) grants no lease, so the
        // roomy one does; its three simulations and the lease leave one slot of five.
        const leased = await (await fetch(`${session.baseUrl}/session`)).text();
        assert.ok(leased.startsWith(`ws://${entry(roomy)}/lease/`), leased);
        await rows.nth(0).locator("td").nth(6).filter({ hasText: /^1 of 5$/ })
          .waitFor({ timeout: 15_000 });
        const cells = async (i: number) =>
          (await rows.nth(i).locator("td").allTextContents()).slice(5);
        assert.deepEqual(await cells(0), ["3", "1 of 5"]);
        assert.deepEqual(await cells(1), ["1", "0 of 1"]);
        assert.deepEqual(await cells(2), ["1", "1 of 2"]);
        assert.deepEqual(await cells(3), ["—", "—"], "a stock server says nothing of its slots");
        assert.deepEqual(await cells(4), ["—", "—"]);
        assert.equal(await rows.nth(4).locator("td").nth(3).textContent(), "never");
        assert.equal(await rows.nth(3).locator("td").nth(4).textContent(), "20.0%");
        assert.equal(await page.title(), "Webots session server");
        // 5 simulations; free slots of the servers that take new clients and say: the roomy one.
        assert.deepEqual((await page.locator("#totals td").allTextContents()).slice(3), ["5", "1"]);
        const changes = await page.locator("#changes tbody tr").allTextContents();
        assert.ok(changes.some((c) => c.includes(entry(draining)) && c.includes("draining")));
        assert.ok(changes.some((c) => c.includes(dead) && c.includes("not responding")));
        assert.equal(
          await page.locator("#leases li").textContent(),
          "Slots held by leases (granted, no Webots running yet): 1",
        );
        // The queue is on by default (queueMax 100): its section shows, empty.
        assert.equal(await page.locator("#queue li").first().textContent(), "Pages waiting: 0");
        await page.waitForFunction(
          () => ((globalThis as ChartWindow).webotsCharts?.load?.data[0]?.length ?? 0) >= 3,
          undefined,
          { timeout: 20_000 },
        );
        await screenshot(page, "fleet-session-monitor");
        assert.deepEqual(page.problems, []);
        await page.close();
      });

      await t.step(
        "simulation /monitor: /load and its parts, then running, paused and starting simulations",
        async () => {
          const page = await newPage(browser);
          await page.goto(`${roomy.server.baseUrl}/monitor`);
          const states = page.locator("#sessions tbody tr td span.state");
          for (const state of ["running", "idle", "starting"]) {
            await states.filter({ hasText: state }).waitFor({ timeout: 15_000 });
          }
          await page.locator("#slots").filter({
            hasText: "4 used (1 held by slot leases, no Webots yet), 1 free of maxConnections 5",
          }).waitFor({ timeout: 15_000 });
          const figure = Number(
            (await page.locator("#load-figure").textContent())!.replace("%", ""),
          );
          assert.ok(figure >= 80, `the load is at least the slot share: ${figure}`);
          const rows = await page.locator("#sessions tbody tr").all();
          const byState = new Map<string, string[]>();
          for (const row of rows) {
            const cells = await row.locator("td").allTextContents();
            byState.set(cells[3]!, cells);
          }
          assert.equal(byState.get("running")![2], "R2021b");
          assert.equal(byState.get("running")![5], "", "a running simulation is not idle");
          assert.match(byState.get("idle")![5]!, /^\d+ s$/, "a paused one shows for how long");
          assert.equal(byState.get("running")![6], "127.0.0.1");
          assert.equal(await page.locator("#drain").isVisible(), false);
          await page.waitForFunction(
            () =>
              ((globalThis as ChartWindow).webotsCharts?.simulations?.data[0]?.length ?? 0) >= 3,
            undefined,
            { timeout: 20_000 },
          );
          await screenshot(page, "fleet-simulation-monitor");
          assert.deepEqual(page.problems, []);
          await page.close();
        },
      );

      await t.step(
        "a draining simulation server's /monitor says so, with the time left",
        async () => {
          const page = await newPage(browser);
          await page.goto(`${draining.server.baseUrl}/monitor`);
          await page.locator("#drain").filter({ hasText: "Draining:" }).waitFor({
            timeout: 15_000,
          });
          assert.equal(await page.locator("#load-figure").textContent(), "100.0%");
          assert.match(
            (await page.locator("#drain").textContent())!,
            /the running ones end in (9|10) min \d\d s \(at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)/,
          );
          assert.equal(await page.locator("#load span.state").textContent(), "draining");
          await screenshot(page, "fleet-simulation-draining");
          assert.deepEqual(page.problems, []);
          await page.close();
        },
      );
    } catch (error) {
      console.error(session.output());
      throw error;
    } finally {
      await Promise.all(sockets.map((ws) => ws.close()));
      await browser.close();
      await session.cleanup();
      await stock.close();
    }
  },
);
