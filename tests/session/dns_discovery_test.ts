/**
 * DNS discovery end to end: the real session server asks a real DNS server (dnsmasq on loopback)
 * for `dns:` and `dns+srv:` entries, while the test adds and removes records; stand-in simulation
 * servers answer `/load` on their own loopback addresses; a fake SMTP server receives the
 * administrator's mail. Servers that join are polled and handed out, servers that leave are no
 * longer polled, both are logged and listed on `/monitor` as joining and leaving, and leaving is
 * not mailed as "not responding"; a DNS outage keeps the fleet.
 */
import assert from "node:assert/strict";
import { serverTest } from "../helpers/server_process.ts";
import { startDnsServer } from "../helpers/dns_server.ts";
import { type FakeSimServer, startFakeSimServer } from "../fakes/sim_server.ts";
import { startFakeSmtpServer } from "../fakes/smtp_server.ts";
import { eventually } from "../helpers/simulation_fixture.ts";
import { get, startSession } from "./_helpers.ts";
import { sample } from "../helpers/prometheus.ts";

interface MonitorData {
  servers: { entry: string; state: string }[];
  changes: { entry: string; from: string; to: string }[];
  discovery?: string[];
}

/** Stand-ins on `127.0.0.<n>` for each n, all on one port (a `dns:` entry names one port). */
function simsOnOnePort(hosts: number[]): FakeSimServer[] {
  const first = startFakeSimServer({ hostname: `127.0.0.${hosts[0]}`, load: 10 });
  const rest = hosts.slice(1).map((n) =>
    startFakeSimServer({ hostname: `127.0.0.${n}`, port: first.port, load: 10 })
  );
  return [first, ...rest];
}

serverTest(
  "servers found through DNS join and leave the fleet as the records change, without a not-responding mail",
  async (t) => {
    const [a, b, c] = simsOnOnePort([21, 22, 23]);
    const port = a!.port;
    const srv1 = startFakeSimServer({ load: 30 });
    const srv2 = startFakeSimServer({ load: 40 });
    const smtp = await startFakeSmtpServer();
    const dns = await startDnsServer({
      hosts: { "sim.test": ["127.0.0.21", "127.0.0.22"] },
      services: [{ name: "_webots._tcp.fleet.test", target: "localhost", port: srv1.port }],
    });
    const byName = `dns:sim.test:${port}`;
    const bySrv = "dns+srv:_webots._tcp.fleet.test";
    const session = await startSession({
      simulationServers: [byName, bySrv],
      nameServer: dns.nameServer,
      loadRefresh: 0.2,
      dnsMinInterval: 0.2,
      loadTimeout: 1,
      administrator: "admin@example.test",
      mailServer: "127.0.0.1",
      mailServerPort: smtp.port,
      mailSender: "sessions@example.test",
    });
    const data = async () =>
      JSON.parse((await get(`${session.baseUrl}/monitor/data`)).body) as MonitorData;
    const entries = async () => (await data()).servers.map((s) => s.entry);
    const count = async (message: string) =>
      (await session.logLines()).filter((line) => line.msg === message).length;
    const logged = async (message: string) => (await count(message)) > 0;
    const [ea, eb, ec] = [a!.entry, b!.entry, c!.entry];
    const metric = async (name: string, labels: Record<string, string>) =>
      sample((await get(`${session.baseUrl}/metrics`)).body, name, labels);
    const e1 = `localhost:${srv1.port}`;
    const e2 = `localhost:${srv2.port}`;
    try {
      await t.step(
        "the addresses of the name and the SRV record's host and port are polled and handed out",
        async () => {
          await eventually(
            async () => {
              const servers = (await data()).servers;
              return servers.length === 3 && servers.every((s) => s.state === "available");
            },
            10_000,
            "three servers available",
          );
          assert.deepEqual(await entries(), [ea, eb, e1]);
          assert.equal((await get(`${session.baseUrl}/session`)).body, `ws://${ea}`);
          const lines = (await data()).discovery ?? [];
          assert.equal(lines.length, 2);
          assert.equal(await metric("webots_session_dns_servers", { source: byName }), 2);
          assert.equal(await metric("webots_session_dns_servers", { source: bySrv }), 1);
          assert.equal(await metric("webots_session_dns_lookup_failing", { source: byName }), 0);
          assert.equal(
            await metric("webots_session_dns_membership_changes_total", { change: "joined" }),
            3,
          );
          assert.match(lines[0]!, new RegExp(`^${byName}: 2 servers, answered `));
          assert.match(
            lines[1]!,
            new RegExp(`^${bySrv.replaceAll("+", "\\+")}: 1 server, answered `),
          );
        },
      );

      await t.step(
        "an address added to the name joins, one removed leaves and is polled no more",
        async () => {
          await dns.setHosts({ "sim.test": ["127.0.0.22", "127.0.0.23"] });
          await eventually(
            async () => (await entries()).join() === [eb, ec, e1].join(),
            10_000,
            "b, c, srv1",
          );
          await eventually(() => c!.served().length > 0, 5000, "c polled");
          const polledA = a!.served().length;
          await eventually(() => b!.served().length >= polledA + 3, 5000, "three more rounds");
          assert.ok(a!.served().length <= polledA + 1, "a is not polled after it left");
          assert.equal((await get(`${session.baseUrl}/session`)).body, `ws://${eb}`);
          await eventually(
            () => logged(`simulation server ${ec} joined (${byName})`),
            5000,
            "join line",
          );
          await eventually(
            () => logged(`simulation server ${ea} left (${byName})`),
            5000,
            "leave line",
          );
          const changes = (await data()).changes;
          assert.ok(changes.some((x) => x.entry === `${ec} (${byName})` && x.to === "joined"));
          assert.ok(
            changes.some((x) =>
              x.entry === `${ea} (${byName})` && x.to === "left" && x.from === "available"
            ),
          );
        },
      );

      await t.step("a changed SRV record moves the fleet to the new host and port", async () => {
        await dns.setServices([{
          name: "_webots._tcp.fleet.test",
          target: "localhost",
          port: srv2.port,
        }]);
        await eventually(
          async () => (await entries()).join() === [eb, ec, e2].join(),
          10_000,
          "srv2 in, srv1 out",
        );
        await eventually(
          () => logged(`simulation server ${e1} left (${bySrv})`),
          5000,
          "srv1 left",
        );
      });

      await t.step(
        "while the DNS server is down the known servers stay, and its return is logged",
        async () => {
          // A lookup may already have failed during the SRV step's restart of dnsmasq.
          const failed = `DNS lookup of ${byName} failed; keeping its 2 known servers`;
          const recovered = `DNS lookup of ${byName} answers again`;
          const [failedBefore, recoveredBefore] = [await count(failed), await count(recovered)];
          await dns.stop();
          await eventually(
            async () => (await count(failed)) > failedBefore,
            10_000,
            "the failure line",
          );
          assert.deepEqual(await entries(), [eb, ec, e2]);
          assert.equal((await get(`${session.baseUrl}/session`)).body, `ws://${eb}`);
          assert.match(
            (await data()).discovery?.[0] ?? "",
            /lookups failing \(no answer in 1000 ms\); keeping 2 servers/,
          );
          assert.equal(await metric("webots_session_dns_lookup_failing", { source: byName }), 1);
          assert.equal(await metric("webots_session_dns_servers", { source: byName }), 2);
          await dns.start();
          await eventually(
            async () => (await count(recovered)) > recoveredBefore,
            10_000,
            "recovery line",
          );
          assert.deepEqual(await entries(), [eb, ec, e2]);
        },
      );

      await t.step(
        "no mail for servers that left; a listed server that stops answering is mailed",
        async () => {
          assert.deepEqual(smtp.mails.map((m) => m.subject), []);
          await c!.close();
          const [mail] = await smtp.waitForMails(1, 10_000);
          assert.match(
            mail!.body,
            new RegExp(`${ec.replaceAll(".", "\\.")} simulation server may be down`),
          );
          assert.equal(smtp.mails.length, 1);
        },
      );
    } finally {
      await session.cleanup();
      await dns.close();
      await smtp.close();
      for (const sim of [a!, b!, c!, srv1, srv2]) await sim.close();
    }
  },
);

