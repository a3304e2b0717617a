/**
 * Live reconfiguration and the admin API of the session server, in-process: the reload's diff
 * and validation (session/reload.ts), the fleet reconfigured under a fake clock and a scripted
 * fetch (session/fleet.ts), and the admin routes called through the server's handler.
 */
import assert from "node:assert/strict";
import { type SessionConfig, sessionSchema } from "../../session/config.ts";
import { createFleet } from "../../session/fleet.ts";
import { fetchLoadProbe } from "../../session/load_probe.ts";
import { createReloader, LIVE_KEYS, planReload } from "../../session/reload.ts";
import { createSessionServer } from "../../session/server.ts";
import type { Assets } from "../../shared/assets.ts";
import { ConfigError, validateConfig } from "../../shared/config.ts";
import { createRegistry } from "../../shared/metrics.ts";
import { NO_SERVER_AVAILABLE } from "../../shared/protocol.ts";
import { FakeClock, flush } from "../fakes/fake_clock.ts";
import { FakeFetch, FakeMailer, recordingLogger } from "./_fakes.ts";
import type { NameServer, Resolver } from "../../session/dns.ts";

const A = "a.test:2000";
const B = "b.test:2000";
const C = "c.test:2000";
const TOKEN = "0123456789abcdef-admin";
const ENV = { root: "/srv", vars: {}, tmpDir: "/tmp" };
const INFO = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 50000 },
  completed: Promise.resolve(),
} as Deno.ServeHandlerInfo<Deno.NetAddr>;
const NO_ASSETS: Assets = { names: [], respond: () => undefined };
const loadUrl = (entry: string) => `http://${entry}/load`;

const configOf = (raw: Record<string, unknown>): SessionConfig =>
  validateConfig(sessionSchema, { loadRefresh: 1, loadTimeout: 4, ...raw }, "session.json", ENV);

Deno.test("planReload applies live keys and keeps the others with 'needs a restart'", () => {
  const running = configOf({ simulationServers: [A], port: 1999, logFormat: "text" });
  const next = configOf({
    simulationServers: [A, B],
    fullAt: 95,
    availableAt: 80,
    port: 2999,
    logFormat: "json",
    administrator: "ops@example.test",
    queueMax: 5,
  });
  const plan = planReload(running, next, () => true);
  assert.ok(plan.ok);
  assert.deepEqual(
    [...plan.changed].sort(),
    ["administrator", "availableAt", "fullAt", "queueMax", "simulationServers"],
  );
  assert.deepEqual([...plan.needsRestart].sort(), ["logFormat", "port"]);
  assert.deepEqual(plan.config.simulationServers, [A, B]);
  assert.equal(plan.config.fullAt, 95);
  assert.equal(plan.config.port, 1999, "the port keeps its running value");
  assert.equal(plan.config.logFormat, "text");
});

Deno.test("planReload: a key removed from the file falls back to its default or goes", () => {
  const running = configOf({ simulationServers: [A], fullAt: 95, administrator: "o@x.test" });
  const plan = planReload(running, configOf({ simulationServers: [A] }), () => true);
  assert.ok(plan.ok);
  assert.equal(plan.config.fullAt, 99);
  assert.equal(plan.config.administrator, undefined);
  assert.ok(!("administrator" in plan.config));
  assert.deepEqual([...plan.changed].sort(), ["administrator", "fullAt"]);
});

Deno.test("planReload refuses a config naming a path the process may not access", () => {
  const running = configOf({ simulationServers: [A] });
  const next = configOf({
    simulationServers: [A],
    sslCertificate: "/etc/new/cert.pem",
    sslKey: "/etc/new/key.pem",
  });
  const asked: string[] = [];
  const plan = planReload(running, next, (need) => {
    asked.push(`${need.access} ${need.path}`);
    return need.path !== "/etc/new/cert.pem";
  });
  assert.deepEqual(plan, {
    ok: false,
    reason: 'key "sslCertificate" names /etc/new/cert.pem, which this process may not read ' +
      "(its permissions were derived from the config at start): restart the server to use it",
  });
  assert.ok(asked.includes("read /etc/new/cert.pem"));
  assert.ok(!asked.includes("write /srv/log"), "an unchanged path is not asked about");
  const allowed = planReload(running, next, () => true);
  assert.ok(allowed.ok);
  assert.deepEqual([...allowed.needsRestart].sort(), ["sslCertificate", "sslKey"]);
  assert.equal(allowed.config.sslCertificate, undefined, "TLS files change only at a restart");
});

