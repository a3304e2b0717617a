/**
 * Session-server benchmark of the queue: positions sent per second with 10,000 queued pages.
 *
 * The fleet is full (a fake simulation server answers 100), so nothing is granted. 10,000 pages,
 * opened by page processes, each send `{"queue": {}}` and wait for their position. Then the first
 * {@link LEAVERS} pages close their sockets: each departure moves every page behind it up by one,
 * so the server sends about LEAVERS × 10,000 `queue: <position>` messages. The figure is the
 * number of position messages the pages received, divided by the time from the first close to the
 * moment the last page had its final position.
 *
 * The generator is shown not to be the bottleneck by the CPU time each process used during that
 * interval (from /proc): the server is busy the whole interval, the page processes much less.
 *
 * Run alone: `deno run -A bench/queue.ts`. The same file plays the page processes when given
 * `pages` as first argument.
 *
 * @module
 */
import { stdoutLines } from "./stdout_lines.ts";
import { childPid, cpuSeconds } from "./proc_stats.ts";
import { join } from "node:path";
import { startServer } from "../tests/helpers/server_process.ts";
import { startFakeSimServer } from "../tests/fakes/sim_server.ts";

const SELF = new URL(import.meta.url).pathname;
const PAGES = 10_000;
const PAGE_PROCESSES = 2;
/** Pages at the head of the queue that leave. */
const LEAVERS = 50;
/** Sockets a page process opens at once. */
const BATCH = 250;

// ---------------------------------------------------------------------------------------------
// The page processes

/**
 * Opens `n` sockets that queue (in batches of {@link BATCH}), prints `ready` once each was told
 * its position, then on `go` on stdin closes its pages among the first `leavers` of the queue, and
 * prints the count of position messages received once every other page was told its position
 * minus `leavers`.
 */
async function pages(url: string, n: number, leavers: number): Promise<void> {
  const sockets: WebSocket[] = [];
  const leaving: WebSocket[] = [];
  let received = 0;
  let counting = false;
  let pending = 0;
  let done: () => void = () => {};
  const allMoved = new Promise<void>((resolve) => (done = resolve));
  const open = () => {
    const socket = new WebSocket(url);
    sockets.push(socket);
    let final = 0;
    return new Promise<void>((resolve, reject) => {
      socket.onerror = () => reject(new Error("socket error"));
      socket.onopen = () => socket.send('{"queue":{}}');
      socket.onmessage = (event) => {
        const text = String(event.data);
        if (!text.startsWith("queue: ")) return;
        const position = parseInt(text.slice(7));
        if (!counting) {
          if (!(position >= 1)) return reject(new Error(`told ${text}`));
          if (position <= leavers) leaving.push(socket);
          else {
            final = position - leavers;
            pending++;
          }
          return resolve();
        }
        received++;
        if (position === final && --pending === 0) done();
      };
    });
  };
  for (let i = 0; i < n; i += BATCH) {
    await Promise.all(Array.from({ length: Math.min(BATCH, n - i) }, open));
  }
  console.log("ready");
  const stdin = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  while (!(await stdin.read()).value?.includes("go"));
  stdin.releaseLock();
  counting = true;
  for (const socket of leaving) socket.close();
  if (pending > 0) await allMoved;
  console.log(`received ${received}`);
  const closed = sockets.map((socket) =>
    socket.readyState === WebSocket.CLOSED
      ? Promise.resolve()
      : new Promise((resolve) => socket.addEventListener("close", resolve))
  );
  for (const socket of sockets) socket.close();
  await Promise.all(closed);
  // stdin stays open (the parent holds it): end here.
  Deno.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Orchestration

interface PageProcess {
  readonly process: Deno.ChildProcess;
  readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  line(pattern: RegExp): Promise<string>;
}

function spawnPages(url: string, n: number): PageProcess {
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SELF, "pages", url, String(n), String(LEAVERS)],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  return {
    process,
    writer: process.stdin.getWriter(),
    line: stdoutLines(process.stdout),
  };
}

/** Runs the benchmark, prints the figures and returns them. */
export async function runQueueBench(): Promise<Record<string, unknown>> {
  const sim = startFakeSimServer({ load: 100 });
  const dir = await Deno.makeTempDir({ prefix: "queue-bench-" });
  const session = await startServer("session", {
    port: 0,
    simulationServers: [sim.entry],
    logDir: join(dir, "log"),
    loadRefresh: 1,
    loadTimeout: 1,
    queueMax: PAGES,
    queuePerAddress: 0,
    queueTimeout: 0,
  }, { dir });
  const children: PageProcess[] = [];
  try {
    const serverPid = childPid(session.pid);
    const url = `ws://127.0.0.1:${session.port}/`;
    const perProcess = PAGES / PAGE_PROCESSES;
    const joinStart = performance.now();
    for (let p = 0; p < PAGE_PROCESSES; p++) children.push(spawnPages(url, perProcess));
    await Promise.all(children.map((c) => c.line(/^ready$/)));
    const joinMs = Math.round(performance.now() - joinStart);
    const cpuBefore = [serverPid, ...children.map((c) => c.process.pid)].map(cpuSeconds);
    const start = performance.now();
    await Promise.all(children.map((c) => c.writer.write(new TextEncoder().encode("go\n"))));
    const counts = await Promise.all(
      children.map(async (c) => Number((await c.line(/^received /)).split(" ")[1])),
    );
    const seconds = (performance.now() - start) / 1000;
    const cpuAfter = [serverPid, ...children.map((c) => c.process.pid)].map(cpuSeconds);
    const cpu = cpuAfter.map((after, i) => Math.round((after - cpuBefore[i]!) * 100) / 100);
    // Every page that stays was told each position it passed through; how many that makes depends
    // on the order the server saw the closes in (a leaver behind another leaver moves up too).
    const positions = counts.reduce((a, b) => a + b, 0);
    const perSecond = Math.round(positions / seconds);
    const busy = (s: number) => Math.round((s / seconds) * 100);
    console.log(
      `${PAGES} pages queued in ${joinMs} ms; ${LEAVERS} left from the head: ${positions} positions in ${
        seconds.toFixed(2)
      } s = ${perSecond}/s; CPU busy: server ${busy(cpu[0]!)} %, page processes ${
        cpu.slice(1).map(busy).join(" %, ")
      } %`,
    );
    await Promise.all(children.map((c) => c.process.status));
    return {
      queue: {
        pages: PAGES,
        pageProcesses: PAGE_PROCESSES,
        leavers: LEAVERS,
        joinMs,
        positionsSent: positions,
        seconds: Math.round(seconds * 1000) / 1000,
        positionsPerSecond: perSecond,
        cpuBusyPercent: { server: busy(cpu[0]!), pageProcesses: cpu.slice(1).map(busy) },
        loadAverage: Deno.loadavg().map((x) => Math.round(x * 100) / 100),
      },
    };
  } finally {
    for (const child of children) {
      try {
        await child.writer.close();
      } catch { /* closed */ }
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
  if (role === "pages") {
    await pages(args[0]!, Number(args[1]), Number(args[2]));
  } else console.log(JSON.stringify(await runQueueBench(), null, 2));
}
