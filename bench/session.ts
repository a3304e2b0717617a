/**
 * Session-server benchmark of the availability feed (`GET /session` throughput is bench/http.ts):
 * - Time for 10,000 availability subscribers to receive a change, from the moment the fake
 *   simulation server served the `/load` answer that causes it (p50/p99).
 * - The server's resident memory with 10,000 subscribers.
 *
 * Run alone: `deno run -A bench/session.ts`. The same file plays the subscriber processes when
 * given `subscribers` as first argument.
 *
 * @module
 */
import { stdoutLines } from "./stdout_lines.ts";
import { startServer } from "../tests/helpers/server_process.ts";
import { startFakeSimServer, wallClockMs } from "../tests/fakes/sim_server.ts";
import { summarize } from "./stats.ts";

const SELF = new URL(import.meta.url).pathname;
const SUBSCRIBERS = 10_000;
const SUBSCRIBER_PROCESSES = 4;

// ---------------------------------------------------------------------------------------------
// Helper process roles

/** Opens `n` sockets, reports `ready` once each got its first value, then the receipt times. */
async function subscribers(url: string, n: number): Promise<void> {
  const received: number[] = [];
  const sockets: WebSocket[] = [];
  let done: () => void;
  const allReceived = new Promise<void>((resolve) => (done = resolve));
  const BATCH = 250;
  for (let i = 0; i < n; i += BATCH) {
    const batch: Promise<void>[] = [];
    for (let j = i; j < Math.min(n, i + BATCH); j++) {
      const socket = new WebSocket(url);
      sockets.push(socket);
      let messages = 0;
      batch.push(
        new Promise<void>((resolve, reject) => {
          socket.onerror = () => reject(new Error("socket error"));
          socket.onmessage = () => {
            messages++;
            if (messages === 1) resolve();
            else if (messages === 2) {
              received.push(wallClockMs());
              if (received.length === n) done();
            }
          };
        }),
      );
    }
    await Promise.all(batch);
  }
  console.log("ready");
  await allReceived;
  console.log(JSON.stringify(received));
  for (const socket of sockets) socket.close();
}

// ---------------------------------------------------------------------------------------------
// Orchestration

interface Child {
  readonly process: Deno.ChildProcess;
  /** Resolves with the first stdout line matching `pattern`. */
  line(pattern: RegExp): Promise<string>;
}

function spawnRole(args: string[]): Child {
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SELF, ...args],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  return {
    process,
    line: stdoutLines(process.stdout),
  };
}

/** The pid of the child of `parentPid` (the launcher runs the server as its child). */
function childPid(parentPid: number): number {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parentPid) return Number(entry.name);
    } catch {
      // The process ended meanwhile.
    }
  }
  throw new Error(`no child of ${parentPid}`);
}

function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = Number(status.match(/^VmRSS:\s+(\d+) kB/m)?.[1]);
  return Math.round(kib / 1024 * 10) / 10;
}

/** Runs the benchmark, prints the figures and returns them. */
export async function runSessionBench(): Promise<Record<string, unknown>> {
  const sim = startFakeSimServer({ load: 10 });
  const dir = await Deno.makeTempDir({ prefix: "session-bench-" });
  const session = await startServer("session", {
    port: 0,
    simulationServers: [sim.entry],
    logDir: `${dir}/log`,
    loadRefresh: 0.2,
    loadTimeout: 1,
  }, { dir });
  const children: Child[] = [];
  try {
    const serverPid = childPid(session.pid);
    const sessionUrl = `http://127.0.0.1:${session.port}/session`;
    while ((await (await fetch(sessionUrl)).text()) !== `ws://${sim.entry}`) {
      await sim.nextServed();
    }

    const rssIdle = rssMiB(serverPid);
    const wsUrl = `ws://127.0.0.1:${session.port}/`;
    const perProcess = SUBSCRIBERS / SUBSCRIBER_PROCESSES;
    const connectStart = performance.now();
    const clients = Array.from(
      { length: SUBSCRIBER_PROCESSES },
      () => spawnRole(["subscribers", wsUrl, String(perProcess)]),
    );
    children.push(...clients);
    await Promise.all(clients.map((c) => c.line(/^ready$/)));
    const connectMs = Math.round(performance.now() - connectStart);
    const rssSubscribed = rssMiB(serverPid);
    console.log(
      `${SUBSCRIBERS} subscribers connected in ${connectMs} ms; server RSS ${rssIdle} MiB idle, ${rssSubscribed} MiB with them`,
    );

    const before = sim.served().length;
    sim.setLoad(100);
    const results = await Promise.all(
      clients.map(async (c) => JSON.parse(await c.line(/^\[/)) as number[]),
    );
    const flip = sim.served().slice(before).find((s) => s.body === "100");
    if (!flip) throw new Error("the flipping answer was not recorded");
    const latencies = summarize(results.flat().map((t) => t - flip.at));
    console.log(
      `availability change to ${latencies.n} subscribers: p50 ${latencies.p50} ms, p99 ${latencies.p99} ms, max ${latencies.max} ms`,
    );
    await Promise.all(clients.map((c) => c.process.status));
    return {
      subscribers: {
        count: SUBSCRIBERS,
        processes: SUBSCRIBER_PROCESSES,
        connectMs,
        changeLatencyMs: latencies,
        serverRssMiB: { idle: rssIdle, withSubscribers: rssSubscribed },
      },
    };
  } finally {
    for (const child of children) {
      try {
        child.process.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.process.status;
    }
    await session.stop();
    await sim.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const [role, ...args] = Deno.args;
  if (role === "subscribers") await subscribers(args[0]!, Number(args[1]));
  else console.log(JSON.stringify(await runSessionBench(), null, 2));
}