Deno.test("the reloader refuses an invalid file with the reason in the log and keeps the config", async () => {
  const logger = recordingLogger();
  let running = configOf({ simulationServers: [A] });
  let file: () => SessionConfig = () => {
    throw new ConfigError('session.json: key "availableAt" must be below "fullAt" (90), got 95');
  };
  const applied: string[][] = [];
  const outcomes: string[] = [];
  const reloader = createReloader({
    read: () => Promise.resolve().then(file),
    mayAccess: () => true,
    current: () => running,
    apply: (config, changed) => {
      running = config;
      applied.push([...changed]);
    },
    logger,
    onOutcome: (outcome) => outcomes.push(outcome),
  });
  const refused = await reloader.reload("SIGHUP");
  assert.deepEqual(refused, {
    outcome: "refused",
    reason: 'session.json: key "availableAt" must be below "fullAt" (90), got 95',
  });
  assert.deepEqual(running.simulationServers, [A]);
  assert.deepEqual(applied, []);
  const error = logger.lines.find((l) => l.level === "error");
  assert.equal(
    error?.message,
    'config reload refused, the running config stays: session.json: key "availableAt" must be below "fullAt" (90), got 95',
  );
  assert.equal(error?.fields.trigger, "SIGHUP");

  file = () => configOf({ simulationServers: [B], port: 4000 });
  const [first, second] = await Promise.all([reloader.reload("admin"), reloader.reload("SIGHUP")]);
  assert.deepEqual(first, {
    outcome: "applied",
    changed: ["simulationServers"],
    needsRestart: ["port"],
  });
  assert.deepEqual(second, { outcome: "unchanged", changed: [], needsRestart: ["port"] });
  assert.deepEqual(applied, [["simulationServers"]], "reloads run one after the other");
  assert.deepEqual(outcomes, ["refused", "applied", "unchanged"]);
  assert.ok(
    logger.lines.some((l) =>
      l.level === "warn" &&
      l.message === "config reload: port keep their running value until a restart"
    ),
  );
});

Deno.test("LIVE_KEYS are keys of the session schema", () => {
  for (const key of LIVE_KEYS) assert.ok(Object.hasOwn(sessionSchema, key), key);
});

Deno.test("a reconfigured fleet keeps the states of kept servers, drops removed ones and polls added ones from the next round", async (t) => {
  const clock = new FakeClock();
  const net = new FakeFetch();
  net.load(loadUrl(A), 10);
  net.answer(loadUrl(B), { hang: true });
  net.load(loadUrl(C), 30);
  let updates = 0;
  const polled: string[] = [];
  const thresholds = { fullAt: 99, availableAt: 90 };
  const fleet = createFleet({
    entries: [A, B],
    mode: { ssl: false, portRewrite: false },
    probe: fetchLoadProbe(net.fetch, clock),
    logger: recordingLogger(),
    clock,
    refreshMs: 1000,
    timeoutMs: 4000,
    thresholds,
    onUpdate: () => updates++,
    onTransition: () => {},
    onPoll: (entry) => polled.push(entry),
  });
  try {
    fleet.start();
    await flush();
    await t.step("before: A answered, B's poll hangs", () => {
      assert.deepEqual(fleet.servers().map((s) => [s.entry, s.state.kind]), [
        [A, "up"],
        [B, "unknown"],
      ]);
      assert.equal(net.hanging, 1);
    });
    await t.step(
      "reconfigured: B leaves at once and its poll is aborted, C waits a round",
      async () => {
        const before = updates;
        fleet.reconfigure({ entries: [C, A], refreshMs: 2000, timeoutMs: 4000, thresholds });
        await flush();
        assert.equal(updates, before + 1, "availability is recomputed at once");
        assert.equal(net.hanging, 0, "the removed server's poll was aborted");
        assert.deepEqual(fleet.servers().map((s) => [s.entry, s.state.kind]), [
          [C, "unknown"],
          [A, "up"],
        ]);
        assert.ok(!polled.includes(B), "the aborted poll's result is dropped");
        assert.equal(net.callsTo(loadUrl(C)).length, 0);
      },
    );
    await t.step("the next round comes after the new period and polls C, never B", async () => {
      await clock.advance(1000);
      assert.equal(net.callsTo(loadUrl(C)).length, 0, "the old period no longer applies");
      await clock.advance(1000);
      assert.equal(net.callsTo(loadUrl(C)).length, 1);
      assert.equal(net.callsTo(loadUrl(B)).length, 1, "B was polled only before the reload");
      const [c, a] = fleet.details();
      assert.equal(c?.state.kind, "up");
      assert.equal(c?.answeredAt, clock.now());
      assert.equal(a?.entry, A);
    });
  } finally {
    await fleet.stop();
  }
});

