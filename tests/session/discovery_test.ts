import assert from "node:assert/strict";
import { createDiscovery, type Membership } from "../../session/discovery.ts";
import type { Resolver, ServiceRecord } from "../../session/dns.ts";
import { FakeClock, flush } from "../fakes/fake_clock.ts";
import { recordingLogger } from "../fakes/logger.ts";

const PLAIN = { ssl: false, portRewrite: false };

/** A DNS the test edits: names to addresses and to SRV records; `down` makes lookups fail. */
function scriptedDns() {
  const addresses = new Map<string, string[]>();
  const services = new Map<string, ServiceRecord[]>();
  const asked: string[] = [];
  const state = { down: false, hang: false };
  const answer = <T>(name: string, value: T, signal: AbortSignal): Promise<T> => {
    asked.push(name);
    if (state.hang) {
      return new Promise((_, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason))
      );
    }
    if (state.down) return Promise.reject(new Error("request timed out"));
    return Promise.resolve(value);
  };
  const resolver: Resolver = {
    addresses: (name, signal) => answer(name, [...addresses.get(name) ?? []], signal),
    services: (name, signal) => answer(name, [...services.get(name) ?? []], signal),
  };
  return { addresses, services, asked, state, resolver };
}

interface Change {
  entries: readonly string[];
  joined: readonly Membership[];
  left: readonly Membership[];
}

function setUp(sources: string[], dns = scriptedDns(), intervalMs = 5000) {
  const clock = new FakeClock();
  const logger = recordingLogger();
  const changes: Change[] = [];
  const discovery = createDiscovery({
    sources,
    resolver: dns.resolver,
    intervalMs,
    timeoutMs: 2000,
    mode: PLAIN,
    clock,
    logger,
    onChange: (entries, joined, left) => changes.push({ entries, joined, left }),
  });
  return { clock, logger, changes, discovery, dns };
}

Deno.test("without DNS entries discovery looks nothing up and lists the config's servers", async () => {
  const { discovery, dns, clock, changes } = setUp(["a:2000", "b:2000"]);
  discovery.start();
  await clock.advance(60_000);
  assert.deepEqual(discovery.entries(), ["a:2000", "b:2000"]);
  assert.deepEqual(dns.asked, []);
  assert.deepEqual(changes, []);
  assert.equal(clock.pendingCount, 0);
  await discovery.stop();
});

Deno.test("servers that appear in DNS join, in config order, and those that disappear leave, each logged", async () => {
  const dns = scriptedDns();
  dns.addresses.set("sim.test", ["10.0.0.12", "10.0.0.9", "fd00::1"]);
  dns.services.set("_w._tcp.test", [
    { target: "b.test.", port: 2001, priority: 10, weight: 0 },
    { target: "a.test.", port: 2002, priority: 1, weight: 0 },
    { target: ".", port: 0, priority: 0, weight: 0 },
  ]);
  const { discovery, clock, changes, logger } = setUp(
    ["first:2000", "dns:sim.test:2000", "dns+srv:_w._tcp.test"],
    dns,
  );
  assert.deepEqual(discovery.entries(), ["first:2000"], "nothing from DNS before the first answer");
  discovery.start();
  await flush();
  const expected = [
    "first:2000",
    "10.0.0.9:2000",
    "10.0.0.12:2000",
    "[fd00::1]:2000",
    "a.test:2002",
    "b.test:2001",
  ];
  assert.deepEqual(discovery.entries(), expected);
  assert.deepEqual(changes.flatMap((c) => c.joined.map((j) => j.entry)), expected.slice(1));
  assert.deepEqual(changes.at(-1)?.joined.at(-1), {
    entry: "b.test:2001",
    source: "dns+srv:_w._tcp.test",
  });

  dns.addresses.set("sim.test", ["10.0.0.12", "10.0.0.13"]);
  changes.length = 0;
  await clock.advance(5000);
  assert.deepEqual(discovery.entries(), [
    "first:2000",
    "10.0.0.12:2000",
    "10.0.0.13:2000",
    "a.test:2002",
    "b.test:2001",
  ]);
  assert.equal(changes.length, 1);
  assert.deepEqual(changes[0]!.joined, [{ entry: "10.0.0.13:2000", source: "dns:sim.test:2000" }]);
  assert.deepEqual(changes[0]!.left, [
    { entry: "10.0.0.9:2000", source: "dns:sim.test:2000" },
    { entry: "[fd00::1]:2000", source: "dns:sim.test:2000" },
  ]);
  const messages = logger.lines.map((l) => l.message);
  assert.ok(messages.includes("simulation server 10.0.0.13:2000 joined (dns:sim.test:2000)"));
  assert.ok(messages.includes("simulation server 10.0.0.9:2000 left (dns:sim.test:2000)"));

  // The same answer again is no change.
  changes.length = 0;
  await clock.advance(5000);
  assert.deepEqual(changes, []);
  await discovery.stop();
});

