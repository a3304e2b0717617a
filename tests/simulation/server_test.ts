/**
 * The simulation server as a process, driven over real WebSockets with the stand-in Webots.
 */
import { serverTest } from "../helpers/server_process.ts";
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { join } from "node:path";
import { connect } from "../helpers/ws_client.ts";
import {
  eventually,
  isAlive,
  type SimulationFixture,
  startFile,
  startSimulationServer,
} from "../helpers/simulation_fixture.ts";

const WEBOTS_URL = /^webots:ws:\/\/127\.0\.0\.1:(\d+)$/;

function streamPort(message: string): number {
  const match = message.match(WEBOTS_URL);
  if (!match) throw new Error(`not a webots: URL: ${message}`);
  return Number(match[1]);
}

async function allGone(fixture: SimulationFixture) {
  const records = await fixture.records();
  for (const record of records) {
    for (const pid of [record.pid, ...record.childPids]) {
      await eventually(() => !isAlive(pid), 10_000, `process ${pid} to end`);
    }
  }
  await eventually(async () => (await fixture.instances()).length === 0, 10_000, "no instance");
  await eventually(async () => (await runRecords(fixture)).length === 0, 10_000, "no run record");
}

/** The crash-recovery records in `<instancesDir>/.webots-runs/`. */
async function runRecords(fixture: SimulationFixture): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(join(fixture.instancesDir, ".webots-runs"))))
      .map((entry) => entry.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

serverTest(
  "a start message runs Webots, answers webots:<url>, and closing cleans everything up",
  async (t) => {
    await using fixture = await startSimulationServer({
      worlds: { "robots/demo": { "demo.wbt": "#fake activity-every 50\n#fake children 2\n" } },
    });
    const client = await connect(fixture.clientUrl);
    let port = 0;
    await t.step("webots: URL on a port after the server's own", async () => {
      client.send(startFile(fixture, "robots/demo", "demo.wbt"));
      port = streamPort(await client.waitFor((m) => m.startsWith("webots:")));
      ok(port > fixture.server.port && port <= fixture.server.port + 10);
      equal((await fixture.instances()).length, 1);
    });
    await t.step("activity dots are forwarded", async () => {
      await client.waitFor((m) => m === ".");
    });
    await t.step("Webots streams on that port", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
    });
    await t.step("the command line and environment are the reference's", async () => {
      const [record] = await fixture.records();
      ok(record);
      deepEqual(record.args.slice(0, 4), [
        "--batch",
        "--mode=pause",
        "--minimize",
        "--no-rendering",
      ]);
      equal(record.args[4], `--stream="port=${port};monitorActivity"`);
      match(record.args[5]!, /\/worlds\/demo\.wbt$/);
      deepEqual(await runRecords(fixture), [`${(await fixture.instances())[0]}.json`]);
      equal(record.env.WEBOTS_FIREJAIL_CONTROLLERS, "1");
      ok(record.env.DISPLAY);
      equal(record.childPids.length, 2);
    });
    await t.step(
      "closing the socket ends Webots and its children and removes the folder",
      async () => {
        await client.close();
        await allGone(fixture);
      },
    );
    await t.step("the port is free again for the next client", async () => {
      const next = await connect(fixture.clientUrl);
      next.send(startFile(fixture, "robots/demo", "demo.wbt"));
      equal(streamPort(await next.waitFor((m) => m.startsWith("webots:"))), port);
      await next.close();
      await allGone(fixture);
    });
  },
);

serverTest("mjpeg mode keeps the window and passes mode=mjpeg", async () => {
  await using fixture = await startSimulationServer();
  const client = await connect(fixture.clientUrl);
  client.send(startFile(fixture, "robots/demo", "demo.wbt", "mjpeg"));
  const port = streamPort(await client.waitFor((m) => m.startsWith("webots:")));
  const [record] = await fixture.records();
  deepEqual(record?.args.slice(0, 3), [
    "--batch",
    "--mode=pause",
    `--stream="port=${port};monitorActivity;mode=mjpeg"`,
  ]);
  await client.close();
  await allGone(fixture);
});

serverTest("newer Webots that print '.' first are ready too", async () => {
  await using fixture = await startSimulationServer({
    worlds: { "p": { "w.wbt": "#fake ready-line .\n" } },
  });
  const client = await connect(fixture.clientUrl);
  client.send(startFile(fixture, "p", "w.wbt"));
  match(await client.waitFor((m) => m.startsWith("webots:")), WEBOTS_URL);
  await client.close();
  await allGone(fixture);
});