serverTest(
  "without nameServer the names are looked up with the system's resolver (/etc/resolv.conf)",
  async () => {
    // The session server runs in a mount namespace of its own whose /etc/resolv.conf names a
    // dnsmasq on port 53 of a loopback address of the test's choosing (resolv.conf has no port).
    const address = `127.53.${Math.floor(Math.random() * 250) + 1}.${
      Math.floor(Math.random() * 250) + 1
    }`;
    await using sim = startFakeSimServer({ hostname: "127.0.0.31", load: 10 });
    const dns = await startDnsServer({ hosts: { "sim.test": ["127.0.0.31"] } }, {
      address,
      port: 53,
    });
    const dir = await Deno.makeTempDir({ prefix: "resolv-" });
    const resolv = `${dir}/resolv.conf`;
    await Deno.writeTextFile(resolv, `nameserver ${address}\n`);
    const session = await startSession(
      { simulationServers: [`dns:sim.test:${sim.port}`], loadRefresh: 0.2, dnsMinInterval: 0.2 },
      {},
      [
        "/usr/bin/unshare",
        "--mount",
        "--propagation",
        "private",
        "/bin/sh",
        "-c",
        'mount --bind "$0" /etc/resolv.conf && exec "$@"',
        resolv,
      ],
    );
    try {
      await eventually(
        async () => (await get(`${session.baseUrl}/session`)).body === `ws://${sim.entry}`,
        10_000,
        "the server found through the system's resolver",
      );
      assert.deepEqual(
        (await Deno.readTextFile("/etc/resolv.conf")).includes(address),
        false,
        "the host's own resolv.conf is untouched",
      );
    } finally {
      await session.cleanup();
      await dns.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
