/**
 * Network faults between the session server and simulation servers, measured: `deno run -A
 * chaos/network.ts [--servers N] [--faults a,b] [--hold MS] [--refresh S] [--timeout S]` (root),
 * or `runNetworkFaults()` from the chaos campaign.
 *
 * Each simulation server is a real one (stand-in Webots from tests/fakes/webots) in its own network
 * namespace, behind a TCP proxy of ours in that namespace (port 3000 → 2000) that can make the link
 * slow or lossy; the session server runs on the host side and polls them every `loadRefresh`.
 * The first server gets the faults, one after the other, each restored before the next:
 * - `link-down`: the namespace's veth end goes down (`ip link set … down`);
 * - `drop`: an nft rule inside the namespace drops every packet to the proxy port;
 * - `slow`: the proxy delays every chunk by `loadTimeout` (a poll takes twice that: it times out);
 * - `delay-under-timeout`: a fifth of that (a poll takes 0.4 × `loadTimeout`: it must still count);
 * - `lossy`: the proxy loses half of the chunks, each resent after TCP-like backoff (200 ms,
 *   400 ms, …), so some polls outlast `loadTimeout`.
 * Measured from outside: time from the cut to "not responding" on `/monitor/data` (and to `0` on
 * the availability socket when there is one server), from the restore to "available", and the
 * latency of `GET /session` sent one after the other during the fault.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { createNetnsLab, type Netns, netnsUnavailable, removeStale } from "./netns.ts";
import { proxyArgv, ROOT, serverArgv, type Started, startProcess } from "./network_processes.ts";

/** One check's verdict, as the campaign prints it. */
export interface Check {
  readonly id: string;
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** The faults, in the order they run. */
export const FAULTS = ["link-down", "drop", "slow", "delay-under-timeout", "lossy"] as const;
/** One fault. */
export type Fault = (typeof FAULTS)[number];

/** Options of `runNetworkFaults`. */
export interface NetworkFaultOptions {
  /** Simulation servers, each in its own namespace (default 2; the first one gets the faults). */
  readonly servers?: number;
  /** Faults to run (default all, in `FAULTS` order). */
  readonly faults?: readonly Fault[];
  /**
   * The session server's `loadRefresh` and `loadTimeout`, seconds (default 1 and 0.8: a poll of
   * a dead server is then seen within one period plus the timeout, under 2 polls).
   */
  readonly loadRefresh?: number;
  readonly loadTimeout?: number;
  /** How long a fault stays once detected (or at all, when none is expected), ms (default 3000). */
  readonly holdMs?: number;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
  /** Aborting removes every namespace and process at once. */
  readonly signal?: AbortSignal;
}

/** The figures of one fault. */
export interface FaultFigures {
  readonly fault: Fault;
  /** Cut → "not responding" on /monitor/data, ms (undefined: never within the wait). */
  readonly detectMs: number | undefined;
  /** Cut → `0` on the availability socket, ms (one server only). */
  readonly broadcastDownMs: number | undefined;
  /** Restore → "available", ms. */
  readonly restoreMs: number | undefined;
  /** Restore → `1` on the availability socket, ms (one server only). */
  readonly broadcastUpMs: number | undefined;
  /** State changes of the faulty server seen during the fault. */
  readonly flaps: number;
  /** `GET /session` during the fault. */
  readonly session: Latency;
  /** `/session` answers naming the faulty server after it was seen as not responding. */
  readonly wrongAnswers: number;
  /** `/session` requests that failed or got neither a URL nor the "no server" sentence. */
  readonly failures: number;
}

/** Latency figures, ms. */
export interface Latency {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** The p99 a `/session` answer must stay under: it never waits on a simulation server. */
export const SESSION_P99_LIMIT_MS = 100;
const SIM_PORT = 2000;
const NO_SERVER = "Error: no simulation server available at the moment.";
const PROXY_PORT = 3000;
const WAIT_MS = 15_000;
/**
 * The states of a server that answers its polls. "full" counts: the stand-in's load is the real
 * machine's CPU, which other work on a small machine can push to 100 %.
 */
const ANSWERING = ["available", "full"];

function latency(samples: readonly number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return {
    count: sorted.length,
    p50: round(at(0.5) ?? NaN),
    p99: round(at(0.99) ?? NaN),
    max: round(sorted.at(-1) ?? NaN),
  };
}

const round = (ms: number) => Math.round(ms * 10) / 10;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Watches the session server from outside: states on /monitor/data, the availability socket. */
interface Observer {
  /** The state text of `entry` now (`available`, `not responding`, …). */
  state(entry: string): Promise<string | undefined>;
  /** Polls every 25 ms until `entry` is in one of `states`; the time it took, or undefined. */
  waitState(
    entry: string,
    states: readonly string[],
    timeoutMs: number,
    from: number,
  ): Promise<number | undefined>;
  /** Broadcast values with their arrival times. */
  readonly broadcasts: readonly { at: number; value: string }[];
  close(): Promise<void>;
}

function observe(baseUrl: string): Observer {
  const broadcasts: { at: number; value: string }[] = [];
  const socket = new WebSocket(`${baseUrl.replace("http", "ws")}/`);
  socket.onmessage = (event) =>
    broadcasts.push({ at: performance.now(), value: String(event.data) });
  const closed = new Promise<void>((resolve) => (socket.onclose = () => resolve()));
  socket.onerror = () => {};
  const state = async (entry: string) => {
    const response = await fetch(`${baseUrl}/monitor/data`);
    const data = await response.json() as { servers: { entry: string; state: string }[] };
    return data.servers.find((s) => s.entry === entry)?.state;
  };
  return {
    state,
    async waitState(entry, wanted, timeoutMs, from) {
      while (performance.now() - from < timeoutMs) {
        if (wanted.includes(await state(entry) ?? "")) return performance.now() - from;
        await sleep(25);
      }
      return undefined;
    },
    broadcasts,
    async close() {
      if (socket.readyState === WebSocket.CONNECTING) {
        await new Promise((resolve) => (socket.onopen = resolve));
      }
      socket.close();
      await closed;
    },
  };
}

/** Sends `GET /session` one after the other until stopped; keeps each latency and answer. */
function sessionLoop(baseUrl: string) {
  const samples: { at: number; ms: number; body: string }[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const at = performance.now();
      let body;
      try {
        const response = await fetch(`${baseUrl}/session`);
        body = response.status === 200 ? await response.text() : `HTTP ${response.status}`;
      } catch (error) {
        body = `failed: ${error}`;
      }
      samples.push({ at, ms: performance.now() - at, body });
      await sleep(5);
    }
  })();
  return {
    samples,
    async stop() {
      running = false;
      await done;
    },
  };
}