serverTest(
  "the init flow copies the project, writes host.txt and resets controllers",
  async (t) => {
    await using fixture = await startSimulationServer();
    const client = await connect(fixture.clientUrl);
    client.send(JSON.stringify({
      init: ["https://robotbenchmark.net", "robots/demo", "demo.wbt", "", "", "", "", "", ""],
    }));
    await client.waitFor((m) => m.startsWith("webots:"));
    const [instance] = await fixture.instances();
    ok(instance);
    const copy = join(fixture.instancesDir, instance);
    await t.step("host.txt holds the raw host", async () => {
      const found: string[] = [];
      for await (const e of Deno.readDir(copy)) found.push(e.name);
      const hostFile = await findFile(copy, "host.txt");
      equal(await Deno.readTextFile(hostFile), "https://robotbenchmark.net");
    });
    await t.step("anonymous init grants controllerEdit", async () => {
      const [record] = await fixture.records();
      match(record!.args.find((a) => a.startsWith("--stream="))!, /;controllerEdit/);
    });
    await t.step("a bad reset request gets an error and the simulation goes on", async () => {
      const before = client.messages.length;
      client.send(JSON.stringify({ "reset controller": "../../etc/passwd" }));
      client.send(JSON.stringify({ "reset controller": "c/missing.py" }));
      await client.waitFor((_) =>
        client.messages.slice(before).filter((m) => m.startsWith("error:")).length === 2
      );
      equal(client.socket.readyState, WebSocket.OPEN);
      equal((await fixture.instances()).length, 1);
    });
    await t.step("reset controller restores the original and replies", async () => {
      const controller = await findFile(copy, "c.py");
      await Deno.writeTextFile(controller, "edited");
      client.send(JSON.stringify({ "reset controller": "c/c.py" }));
      await client.waitFor((m) => m === "reset controller: c/c.py");
      equal(await Deno.readTextFile(controller), "print('original')\n");
    });
    await client.close();
    await allGone(fixture);
  },
);

async function findFile(dir: string, name: string): Promise<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isFile && entry.name === name) return path;
    if (entry.isDirectory) {
      try {
        return await findFile(path, name);
      } catch {
        // Not in this folder.
      }
    }
  }
  throw new Error(`${name} not found in ${dir}`);
}

serverTest("Webots exiting by itself tells the browser and closes the socket", async () => {
  await using fixture = await startSimulationServer({
    worlds: { "p": { "w.wbt": "#fake crash-after 200\n" } },
  });
  const client = await connect(fixture.clientUrl);
  client.send(startFile(fixture, "p", "w.wbt"));
  await client.waitFor((m) => m.startsWith("webots:"));
  equal(await client.waitFor((m) => m.startsWith("error:")), "error: Webots exited (code 1)");
  await client.closed;
  await allGone(fixture);
});

serverTest("a Webots that never gets ready is ended after startTimeout with an error", async () => {
  await using fixture = await startSimulationServer({
    config: { startTimeout: 0.5 },
    worlds: { "p": { "w.wbt": "#fake never-ready\n" } },
  });
  const client = await connect(fixture.clientUrl);
  client.send(startFile(fixture, "p", "w.wbt"));
  equal(
    await client.waitFor((m) => m.startsWith("error:")),
    "error: Webots did not get ready within 0.5 s",
  );
  await client.closed;
  await allGone(fixture);
});

serverTest("a Webots that ignores SIGTERM is killed after killTimeout", async () => {
  await using fixture = await startSimulationServer({
    config: { killTimeout: 0.3 },
    worlds: { "p": { "w.wbt": "#fake ignore-sigterm\n#fake children 1\n" } },
  });
  const client = await connect(fixture.clientUrl);
  client.send(startFile(fixture, "p", "w.wbt"));
  await client.waitFor((m) => m.startsWith("webots:"));
  await client.close();
  await allGone(fixture);
});

