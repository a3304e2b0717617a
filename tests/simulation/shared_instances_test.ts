/**
 * Two real simulation servers (through the launcher) sharing one `instancesDir`: restarts and
 * hard kills of one never touch the other's simulations, and each reaps only its own leftovers.
 */
import { serverTest } from "../helpers/server_process.ts";
import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { serverPid } from "../helpers/server_process.ts";
import {
  eventually,
  exists,
  isAlive,
  type SimulationFixture,
  startFile,
  startSimulationServer,
} from "../helpers/simulation_fixture.ts";
import { connect, type TestSocket } from "../helpers/ws_client.ts";
import { parseRecord, RECORDS_FOLDER } from "../../simulation/run_records.ts";

// No activity dots: a Webots whose server died must not die of a broken pipe before it is reaped.
const WORLDS = { p: { "w.wbt": "#fake children 1\n#fake activity-every 3600000\n" } };

/** One of the two servers: its folder (config file) and port stay the same across restarts. */
class Server {
  fixture: SimulationFixture | undefined;
  port: number | undefined;
  constructor(readonly name: string, readonly dir: string, readonly instancesDir: string) {}

  async start(): Promise<SimulationFixture> {
    this.fixture = await startSimulationServer({
      config: {
        instancesDir: this.instancesDir,
        ...(this.port === undefined ? {} : { port: this.port }),
      },
      worlds: WORLDS,
      dir: this.dir,
    });
    this.port = this.fixture.server.port;
    return this.fixture;
  }

  get running(): SimulationFixture {
    if (this.fixture === undefined) throw new Error(`${this.name} is not running`);
    return this.fixture;
  }

  /** SIGTERM, then start again. */
  async restart(): Promise<void> {
    equal((await this.running.server.stop()).code, 0);
    await this.start();
  }

  /** SIGKILL to the server process itself (not its launcher), then start again. */
  async killHardAndRestart(): Promise<void> {
    const server = this.running.server;
    Deno.kill(serverPid(server.pid), "SIGKILL");
    await server.status;
    await this.start();
  }
}

/** A browser with a running simulation on `server`, and the Webots pids it runs. */
async function simulation(server: Server) {
  const fixture = server.running;
  const before = new Set((await fixture.records()).map((r) => r.pid));
  const client = await connect(fixture.clientUrl);
  client.send(startFile(fixture, "p", "w.wbt"));
  await client.waitFor((m) => m.startsWith("webots:"));
  const record = (await fixture.records()).find((r) => !before.has(r.pid));
  ok(record);
  const runs = await runRecords(server.instancesDir, server.port!);
  const run = runs.find((r) => r.pid === record.pid);
  ok(run, `no run record for ${record.pid}`);
  return { client, pids: [record.pid, ...record.childPids], folder: run.instanceDir };
}

type Simulation = Awaited<ReturnType<typeof simulation>>;

/** The run records of the server on `port`. */
async function runRecords(instancesDir: string, port: number) {
  const folder = join(instancesDir, RECORDS_FOLDER);
  const out = [];
  for await (const entry of Deno.readDir(folder)) {
    const record = parseRecord(await Deno.readTextFile(join(folder, entry.name)));
    if (record?.owner.port === port) out.push(record);
  }
  return out;
}

/** The other server's simulation did not notice anything. */
async function untouched(sim: Simulation, server: Server, client: TestSocket = sim.client) {
  deepEqual(client.messages.filter((m) => !m.startsWith("webots:") && m !== "."), []);
  equal(client.socket.readyState, WebSocket.OPEN);
  for (const pid of sim.pids) ok(isAlive(pid), `${server.name}'s Webots ${pid} was killed`);
  ok(await exists(sim.folder), `${server.name}'s folder was removed`);
  const records = await runRecords(server.instancesDir, server.port!);
  ok(records.some((r) => r.pid === sim.pids[0]), `${server.name}'s run record was removed`);
}

/** A server's own simulation of before a hard kill has been reaped by its restart. */
async function reaped(sim: Simulation, server: Server) {
  for (const pid of sim.pids) {
    await eventually(() => !isAlive(pid), 10_000, `${server.name}'s leftover ${pid} to end`);
  }
  ok(!await exists(sim.folder), `${server.name}'s leftover folder is still there`);
  const records = await runRecords(server.instancesDir, server.port!);
  ok(!records.some((r) => r.pid === sim.pids[0]), `${server.name}'s leftover record remains`);
}

serverTest(
  "two simulation servers sharing instancesDir never touch each other's simulations",
  async (t) => {
    const root = await Deno.makeTempDir({ prefix: "shared-instances-" });
    const instancesDir = join(root, "instances");
    const a = new Server("A", join(root, "a"), instancesDir);
    const b = new Server("B", join(root, "b"), instancesDir);
    const pids: number[] = [];
    try {
      for (const server of [a, b]) {
        await Deno.mkdir(server.dir);
        await server.start();
      }
      ok(a.port !== b.port);

      for (const [first, second] of [[a, b], [b, a]] as const) {
        const theirs = await simulation(second);
        pids.push(...theirs.pids);
        await t.step(`${second.name}'s simulation survives ${first.name}'s restart`, async () => {
          await first.restart();
          await untouched(theirs, second);
        });
        await t.step(
          `${first.name}'s hard kill and restart reaps ${first.name}'s leftovers only`,
          async () => {
            const own = await simulation(first);
            pids.push(...own.pids);
            await first.killHardAndRestart();
            await own.client.closed;
            await reaped(own, first);
            await untouched(theirs, second);
          },
        );
        await theirs.client.close();
        await eventually(
          () => theirs.pids.every((pid) => !isAlive(pid)),
          10_000,
          `${second.name}'s Webots to end with its browser`,
        );
      }
      await t.step("nothing is left behind once both servers stop", async () => {
        for (const server of [a, b]) equal((await server.running.server.stop()).code, 0);
        const left = await Array.fromAsync(Deno.readDir(instancesDir));
        deepEqual(left.map((e) => e.name), [RECORDS_FOLDER]);
        deepEqual(await Array.fromAsync(Deno.readDir(join(instancesDir, RECORDS_FOLDER))), []);
      });
    } finally {
      for (const server of [a, b]) await server.fixture?.server.stop();
      for (const pid of pids) {
        if (isAlive(pid)) Deno.kill(pid, "SIGKILL");
      }
      await Deno.remove(root, { recursive: true });
    }
  },
);
