/**
 * Part (a): browser sessions with random faults, `concurrency` at a time, against one real
 * simulation server running the stand-in Webots; then what is left, measured from outside.
 *
 * @module
 */
import { join } from "node:path";
import type { Verdict, Verdicts } from "./checks.ts";
import {
  endLeftovers,
  instanceFolders,
  isAlive,
  listeningPorts,
  openFds,
  rssMiB,
  runRecords,
  scanProcesses,
  waitUntil,
  watchRunMarkers,
} from "./leftovers.ts";
import { delay, fmt, type MemoryTrace, percentile, sampleGet, traceMemory } from "./measure.ts";
import { rawConnect } from "./ws_raw.ts";
import type { Random } from "./random.ts";
import { type SimServer, type SimulationTimings, startSimServer } from "./servers.ts";
import {
  type FaultKind,
  type FaultSizes,
  planSessions,
  playSession,
  type SessionOutcome,
} from "./session_faults.ts";

/** Settings of part (a). */
export interface SessionsOptions {
  readonly dir: string;
  readonly campaign: string;
  readonly random: Random;
  readonly sessions: number;
  readonly concurrency: number;
  readonly timings: SimulationTimings;
  readonly sizes: FaultSizes;
  readonly log: (line: string) => void;
}

/** The simulation server's default `maxMessageSize` (the campaign does not change it). */
const MAX_MESSAGE_SIZE = 65536;

/** Runs part (a) and returns its verdicts (A01–A23). */
export async function runSessions(options: SessionsOptions): Promise<Verdicts> {
  const server = await startSimServer({
    dir: join(options.dir, "sessions"),
    campaign: `${options.campaign}-sessions`,
    timings: options.timings,
    maxConnections: options.concurrency + 10,
  });
  try {
    return await campaign(server, options);
  } finally {
    await server.process.stop();
    const ended = endLeftovers({
      envMarker: server.envMarker,
      instancesDir: server.instancesDir,
      except: new Set(),
    });
    if (ended > 0) options.log(`sessions: ended ${ended} leftover processes after measuring`);
  }
}

