/**
 * The session server's handler called directly with `new Request(…)`: a scripted fetch plays the
 * simulation servers, a fake clock drives polling, a fake mailer takes the e-mails. No process, no
 * socket, no wall-clock wait.
 */
import assert from "node:assert/strict";
import { sessionSchema } from "../../session/config.ts";
import { createSessionServer } from "../../session/server.ts";
import type { Assets } from "../../shared/assets.ts";
import { validateConfig } from "../../shared/config.ts";
import { NO_SERVER_AVAILABLE } from "../../shared/protocol.ts";
import { FakeClock, flush } from "../fakes/fake_clock.ts";
import { FakeFetch, FakeMailer, recordingLogger } from "./_fakes.ts";

const A = "a.test:2000";
const B = "b.test:2000";
const C = "c.test:2000";
const ADMIN = "admin@example.test";
const SENDER = "sessions@example.test";
const REFRESH_MS = 1000;

const INFO = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 50000 },
  completed: Promise.resolve(),
} as Deno.ServeHandlerInfo<Deno.NetAddr>;

/** Serves `/assets/known.js`; `/assets/boom.js` throws, as a broken route would. */
const ASSETS: Assets = {
  names: ["known.js"],
  respond(request) {
    const path = new URL(request.url).pathname;
    if (path === "/assets/boom.js") throw new Error("disk on fire");
    return path === "/assets/known.js" ? new Response("known") : undefined;
  },
};

interface Options {
  readonly mail?: boolean;
  /** Local time the server starts at (the monitor shows it). */
  readonly startAt?: number;
}

/** A session server over a scripted fleet; `config` is a config file's content. */
function sessionOf(config: Record<string, unknown>, options: Options = {}) {
  const clock = new FakeClock(options.startAt);
  const net = new FakeFetch();
  const logger = recordingLogger();
  const mailer = new FakeMailer();
  const server = createSessionServer({
    config: validateConfig(
      sessionSchema,
      {
        loadRefresh: REFRESH_MS / 1000,
        loadTimeout: 4,
        ...config,
      },
      "test.json",
      { root: "/srv", vars: {}, tmpDir: "/tmp" },
    ),
    logger,
    fetch: net.fetch,
    clock,
    mail: options.mail ? { administrator: ADMIN, sender: SENDER, mailer } : undefined,
    assets: ASSETS,
  });
  const request = (path: string, init?: RequestInit) =>
    server.handler(new Request(`http://session.test${path}`, init), INFO);
  const body = async (path: string) => await (await request(path)).text();
  const monitorData = async () => await (await request("/monitor/data")).json();
  /** Lets one poll period pass and the answers arrive. */
  const nextRound = () => clock.advance(REFRESH_MS);
  return { clock, net, logger, mailer, server, request, body, monitorData, nextRound };
}

const loadUrl = (entry: string) => `http://${entry}/load`;