Deno.test("a failing lookup keeps the servers known and is logged once when it starts and once when it ends", async () => {
  const dns = scriptedDns();
  dns.addresses.set("sim.test", ["10.0.0.1", "10.0.0.2"]);
  const { discovery, clock, changes, logger } = setUp(["dns:sim.test:2000"], dns);
  discovery.start();
  await flush();
  assert.deepEqual(discovery.entries(), ["10.0.0.1:2000", "10.0.0.2:2000"]);
  dns.state.down = true;
  changes.length = 0;
  await clock.advance(15_000);
  assert.deepEqual(discovery.entries(), ["10.0.0.1:2000", "10.0.0.2:2000"]);
  assert.deepEqual(changes, []);
  const warnings = logger.lines.filter((l) => l.level === "warn");
  assert.equal(warnings.length, 1, "one line for three failed lookups");
  assert.equal(
    warnings[0]!.message,
    "DNS lookup of dns:sim.test:2000 failed; keeping its 2 known servers",
  );
  assert.deepEqual(discovery.status()[0]?.error, "request timed out");
  assert.equal(discovery.status()[0]?.servers, 2);

  dns.state.down = false;
  dns.addresses.set("sim.test", ["10.0.0.2"]);
  await clock.advance(5000);
  assert.deepEqual(discovery.entries(), ["10.0.0.2:2000"]);
  assert.ok(
    logger.lines.some((l) => l.message === "DNS lookup of dns:sim.test:2000 answers again"),
  );
  assert.equal(discovery.status()[0]?.error, undefined);
  await discovery.stop();
});

Deno.test("a name that no longer exists empties its entry: all its servers leave", async () => {
  const dns = scriptedDns();
  dns.addresses.set("sim.test", ["10.0.0.1"]);
  const { discovery, clock, changes } = setUp(["h:1", "dns:sim.test:2000"], dns);
  discovery.start();
  await flush();
  dns.addresses.delete("sim.test");
  changes.length = 0;
  await clock.advance(5000);
  assert.deepEqual(discovery.entries(), ["h:1"]);
  assert.deepEqual(changes[0]?.left, [{ entry: "10.0.0.1:2000", source: "dns:sim.test:2000" }]);
  await discovery.stop();
});

Deno.test("a lookup that hangs is abandoned after the timeout, and no second one starts while it runs", async () => {
  const dns = scriptedDns();
  dns.state.hang = true;
  const { discovery, clock, logger } = setUp(["dns:sim.test:2000"], dns, 1000);
  discovery.start();
  await clock.advance(1500);
  assert.equal(dns.asked.length, 1, "the round at 1 s skipped the entry still in flight");
  await clock.advance(500);
  assert.equal(discovery.status()[0]?.error, "no answer in 2000 ms");
  assert.equal(logger.lines.filter((l) => l.level === "warn").length, 1);
  await clock.advance(1000);
  assert.equal(dns.asked.length, 2);
  await discovery.stop();
});

Deno.test("names are looked up at the given interval", async () => {
  const dns = scriptedDns();
  const { discovery, clock } = setUp(["dns:sim.test:2000"], dns, 3000);
  discovery.start();
  await clock.advance(9000);
  assert.equal(dns.asked.length, 4, "at 0, 3, 6 and 9 s");
  await discovery.stop();
  await clock.advance(9000);
  assert.equal(dns.asked.length, 4, "none after stop");
});

Deno.test("a reload keeps the servers of the names still listed, looks new names up at once, and reports no leave for names taken out", async () => {
  const dns = scriptedDns();
  dns.addresses.set("one.test", ["10.0.0.1"]);
  dns.addresses.set("two.test", ["10.0.0.2"]);
  const { discovery, clock, changes } = setUp(["dns:one.test:2000"], dns, 60_000);
  discovery.start();
  await flush();
  changes.length = 0;
  dns.asked.length = 0;
  discovery.reconfigure({
    sources: ["dns:two.test:2000", "dns:one.test:2000"],
    resolver: dns.resolver,
    intervalMs: 60_000,
    timeoutMs: 2000,
  });
  assert.deepEqual(discovery.entries(), ["10.0.0.1:2000"], "one.test kept its server");
  await flush();
  assert.deepEqual(dns.asked, ["two.test"]);
  assert.deepEqual(discovery.entries(), ["10.0.0.2:2000", "10.0.0.1:2000"]);
  assert.deepEqual(changes.map((c) => c.joined.map((j) => j.entry)), [["10.0.0.2:2000"]]);

  changes.length = 0;
  discovery.reconfigure({
    sources: ["h:1"],
    resolver: dns.resolver,
    intervalMs: 60_000,
    timeoutMs: 2000,
  });
  assert.deepEqual(discovery.entries(), ["h:1"]);
  await clock.advance(120_000);
  assert.deepEqual(changes, []);
  assert.equal(clock.pendingCount, 0, "no DNS entry left: no rounds");
  await discovery.stop();
});