async function campaign(server: SimServer, options: SessionsOptions): Promise<Verdicts> {
  const plans = planSessions(options.random, options.sessions, MAX_MESSAGE_SIZE, options.sizes);
  for (const plan of plans) server.writeWorld(plan.world, plan.directives);
  await delay(500);
  const rssBefore = rssMiB(server.serverPid);
  const fdsBefore = await fewestFds(server.serverPid);
  const memory = traceMemory(server.serverPid, 50);
  const runMarkers = watchRunMarkers(server.instancesDir, 50);
  const load = sampleGet(`${server.baseUrl}/load`, 20);
  const outcomes: SessionOutcome[] = [];
  const queue = [...plans];
  const startedAt = performance.now();
  const worker = async () => {
    for (let plan = queue.shift(); plan !== undefined; plan = queue.shift()) {
      const outcome = await playSession(plan, { server, sizes: options.sizes });
      outcomes.push(outcome);
      if (!outcome.ok) options.log(`session ${outcome.detail}`);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const elapsed = (performance.now() - startedAt) / 1000;
  await load.stop();
  const alone = await fragmentedAlone(server, options.sizes, memory);
  const longAlone = await longLineAlone(server, options.sizes);
  options.log(`sessions: ${outcomes.length} played in ${fmt(elapsed)} s`);

  // Leftovers, from outside, once the server had its kill timeout to finish.
  const except = new Set([server.process.pid, server.serverPid]);
  await runMarkers.stop();
  const target = {
    envMarker: server.envMarker,
    instancesDir: server.instancesDir,
    except,
    runMarkers: runMarkers.markers,
  };
  const recorded = () =>
    server.records().flatMap((r) => [r.pid, ...r.childPids, ...(r.escapedPids ?? [])]);
  const settleMs = server.timings.killTimeout * 1000 + 5000;
  await waitUntil(
    () =>
      recorded().every((pid) => !isAlive(pid)) && scanProcesses(target).length === 0 &&
      instanceFolders(server.instancesDir).length === 0 &&
      runRecords(server.instancesDir).length === 0,
    settleMs,
  );
  const alivePids = recorded().filter(isAlive);
  const scanned = scanProcesses(target);
  const folders = instanceFolders(server.instancesDir);
  const records = runRecords(server.instancesDir);
  const ports = listeningPorts(server.port + 1, server.port + server.maxConnections);
  await delay(1000);
  const rssAfter = rssMiB(server.serverPid);
  const fdsAfter = await fewestFds(server.serverPid);
  await memory.stop();

  const verdicts: Verdicts = {};
  const of = (...kinds: FaultKind[]) => outcomes.filter((o) => kinds.includes(o.plan.kind));
  const tally = (kinds: FaultKind[], extra = ""): Verdict => {
    const picked = of(...kinds);
    const failed = picked.filter((o) => !o.ok);
    const first = failed[0]?.detail ?? "";
    return {
      ok: picked.length > 0 && failed.length === 0,
      detail: `${picked.length - failed.length}/${picked.length} right${extra}${
        first ? `; first failure: ${first}` : ""
      }`,
    };
  };
  const msFigures = (values: (number | undefined)[], label: string) => {
    const v = values.filter((x): x is number => x !== undefined);
    return v.length
      ? `, ${label} p50 ${fmt(percentile(v, 50), 0)} ms max ${fmt(Math.max(...v), 0)} ms`
      : "";
  };

  const waiting = outcomes.filter((o) => o.answered !== undefined);
  const unanswered = waiting.filter((o) => !o.answered);
  verdicts.A01 = {
    ok: waiting.length > 0 && unanswered.length === 0,
    detail: `${
      waiting.length - unanswered.length
    }/${waiting.length} answered (${outcomes.length} sessions, ${options.concurrency} at a time, ${
      fmt(elapsed)
    } s)${unanswered[0] ? `; first unanswered: ${unanswered[0].detail}` : ""}`,
  };
  verdicts.A02 = tally(["normal"], msFigures(of("normal").map((o) => o.startMs), "webots: after"));
  verdicts.A03 = tally(
    ["leave-startup"],
    msFigures(of("leave-startup").map((o) => o.endMs), "ended"),
  );
  verdicts.A04 = tally(["leave-ready"], msFigures(of("leave-ready").map((o) => o.endMs), "ended"));
  verdicts.A05 = tally(["garbage"]);
  verdicts.A06 = tally(["binary"]);
  verdicts.A07 = tally(["oversized"]);

  const fragmented = of("fragmented");
  const fragmentedOk = fragmented.every((o) => o.ok);
  const growthOk = Number.isFinite(alone.growth) && alone.growth < 16;
  verdicts.A08 = {
    ok: fragmented.length > 0 && fragmentedOk && alone.closeCode === 1009 && growthOk,
    detail: `${
      fragmented.filter((o) => o.ok).length
    }/${fragmented.length} closed 1009 among the sessions; ${
      options.sizes.fragmentedBytes / 2 ** 20
    } MiB in ${options.sizes.fragmentBytes / 1024} KiB fragments, sent before the end p50 ${
      fmt(percentile(fragmented.map((o) => (o.sentBytes ?? 0) / 2 ** 20), 50))
    } MiB; sent alone afterwards: close ${alone.closeCode ?? "none"} after ${
      fmt(alone.sentBytes / 2 ** 20)
    } MiB, server RSS peak growth ${fmt(alone.growth)} MiB (limit 16)${
      fragmented.find((o) => !o.ok)
        ? `; first failure: ${fragmented.find((o) => !o.ok)!.detail}`
        : ""
    }`,
  };
  verdicts.A09 = tally(["crash-before"]);
  verdicts.A10 = tally(["crash-after"]);
  verdicts.A11 = tally(
    ["never-ready"],
    msFigures(
      of("never-ready").map((o) => o.errorMs),
      `error: (startTimeout ${server.timings.startTimeout} s) after`,
    ),
  );
  verdicts.A12 = tally(
    ["ignore-term"],
    msFigures(
      of("ignore-term").map((o) => o.endMs),
      `ended (killTimeout ${server.timings.killTimeout} s)`,
    ),
  );
  verdicts.A13 = tally(["children"], msFigures(of("children").map((o) => o.endMs), "all ended"));
  verdicts.A14 = tally(["escaped"], msFigures(of("escaped").map((o) => o.endMs), "all ended"));
  verdicts.A15 = tally(
    ["escaped-ignore-term"],
    msFigures(of("escaped-ignore-term").map((o) => o.endMs), "all ended"),
  );

  const duringLong = of("long-line").flatMap((o) => o.loadMs ?? []);
  const longVerdict = tally(["long-line"]);
  const aloneMax = longAlone.loadMs.length ? Math.max(...longAlone.loadMs) : NaN;
  verdicts.A16 = {
    ok: longVerdict.ok && longAlone.ok && longAlone.loadMs.length > 0 && aloneMax < 500,
    detail: `${longVerdict.detail}; ${
      options.sizes.longLineBytes / 2 ** 20
    } MiB line started alone: ${longAlone.ok ? "webots:" : longAlone.detail}, /load max ${
      fmt(aloneMax, 0)
    } ms over ${longAlone.loadMs.length} requests (one every 10 ms, limit 500); amid the sessions: max ${
      fmt(duringLong.length ? Math.max(...duringLong) : NaN, 0)
    } ms over ${duringLong.length}`,
  };
  verdicts.A17 = tally(["burst"], `, ${options.sizes.burstLines} lines then real-time`);
  verdicts.A18 = tally(
    ["vanish"],
    msFigures(
      of("vanish").map((o) => o.endMs),
      `Webots ended (heartbeatTimeout ${server.timings.heartbeatTimeout} s) after silence`,
    ),
  );

  const loadMs = load.samples.map((s) => s.ms);
  const loadFailed = load.samples.filter((s) => s.status !== 200).length;
  const p99 = percentile(loadMs, 99);
  verdicts.A19 = {
    ok: loadMs.length > 0 && loadFailed === 0 && p99 < 500,
    detail: `${loadMs.length} GET /load: p50 ${fmt(percentile(loadMs, 50))} ms, p99 ${
      fmt(p99)
    } ms, max ${fmt(Math.max(...loadMs))} ms, ${loadFailed} failed (limit p99 500 ms)`,
  };
  const totalRecorded = recorded().length;
  verdicts.A20 = {
    ok: alivePids.length === 0 && scanned.length === 0,
    detail:
      `${alivePids.length} of ${totalRecorded} recorded pids alive, ${scanned.length} found by /proc scan${
        scanned[0]
          ? ` (${scanned.slice(0, 3).map((p) => `${p.pid} ${p.why}: ${p.command}`).join("; ")})`
          : ""
      }`,
  };
  verdicts.A21 = {
    ok: folders.length === 0 && records.length === 0,
    detail: `${folders.length} instance folders, ${records.length} run records`,
  };
  verdicts.A22 = {
    ok: ports.length === 0,
    detail: `${ports.length} listening in ${server.port + 1}-${
      server.port + server.maxConnections
    }${ports.length ? `: ${ports.slice(0, 5)}` : ""}`,
  };
  const peak = memory.peak(0, Infinity);
  verdicts.A23 = {
    ok: fdsAfter <= fdsBefore && rssAfter - rssBefore < 256,
    detail: `${fdsBefore} open descriptors before, ${fdsAfter} after; RSS ${
      fmt(rssBefore)
    } MiB before, ${fmt(rssAfter)} after (growth ${fmt(rssAfter - rssBefore)}, limit 256), peak ${
      fmt(peak)
    } MiB`,
  };
  return verdicts;
}

/**
 * One more oversized message in fragments, sent when no session runs, so that the server's memory
 * shows what that message alone costs (amid other sessions, their output and start-ups move the
 * RSS by tens of MiB). Growth: the RSS peak from the send to 250 ms after the close, minus the
 * highest RSS of the 300 ms before.
 */
async function fragmentedAlone(
  server: SimServer,
  sizes: FaultSizes,
  memory: MemoryTrace,
): Promise<{ closeCode: number | undefined; sentBytes: number; growth: number }> {
  const client = await rawConnect(server.clientUrl);
  try {
    await delay(400);
    const from = performance.now();
    const sentBytes = await client.sendFragmented(sizes.fragmentedBytes, sizes.fragmentBytes);
    const closed = await client.waitClosed(5000);
    const to = performance.now();
    await delay(300);
    const growth = memory.peak(from, to + 250) - memory.peak(from - 300, from);
    return { closeCode: closed?.code, sentBytes, growth };
  } finally {
    client.drop();
  }
}

/**
 * One more long-line session, started when no other session runs, with `/load` asked every 10 ms
 * until `webots:`: a delay then is the line's doing, not that of ten Webots starting on two cores.
 */
async function longLineAlone(
  server: SimServer,
  sizes: FaultSizes,
): Promise<{ ok: boolean; detail: string; loadMs: number[] }> {
  server.writeWorld("long-alone.wbt", [`long-line ${sizes.longLineBytes}`]);
  const client = await rawConnect(server.clientUrl);
  const load = sampleGet(`${server.baseUrl}/load`, 10);
  try {
    await client.sendText(server.startMessage("long-alone.wbt"));
    await client.waitFor((t) => t.startsWith("webots:"), server.timings.startTimeout * 1000 + 5000);
    await load.stop();
    await client.leave();
    return {
      ok: true,
      detail: "",
      loadMs: load.samples.map((s) => s.status === 200 ? s.ms : Infinity),
    };
  } catch (error) {
    await load.stop();
    return { ok: false, detail: String(error), loadMs: load.samples.map((s) => s.ms) };
  } finally {
    client.drop();
  }
}

/**
 * The fewest descriptors `pid` holds over five readings 200 ms apart: a reading can catch a
 * helper's pipe or a `/proc` file open for a moment.
 */
async function fewestFds(pid: number): Promise<number> {
  let fewest = Infinity;
  for (let i = 0; i < 5; i++) {
    fewest = Math.min(fewest, openFds(pid));
    await delay(200);
  }
  return fewest;
}
