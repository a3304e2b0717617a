/**
 * Session-server routes against the real server process and real fake simulation servers.
 */
import assert from "node:assert/strict";
import { NO_SERVER_AVAILABLE } from "../../shared/protocol.ts";
import { freePort } from "../helpers/server_process.ts";
import { startFakeSimServer } from "../fakes/sim_server.ts";
import { get, startSession, waitFor, waitForSession } from "./_helpers.ts";

Deno.test("GET /session returns the least-loaded server below 99, ties to config order", async (t) => {
  await using a = startFakeSimServer({ load: 50 });
  await using b = startFakeSimServer({ load: 20 });
  await using c = startFakeSimServer({ load: 20 });
  const session = await startSession({ simulationServers: [a.entry, b.entry, c.entry] });
  try {
    await t.step("the first of two equally loaded servers wins", async () => {
      await waitForSession(session.baseUrl, `ws://${b.entry}`);
      const response = await get(`${session.baseUrl}/session?url=ignored`);
      assert.equal(response.status, 200);
      assert.equal(response.type, "text/html; charset=utf-8");
      assert.equal(response.body, `ws://${b.entry}`);
      assert.equal(response.headers.get("access-control-allow-origin"), "*");
      assert.equal(response.headers.get("access-control-allow-headers"), "x-requested-with");
      assert.equal(response.headers.get("access-control-allow-methods"), "POST, GET, OPTIONS");
      assert.deepEqual(
        [...response.headers.keys()].filter((name) => name !== "date" && name !== "content-length"),
        [
          "access-control-allow-headers",
          "access-control-allow-methods",
          "access-control-allow-origin",
          "content-type",
        ],
      );
    });
    await t.step("a server at 99 is excluded", async () => {
      b.setLoad(99);
      await waitForSession(session.baseUrl, `ws://${c.entry}`);
      c.setLoad(99.5);
      await waitForSession(session.baseUrl, `ws://${a.entry}`);
    });
    await t.step("no server below 99 gives the reference's error text", async () => {
      a.setLoad(100);
      await waitForSession(session.baseUrl, NO_SERVER_AVAILABLE);
      const response = await get(`${session.baseUrl}/session`);
      assert.equal(response.status, 200);
      assert.equal(response.body, "Error: no simulation server available at the moment.");
    });
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await session.cleanup();
  }
});

Deno.test("GET /load averages the servers that answer and is -1 when none does", async () => {
  await using a = startFakeSimServer({ load: 10 });
  await using b = startFakeSimServer({ load: 30 });
  await using garbage = startFakeSimServer({ load: "not a number" });
  const dead = `127.0.0.1:${freePort()}`;
  const session = await startSession({
    simulationServers: [a.entry, b.entry, garbage.entry, dead],
  });
  try {
    await waitFor("average 20", async () => {
      const { body } = await get(`${session.baseUrl}/load`);
      return body === "20" ? body : undefined;
    });
    await a.stop();
    await b.stop();
    await waitFor("average -1", async () => {
      const { status, body } = await get(`${session.baseUrl}/load`);
      return status === 200 && body === "-1" ? body : undefined;
    });
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await session.cleanup();
  }
});

Deno.test("GET /monitor escapes every value, shows N/A and averages answering servers only", async () => {
  await using a = startFakeSimServer({ load: 12.5 });
  await using b = startFakeSimServer({ load: 99.5 });
  const evil = "evil<script>alert(1)</script>:1";
  const session = await startSession({ simulationServers: [a.entry, b.entry, evil] });
  try {
    const page = await waitFor("both loads on the monitor page", async () => {
      const { body } = await get(`${session.baseUrl}/monitor`);
      return body.includes("12.5%") && body.includes("99.5%") ? body : undefined;
    });
    const response = await get(`${session.baseUrl}/monitor`);
    assert.equal(response.status, 200);
    assert.equal(response.type, "text/html; charset=utf-8");
    assert.match(page, /<title>Webots simulation server<\/title>/);
    assert.match(page, /<h1>Webots session server<\/h1>/);
    assert.match(page, /<p>Started on \w+day, \w+ \d\d, \d{4} at \d\d:\d\d:\d\d<\/p>/);
    assert.match(page, /<p>Managing 3 simulation servers:<\/p>/);
    // Scripts and styles come from this server's own /assets/ only (the live chart, issue #4).
    assert.deepEqual(
      [...page.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]),
      ["uPlot.iife.min.js", "live_chart.js", "session_monitor.js"].map((f) =>
        `<script src="assets/${f}" defer>`
      ),
    );
    assert.deepEqual([...page.matchAll(/<link\b[^>]*>/g)].map((m) => m[0]), [
      `<link rel="stylesheet" href="assets/uPlot.min.css">`,
    ]);
    assert.ok(page.includes("evil&lt;script&gt;alert(1)&lt;/script&gt;:1"));
    assert.ok(page.includes(`<a href="http://${a.entry}/monitor">${a.entry}</a>`));
    assert.match(page, /<td class="load">12\.5%<\/td>/);
    assert.match(page, /<td class="load full">99\.5%<\/td>/);
    assert.match(page, /<td class="load">N\/A<\/td><\/tr>/);
    assert.match(page, /average:<\/td><td class="load">56%<\/td>/);
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await session.cleanup();
  }
});