/** A session server over a scripted fleet whose config file the test rewrites. */
function sessionWithFile(
  raw: Record<string, unknown>,
  resolverFor?: (nameServer: NameServer | undefined) => Resolver,
) {
  const clock = new FakeClock();
  const net = new FakeFetch();
  const logger = recordingLogger();
  const registry = createRegistry();
  let file: Record<string, unknown> = raw;
  const mailer = new FakeMailer();
  const server = createSessionServer({
    config: configOf(raw),
    logger,
    fetch: net.fetch,
    clock,
    mail: undefined,
    assets: NO_ASSETS,
    registry,
    readConfig: () => Promise.resolve().then(() => configOf(file)),
    mailFor: (config) =>
      config.administrator !== undefined && config.mailSender !== undefined
        ? { administrator: config.administrator, sender: config.mailSender, mailer }
        : undefined,
    ...(resolverFor === undefined ? {} : { resolverFor }),
  });
  const request = (path: string, init: RequestInit = {}, token: string | null = TOKEN) =>
    server.handler(
      new Request(`http://session.test${path}`, {
        ...init,
        headers: {
          ...(init.headers as Record<string, string> | undefined),
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        },
      }),
      INFO,
    );
  const body = async (path: string) => await (await request(path)).text();
  return {
    clock,
    net,
    logger,
    registry,
    server,
    mailer,
    request,
    body,
    edit: (next: Record<string, unknown>) => (file = next),
  };
}