/** Writes a simulation server's config and folders under `dir`. */
async function simulationConfig(dir: string): Promise<string> {
  const projects = join(dir, "projects");
  await Deno.mkdir(join(projects, "demo", "worlds"), { recursive: true });
  await Deno.writeTextFile(join(projects, "demo", "worlds", "demo.wbt"), "#VRML_SIM R2021b utf8\n");
  for (const d of ["instances", "log", "keys"]) await Deno.mkdir(join(dir, d));
  const file = join(dir, "simulation.json");
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      port: SIM_PORT,
      maxConnections: 4,
      webotsHome: join(ROOT, "tests", "fakes", "webots"),
      projectsDir: projects,
      instancesDir: join(dir, "instances"),
      keyDir: join(dir, "keys"),
      logDir: join(dir, "log"),
      nvidiaSmiPath: join(ROOT, "tests", "fakes", "nvidia-smi"),
      logFormat: "json",
    }),
  );
  return file;
}

interface SimNode {
  readonly ns: Netns;
  readonly entry: string;
  readonly server: Started;
  readonly proxy: Started;
}

/** Set-up failed, and its check says so already. */
class SetupFailed extends Error {}

/** Sends a command to the proxy and waits for its `ok`. */
async function proxyCommand(proxy: Started, command: string): Promise<void> {
  const from = proxy.output().length;
  await proxy.send(command);
  await proxy.waitOutput(new RegExp(`ok ${command}`), 5000, from);
}

/**
 * Runs the network faults and returns one check per measured claim. When network namespaces
 * cannot be used here (not root, `ip` or `nft` missing), logs precisely what is missing and
 * returns no check.
 */
