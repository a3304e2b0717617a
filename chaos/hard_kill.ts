/**
 * Part (b): a hard kill (SIGKILL) of the simulation server while sessions run, then a restart on
 * the same config: whatever the killed server left (Webots, in-group children, escaped
 * descendants, also of Webots that died meanwhile, folders, records, ports) must be reaped.
 *
 * @module
 */
import { join } from "node:path";
import type { Verdicts } from "./checks.ts";
import {
  endLeftovers,
  instanceFolders,
  isAlive,
  listeningPorts,
  runRecords,
  scanProcesses,
  waitUntil,
  watchRunMarkers,
} from "./leftovers.ts";
import { delay, fmt } from "./measure.ts";
import type { Random } from "./random.ts";
import { type SimServer, type SimulationTimings, startSimServer } from "./servers.ts";
import { type RawClient, rawConnect } from "./ws_raw.ts";

/** Settings of part (b). */
export interface HardKillOptions {
  readonly dir: string;
  readonly campaign: string;
  readonly random: Random;
  readonly sessions: number;
  readonly timings: SimulationTimings;
  readonly log: (line: string) => void;
}

/**
 * What each session's Webots does; `quiet` ones print nothing after the ready line, so they do
 * not die of a broken pipe when the server is gone (a Webots that keeps running orphaned).
 * `dead leader`: its Webots is killed right after the server, its group lives on.
 */
const SHAPES = [
  { name: "children", directives: ["children 2"], killLeader: false },
  {
    name: "quiet, TERM-ignoring",
    directives: ["children 1", "ignore-sigterm", "activity-every 600000"],
    killLeader: false,
  },
  {
    name: "escaped",
    directives: ["escaped-children 2", "activity-every 600000"],
    killLeader: false,
  },
  {
    name: "escaped TERM-ignoring",
    directives: ["escaped-children 1", "escaped-ignore-term"],
    killLeader: false,
  },
  {
    name: "dead leader",
    directives: ["children 2", "ignore-sigterm", "activity-every 600000"],
    killLeader: true,
  },
] as const;

