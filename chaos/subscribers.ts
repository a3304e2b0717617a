/**
 * Part (d): abusive sockets on the session server's availability socket `/` (endless fragments,
 * an oversized message, binary and garbage frames, many connects and disconnects, a subscriber
 * that never reads) while normal subscribers must still get every `1`/`0`.
 *
 * The session server polls one stand-in simulation server (tests/fakes/sim_server.ts) whose
 * load the campaign flips between 0 and 100, so availability changes when the campaign says.
 *
 * @module
 */
import { join } from "node:path";
import type { Verdicts } from "./checks.ts";
import { rssMiB, waitUntil } from "./leftovers.ts";
import { delay, fmt, percentile, sampleGet, traceMemory } from "./measure.ts";
import { startSessionServer } from "./servers.ts";
import { type RawClient, rawConnect } from "./ws_raw.ts";
import { startFakeSimServer } from "../tests/fakes/sim_server.ts";
import type { Random } from "./random.ts";

/** Settings of part (d). */
export interface SubscribersOptions {
  readonly dir: string;
  readonly random: Random;
  readonly toggles: number;
  readonly churn: number;
  /** Sockets sending endless fragments, and how much each sends at most. */
  readonly fragmentSockets: number;
  readonly fragmentBytes: number;
  readonly log: (line: string) => void;
}

const LOAD_REFRESH = 0.2;
const HEARTBEAT = 2;
const NORMAL = 3;
const MiB = 2 ** 20;