Deno.test("POST /admin/reload adds and removes simulation servers; /session and /monitor follow", async (t) => {
  const s = sessionWithFile({ simulationServers: [A, B], adminToken: TOKEN });
  s.net.load(loadUrl(A), 50);
  s.net.load(loadUrl(B), 20);
  s.net.load(loadUrl(C), 5);
  try {
    s.server.start(1999);
    await flush();
    assert.equal(await s.body("/session"), `ws://${B}`);
    await t.step(
      "B removed, C added: B leaves rotation at once, C is polled next round",
      async () => {
        s.edit({ simulationServers: [A, C], adminToken: TOKEN, loadTimeout: 2 });
        const response = await s.request("/admin/reload", { method: "POST" });
        assert.equal(response.status, 200);
        assert.equal(response.headers.get("content-type"), "application/json; charset=utf-8");
        assert.deepEqual(await response.json(), {
          outcome: "applied",
          changed: ["simulationServers", "loadTimeout"],
          needsRestart: [],
        });
        assert.equal(await s.body("/session"), `ws://${A}`);
        const monitor = await (await s.request("/monitor/data")).text();
        assert.ok(!monitor.includes(B) && monitor.includes(C), monitor);
        await s.clock.advance(1000);
        assert.equal(await s.body("/session"), `ws://${C}`);
      },
    );
    await t.step(
      "GET /admin/servers lists each server with its standing and last answer",
      async () => {
        const response = await s.request("/admin/servers");
        assert.equal(response.status, 200);
        assert.equal(response.headers.get("cache-control"), "no-store");
        const { servers } = await response.json();
        const at = new Date(s.clock.now()).toISOString();
        assert.deepEqual(servers, [
          {
            entry: A,
            loadUrl: loadUrl(A),
            state: "up",
            standing: "available",
            load: 50,
            lastAnswer: at,
            lastPoll: at,
            pollInFlight: false,
          },
          {
            entry: C,
            loadUrl: loadUrl(C),
            state: "up",
            standing: "available",
            load: 5,
            lastAnswer: at,
            lastPoll: at,
            pollInFlight: false,
          },
        ]);
      },
    );
    await t.step(
      "a server that stops answering shows as not responding, with its last answer",
      async () => {
        const answered = new Date(s.clock.now()).toISOString();
        s.net.answer(loadUrl(A), { body: "busy", status: 503 });
        await s.clock.advance(1000);
        const { servers } = await (await s.request("/admin/servers")).json();
        assert.deepEqual(servers[0], {
          entry: A,
          loadUrl: loadUrl(A),
          state: "down",
          standing: "not responding",
          load: null,
          lastAnswer: answered,
          lastPoll: new Date(s.clock.now()).toISOString(),
          pollInFlight: false,
          problem: { reason: "status", detail: "HTTP 503" },
        });
      },
    );
    await t.step("the metrics follow the new list and count the reload", async () => {
      const text = await s.registry.metrics();
      assert.ok(!text.includes(`server="${B}"`), "the removed server's series are gone");
      assert.ok(text.includes(`webots_session_simulation_server_load_percent{server="${C}"} 5`));
      assert.ok(text.includes('webots_session_config_reloads_total{outcome="applied"} 1'));
      assert.ok(text.includes('webots_session_config_reloads_total{outcome="refused"} 0'));
    });
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("POST /admin/reload refuses an invalid file with 400 and the reason; the old config keeps serving", async () => {
  const s = sessionWithFile({ simulationServers: [A], adminToken: TOKEN });
  s.net.load(loadUrl(A), 10);
  try {
    s.server.start(1999);
    await flush();
    s.edit({ simulationServers: [B], adminToken: TOKEN, fullAt: 80, availableAt: 85 });
    const response = await s.request("/admin/reload", { method: "POST" });
    assert.equal(response.status, 400);
    assert.deepEqual(await response.json(), {
      outcome: "refused",
      reason: 'session.json: key "availableAt" must be below "fullAt" (80), got 85',
    });
    assert.equal(await s.body("/session"), `ws://${A}`);
    await s.clock.advance(1000);
    assert.equal(s.net.callsTo(loadUrl(B)).length, 0);
    assert.equal(s.net.callsTo(loadUrl(A)).length, 2);
    assert.ok(s.logger.lines.some((l) => l.level === "error" && l.fields.trigger === "admin"));
    assert.ok(
      (await s.registry.metrics()).includes(
        'webots_session_config_reloads_total{outcome="refused"} 1',
      ),
    );
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("the session admin API: 404 without adminToken, 401 without the right token, 405 for other methods", async (t) => {
  await t.step("off without adminToken", async () => {
    const s = sessionWithFile({ simulationServers: [A] });
    for (const [path, method] of [["/admin/servers", "GET"], ["/admin/reload", "POST"]] as const) {
      const response = await s.request(path, { method });
      assert.equal(response.status, 404, path);
      await response.body?.cancel();
    }
    await s.server.shutdown();
  });
  await t.step("on with it", async () => {
    const s = sessionWithFile({ simulationServers: [A], adminToken: TOKEN });
    for (const token of [null, "wrong-token-0123456789"]) {
      const response = await s.request("/admin/reload", { method: "POST" }, token);
      assert.equal(response.status, 401);
      await response.body?.cancel();
    }
    const refused = s.logger.lines.filter((l) => l.message === "admin request refused");
    assert.equal(refused.length, 2);
    assert.ok(!JSON.stringify(refused).includes("wrong-token"), "the token is never logged");
    const get = await s.request("/admin/reload");
    assert.equal(get.status, 405);
    assert.equal(get.headers.get("allow"), "POST");
    await get.body?.cancel();
    const post = await s.request("/admin/servers", { method: "POST" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
    const unknown = await s.request("/admin/nothing");
    assert.equal(unknown.status, 404);
    await unknown.body?.cancel();
    await s.server.shutdown();
  });
  await t.step("a reload that sets a new token takes effect at once", async () => {
    const s = sessionWithFile({ simulationServers: [A], adminToken: TOKEN });
    const other = "fedcba9876543210-admin";
    s.edit({ simulationServers: [A], adminToken: other });
    const response = await s.request("/admin/reload", { method: "POST" });
    assert.deepEqual(await response.json(), {
      outcome: "applied",
      changed: ["adminToken"],
      needsRestart: [],
    });
    const old = await s.request("/admin/servers");
    assert.equal(old.status, 401);
    await old.body?.cancel();
    const fresh = await s.request("/admin/servers", {}, other);
    assert.equal(fresh.status, 200);
    await fresh.body?.cancel();
    await s.server.shutdown();
  });
});

Deno.test("with allowedOrigins /session's CORS names an allowed origin only, and a reload changes the list", async (t) => {
  const s = sessionWithFile({
    simulationServers: [A],
    adminToken: TOKEN,
    allowedOrigins: ["https://robots.test"],
  });
  s.net.load(loadUrl(A), 10);
  const headersFor = async (origin: string | undefined, method = "GET") => {
    const response = await s.request("/session", {
      method,
      headers: origin === undefined ? {} : { origin },
    });
    await response.body?.cancel();
    return response.headers;
  };
  try {
    s.server.start(1999);
    await flush();
    await t.step("an allowed origin is reflected, with vary: origin", async () => {
      const headers = await headersFor("https://robots.test");
      assert.equal(headers.get("access-control-allow-origin"), "https://robots.test");
      assert.equal(headers.get("access-control-allow-methods"), "POST, GET, OPTIONS");
      assert.equal(headers.get("vary"), "origin");
      const preflight = await headersFor("https://robots.test", "OPTIONS");
      assert.equal(preflight.get("access-control-allow-origin"), "https://robots.test");
    });
    await t.step("another origin, or none, gets no CORS header", async () => {
      for (const origin of ["https://evil.test", undefined]) {
        const headers = await headersFor(origin);
        assert.equal(headers.get("access-control-allow-origin"), null);
        assert.equal(headers.get("access-control-allow-methods"), null);
        assert.equal(headers.get("vary"), "origin");
      }
      assert.equal(
        (await headersFor("https://evil.test", "OPTIONS")).get("access-control-allow-origin"),
        null,
      );
      assert.equal(await s.body("/session"), `ws://${A}`, "the answer itself is unchanged");
    });
    await t.step(
      "an upgrade of / from another origin gets 403, logged with the origin",
      async () => {
        const response = await s.request("/", {
          headers: {
            origin: "https://evil.test",
            upgrade: "websocket",
            connection: "Upgrade",
            "sec-websocket-version": "13",
            "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          },
        });
        assert.equal(response.status, 403);
        assert.equal(await response.text(), "Forbidden: origin not allowed\n");
        const lines = s.logger.lines.filter((l) => l.message.startsWith("WebSocket refused"));
        assert.equal(lines.length, 1);
        assert.equal(lines[0]?.fields.origin, "https://evil.test");
        assert.equal(lines[0]?.level, "warn");
        assert.ok(
          (await s.registry.metrics()).includes(
            'webots_session_upgrades_refused_total{reason="origin"} 1',
          ),
        );
      },
    );
    await t.step("reloaded without allowedOrigins: open again, with *", async () => {
      s.edit({ simulationServers: [A], adminToken: TOKEN });
      const response = await s.request("/admin/reload", { method: "POST" });
      assert.deepEqual((await response.json()).changed, ["allowedOrigins"]);
      const headers = await headersFor("https://evil.test");
      assert.equal(headers.get("access-control-allow-origin"), "*");
      assert.equal(headers.get("vary"), null);
    });
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("a reload changes the thresholds from the next poll and turns e-mails on", async (t) => {
  const s = sessionWithFile({ simulationServers: [A], adminToken: TOKEN });
  s.net.load(loadUrl(A), 50);
  const reload = async () => {
    const response = await s.request("/admin/reload", { method: "POST" });
    assert.equal(response.status, 200);
    return ((await response.json()).changed as string[]).sort();
  };
  try {
    s.server.start(1999);
    await flush();
    assert.equal(await s.body("/session"), `ws://${A}`);
    await t.step(
      "fullAt 40: A at 50 is full from its next poll, and the e-mail goes out",
      async () => {
        s.edit({
          simulationServers: [A],
          adminToken: TOKEN,
          fullAt: 40,
          availableAt: 30,
          administrator: "ops@example.test",
          mailServer: "smtp.example.test",
          mailSender: "sessions@example.test",
        });
        assert.deepEqual(await reload(), [
          "administrator",
          "availableAt",
          "fullAt",
          "mailSender",
          "mailServer",
        ]);
        assert.equal(await s.body("/session"), `ws://${A}`, "judged again at its next poll");
        assert.equal(s.mailer.sent.length, 0);
        await s.clock.advance(1000);
        assert.equal(await s.body("/session"), NO_SERVER_AVAILABLE);
        assert.deepEqual(s.mailer.sent.map((m) => [m.to, m.subject]), [
          ["Administrator <ops@example.test>", "Simulation server reached maximum load"],
        ]);
      },
    );
    await t.step("mail settings removed: transitions are only logged again", async () => {
      s.edit({ simulationServers: [A], adminToken: TOKEN, fullAt: 40, availableAt: 30 });
      assert.deepEqual(await reload(), ["administrator", "mailSender", "mailServer"]);
      s.net.load(loadUrl(A), 10);
      await s.clock.advance(1000);
      assert.equal(await s.body("/session"), `ws://${A}`);
      assert.equal(s.mailer.sent.length, 1);
      assert.ok(s.logger.lines.some((l) => l.message.includes("is available again")));
    });
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("a reload turns the list into a DNS entry and changes the name server: looked up at once, polled next round", async () => {
  // Each name server knows sim.test under other addresses.
  const zones: Record<string, string[]> = {
    "10.0.0.53:53": ["10.1.0.1"],
    "10.0.0.54:5353": ["10.2.0.1", "10.2.0.2"],
  };
  const asked: string[] = [];
  const resolverFor = (ns: NameServer | undefined): Resolver => ({
    addresses(name) {
      const server = `${ns?.ipAddr}:${ns?.port}`;
      asked.push(`${name}@${server}`);
      return Promise.resolve(name === "sim.test" ? zones[server] ?? [] : []);
    },
    services: () => Promise.resolve([]),
  });
  const s = sessionWithFile({ simulationServers: [A], adminToken: TOKEN }, resolverFor);
  for (const entry of [A, "10.1.0.1:2000", "10.2.0.1:2000", "10.2.0.2:2000"]) {
    s.net.load(loadUrl(entry), 10);
  }
  try {
    s.server.start(1999);
    await flush();
    assert.equal(await s.body("/session"), `ws://${A}`);
    assert.deepEqual(asked, [], "no DNS entry, no lookup");

    s.edit({
      simulationServers: ["dns:sim.test:2000"],
      nameServer: "10.0.0.53",
      adminToken: TOKEN,
    });
    const first = await (await s.request("/admin/reload", { method: "POST" })).json();
    assert.deepEqual(first.changed, ["simulationServers", "nameServer"]);
    await flush();
    assert.deepEqual(asked, ["sim.test@10.0.0.53:53"], "looked up at once");
    await s.clock.advance(1000);
    assert.equal(await s.body("/session"), "ws://10.1.0.1:2000");

    s.edit({
      simulationServers: ["dns:sim.test:2000"],
      nameServer: "10.0.0.54:5353",
      adminToken: TOKEN,
    });
    await (await s.request("/admin/reload", { method: "POST" })).json();
    await flush();
    assert.equal(asked.at(-1), "sim.test@10.0.0.54:5353", "the new name server asked at once");
    await s.clock.advance(1000);
    const { servers } = await (await s.request("/admin/servers")).json();
    assert.deepEqual(servers.map((x: { entry: string }) => x.entry), [
      "10.2.0.1:2000",
      "10.2.0.2:2000",
    ]);
  } finally {
    await s.server.shutdown();
  }
});