export async function runNetworkFaults(options: NetworkFaultOptions = {}): Promise<Check[]> {
  const log = options.log ?? (() => {});
  const missing = await netnsUnavailable();
  if (missing) {
    log(`network faults skipped: ${missing}`);
    return [];
  }
  const servers = options.servers ?? 2;
  const faults = options.faults ?? FAULTS;
  const refreshMs = (options.loadRefresh ?? 1) * 1000;
  const timeoutMs = (options.loadTimeout ?? 0.8) * 1000;
  const holdMs = options.holdMs ?? 3000;
  const stale = await removeStale();
  if (stale.length) log(`removed namespaces of earlier killed runs: ${stale.join(", ")}`);

  const lab = createNetnsLab();
  const processes: Started[] = [];
  const dir = await Deno.makeTempDir({ prefix: "chaos-network-" });
  const abort = () => {
    lab.cleanup();
  };
  options.signal?.addEventListener("abort", abort, { once: true });
  const checks: Check[] = [];
  const check = (id: string, name: string, ok: boolean, detail: string) => {
    checks.push({ id, name, ok, detail });
    log(`${ok ? "PASS" : "FAIL"} ${id} ${name}: ${detail}`);
  };
  let observer: Observer | undefined;
  try {
    const began = performance.now();
    const nodes: SimNode[] = [];
    for (let i = 0; i < servers; i++) {
      const ns = await lab.add(i);
      const simDir = join(dir, `sim${i}`);
      await Deno.mkdir(simDir);
      const config = await simulationConfig(simDir);
      const server = await startProcess(
        ns.exec(serverArgv("simulation", config)),
        /Simulation server running on port 2000/,
      );
      processes.push(server);
      const proxy = await startProcess(
        ns.exec(proxyArgv(PROXY_PORT, SIM_PORT)),
        /proxy listening/,
        {
          stdin: true,
        },
      );
      processes.push(proxy);
      nodes.push({ ns, entry: `${ns.address}:${PROXY_PORT}`, server, proxy });
    }
    const sessionConfig = join(dir, "session.json");
    await Deno.writeTextFile(
      sessionConfig,
      JSON.stringify({
        port: 0,
        simulationServers: nodes.map((n) => n.entry),
        loadRefresh: refreshMs / 1000,
        loadTimeout: timeoutMs / 1000,
        logDir: join(dir, "session-log"),
        logFormat: "json",
      }),
    );
    const session = await startProcess(
      serverArgv("session", sessionConfig),
      /Session server running on port (\d+)/,
    );
    processes.push(session);
    const port = Number(session.output().match(/Session server running on port (\d+)/)![1]);
    const baseUrl = `http://127.0.0.1:${port}`;
    observer = observe(baseUrl);
    const up = [];
    for (const node of nodes) {
      up.push(await observer.waitState(node.entry, ANSWERING, WAIT_MS, performance.now()));
    }
    const setupMs = performance.now() - began;
    check(
      "net-setup",
      `${servers} namespaces with veth pairs, a simulation server in each, all answering`,
      up.every((ms) => ms !== undefined),
      `${nodes.map((n) => `${n.ns.name} ${n.entry}`).join(", ")}; ready in ${round(setupMs)} ms`,
    );
    // Without every server up there is nothing to measure; the clean-up is still checked.
    if (!up.every((ms) => ms !== undefined)) throw new SetupFailed();

    const baseline = sessionLoop(baseUrl);
    await sleep(2000);
    await baseline.stop();
    const base = latency(baseline.samples.map((s) => s.ms));
    log(`baseline GET /session: p50 ${base.p50} ms, p99 ${base.p99} ms (${base.count} requests)`);

    const target = nodes[0]!;
    const polls = (ms: number | undefined) =>
      ms === undefined ? "never" : `${round(ms)} ms = ${(ms / refreshMs).toFixed(1)} polls`;
    for (const fault of faults) {
      const figures = await runFault(fault, target, observer, baseUrl, {
        holdMs,
        refreshMs,
        timeoutMs,
        single: servers === 1,
      });
      const s = figures.session;
      const sessionDetail = `p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms over ${s.count} ` +
        `requests, ${figures.failures} failed; ${figures.wrongAnswers} answers named ${target.entry} ` +
        "after it was seen down";
      const sessionOk = s.count > 0 && s.p99 < SESSION_P99_LIMIT_MS && figures.wrongAnswers === 0 &&
        figures.failures === 0;
      const broadcast = (ms: number | undefined) => servers === 1 ? `; socket ${polls(ms)}` : "";
      if (fault === "delay-under-timeout") {
        check(
          `net-${fault}`,
          "a delay that keeps polls under loadTimeout never marks the server not responding",
          figures.flaps === 0,
          `${figures.flaps} changes to not responding in ${holdMs} ms`,
        );
      } else if (fault === "lossy") {
        check(
          `net-${fault}-restore`,
          "after a link losing half its packets, the server answers again within 2 polls",
          figures.restoreMs !== undefined && figures.restoreMs <= 2 * refreshMs + 100,
          `${figures.flaps} changes between answering and not responding during the fault; restore → answering ${
            polls(figures.restoreMs)
          }`,
        );
      } else {
        check(
          `net-${fault}-detect`,
          `${fault}: not available within 2 polls`,
          figures.detectMs !== undefined && figures.detectMs <= 2 * refreshMs + 100,
          `cut → not responding ${polls(figures.detectMs)}${broadcast(figures.broadcastDownMs)}`,
        );
        check(
          `net-${fault}-restore`,
          `${fault}: answering again within 2 polls of the restore`,
          figures.restoreMs !== undefined && figures.restoreMs <= 2 * refreshMs + 100,
          `restore → answering ${polls(figures.restoreMs)}${broadcast(figures.broadcastUpMs)}`,
        );
      }
      check(
        `net-${fault}-session`,
        `${fault}: GET /session does not wait on the faulty server`,
        sessionOk,
        sessionDetail,
      );
    }
  } catch (error) {
    if (!(error instanceof SetupFailed)) {
      const interrupted = options.signal?.aborted ? "interrupted; " : "";
      check("net-run", "the network fault run completes", false, `${interrupted}${error}`);
    }
  } finally {
    options.signal?.removeEventListener("abort", abort);
    await observer?.close().catch(() => {});
    for (const p of processes.reverse()) await p.stop(3000);
    await lab.cleanup();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const left = await leftovers(dir);
  check(
    "net-cleanup",
    "every namespace, veth pair and process of the run is gone",
    left.length === 0,
    left.length ? left.join("; ") : "0 namespaces, 0 veth links, 0 processes left",
  );
  return checks;
}

/** Processes whose command line names the run's folder (its servers, their Webots). */
async function processesUsing(dir: string): Promise<string[]> {
  const found = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name) || Number(entry.name) === Deno.pid) continue;
    try {
      const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`);
      if (cmdline.includes(dir)) found.push(`process ${entry.name}`);
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/** Namespaces, links and processes of this run still present. */
async function leftovers(dir: string): Promise<string[]> {
  const out = await new Deno.Command("/usr/sbin/ip", { args: ["-o", "link"], stdout: "piped" })
    .output();
  const links = new TextDecoder().decode(out.stdout).split("\n").filter((l) =>
    / wbn[0-9a-f]{5}h/.test(l)
  );
  const ns = await new Deno.Command("/usr/sbin/ip", { args: ["netns", "list"], stdout: "piped" })
    .output();
  const namespaces = new TextDecoder().decode(ns.stdout).split("\n")
    .filter((l) => l.startsWith(`wbnet-${Deno.pid}-`));
  return [
    ...namespaces.map((n) => `namespace ${n}`),
    ...links.map((l) => `link ${l.split(":")[1]}`),
    ...await processesUsing(dir),
  ];
}

interface FaultSettings {
  readonly holdMs: number;
  readonly refreshMs: number;
  readonly timeoutMs: number;
  readonly single: boolean;
}

async function inject(fault: Fault, node: SimNode, timeoutMs: number): Promise<void> {
  switch (fault) {
    case "link-down":
      return await node.ns.linkDown();
    case "drop":
      return await node.ns.dropPort(PROXY_PORT);
    case "slow":
      return await proxyCommand(node.proxy, `delay ${Math.round(timeoutMs)}`);
    case "delay-under-timeout":
      return await proxyCommand(node.proxy, `delay ${Math.round(timeoutMs / 5)}`);
    case "lossy":
      return await proxyCommand(node.proxy, "loss 0.5");
  }
}

async function restore(fault: Fault, node: SimNode): Promise<void> {
  if (fault === "link-down") return await node.ns.linkUp();
  if (fault === "drop") return await node.ns.undrop();
  await proxyCommand(node.proxy, "normal");
}

async function runFault(
  fault: Fault,
  node: SimNode,
  observer: Observer,
  baseUrl: string,
  settings: FaultSettings,
): Promise<FaultFigures> {
  if (await observer.waitState(node.entry, ANSWERING, WAIT_MS, performance.now()) === undefined) {
    throw new Error(`${node.entry} is not available before ${fault}`);
  }
  const loop = sessionLoop(baseUrl);
  try {
    return await measure(fault, node, observer, loop, settings);
  } finally {
    await loop.stop();
  }
}

async function measure(
  fault: Fault,
  node: SimNode,
  observer: Observer,
  loop: ReturnType<typeof sessionLoop>,
  settings: FaultSettings,
): Promise<FaultFigures> {
  const { holdMs, single } = settings;
  const expectDown = fault === "link-down" || fault === "drop" || fault === "slow";
  const cutAt = performance.now();
  await inject(fault, node, settings.timeoutMs);
  let detectMs: number | undefined;
  let flaps = 0;
  if (expectDown) {
    detectMs = await observer.waitState(node.entry, ["not responding"], WAIT_MS, cutAt);
    await sleep(holdMs);
  } else {
    // Count state changes while the fault lasts.
    const answering = async () => ANSWERING.includes(await observer.state(node.entry) ?? "");
    let last = await answering();
    const until = performance.now() + (fault === "lossy" ? 2 * holdMs : holdMs);
    while (performance.now() < until) {
      const now = await answering();
      if (now !== last) flaps++;
      last = now;
      await sleep(25);
    }
  }
  const restoreAt = performance.now();
  await restore(fault, node);
  const restoreMs = await observer.waitState(node.entry, ANSWERING, WAIT_MS, restoreAt);
  const during = loop.samples.filter((s) => s.at >= cutAt && s.at < restoreAt);
  const seenDownAt = detectMs === undefined ? Infinity : cutAt + detectMs;
  // Only meaningful when the feed was showing the other value when the fault began or ended.
  const broadcastAfter = (from: number, value: string) => {
    const before = observer.broadcasts.filter((b) => b.at < from).at(-1);
    const hit = observer.broadcasts.find((b) => b.at >= from && b.value === value);
    return hit && before?.value !== value ? hit.at - from : undefined;
  };
  return {
    fault,
    detectMs,
    broadcastDownMs: single && expectDown ? broadcastAfter(cutAt, "0") : undefined,
    restoreMs,
    broadcastUpMs: single && expectDown ? broadcastAfter(restoreAt, "1") : undefined,
    flaps,
    session: latency(during.map((s) => s.ms)),
    wrongAnswers: during.filter((s) => s.at > seenDownAt && s.body.includes(node.entry)).length,
    failures: during.filter((s) => !s.body.startsWith("ws://") && s.body !== NO_SERVER).length,
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      servers: { type: "string", default: "2" },
      faults: { type: "string", default: FAULTS.join(",") },
      hold: { type: "string", default: "3000" },
      refresh: { type: "string", default: "1" },
      timeout: { type: "string", default: "0.8" },
    },
  });
  const faults = values.faults.split(",").filter(Boolean) as Fault[];
  const unknown = faults.filter((f) => !(FAULTS as readonly string[]).includes(f));
  if (unknown.length) {
    console.error(`unknown fault ${unknown.join(", ")}; known: ${FAULTS.join(", ")}`);
    Deno.exit(2);
  }
  const controller = new AbortController();
  const interrupt = () => controller.abort();
  Deno.addSignalListener("SIGINT", interrupt);
  Deno.addSignalListener("SIGTERM", interrupt);
  const checks = await runNetworkFaults({
    servers: Number(values.servers),
    faults,
    holdMs: Number(values.hold),
    loadRefresh: Number(values.refresh),
    loadTimeout: Number(values.timeout),
    log: (line) => console.log(line),
    signal: controller.signal,
  });
  Deno.removeSignalListener("SIGINT", interrupt);
  Deno.removeSignalListener("SIGTERM", interrupt);
  const failed = checks.filter((c) => !c.ok).length;
  console.log(
    checks.length
      ? `${checks.length - failed} of ${checks.length} network checks hold`
      : "network checks skipped",
  );
  Deno.exit(controller.signal.aborted ? 130 : failed ? 1 : 0);
}