Deno.test("GET /session hands out the least-loaded server once polls have answered", async (t) => {
  const s = sessionOf({ simulationServers: [A, B, C] });
  s.net.load(loadUrl(A), 50);
  s.net.load(loadUrl(B), 20);
  s.net.load(loadUrl(C), 20);
  try {
    await t.step("before the first poll has answered, no server is available", async () => {
      const response = await s.request("/session");
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
      assert.equal(response.headers.get("access-control-allow-origin"), "*");
      assert.equal(response.headers.get("access-control-allow-headers"), "x-requested-with");
      assert.equal(response.headers.get("access-control-allow-methods"), "POST, GET, OPTIONS");
      assert.equal(await response.text(), NO_SERVER_AVAILABLE);
      assert.equal(NO_SERVER_AVAILABLE, "Error: no simulation server available at the moment.");
    });
    await t.step("after the first round, the first of two equally loaded servers", async () => {
      s.server.start(1999);
      await flush();
      const response = await s.request("/session?url=ignored");
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("access-control-allow-origin"), "*");
      assert.equal(await response.text(), `ws://${B}`);
    });
    await t.step("a server at 99 or more is left out from the next round on", async () => {
      s.net.load(loadUrl(B), 99);
      assert.equal(await s.body("/session"), `ws://${B}`, "nothing changes between rounds");
      await s.nextRound();
      assert.equal(await s.body("/session"), `ws://${C}`);
      s.net.load(loadUrl(C), 99.5);
      await s.nextRound();
      assert.equal(await s.body("/session"), `ws://${A}`);
    });
    await t.step("no server below 99 gives the reference's error text", async () => {
      s.net.load(loadUrl(A), 100);
      await s.nextRound();
      assert.equal(await s.body("/session"), NO_SERVER_AVAILABLE);
    });
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("with SSL or portRewrite /session hands out wss:// URLs and polls over https", async (t) => {
  for (
    const [name, config, entry] of [
      ["ssl", { sslCertificate: "/ssl/cert.pem", sslKey: "/ssl/key.pem" }, A],
      ["portRewrite", { portRewrite: true }, "sim.test/2000"],
    ] as const
  ) {
    await t.step(name, async () => {
      const s = sessionOf({ simulationServers: [entry], ...config });
      s.net.load(`https://${entry}/load`, 10);
      try {
        s.server.start(1999);
        await flush();
        assert.deepEqual(s.net.calls.map((c) => c.url), [`https://${entry}/load`]);
        assert.equal(await s.body("/session"), `wss://${entry}`);
        const page = await s.body("/monitor");
        assert.ok(page.includes(`<a href="https://${entry}/monitor">${entry}</a>`));
      } finally {
        await s.server.shutdown();
      }
    });
  }
});

Deno.test("a slow server does not delay noticing a change on another one", async () => {
  const slow = "slow.test:2000";
  const s = sessionOf({ simulationServers: [slow, A], loadTimeout: 4 });
  s.net.answer(loadUrl(slow), { hang: true });
  s.net.load(loadUrl(A), 100);
  try {
    s.server.start(1999);
    await flush();
    assert.equal(await s.body("/session"), NO_SERVER_AVAILABLE);
    s.net.load(loadUrl(A), 10);
    await s.nextRound();
    assert.equal(s.net.hanging, 1, "the slow server's poll is still waiting");
    assert.equal(await s.body("/session"), `ws://${A}`);
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("OPTIONS /session is a CORS preflight; wrong methods get 405 with allow; unknown paths 404", async (t) => {
  const s = sessionOf({ simulationServers: [A] });
  await t.step("preflight", async () => {
    const response = await s.request("/session", { method: "OPTIONS" });
    assert.equal(response.status, 204);
    assert.equal(await response.text(), "");
    assert.equal(response.headers.get("access-control-allow-origin"), "*");
    assert.equal(response.headers.get("access-control-allow-headers"), "x-requested-with");
    assert.equal(response.headers.get("access-control-allow-methods"), "POST, GET, OPTIONS");
  });
  await t.step("405 names the allowed methods", async () => {
    const cases: [string, string, string][] = [
      ["POST", "/session", "GET, HEAD, OPTIONS"],
      ["PUT", "/load", "GET, HEAD"],
      ["DELETE", "/monitor", "GET, HEAD"],
      ["POST", "/monitor/data", "GET, HEAD"],
      ["POST", "/", "GET, HEAD"],
    ];
    for (const [method, path, allow] of cases) {
      const response = await s.request(path, { method });
      await response.body?.cancel();
      assert.equal(response.status, 405, `${method} ${path}`);
      assert.equal(response.headers.get("allow"), allow, `${method} ${path}`);
    }
  });
  await t.step("HEAD is answered like GET", async () => {
    const response = await s.request("/session", { method: "HEAD" });
    await response.body?.cancel();
    assert.equal(response.status, 200);
  });
  await t.step("404 for unknown paths, assets served by the assets collaborator", async () => {
    for (const path of ["/nothing", "/session/x", "/assets/unknown.js"]) {
      const response = await s.request(path);
      assert.equal(response.status, 404, path);
      assert.equal(await response.text(), "Not found\n");
    }
    assert.equal(await s.body("/assets/known.js"), "known");
  });
  await t.step("a route that throws is a logged 500", async () => {
    const response = await s.request("/assets/boom.js");
    assert.equal(response.status, 500);
    assert.equal(await response.text(), "Internal server error\n");
    const line = s.logger.lines.find((l) => l.message === "request failed");
    assert.equal(line?.level, "error");
    assert.equal((line?.fields.err as Error).message, "disk on fire");
  });
  await t.step("a plain GET / is the home page linking to the monitor", async () => {
    const response = await s.request("/?url=webots://x");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
    assert.match(await response.text(), /<a href="monitor">/);
  });
});

Deno.test("GET /load averages the servers that answer and is -1 when none does", async () => {
  const s = sessionOf({ simulationServers: [A, B, "garbage.test:2000", "dead.test:2000"] });
  s.net.load(loadUrl(A), 10);
  s.net.load(loadUrl(B), 30);
  s.net.load(loadUrl("garbage.test:2000"), "not a number");
  try {
    assert.equal(await s.body("/load"), "-1", "nothing has answered yet");
    s.server.start(1999);
    await flush();
    const response = await s.request("/load");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.equal(await response.text(), "20");
    s.net.answer(loadUrl(A), { refuse: true });
    s.net.answer(loadUrl(B), { body: "30", status: 503 });
    await s.nextRound();
    assert.equal(await s.body("/load"), "-1");
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("GET /monitor escapes every value, shows each state and averages answering servers only", async (t) => {
  const evil = "evil<script>alert(1)</script>:1";
  const s = sessionOf({ simulationServers: [A, B, evil] }, {
    startAt: new Date(2026, 10, 21, 6, 3, 9).getTime(),
  });
  s.net.load(loadUrl(A), 12.5);
  s.net.load(loadUrl(B), 99.5);
  try {
    await t.step("before the first poll every server is 'not polled yet'", async () => {
      const page = await s.body("/monitor");
      assert.equal([...page.matchAll(/>not polled yet</g)].length, 3);
      assert.match(page, /servers\):<\/td><td class="load">N\/A<\/td>/);
    });
    await t.step("after a round", async () => {
      s.server.start(1999);
      await s.clock.advance(5000);
      const response = await s.request("/monitor");
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
      const page = await response.text();
      assert.match(page, /<title>Webots session server<\/title>/);
      assert.match(page, /<h1>Webots session server<\/h1>/);
      const started = new Date(2026, 10, 21, 6, 3, 9).toISOString().slice(0, 19);
      assert.ok(page.includes(`<p>Started ${started.replace("T", " ")} — all times are UTC.`));
      assert.ok(page.includes('Managing <span id="managed">3 simulation servers</span>:'));
      assert.deepEqual(
        [...page.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]),
        ["uPlot.iife.min.js", "live_chart.js", "session_monitor.js"].map((f) =>
          `<script src="assets/${f}" defer>`
        ),
      );
      assert.ok(!page.includes("<script>alert(1)"));
      assert.ok(page.includes("evil&lt;script&gt;alert(1)&lt;/script&gt;:1"));
      assert.ok(page.includes(`<a href="http://${A}/monitor">${A}</a>`));
      assert.ok(page.includes(`<span class="state state-available">available</span>`));
      assert.ok(page.includes(`<span class="state state-full">full</span>`));
      assert.ok(page.includes(`<span class="state state-down">not responding</span>`));
      assert.match(page, /<td class="load">12\.5%<\/td>/);
      assert.match(page, /<td class="load full">99\.5%<\/td>/);
      assert.match(page, /<td class="load">N\/A<\/td>/);
      // The same one-decimal form as the rows' loads.
      assert.match(page, /servers\):<\/td><td class="load">56\.0%<\/td>/);
    });
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("GET /monitor/data has the rows, the average and one history sample per second", async () => {
  const s = sessionOf({ simulationServers: [A, B] });
  s.net.load(loadUrl(A), 10);
  s.net.answer(loadUrl(B), { refuse: true });
  try {
    const t0 = Math.floor(s.clock.now() / 1000);
    s.server.start(1999);
    await flush();
    s.net.load(loadUrl(A), 99);
    s.net.load(loadUrl(B), 40);
    await s.nextRound();
    const response = await s.request("/monitor/data");
    assert.equal(response.headers.get("content-type"), "application/json; charset=utf-8");
    assert.equal(response.headers.get("cache-control"), "no-store");
    const answered = s.clock.now();
    const data = await response.json();
    assert.deepEqual(data, {
      servers: [
        {
          entry: A,
          monitor: `http://${A}/monitor`,
          state: "full",
          stateClass: "state state-full",
          lastAnswer: new Date(answered).toISOString().slice(0, 19).replace("T", " "),
          load: "99.0%",
          loadClass: "load full",
          simulations: "—",
          freeSlots: "—",
        },
        {
          entry: B,
          monitor: `http://${B}/monitor`,
          state: "available",
          stateClass: "state state-available",
          lastAnswer: new Date(answered).toISOString().slice(0, 19).replace("T", " "),
          load: "40.0%",
          loadClass: "load",
          simulations: "—",
          freeSlots: "—",
        },
      ],
      totals: { average: { text: "69.5%", className: "load" }, simulations: "—", freeSlots: "—" },
      thresholds: { fullAt: 99, availableAt: 90 },
      // Newest first: both changed in the second round, B after A.
      changes: [{
        time: new Date(answered).toISOString().slice(0, 19).replace("T", " "),
        entry: B,
        from: "not responding",
        to: "available",
        toClass: "state state-available",
        load: "40.0%",
      }, {
        time: new Date(answered).toISOString().slice(0, 19).replace("T", " "),
        entry: A,
        from: "available",
        to: "full",
        toClass: "state state-full",
        load: "99.0%",
      }, {
        time: new Date(t0 * 1000).toISOString().slice(0, 19).replace("T", " "),
        entry: B,
        from: "not polled yet",
        to: "not responding",
        toClass: "state state-down",
        load: "",
      }],
      queue: [
        "Pages waiting: 0",
        "Longest wait now: —",
        "Average wait of the last served pages: —",
        "Estimated wait for a page joining now: —",
      ],
      history: {
        timestamp: [t0, t0 + 1],
        average: [10, 69.5],
        s0: [10, 99],
        s1: [null, 40],
      },
      series: [
        { key: "average", label: "average", color: "#222", width: 2.5 },
        { key: "s0", label: A, color: "#1f77b4" },
        { key: "s1", label: B, color: "#ff7f0e" },
      ],
    });
    assert.equal("leases" in data, false, "no leases section without the lease feature");
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("a server going full, then available, down and back flips availability and is e-mailed", async (t) => {
  const s = sessionOf({ simulationServers: [A], server: "sessions.test" }, { mail: true });
  s.net.load(loadUrl(A), 10);
  const state = async () => (await s.monitorData()).servers[0].state;
  const check = "Check it at http://sessions.test:1999/monitor\n\n-Simulation Server";
  try {
    s.server.start(1999);
    await flush();
    assert.equal(await s.body("/session"), `ws://${A}`);
    await t.step("full", async () => {
      s.net.load(loadUrl(A), 99.5);
      await s.nextRound();
      assert.equal(await s.body("/session"), NO_SERVER_AVAILABLE);
      assert.equal(await state(), "full");
    });
    await t.step("available again", async () => {
      s.net.load(loadUrl(A), 20);
      await s.nextRound();
      assert.equal(await s.body("/session"), `ws://${A}`);
      assert.equal(await state(), "available");
    });
    await t.step("not responding", async () => {
      s.net.answer(loadUrl(A), { refuse: true });
      await s.nextRound();
      assert.equal(await s.body("/session"), NO_SERVER_AVAILABLE);
      assert.equal(await state(), "not responding");
    });
    await t.step("working again", async () => {
      s.net.load(loadUrl(A), 20);
      await s.nextRound();
      assert.equal(await s.body("/session"), `ws://${A}`);
    });
    await t.step("each transition was e-mailed once, with the reference's words", () => {
      assert.deepEqual(s.mailer.sent.map((m) => [m.subject, m.text]), [
        [
          "Simulation server reached maximum load",
          `Hello,\n\n${A} simulation server has reached maximum load (99.5%).\n${check}`,
        ],
        [
          "Simulation server available again",
          `Hello,\n\n${A} simulation server is available again (load = 20.0%).\n${check}`,
        ],
        [
          "Simulation server not responding",
          `Hello,\n\n${A} simulation server may be down, as it is not responding to the requests of the session server...\n${check}`,
        ],
        [
          "Simulation server working again",
          `Hello,\n\n${A} simulation server is up and running again (load = 20.0%).\n${check}`,
        ],
      ]);
      for (const mail of s.mailer.sent) {
        assert.equal(mail.from, `Simulation Server <${SENDER}>`);
        assert.equal(mail.to, `Administrator <${ADMIN}>`);
      }
    });
    await t.step("and logged with the entry and the load", () => {
      const line = s.logger.lines.find((l) =>
        l.message === `${A} simulation server has reached maximum load (99.5%)`
      );
      assert.deepEqual(line?.fields, { entry: A, load: 99.5 });
      assert.equal(line?.level, "info");
    });
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("a failing mailer is logged and polling goes on", async () => {
  const s = sessionOf({ simulationServers: [A] }, { mail: true });
  s.mailer.fail = true;
  s.net.load(loadUrl(A), 10);
  try {
    s.server.start(1999);
    await flush();
    s.net.load(loadUrl(A), 100);
    await s.nextRound();
    assert.equal(await s.body("/session"), NO_SERVER_AVAILABLE);
    s.net.load(loadUrl(A), 30);
    await s.nextRound();
    assert.equal(await s.body("/session"), `ws://${A}`);
    assert.equal(s.mailer.sent.length, 2);
    const errors = s.logger.lines.filter((l) =>
      l.message === `Error: unable to send email to ${ADMIN}`
    );
    assert.equal(errors.length, 2);
    assert.equal(errors[0]!.level, "error");
    assert.equal(errors[0]!.fields.subject, "Simulation server reached maximum load");
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("shutdown stops polling, aborts polls in flight and refuses new subscribers", async () => {
  const slow = "slow.test:2000";
  const s = sessionOf({ simulationServers: [A, slow] });
  s.net.load(loadUrl(A), 10);
  s.net.answer(loadUrl(slow), { hang: true });
  s.server.start(1999);
  await flush();
  assert.equal(s.net.hanging, 1);
  await s.server.shutdown();
  assert.equal(s.net.hanging, 0);
  assert.equal(s.clock.pendingCount, 0, "no timer left behind");
  const calls = s.net.calls.length;
  await s.clock.advance(10_000);
  assert.equal(s.net.calls.length, calls, "no poll after shutdown");
  const response = await s.request("/", { headers: { upgrade: "websocket" } });
  assert.equal(response.status, 503);
  assert.equal(await response.text(), "Shutting down\n");
  assert.ok(s.logger.lines.some((l) => l.message === "shutting down"));
});

Deno.test("a load flapping between 92 and 100 is one change each way for /session, /monitor and the e-mails", async () => {
  const s = sessionOf({ simulationServers: [A], server: "sessions.test" }, { mail: true });
  // One poll each: full at 99, held full in the band, available again below 90, then flapping.
  const loads = [10, 99, 95, 92, 100, 93, 99.5, 89, 95, 98.5, 92, 97];
  const seen: [string, string, string][] = [];
  try {
    for (const [i, load] of loads.entries()) {
      s.net.load(loadUrl(A), load);
      if (i === 0) s.server.start(1999);
      else await s.nextRound();
      await flush();
      const row = (await s.monitorData()).servers[0];
      seen.push([await s.body("/session"), row.state, row.loadClass]);
    }
    const available: [string, string, string] = [`ws://${A}`, "available", "load"];
    const full: [string, string, string] = [NO_SERVER_AVAILABLE, "full", "load full"];
    assert.deepEqual(seen, [
      available,
      ...Array(6).fill(full),
      ...Array(5).fill(available),
    ]);
    assert.deepEqual(s.mailer.sent.map((m) => m.subject), [
      "Simulation server reached maximum load",
      "Simulation server available again",
    ]);
    assert.match(s.mailer.sent[1]!.text, /is available again \(load = 89\.0%\)/);
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("fullAt and availableAt from the config move the band of /session and /monitor", async () => {
  const s = sessionOf({ simulationServers: [A, B], fullAt: 80, availableAt: 50 });
  s.net.load(loadUrl(A), 85);
  s.net.load(loadUrl(B), 70);
  const states = async () =>
    (await s.monitorData()).servers.map((row: { state: string }) => row.state);
  try {
    s.server.start(1999);
    await flush();
    assert.deepEqual(await states(), ["full", "available"]);
    assert.equal(await s.body("/session"), `ws://${B}`);
    s.net.load(loadUrl(A), 60);
    s.net.load(loadUrl(B), 80);
    await s.nextRound();
    assert.deepEqual(await states(), ["full", "full"]);
    assert.equal(await s.body("/session"), NO_SERVER_AVAILABLE);
    s.net.load(loadUrl(A), 49.9);
    await s.nextRound();
    assert.deepEqual(await states(), ["available", "full"]);
    assert.equal(await s.body("/session"), `ws://${A}`);
  } finally {
    await s.server.shutdown();
  }
});