Deno.test("OPTIONS /session is a CORS preflight; unknown routes 404; wrong methods 405", async (t) => {
  const session = await startSession({ simulationServers: [`127.0.0.1:${freePort()}`] });
  try {
    await t.step("preflight", async () => {
      const response = await fetch(`${session.baseUrl}/session`, {
        method: "OPTIONS",
        headers: { origin: "https://example.test", "access-control-request-method": "GET" },
      });
      await response.body?.cancel();
      assert.equal(response.status, 204);
      assert.equal(response.headers.get("access-control-allow-origin"), "*");
      assert.equal(response.headers.get("access-control-allow-methods"), "POST, GET, OPTIONS");
    });
    await t.step("404 and 405", async () => {
      assert.equal((await get(`${session.baseUrl}/nothing`)).status, 404);
      assert.equal((await get(`${session.baseUrl}/session/x`)).status, 404);
      for (
        const [method, path] of [["POST", "/session"], ["PUT", "/load"], ["DELETE", "/monitor"], [
          "POST",
          "/",
        ]]
      ) {
        const response = await get(`${session.baseUrl}${path}`, {
          method: method!,
          body: method === "DELETE" ? null : "x",
        });
        assert.equal(response.status, 405, `${method} ${path}`);
      }
    });
    await t.step("a plain GET / shows the home page linking to /monitor", async () => {
      const response = await get(`${session.baseUrl}/`);
      assert.equal(response.status, 200);
      assert.equal(response.type, "text/html; charset=utf-8");
      assert.match(response.body, /<a href="monitor">/);
    });
    await t.step("a malformed request does not take the server down", async () => {
      const connection = await Deno.connect({ hostname: "127.0.0.1", port: session.port });
      await connection.write(new TextEncoder().encode("\x00\x01GARBAGE /\r\n\r\n\r\n"));
      const buffer = new Uint8Array(1024);
      await connection.read(buffer).catch(() => null);
      connection.close();
      assert.equal((await get(`${session.baseUrl}/load`)).body, "-1");
    });
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await session.cleanup();
  }
});

Deno.test("a garbage body or a non-200 status makes a server unavailable until it answers again", async () => {
  await using garbage = startFakeSimServer({ load: "abc" });
  await using failing = startFakeSimServer({ load: 5, status: 500 });
  const session = await startSession({ simulationServers: [garbage.entry, failing.entry] });
  try {
    await garbage.nextServed();
    await failing.nextServed();
    await garbage.nextServed();
    assert.equal((await get(`${session.baseUrl}/session`)).body, NO_SERVER_AVAILABLE);
    failing.setStatus(200);
    await waitForSession(session.baseUrl, `ws://${failing.entry}`);
    garbage.setLoad("1");
    await waitForSession(session.baseUrl, `ws://${garbage.entry}`);
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await session.cleanup();
  }
});

Deno.test("a slow server does not delay noticing a change on another server", async () => {
  const timeoutSeconds = 4;
  await using slow = startFakeSimServer({ load: 0, delayMs: 8000 });
  await using fast = startFakeSimServer({ load: 100 });
  const session = await startSession({
    simulationServers: [slow.entry, fast.entry],
    loadTimeout: timeoutSeconds,
  });
  try {
    await fast.nextServed();
    await fast.nextServed();
    const started = performance.now();
    fast.setLoad(10);
    await waitForSession(session.baseUrl, `ws://${fast.entry}`);
    const elapsed = performance.now() - started;
    assert.ok(
      elapsed < timeoutSeconds * 1000 / 2,
      `change seen after ${elapsed.toFixed(0)} ms, slow server's timeout is ${timeoutSeconds} s`,
    );
  } catch (error) {
    console.error(session.output());
    throw error;
  } finally {
    await session.cleanup();
  }
});