serverTest(
  "hostile and malformed messages get error: replies and never disturb another client",
  async () => {
    await using fixture = await startSimulationServer({
      config: { maxMessageSize: 1024 },
      worlds: { "robots/demo": { "demo.wbt": "#fake activity-every 50\n" } },
    });
    const bystander = await connect(fixture.clientUrl);
    bystander.send(startFile(fixture, "robots/demo", "demo.wbt"));
    await bystander.waitFor((m) => m.startsWith("webots:"));
    const init = (app: string, world: string) =>
      JSON.stringify({ init: ["https://example.com", app, world, "", "", "", "", "", ""] });
    const hostile: [string | Uint8Array, RegExp][] = [
      ["{not json", /^error: Cannot parse message: not valid JSON$/],
      ['{"stop":true}', /^error: Cannot parse message: expected one of/],
      [new Uint8Array([1, 2, 3]), /^error: binary messages are not supported$/],
      [init("../../etc", "passwd.wbt"), /^error: /],
      [init("robots/demo", "../../../etc/passwd"), /^error: /],
      [init("/etc", "demo.wbt"), /^error: /],
      [JSON.stringify({ start: { url: "file:///etc/passwd" } }), /^error: /],
      [
        JSON.stringify({ start: { url: `file://${fixture.projectsDir}/../x/worlds/a.wbt` } }),
        /^error: /,
      ],
      [JSON.stringify({ start: { url: "ftp://example.com/worlds/a.wbt" } }), /^error: /],
      [
        JSON.stringify({
          start: { url: "webots://github.com/u/r/branch/main/../../worlds/x.wbt" },
        }),
        /^error: /,
      ],
      [JSON.stringify({ "reset controller": "../../etc/passwd" }), /^error: /],
      [
        JSON.stringify({ start: { url: startUrl(fixture, "robots/demo", "missing.wbt") } }),
        /^error: /,
      ],
    ];
    for (const [message, expected] of hostile) {
      const client = await connect(fixture.clientUrl);
      client.send(message);
      match(await client.waitFor((m) => m.startsWith("error:")), expected);
      await client.close();
    }
    // Too large (1024 bytes here): closed with 1009 rather than answered.
    const large = await connect(fixture.clientUrl);
    large.send(`{"start":{"url":"${"x".repeat(2000)}"}}`);
    equal((await large.closed).code, 1009);
    const before = bystander.messages.length;
    await bystander.waitFor((_) => bystander.messages.length > before + 1);
    equal(bystander.socket.readyState, WebSocket.OPEN);
    equal((await fixture.records()).length, 1);
    await bystander.close();
    await allGone(fixture);
  },
);

function startUrl(fixture: SimulationFixture, project: string, world: string) {
  return `file://${join(fixture.projectsDir, project, "worlds", world)}`;
}

serverTest(
  "a second start on one connection is refused and the first simulation goes on",
  async () => {
    await using fixture = await startSimulationServer();
    const client = await connect(fixture.clientUrl);
    client.send(startFile(fixture, "robots/demo", "demo.wbt"));
    await client.waitFor((m) => m.startsWith("webots:"));
    client.send(startFile(fixture, "robots/demo", "demo.wbt"));
    equal(
      await client.waitFor((m) => m.startsWith("error:")),
      "error: only one simulation can run per connection",
    );
    equal((await fixture.records()).length, 1);
    equal(client.socket.readyState, WebSocket.OPEN);
    await client.close();
    await allGone(fixture);
  },
);

serverTest(
  "when every slot is taken a client gets an error and no Webots starts; /load says 100",
  async () => {
    await using fixture = await startSimulationServer({ maxConnections: 2 });
    const clients = [await connect(fixture.clientUrl), await connect(fixture.clientUrl)];
    for (const client of clients) {
      client.send(startFile(fixture, "robots/demo", "demo.wbt"));
      await client.waitFor((m) => m.startsWith("webots:"));
    }
    equal(Number(await (await fetch(`${fixture.server.baseUrl}/load`)).text()), 100);
    const third = await connect(fixture.clientUrl);
    third.send(startFile(fixture, "robots/demo", "demo.wbt"));
    match(await third.waitFor((m) => m.startsWith("error:")), /^error: no simulation slot left/);
    await third.closed;
    equal((await fixture.records()).length, 2);
    for (const client of clients) await client.close();
    await allGone(fixture);
  },
);

serverTest("20 concurrent clients each get their own port and everything is reaped", async () => {
  await using fixture = await startSimulationServer({ maxConnections: 25 });
  const clients = await Promise.all(Array.from({ length: 20 }, () => connect(fixture.clientUrl)));
  for (const client of clients) client.send(startFile(fixture, "robots/demo", "demo.wbt"));
  const ports = await Promise.all(
    clients.map(async (c) => streamPort(await c.waitFor((m) => m.startsWith("webots:"), 30_000))),
  );
  equal(new Set(ports).size, 20);
  equal((await fixture.instances()).length, 20);
  await Promise.all(clients.map((c) => c.close()));
  await allGone(fixture);
});

