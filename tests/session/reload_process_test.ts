/**
 * Live reconfiguration of a real session server process: the config file is edited and the
 * server gets SIGHUP (forwarded by the launcher) or `POST /admin/reload`, with real stand-in
 * simulation servers answering `/load` over loopback and a real subscriber on `/`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { serverTest } from "../helpers/server_process.ts";
import { eventually } from "../helpers/simulation_fixture.ts";
import { startFakeSimServer } from "../fakes/sim_server.ts";
import { NO_SERVER_AVAILABLE } from "../../shared/protocol.ts";
import { get, startSession, subscribe, unsubscribe } from "./_helpers.ts";

const TOKEN = "reload-test-token-0123456789";

serverTest(
  "SIGHUP after editing the config adds and removes simulation servers; a subscriber stays and keeps receiving",
  async (t) => {
    await using full = startFakeSimServer({ load: 100 });
    await using free = startFakeSimServer({ load: 10 });
    const base = { loadRefresh: 0.2, loadTimeout: 2, adminToken: TOKEN };
    const session = await startSession({ ...base, simulationServers: [full.entry] });
    const configFile = join(session.dir, "session.json");
    const edit = async (config: Record<string, unknown>) => {
      const written = JSON.parse(await Deno.readTextFile(configFile));
      await Deno.writeTextFile(configFile, JSON.stringify({ ...written, ...config }, null, 2));
    };
    const reloads = async (message: string) =>
      (await session.logLines()).filter((l) => l.msg === message).length;
    const subscriber = subscribe(`ws://127.0.0.1:${session.port}/`);
    try {
      await subscriber.opened;
      await subscriber.lastIs("0");

      await t.step("an added server is polled and handed out; the subscriber hears 1", async () => {
        await edit({ simulationServers: [full.entry, free.entry] });
        Deno.kill(session.pid, "SIGHUP");
        await subscriber.lastIs("1");
        assert.equal((await get(`${session.baseUrl}/session`)).body, `ws://${free.entry}`);
        assert.ok(free.served().length > 0, "the new server was polled");
        await eventually(async () => await reloads("config reloaded") === 1, 10_000, "log line");
      });

      await t.step(
        "a removed server leaves rotation and /monitor; the subscriber hears 0",
        async () => {
          await edit({ simulationServers: [full.entry] });
          Deno.kill(session.pid, "SIGHUP");
          await subscriber.lastIs("0");
          assert.equal((await get(`${session.baseUrl}/session`)).body, NO_SERVER_AVAILABLE);
          const monitor = (await get(`${session.baseUrl}/monitor`)).body;
          assert.ok(monitor.includes(full.entry));
          assert.ok(!monitor.includes(free.entry), "the removed server is not on /monitor");
          const polls = free.served().length;
          // Two rounds of the full server prove the removed one is no longer polled.
          await full.nextServed();
          await full.nextServed();
          assert.equal(free.served().length, polls);
        },
      );

      await t.step(
        "an invalid edit is refused and logged; the old config keeps serving",
        async () => {
          await Deno.writeTextFile(configFile, '{"simulationServers": [');
          Deno.kill(session.pid, "SIGHUP");
          await eventually(async () => (await session.logLines()).some((l) => l.level === 50));
          const refused = (await session.logLines()).find((l) => l.level === 50)!;
          assert.match(
            String(refused.msg),
            /^config reload refused, the running config stays: .*session\.json: /,
          );
          assert.equal(refused.trigger, "SIGHUP");
          free.setLoad(10);
          full.setLoad(20);
          await subscriber.lastIs("1");
          assert.equal((await get(`${session.baseUrl}/session`)).body, `ws://${full.entry}`);
        },
      );

      await t.step(
        "POST /admin/reload: 401 without the token, 200 with what changed with it",
        async () => {
          await Deno.writeTextFile(
            configFile,
            JSON.stringify({
              ...base,
              port: 0,
              logDir: session.logDir,
              logFormat: "json",
              simulationServers: [full.entry, free.entry],
              fullAt: 95,
              availableAt: 85,
              debug: true,
            }),
          );
          const url = `${session.baseUrl}/admin/reload`;
          const refused = await get(url, { method: "POST" });
          assert.equal(refused.status, 401);
          const reloaded = await get(url, {
            method: "POST",
            headers: { authorization: `Bearer ${TOKEN}` },
          });
          assert.equal(reloaded.status, 200);
          assert.deepEqual(JSON.parse(reloaded.body), {
            outcome: "applied",
            changed: ["simulationServers", "fullAt", "availableAt"],
            needsRestart: ["debug"],
          });
          const servers = await get(`${session.baseUrl}/admin/servers`, {
            headers: { authorization: `Bearer ${TOKEN}` },
          });
          assert.deepEqual(
            JSON.parse(servers.body).servers.map((s: { entry: string }) => s.entry),
            [full.entry, free.entry],
          );
        },
      );

      await t.step("a new certificate outside the process's permissions is refused", async () => {
        const written = JSON.parse(await Deno.readTextFile(configFile));
        await Deno.writeTextFile(
          configFile,
          JSON.stringify({
            ...written,
            sslCertificate: "/etc/elsewhere/cert.pem",
            sslKey: "/etc/elsewhere/key.pem",
          }),
        );
        const answer = await get(`${session.baseUrl}/admin/reload`, {
          method: "POST",
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        assert.equal(answer.status, 400);
        assert.deepEqual(JSON.parse(answer.body), {
          outcome: "refused",
          reason:
            'key "sslCertificate" names /etc/elsewhere/cert.pem, which this process may not read (its permissions were derived from the config at start): restart the server to use it',
        });
      });

      await t.step("the subscriber connected before the reloads is still the same socket", () => {
        assert.equal(subscriber.socket.readyState, WebSocket.OPEN);
        assert.deepEqual(subscriber.messages, ["0", "1", "0", "1"]);
      });
    } finally {
      await unsubscribe(subscriber);
      await session.cleanup();
    }
  },
);
