import assert from "node:assert/strict";
import { createDnsResolver, parseNameServer, parseServerSource } from "../../session/dns.ts";
import { validateConfig } from "../../shared/config.ts";
import { sessionSchema } from "../../session/config.ts";

Deno.test("a simulationServers entry is a host, a dns: name with a port, or a dns+srv: name", () => {
  assert.deepEqual(parseServerSource("sim1:2000"), { kind: "host", text: "sim1:2000" });
  assert.deepEqual(parseServerSource("proxy/2000"), { kind: "host", text: "proxy/2000" });
  assert.deepEqual(parseServerSource("dns:webots-simulation.webots.svc.cluster.local:2000"), {
    kind: "dns",
    text: "dns:webots-simulation.webots.svc.cluster.local:2000",
    name: "webots-simulation.webots.svc.cluster.local",
    port: 2000,
  });
  assert.deepEqual(parseServerSource("dns+srv:_webots._tcp.service.consul"), {
    kind: "srv",
    text: "dns+srv:_webots._tcp.service.consul",
    name: "_webots._tcp.service.consul",
  });
  for (const wrong of ["dns:sim", "dns:sim:0", "dns:sim:65536", "dns::2000", "dns:a..b:2000"]) {
    assert.match(parseServerSource(wrong) as string, /must be "dns:<name>:<port>"/, wrong);
  }
  for (const wrong of ["dns+srv:", "dns+srv:a b", "dns+srv:-x.test"]) {
    assert.match(parseServerSource(wrong) as string, /must be followed by a DNS name/, wrong);
  }
});

Deno.test("nameServer is an IP address with an optional port, 53 by default", () => {
  assert.deepEqual(parseNameServer("10.96.0.10"), { ipAddr: "10.96.0.10", port: 53 });
  assert.deepEqual(parseNameServer("127.0.0.1:8600"), { ipAddr: "127.0.0.1", port: 8600 });
  assert.deepEqual(parseNameServer("::1"), { ipAddr: "::1", port: 53 });
  assert.deepEqual(parseNameServer("[fd00::53]:5353"), { ipAddr: "fd00::53", port: 5353 });
  for (const wrong of ["dns.example", "127.0.0.1:0", "300.1.1.1", "[::1]:x", "[x]:53", ""]) {
    assert.match(parseNameServer(wrong) as string, /must be an IP address/, wrong);
  }
});

Deno.test("the config refuses a wrong DNS entry or name server with the reason, and takes right ones", () => {
  const env = { root: "/", vars: {}, tmpDir: "/tmp" };
  const bad = (raw: Record<string, unknown>) => {
    try {
      validateConfig(sessionSchema, raw, "session.json", env);
    } catch (error) {
      return (error as Error).message;
    }
    return "accepted";
  };
  assert.match(bad({ simulationServers: ["dns:sim"] }), /simulationServers.*dns:<name>:<port>/s);
  assert.match(bad({ simulationServers: ["h:1"], nameServer: "ns.example" }), /nameServer.*IP/s);
  assert.equal(
    bad({
      simulationServers: ["h:2000", "dns:sim.test:2000", "dns+srv:_w._tcp.test"],
      nameServer: "127.0.0.1:5353",
      dnsMinInterval: 2,
    }),
    "accepted",
  );
});

Deno.test("the resolver treats no such name as no servers and passes the name server and any other failure on", async () => {
  const asked: unknown[] = [];
  const fail = (name: string, message: string) => Object.assign(new Error(message), { name });
  const resolveDns = ((name: string, type: string, options: Deno.ResolveDnsOptions) => {
    asked.push([name, type, options.nameServer]);
    if (name === "gone.test") return Promise.reject(fail("NotFound", "no records found"));
    if (name === "down.test") return Promise.reject(fail("TimedOut", "request timed out"));
    if (type === "A") return Promise.resolve(["10.0.0.2"]);
    if (type === "AAAA") return Promise.reject(fail("NotFound", "no records found"));
    return Promise.resolve([{ priority: 1, weight: 5, port: 2000, target: "sim1.test." }]);
  }) as typeof Deno.resolveDns;
  const resolver = createDnsResolver({ ipAddr: "127.0.0.1", port: 5353 }, resolveDns);
  const signal = new AbortController().signal;
  assert.deepEqual(await resolver.addresses("sim.test", signal), ["10.0.0.2"]);
  assert.deepEqual(await resolver.addresses("gone.test", signal), []);
  assert.deepEqual(await resolver.services("_w._tcp.test", signal), [
    { priority: 1, weight: 5, port: 2000, target: "sim1.test." },
  ]);
  await assert.rejects(resolver.addresses("down.test", signal), /timed out/);
  assert.deepEqual(asked[0], ["sim.test", "A", { ipAddr: "127.0.0.1", port: 5353 }]);
});