/** Runs part (b) and returns its verdicts (B01–B06). */
export async function runHardKill(options: HardKillOptions): Promise<Verdicts> {
  const dir = join(options.dir, "kill");
  const maxConnections = options.sessions + 5;
  let server: SimServer = await startSimServer({
    dir,
    campaign: `${options.campaign}-kill`,
    timings: options.timings,
    maxConnections,
  });
  const clients: RawClient[] = [];
  const runMarkers = watchRunMarkers(server.instancesDir, 50);
  try {
    const plans = Array.from({ length: options.sessions }, (_, i) => ({
      world: `k${i}.wbt`,
      shape: i < SHAPES.length ? SHAPES[i]! : options.random.pick(SHAPES),
    }));
    for (const plan of plans) server.writeWorld(plan.world, plan.shape.directives);
    await Promise.all(plans.map(async (plan) => {
      const client = await rawConnect(server.clientUrl);
      clients.push(client);
      await client.sendText(server.startMessage(plan.world));
      await client.waitFor(
        (t) => t.startsWith("webots:"),
        options.timings.startTimeout * 1000 + 5000,
      );
    }));
    // The run records name each run's marker; the restart removes them.
    await runMarkers.stop();
    const records = server.records();
    const recordOf = (world: string) =>
      records.find((r) => r.args.some((a) => a.endsWith(`/${world}`)));
    const leaders: number[] = [];
    const children: number[] = [];
    const escaped: number[] = [];
    let escapedMissing = 0;
    for (const plan of plans) {
      const record = recordOf(plan.world);
      if (record === undefined) throw new Error(`no stand-in record for ${plan.world}`);
      leaders.push(record.pid);
      children.push(...record.childPids);
      if (plan.shape.directives.some((d) => d.startsWith("escaped-children"))) {
        if (record.escapedPids === undefined) escapedMissing++;
        else escaped.push(...record.escapedPids);
      }
    }

    // The hard kill: the server process itself, then one Webots of each "dead leader" session.
    const killedAt = performance.now();
    Deno.kill(server.serverPid, "SIGKILL");
    await server.process.status;
    for (const [i, plan] of plans.entries()) {
      if (plan.shape.killLeader) Deno.kill(leaders[i]!, "SIGKILL");
    }
    for (const client of clients) client.drop();
    await delay(300);
    const aliveBefore = {
      leaders: leaders.filter(isAlive).length,
      children: children.filter(isAlive).length,
      escaped: escaped.filter(isAlive).length,
    };
    options.log(
      `kill: server killed with ${plans.length} sessions; alive then: ${aliveBefore.leaders}/${leaders.length} Webots, ${aliveBefore.children}/${children.length} children, ${aliveBefore.escaped}/${escaped.length} escaped`,
    );

    const restartAt = performance.now();
    server = await startSimServer({
      dir,
      campaign: `${options.campaign}-kill`,
      timings: options.timings,
      maxConnections,
      port: server.port,
    });
    const listeningMs = performance.now() - restartAt;
    const all = [...leaders, ...children, ...escaped];
    const boundMs = options.timings.killTimeout * 1000 + 8000;
    const reaped = await waitUntil(
      () =>
        all.every((p) => !isAlive(p)) && instanceFolders(server.instancesDir).length === 0 &&
        runRecords(server.instancesDir).length === 0,
      boundMs,
    );
    const reapMs = performance.now() - restartAt;
    const except = new Set([server.process.pid, server.serverPid]);
    const scanned = scanProcesses({
      envMarker: server.envMarker,
      instancesDir: server.instancesDir,
      except,
      runMarkers: runMarkers.markers,
    });
    const others = scanned.filter((p) => !all.includes(p.pid));
    const folders = instanceFolders(server.instancesDir).length;
    const recordsLeft = runRecords(server.instancesDir).length;
    const timing = reaped
      ? `reaped ${fmt(reapMs, 0)} ms after the restart began (listening after ${
        fmt(listeningMs, 0)
      } ms)`
      : `not all reaped ${fmt(boundMs, 0)} ms after the restart`;
    options.log(`kill: ${timing}; killed ${fmt(restartAt - killedAt, 0)} ms before the restart`);

    // A new session on the restarted server.
    server.writeWorld("after.wbt", []);
    let b01: { ok: boolean; detail: string };
    const client = await rawConnect(server.clientUrl);
    try {
      const sentAt = performance.now();
      await client.sendText(server.startMessage("after.wbt"));
      const webots = await client.waitFor(
        (t) => t.startsWith("webots:"),
        options.timings.startTimeout * 1000 + 5000,
      );
      await client.leave();
      b01 = { ok: true, detail: `webots: after ${fmt(webots.at - sentAt, 0)} ms` };
    } catch (error) {
      b01 = { ok: false, detail: `${error instanceof Error ? error.message : error}` };
    } finally {
      client.drop();
    }
    const afterRecord = server.records().find((r) => r.args.some((a) => a.endsWith("/after.wbt")));
    await waitUntil(() => afterRecord === undefined || !isAlive(afterRecord.pid), boundMs);
    await waitUntil(
      () => listeningPorts(server.port + 1, server.port + maxConnections).length === 0,
      3000,
    );
    const ports = listeningPorts(server.port + 1, server.port + maxConnections);

    const left = (pids: number[]) => pids.filter(isAlive).length;
    const line = (alive: number, total: number, before: number) =>
      `${alive} of ${total} alive after the restart (${before} alive when it began); ${timing}`;
    return {
      B01: b01,
      B02: {
        ok: left(leaders) === 0 && others.length === 0,
        detail: `${
          line(left(leaders), leaders.length, aliveBefore.leaders)
        }; other campaign processes: ${others.length}${
          others[0] ? ` (${others[0].pid} ${others[0].why}: ${others[0].command})` : ""
        }`,
      },
      B03: {
        ok: left(children) === 0,
        detail: line(left(children), children.length, aliveBefore.children),
      },
      B04: {
        ok: escapedMissing === 0 && escaped.length > 0 && left(escaped) === 0,
        detail: escapedMissing > 0
          ? `the stand-in recorded no escapedPids for ${escapedMissing} sessions: it does not know #fake escaped-children yet`
          : line(left(escaped), escaped.length, aliveBefore.escaped),
      },
      B05: {
        ok: folders === 0 && recordsLeft === 0,
        detail:
          `${folders} instance folders, ${recordsLeft} run records left (${plans.length} sessions killed)`,
      },
      B06: {
        ok: ports.length === 0,
        detail: `${ports.length} listening in ${server.port + 1}-${server.port + maxConnections}${
          ports.length ? `: ${ports}` : ""
        }`,
      },
    };
  } finally {
    await runMarkers.stop();
    for (const client of clients) client.drop();
    await server.process.stop();
    const ended = endLeftovers({
      envMarker: server.envMarker,
      instancesDir: server.instancesDir,
      except: new Set(),
    });
    if (ended > 0) options.log(`kill: ended ${ended} leftover processes after measuring`);
  }
}