serverTest("/load, /monitor, 404 and a plain GET on /client", async () => {
  await using fixture = await startSimulationServer();
  const load = await fetch(`${fixture.server.baseUrl}/load`);
  equal(load.status, 200);
  const value = Number(await load.text());
  ok(value >= 0 && value <= 100);
  const client = await connect(fixture.clientUrl);
  client.send(startFile(fixture, "robots/demo", "demo.wbt"));
  await client.waitFor((m) => m.startsWith("webots:"));
  const monitor = await fetch(`${fixture.server.baseUrl}/monitor`);
  equal(monitor.status, 200);
  match(monitor.headers.get("content-type")!, /^text\/html/);
  const page = await monitor.text();
  match(page, /<title>Webots simulation server<\/title>/);
  match(page, /demo\.wbt/);
  const missing = await fetch(`${fixture.server.baseUrl}/nope`);
  equal(missing.status, 404);
  await missing.body?.cancel();
  const plain = await fetch(`${fixture.server.baseUrl}/client`);
  equal(plain.status, 426);
  await plain.body?.cancel();
  await client.close();
  await allGone(fixture);
});

serverTest(
  "/load counts a simulation the moment it starts, without waiting for a snapshot",
  async () => {
    await using fixture = await startSimulationServer({ maxConnections: 1 });
    const client = await connect(fixture.clientUrl);
    client.send(startFile(fixture, "robots/demo", "demo.wbt"));
    await client.waitFor((m) => m.startsWith("webots:"));
    // The one slot is taken: 100 whatever the machine's figures, and whatever loadWindow averages.
    equal(await (await fetch(`${fixture.server.baseUrl}/load`)).text(), "100");
    await client.close();
    await allGone(fixture);
  },
);

serverTest(
  "SIGTERM closes clients with 1001, stops every Webots, removes folders, exits 0",
  async () => {
    const fixture = await startSimulationServer({
      worlds: { "p": { "w.wbt": "#fake children 1\n" } },
    });
    try {
      const client = await connect(fixture.clientUrl);
      client.send(startFile(fixture, "p", "w.wbt"));
      await client.waitFor((m) => m.startsWith("webots:"));
      const status = await fixture.server.stop("SIGTERM");
      equal(status.code, 0);
      equal((await client.closed).code, 1001);
      await allGone(fixture);
    } finally {
      await fixture[Symbol.asyncDispose]();
    }
  },
);

serverTest("Webots' mode lines make a simulation running or idle on the monitor", async (t) => {
  await using fixture = await startSimulationServer({
    worlds: {
      "p": {
        "run.wbt": "#fake modes real-time\n",
        "fast.wbt": "#fake modes fast\n",
        "pause.wbt": "#fake modes real-time,pause\n",
      },
    },
  });
  const states = async () => {
    const page = await (await fetch(`${fixture.server.baseUrl}/monitor`)).text();
    return [...page.matchAll(/class="state state-(\w+)"/g)].map((m) => m[1]).sort();
  };
  const clients = [];
  for (const world of ["run.wbt", "fast.wbt", "pause.wbt"]) {
    const client = await connect(fixture.clientUrl);
    client.send(startFile(fixture, "p", world));
    await client.waitFor((m) => m.startsWith("webots:"));
    clients.push(client);
  }
  await t.step("real-time and fast count as running, pause as idle", async () => {
    await eventually(
      async () => (await states()).join() === "idle,running,running",
      10_000,
      "two running and one idle simulation",
    );
  });
  for (const client of clients) await client.close();
  await allGone(fixture);
});

serverTest(
  "without Webots the server says so in one line at start, and a browser gets a clear error",
  async () => {
    const home = await Deno.makeTempDir({ prefix: "no-webots-" });
    try {
      await using fixture = await startSimulationServer({ config: { webotsHome: home } });
      const notice = `No Webots found at ${join(home, "webots")}: simulations cannot start; ` +
        "`deno task demo` runs the whole flow with a stand-in Webots.";
      const output = fixture.server.output();
      equal(output.split("\n").filter((line) => line === notice).length, 1, output);
      ok(output.indexOf(notice) < output.indexOf("Simulation server running on port"));
      const client = await connect(fixture.clientUrl);
      client.send(startFile(fixture, "robots/demo", "demo.wbt"));
      equal(
        await client.waitFor((m) => m.startsWith("error:")),
        `error: Webots is not installed on this server (no ${join(home, "webots")})`,
      );
      equal((await client.closed).code, 1011);
      await allGone(fixture);
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
);