/** Runs part (d) and returns its verdicts (D01–D03). */
export async function runSubscribers(options: SubscribersOptions): Promise<Verdicts> {
  await using sim = startFakeSimServer({ load: 0 });
  const session = await startSessionServer({
    dir: join(options.dir, "subscribers"),
    simulationServers: [sim.entry],
    loadRefresh: LOAD_REFRESH,
    loadTimeout: 1,
    heartbeatTimeout: HEARTBEAT,
  });
  const sockets: RawClient[] = [];
  const connect = async () => {
    const socket = await rawConnect(session.wsUrl);
    sockets.push(socket);
    return socket;
  };
  try {
    const normal = await Promise.all(Array.from({ length: NORMAL }, connect));
    await Promise.all(normal.map((s) => s.waitFor((t) => t === "1", 5000)));
    const baseline = sampleGet(`${session.baseUrl}/session`, 10);
    await delay(1000);
    await baseline.stop();
    await delay(300);
    const rssBefore = rssMiB(session.serverPid);
    const memory = traceMemory(session.serverPid, 50);
    const sessionLatency = sampleGet(`${session.baseUrl}/session`, 10);

    // Availability flips all through the abuse; every normal subscriber must see each one.
    const latencies: number[] = [];
    const firstOfAbuse = normal.map((s) => s.received.length);
    let missed = 0;
    let toggles = 0;
    let abusing = true;
    const toggling = (async () => {
      while (abusing || toggles < options.toggles) {
        const value = toggles % 2 === 0 ? "0" : "1";
        const counts = normal.map((s) => s.received.length);
        const setAt = performance.now();
        sim.setLoad(value === "0" ? 100 : 0);
        toggles++;
        await Promise.all(normal.map(async (socket, k) => {
          const got = await waitUntil(() => socket.received.length > counts[k]!, 5000);
          const message = socket.received[counts[k]!];
          if (!got || message?.text !== value) missed++;
          else latencies.push(message.at - setAt);
        }));
        await delay(options.random.int(50, 300));
      }
    })();

    // First the size abusers, alone, so that the memory they cost is not mixed with the churn's.
    const sizeStart = performance.now();
    const fragmenters = await Promise.all(
      Array.from({ length: options.fragmentSockets }, connect),
    );
    const oversized = await connect();
    const fragmentResults = await Promise.all(fragmenters.map(async (socket) => {
      const sent = await socket.sendFragmented(options.fragmentBytes, 64 * 1024);
      return { sent, closed: await socket.waitClosed(5000) };
    }));
    await oversized.sendText("x".repeat(MiB)).catch(() => {});
    const oversizedClosed = await oversized.waitClosed(5000);
    await delay(250);
    const sizeEnd = performance.now();

    // Then the others.
    const silent = await connect();
    silent.goSilent();
    const silentAt = performance.now();
    const binary = await connect();
    const garbage = await connect();
    await binary.sendBinary(options.random.bytes(options.random.int(1, 4096)));
    await garbage.sendText(
      Array.from(
        { length: options.random.int(1, 300) },
        () => options.random.pick([...'{}[]:,"ab1\u20ac']),
      ).join(""),
    );
    const churnQueue = Array.from({ length: options.churn }, (_, i) => i);
    let churnFailed = 0;
    const churner = async () => {
      while (churnQueue.shift() !== undefined) {
        try {
          const socket = await rawConnect(session.wsUrl);
          if (options.random.next() < 0.5) socket.drop();
          else await socket.leave(1000);
        } catch {
          churnFailed++;
        }
      }
    };
    await Promise.all(Array.from({ length: 10 }, churner));
    abusing = false;
    await toggling;
    await sessionLatency.stop();

    // The silent one: closed by the heartbeat (the server's log says so).
    const silentClosed = await waitUntil(
      () =>
        session.logLines().some((l) =>
          l.reason === "no answer to ping" && typeof l.msg === "string" &&
          l.msg.includes("Client disconnected")
        ),
      3 * HEARTBEAT * 1000 + 2000,
    );
    const silentLine = session.logLines().find((l) => l.reason === "no answer to ping");
    const silentMs = silentLine
      ? Date.parse(String(silentLine.time)) - (performance.timeOrigin + silentAt)
      : NaN;
    for (const socket of [binary, garbage, silent, ...fragmenters, oversized]) {
      await socket.leave(500);
    }
    const hubBack = await waitUntil(() => lastSubscriberCount(session.logLines()) === NORMAL, 5000);
    const hubSize = lastSubscriberCount(session.logLines());
    await delay(500);
    const rssAfter = rssMiB(session.serverPid);
    const peak = memory.peak(sizeStart, sizeEnd);
    await memory.stop();

    const sequences = normal.map((s, k) =>
      s.received.slice(firstOfAbuse[k]).map((r) => r.text).join("")
    );
    const expected = Array.from({ length: toggles }, (_, i) => (i % 2 === 0 ? "0" : "1"))
      .join("");
    const sequencesOk = sequences.every((s) => s === expected);
    const boundMs = 2 * LOAD_REFRESH * 1000 + 500;
    const p99 = percentile(latencies, 99);
    const closed1009 = fragmentResults.filter((r) => r.closed?.code === 1009).length +
      (oversizedClosed?.code === 1009 ? 1 : 0);
    const sentMiB = fragmentResults.map((r) => r.sent / MiB);
    const growth = peak - rssBefore;
    const base = baseline.samples.map((s) => s.ms);
    const during = sessionLatency.samples.map((s) => s.ms);
    // Blocking, not contention: 200 upgrades in a second cost /session some ms on two busy cores.
    const limit = Math.max(2 * percentile(base, 99), 100);
    const duringP99 = percentile(during, 99);
    const sessionFailed = sessionLatency.samples.filter((s) => s.status !== 200).length;
    return {
      D01: {
        ok: sequencesOk && missed === 0 && p99 <= boundMs,
        detail: `${NORMAL} subscribers × ${toggles} changes: ${missed} missed or wrong, ${
          sequences.filter((s) => s === expected).length
        }/${NORMAL} exact sequences; delay p50 ${fmt(percentile(latencies, 50), 0)} ms p99 ${
          fmt(p99, 0)
        } ms (bound ${boundMs} ms, loadRefresh ${LOAD_REFRESH} s)`,
      },
      D02: {
        ok: closed1009 === fragmenters.length + 1 && growth < 16,
        detail: `${closed1009}/${
          fragmenters.length + 1
        } closed 1009 (${fragmenters.length} × up to ${
          options.fragmentBytes / MiB
        } MiB in 64 KiB fragments, sent p50 ${fmt(percentile(sentMiB, 50))} MiB; one 1 MiB frame: ${
          oversizedClosed ? `close ${oversizedClosed.code}` : "not closed"
        }); server RSS ${fmt(rssBefore)} MiB before, peak ${fmt(peak)} (growth ${
          fmt(growth)
        }, limit 16), ${fmt(rssAfter)} after`,
      },
      D03: {
        ok: silentClosed && silentMs <= 3 * HEARTBEAT * 1000 && hubBack && churnFailed === 0 &&
          sessionFailed === 0 && duringP99 <= limit,
        detail: `silent subscriber ${
          silentClosed ? `closed by the heartbeat after ${fmt(silentMs, 0)} ms` : "never closed"
        } (heartbeatTimeout ${HEARTBEAT} s); ${options.churn} connect/disconnect, ${churnFailed} failed; hub back to ${hubSize} subscribers (want ${NORMAL}); /session p99 ${
          fmt(percentile(base, 99), 2)
        } ms before, ${
          fmt(duringP99, 2)
        } ms during the abuse over ${during.length} requests (limit ${
          fmt(limit)
        }), ${sessionFailed} failed`,
      },
    };
  } finally {
    for (const socket of sockets) socket.drop();
    await session.process.stop();
  }
}

/** The hub's size in the last log line that tells it. */
function lastSubscriberCount(lines: readonly Record<string, unknown>[]): number | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const count = lines[i]!.subscribers;
    if (typeof count === "number" && String(lines[i]!.msg).includes("Client")) return count;
  }
  return undefined;
}
