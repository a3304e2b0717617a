/**
 * Slot reservation on the session server, in-process: `GET /session` through
 * `createSessionServer(deps).handler` over a scripted fleet (each simulation server's `/load` and
 * `POST /lease` played by a fake fetch), a fake clock driving polls and lease-request timeouts.
 */
import assert from "node:assert/strict";
import { sessionSchema } from "../../session/config.ts";
import { createSessionServer } from "../../session/server.ts";
import { validateConfig } from "../../shared/config.ts";
import { NO_SERVER_AVAILABLE } from "../../shared/protocol.ts";
import { FakeClock } from "../fakes/fake_clock.ts";
import { recordingLogger } from "../fakes/logger.ts";

const SECRET = "lease-secret-for-tests-0123";
const INFO = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 50000 },
  completed: Promise.resolve(),
} as Deno.ServeHandlerInfo<Deno.NetAddr>;

/** How one scripted simulation server answers a lease request. */
type LeaseBehaviour = "grant" | "full" | "draining" | "hang" | "down" | "unauthorized" | "garbage";

interface Sim {
  load: number;
  lease: LeaseBehaviour;
  /** Slots left to lease when `lease` is "grant". */
  slots: number;
  granted: string[];
}

/** A fleet of scripted simulation servers behind one fetch. */
function fleetOf(entries: Record<string, Partial<Sim>>) {
  const sims = new Map<string, Sim>(
    Object.entries(entries).map((
      [entry, sim],
    ) => [entry, { load: 0, lease: "grant", slots: 99, granted: [], ...sim }]),
  );
  const leaseCalls: { entry: string; authorization: string | null }[] = [];
  let next = 0;
  const fetch: typeof globalThis.fetch = (input, init) => {
    const url = new URL(String(input));
    // A port-rewritten entry is `host/port`: its URLs are `https://host/port/…`.
    const rewritten = url.pathname.match(/^\/(\d+)(\/.*)$/);
    const entry = rewritten ? `${url.host}/${rewritten[1]}` : url.host;
    const path = rewritten ? rewritten[2] : url.pathname;
    const sim = sims.get(entry);
    if (sim === undefined) return Promise.reject(new TypeError(`connection refused: ${url}`));
    if (path === "/load") return Promise.resolve(new Response(String(sim.load)));
    assert.equal(path, "/lease");
    assert.equal(init?.method, "POST");
    const authorization = new Headers(init?.headers).get("authorization");
    leaseCalls.push({ entry, authorization });
    if (sim.lease === "down") return Promise.reject(new TypeError(`connection refused: ${url}`));
    const json = (value: unknown, status: number) =>
      Promise.resolve(new Response(JSON.stringify(value), { status }));
    switch (sim.lease) {
      case "hang":
        return new Promise((_, reject) => {
          const signal = init!.signal!;
          signal.addEventListener("abort", () => reject(signal.reason), { once: true });
        });
      case "unauthorized":
        return json({ error: "unauthorized" }, 401);
      case "garbage":
        return Promise.resolve(new Response("<html>proxy error</html>", { status: 200 }));
      case "full":
      case "draining":
        return json({ error: sim.lease }, 503);
      case "grant": {
        if (sim.slots === 0) return json({ error: "full" }, 503);
        sim.slots--;
        const token = `token${String(next++).padStart(17, "0")}`;
        sim.granted.push(token);
        return json({ token, url: `ws://${entry}/lease/${token}`, expiresIn: 30 }, 200);
      }
    }
    throw new Error(`unscripted ${sim.lease}`);
  };
  return { sims, leaseCalls, fetch };
}

function sessionOf(
  fleet: ReturnType<typeof fleetOf>,
  leaseSecret: string | undefined,
  config: Record<string, unknown> = {},
) {
  const clock = new FakeClock();
  const logger = recordingLogger();
  const server = createSessionServer({
    config: validateConfig(
      sessionSchema,
      { simulationServers: [...fleet.sims.keys()], loadRefresh: 1, loadTimeout: 1, ...config },
      "test.json",
      { root: "/srv", vars: {}, tmpDir: "/tmp" },
    ),
    logger,
    fetch: fleet.fetch,
    clock,
    mail: undefined,
    assets: { names: [], respond: () => undefined },
    ...(leaseSecret === undefined ? {} : { leaseSecret }),
  });
  const request = (path: string, init?: RequestInit) =>
    server.handler(new Request(`http://session.test${path}`, init), INFO);
  const session = async () => {
    const response = await request("/session");
    return { text: await response.text(), headers: response.headers };
  };
  return { clock, logger, server, request, session };
}

Deno.test("without a secret GET /session is the cached answer and no lease is asked for", async () => {
  const fleet = fleetOf({ "a.test:2000": { load: 10 } });
  const { server, session, clock } = sessionOf(fleet, undefined);
  server.start(1999);
  await clock.advance(0);
  assert.equal(server.grant, undefined);
  assert.equal((await session()).text, "ws://a.test:2000");
  assert.equal((await session()).text, "ws://a.test:2000");
  assert.equal(fleet.leaseCalls.length, 0);
  await server.shutdown();
});

Deno.test("with a secret GET /session answers a lease URL from the least-loaded server", async () => {
  const fleet = fleetOf({ "a.test:2000": { load: 50 }, "b.test:2000": { load: 10 } });
  const { server, session, request, clock } = sessionOf(fleet, SECRET);
  server.start(1999);
  await clock.advance(0);
  const answer = await session();
  const token = fleet.sims.get("b.test:2000")!.granted[0]!;
  assert.equal(answer.text, `ws://b.test:2000/lease/${token}`);
  assert.equal(answer.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(answer.headers.get("access-control-allow-origin"), "*");
  assert.equal(answer.headers.get("cache-control"), "no-store");
  assert.deepEqual(fleet.leaseCalls, [{ entry: "b.test:2000", authorization: `Bearer ${SECRET}` }]);
  const second = await session();
  assert.notEqual(second.text, answer.text, "each answer is a lease of its own");
  await assertHeadReservesNothing(request, fleet);
  await server.shutdown();
});

/** A HEAD reserves nothing. */
async function assertHeadReservesNothing(
  request: (path: string, init?: RequestInit) => Response | Promise<Response>,
  fleet: ReturnType<typeof fleetOf>,
) {
  const before = fleet.leaseCalls.length;
  const head = await request("/session", { method: "HEAD" });
  assert.equal(head.status, 200);
  await head.body?.cancel();
  assert.equal(fleet.leaseCalls.length, before);
}

Deno.test("a server that refuses, hangs or is down is passed over for the next-best, in load order", async () => {
  const fleet = fleetOf({
    "a.test:2000": { load: 10, lease: "full" },
    "b.test:2000": { load: 20, lease: "hang" },
    "c.test:2000": { load: 30, lease: "down" },
    "d.test:2000": { load: 40, lease: "draining" },
    "e.test:2000": { load: 50, lease: "garbage" },
    "f.test:2000": { load: 60, lease: "grant" },
    "g.test:2000": { load: 5, lease: "grant", slots: 0 },
  });
  const { server, request, clock, logger } = sessionOf(fleet, SECRET, { loadRefresh: 60 });
  server.start(1999);
  await clock.advance(0);
  const pending = request("/session");
  // b hangs: its lease request is given up after min(loadTimeout, 2 s) = 1 s.
  await clock.advance(1000);
  const answer = await (await pending).text();
  const token = fleet.sims.get("f.test:2000")!.granted[0]!;
  assert.equal(answer, `ws://f.test:2000/lease/${token}`);
  assert.deepEqual(
    fleet.leaseCalls.map((c) => c.entry),
    [
      "g.test:2000",
      "a.test:2000",
      "b.test:2000",
      "c.test:2000",
      "d.test:2000",
      "e.test:2000",
      "f.test:2000",
    ],
  );
  const metrics = await (await request("/metrics")).text();
  for (
    const [outcome, count] of [
      ["granted", 1],
      ["refused", 3],
      ["timeout", 1],
      ["unreachable", 1],
      ["bad_answer", 1],
      ["unauthorized", 0],
    ] as const
  ) {
    assert.ok(
      metrics.includes(`webots_session_lease_requests_total{outcome="${outcome}"} ${count}\n`),
      `${outcome} ${count} in\n${metrics}`,
    );
  }
  assert.match(
    metrics,
    /webots_session_reservation_duration_seconds_count\{result="granted"\} 1\n/,
  );
  assert.ok(!metrics.includes(SECRET));
  assert.ok(!JSON.stringify(logger.lines).includes(SECRET));
  for (const page of ["/monitor", "/monitor/data", "/"]) {
    assert.ok(!(await (await request(page)).text()).includes(SECRET), page);
  }
  await server.shutdown();
});

Deno.test("servers that answered full are skipped until the next poll; none left: no server available", async () => {
  const fleet = fleetOf({
    "a.test:2000": { load: 10, slots: 1 },
    "b.test:2000": { load: 10, slots: 1 },
  });
  const { server, session, clock } = sessionOf(fleet, SECRET, { loadRefresh: 5 });
  server.start(1999);
  await clock.advance(0);
  const answers = [await session(), await session(), await session(), await session()];
  assert.match(answers[0]!.text, /^ws:\/\/[ab]\.test:2000\/lease\/token\d+$/);
  assert.match(answers[1]!.text, /^ws:\/\/[ab]\.test:2000\/lease\/token\d+$/);
  assert.notEqual(answers[0]!.text.slice(0, 16), answers[1]!.text.slice(0, 16), "one each");
  assert.equal(answers[2]!.text, NO_SERVER_AVAILABLE);
  assert.equal(answers[3]!.text, NO_SERVER_AVAILABLE);
  // Both answered "full" once (third request); the fourth asked nobody.
  assert.equal(fleet.leaseCalls.length, 4);
  fleet.sims.get("a.test:2000")!.slots = 1;
  await clock.advance(5000);
  assert.match((await session()).text, /^ws:\/\/a\.test:2000\/lease\//);
  await server.shutdown();
});

Deno.test("a wrong secret on one side: no lease, the error says none available, the log says why", async () => {
  const fleet = fleetOf({ "a.test:2000": { load: 10, lease: "unauthorized" } });
  const { server, session, clock, logger } = sessionOf(fleet, SECRET);
  server.start(1999);
  await clock.advance(0);
  assert.equal((await session()).text, NO_SERVER_AVAILABLE);
  const line = logger.lines.find((l) => l.message === "slot lease not granted");
  assert.equal(line?.fields.outcome, "unauthorized");
  assert.ok(!JSON.stringify(logger.lines).includes(SECRET));
  await server.shutdown();
});

Deno.test("grant() is the function a queued page is served with: a URL or undefined", async () => {
  const fleet = fleetOf({ "a.test:2000": { load: 10, slots: 1 } });
  const { server, clock } = sessionOf(fleet, SECRET);
  server.start(1999);
  await clock.advance(0);
  const url = await server.grant!();
  assert.equal(url, `ws://a.test:2000/lease/${fleet.sims.get("a.test:2000")!.granted[0]}`);
  assert.equal(await server.grant!(), undefined);
  await server.shutdown();
});

Deno.test("with port rewriting the lease is asked at https://host/port/lease and answered as wss", async () => {
  const fleet = fleetOf({ "webots.test/2000": { load: 10 } });
  const { server, session, clock } = sessionOf(fleet, SECRET, { portRewrite: true });
  server.start(1999);
  await clock.advance(0);
  const answer = await session();
  assert.match(answer.text, /^wss:\/\/webots\.test\/2000\/lease\/token\d{17}$/);
  assert.deepEqual(fleet.leaseCalls.map((c) => c.entry), ["webots.test/2000"]);
  await server.shutdown();
});

Deno.test("with allowedOrigins a page of another origin reserves no slot; an allowed one gets its own CORS", async () => {
  const fleet = fleetOf({ "a.test:2000": { load: 10 } });
  const { server, request, clock } = sessionOf(fleet, SECRET, {
    allowedOrigins: ["https://good.example"],
  });
  server.start(1999);
  await clock.advance(0);
  const refused = await request("/session", { headers: { origin: "https://evil.example" } });
  assert.equal(await refused.text(), NO_SERVER_AVAILABLE);
  assert.equal(refused.headers.get("access-control-allow-origin"), null);
  assert.equal(fleet.leaseCalls.length, 0, "no slot held for a page that cannot read the answer");
  const allowed = await request("/session", { headers: { origin: "https://good.example" } });
  const token = fleet.sims.get("a.test:2000")!.granted[0]!;
  assert.equal(await allowed.text(), `ws://a.test:2000/lease/${token}`);
  assert.equal(allowed.headers.get("access-control-allow-origin"), "https://good.example");
  assert.equal(allowed.headers.get("vary"), "origin");
  assert.equal(allowed.headers.get("cache-control"), "no-store");
  await server.shutdown();
});
