/**
 * One browser session of part (a) with one fault: its plan (seeded: world directives, delays,
 * sizes) and its play against a real simulation server, ending with the outcome measured from
 * outside (answers, close code, times, and whether every process the stand-in recorded for it
 * ended).
 *
 * @module
 */
import type { Random } from "./random.ts";
import { isAlive, waitUntil } from "./leftovers.ts";
import { type RawClient, rawConnect } from "./ws_raw.ts";
import type { SimServer, WebotsRecord } from "./servers.ts";
import { delay, sampleGet, timedGet } from "./measure.ts";

/** The faults of part (a); `normal` is the control. */
export const FAULT_KINDS = [
  "normal",
  "leave-startup",
  "leave-ready",
  "garbage",
  "binary",
  "oversized",
  "fragmented",
  "crash-before",
  "crash-after",
  "never-ready",
  "ignore-term",
  "children",
  "escaped",
  "escaped-ignore-term",
  "long-line",
  "burst",
  "vanish",
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

/** Sizes that differ between the full and the short campaign. */
export interface FaultSizes {
  /** Total size of the fragmented oversized message. */
  readonly fragmentedBytes: number;
  readonly fragmentBytes: number;
  readonly longLineBytes: number;
  readonly burstLines: number;
}

/** One planned session. */
export interface SessionPlan {
  readonly index: number;
  readonly kind: FaultKind;
  readonly world: string;
  readonly directives: readonly string[];
  /** Milliseconds the client stays (leave-startup: before leaving; others: after webots:). */
  readonly holdMs: number;
  /** Children (in-group or escaped) the stand-in starts. */
  readonly children: number;
  /** Bytes of an oversized single frame, of garbage text or binary. */
  readonly bytes: number;
  readonly garbage: string;
}

/**
 * `count` sessions: every fault kind the same number of times (±1), in a seeded random order,
 * with seeded parameters.
 */
export function planSessions(
  random: Random,
  count: number,
  maxMessageSize: number,
  sizes: FaultSizes,
): SessionPlan[] {
  const kinds: FaultKind[] = [];
  for (let i = 0; i < count; i++) kinds.push(FAULT_KINDS[i % FAULT_KINDS.length]!);
  return random.shuffle(kinds).map((kind, index) => {
    const children = random.int(1, 3);
    const directives: string[] = [];
    switch (kind) {
      case "leave-startup":
        directives.push(`ready-delay ${random.int(800, 2000)}`);
        break;
      case "crash-before":
        directives.push("ready-delay 3000", `crash-after ${random.int(100, 600)}`);
        break;
      case "crash-after":
        directives.push(`crash-after ${random.int(700, 1500)}`);
        break;
      case "never-ready":
        directives.push("never-ready");
        break;
      case "ignore-term":
        directives.push("ignore-sigterm");
        break;
      case "children":
        directives.push(`children ${children}`);
        break;
      case "escaped":
        directives.push(`escaped-children ${children}`);
        break;
      case "escaped-ignore-term":
        directives.push(`escaped-children ${children}`, "escaped-ignore-term");
        break;
      case "long-line":
        directives.push(`long-line ${sizes.longLineBytes}`);
        break;
      case "burst":
        directives.push(`burst ${sizes.burstLines} real-time`);
        break;
      default:
        break;
    }
    const garbageChars = '{}[]":,abcxyz0123456789 \\\u00e9\u20ac';
    let garbage = "";
    for (let i = random.int(1, 200); i > 0; i--) garbage += random.pick([...garbageChars]);
    return {
      index,
      kind,
      world: `s${index}.wbt`,
      directives,
      holdMs: kind === "leave-startup" ? random.int(50, 700) : random.int(100, 800),
      children,
      bytes: kind === "oversized"
        ? random.int(maxMessageSize + 1, 16 * maxMessageSize)
        : random.int(1, 4096),
      garbage,
    };
  });
}

/** What one session showed. */
export interface SessionOutcome {
  readonly plan: SessionPlan;
  /** The fault had the outcome it should. */
  readonly ok: boolean;
  /** The numbers or the reason. */
  readonly detail: string;
  /** For clients that waited for an answer: whether one came within its bound. */
  readonly answered: boolean | undefined;
  /** ms from the start message to `webots:`. */
  readonly startMs?: number;
  /** ms from the client's end (leave, silence) to the last of its processes gone. */
  readonly endMs?: number;
  /** ms from the start message to the `error:` (never ready). */
  readonly errorMs?: number;
  /** `/load` times (ms; Infinity: failed) while Webots printed its long line and got ready. */
  readonly loadMs?: readonly number[];
  /** Bytes sent of the fragmented message before the server closed. */
  readonly sentBytes?: number;
  readonly closeCode?: number | undefined;
}

/** What a session needs besides its plan. */
export interface SessionContext {
  readonly server: SimServer;
  readonly sizes: FaultSizes;
}

/** The stand-in's records of this session's world. */
function recordsOf(server: SimServer, world: string): WebotsRecord[] {
  return server.records().filter((r) => r.args.some((a) => a.endsWith(`/${world}`)));
}

function pidsOf(records: readonly WebotsRecord[]): number[] {
  return records.flatMap((r) => [r.pid, ...r.childPids, ...(r.escapedPids ?? [])]);
}

/** Waits until every recorded process of `world` ended; ms taken, or undefined past `boundMs`. */
async function processesEnd(
  server: SimServer,
  world: string,
  since: number,
  boundMs: number,
): Promise<{ endMs: number | undefined; alive: number[] }> {
  const done = await waitUntil(
    () => pidsOf(recordsOf(server, world)).every((p) => !isAlive(p)),
    boundMs,
  );
  const alive = pidsOf(recordsOf(server, world)).filter(isAlive);
  return { endMs: done ? performance.now() - since : undefined, alive };
}

const isWebots = (text: string) => text.startsWith("webots:");
const isError = (text: string) => text.startsWith("error:");

/** Plays one session; never throws (a failure is an outcome). */
export async function playSession(
  plan: SessionPlan,
  context: SessionContext,
): Promise<SessionOutcome> {
  let client: RawClient | undefined;
  try {
    client = await rawConnect(context.server.clientUrl);
    return await play(plan, context, client);
  } catch (error) {
    return {
      plan,
      ok: false,
      detail: `${plan.kind}: ${error instanceof Error ? error.message : error}`,
      answered: plan.kind === "leave-startup" ? undefined : false,
    };
  } finally {
    client?.drop();
  }
}

async function play(
  plan: SessionPlan,
  { server, sizes }: SessionContext,
  client: RawClient,
): Promise<SessionOutcome> {
  const { startTimeout, killTimeout, heartbeatTimeout } = server.timings;
  const webotsWaitMs = startTimeout * 1000 + 5000;
  const endBoundMs = killTimeout * 1000 + 4000;
  const start = server.startMessage(plan.world);
  const fail = (detail: string, extra: Partial<SessionOutcome> = {}): SessionOutcome => ({
    plan,
    ok: false,
    detail: `${plan.kind} #${plan.index}: ${detail}`,
    answered: true,
    ...extra,
  });

  /** Sends start, waits for webots:, stays, leaves; checks every process ended. */
  const startRunLeave = async (
    extra: Partial<SessionOutcome> = {},
    onReady?: () => Promise<void>,
    holdMs = plan.holdMs,
  ): Promise<SessionOutcome> => {
    const sentAt = performance.now();
    await client.sendText(start);
    const webots = await client.waitFor(isWebots, webotsWaitMs);
    await onReady?.();
    const startMs = webots.at - sentAt;
    if (holdMs > 0) await delay(holdMs);
    const leftAt = performance.now();
    await client.leave();
    const ended = await processesEnd(server, plan.world, leftAt, endBoundMs);
    if (ended.endMs === undefined) {
      return fail(`processes still alive ${endBoundMs} ms after leaving: ${ended.alive}`, {
        startMs,
      });
    }
    return { plan, ok: true, detail: "", answered: true, startMs, endMs: ended.endMs, ...extra };
  };

  switch (plan.kind) {
    case "normal":
      return await startRunLeave();
    case "leave-ready":
      return await startRunLeave({}, undefined, 0);
    case "leave-startup": {
      await client.sendText(start);
      await delay(plan.holdMs);
      const early = client.received.find((r) => isWebots(r.text));
      const leftAt = performance.now();
      await client.leave();
      let ended = await processesEnd(server, plan.world, leftAt, endBoundMs);
      // Webots may have been spawned while the departure was handled: look again a moment later.
      await delay(300);
      const late = await processesEnd(server, plan.world, leftAt, endBoundMs);
      if (late.endMs === undefined) ended = late;
      if (ended.endMs === undefined) {
        return { ...fail(`processes alive after leaving: ${ended.alive}`), answered: undefined };
      }
      return {
        plan,
        ok: true,
        detail: early ? "webots: came before leaving" : "",
        answered: undefined,
        endMs: ended.endMs,
      };
    }
    case "garbage":
    case "binary": {
      if (plan.kind === "garbage") await client.sendText(plan.garbage);
      else await client.sendBinary(new Uint8Array(plan.bytes).fill(0xa5));
      const reply = await client.waitFor(() => true, 5000);
      if (!isError(reply.text)) return fail(`first reply ${JSON.stringify(reply.text)}`);
      return await startRunLeave();
    }
    case "oversized": {
      await client.sendText("x".repeat(plan.bytes));
      const closed = await client.waitClosed(5000);
      const replies = client.received.map((r) => r.text.slice(0, 60));
      if (closed?.code !== 1009) {
        return fail(
          `${plan.bytes} B frame: close ${closed ? closed.code : "none"} (want 1009), replies ${
            JSON.stringify(replies)
          }`,
          { answered: closed !== undefined || replies.length > 0, closeCode: closed?.code },
        );
      }
      return { plan, ok: true, detail: "", answered: true, closeCode: 1009 };
    }
    case "fragmented": {
      const sentBytes = await client.sendFragmented(sizes.fragmentedBytes, sizes.fragmentBytes);
      const closed = await client.waitClosed(5000);
      const replies = client.received.map((r) => r.text.slice(0, 60));
      const extra = {
        sentBytes,
        closeCode: closed?.code,
        answered: closed !== undefined || replies.length > 0,
      };
      if (closed?.code !== 1009) {
        return fail(
          `sent ${sentBytes} of ${sizes.fragmentedBytes} B: close ${
            closed ? closed.code : "none"
          } (want 1009), replies ${JSON.stringify(replies)}`,
          extra,
        );
      }
      return { plan, ok: true, detail: "", ...extra };
    }
    case "crash-before": {
      const sentAt = performance.now();
      await client.sendText(start);
      const error = await client.waitFor(isError, webotsWaitMs);
      const closed = await client.waitClosed(3000);
      if (client.received.some((r) => isWebots(r.text))) return fail("webots: before the crash");
      if (!/Webots exited/.test(error.text)) return fail(`error ${JSON.stringify(error.text)}`);
      if (!closed) return fail("socket not closed after the error");
      const ended = await processesEnd(server, plan.world, error.at, endBoundMs);
      if (ended.endMs === undefined) return fail(`processes alive: ${ended.alive}`);
      return { plan, ok: true, detail: "", answered: true, errorMs: error.at - sentAt };
    }
    case "crash-after": {
      await client.sendText(start);
      const webots = await client.waitFor(isWebots, webotsWaitMs);
      const error = await client.waitFor(isError, 5000);
      const closed = await client.waitClosed(3000);
      if (error.at < webots.at) return fail("error: before webots:");
      if (!/Webots exited/.test(error.text)) return fail(`error ${JSON.stringify(error.text)}`);
      if (!closed) return fail("socket not closed after the error");
      const ended = await processesEnd(server, plan.world, error.at, endBoundMs);
      if (ended.endMs === undefined) return fail(`processes alive: ${ended.alive}`);
      return { plan, ok: true, detail: "", answered: true };
    }
    case "never-ready": {
      const sentAt = performance.now();
      await client.sendText(start);
      const error = await client.waitFor(isError, webotsWaitMs);
      const errorMs = error.at - sentAt;
      await client.waitClosed(3000);
      if (!/ready/.test(error.text)) return fail(`error ${JSON.stringify(error.text)}`);
      // The limit runs from the spawn, which comes after the project copy.
      if (errorMs < startTimeout * 1000 || errorMs > startTimeout * 1000 + 3000) {
        return fail(`error after ${errorMs.toFixed(0)} ms (startTimeout ${startTimeout} s)`, {
          errorMs,
        });
      }
      const ended = await processesEnd(server, plan.world, error.at, endBoundMs);
      if (ended.endMs === undefined) return fail(`processes alive: ${ended.alive}`, { errorMs });
      return { plan, ok: true, detail: "", answered: true, errorMs };
    }
    case "ignore-term":
      return await startRunLeave();
    case "children":
    case "escaped":
    case "escaped-ignore-term": {
      const sentAt = performance.now();
      await client.sendText(start);
      const webots = await client.waitFor(isWebots, webotsWaitMs);
      const records = recordsOf(server, plan.world);
      const record = records[0];
      if (record === undefined) return fail("no record of the stand-in");
      const started = plan.kind === "children" ? record.childPids : record.escapedPids;
      if (started === undefined) {
        return fail(
          "the stand-in recorded no escapedPids: it does not know #fake escaped-children yet",
        );
      }
      if (started.length !== plan.children) {
        return fail(`${started.length} children recorded, ${plan.children} asked`);
      }
      await delay(plan.holdMs);
      const leftAt = performance.now();
      await client.leave();
      const ended = await processesEnd(server, plan.world, leftAt, endBoundMs);
      if (ended.endMs === undefined) {
        return fail(`${ended.alive.length} processes alive after leaving: ${ended.alive}`);
      }
      return {
        plan,
        ok: true,
        detail: "",
        answered: true,
        startMs: webots.at - sentAt,
        endMs: ended.endMs,
      };
    }
    case "long-line": {
      // /load is asked every 10 ms while Webots prints its long line and gets ready.
      const load = sampleGet(`${server.baseUrl}/load`, 10);
      let outcome: SessionOutcome;
      try {
        outcome = await startRunLeave({}, () => load.stop());
      } finally {
        await load.stop();
      }
      return { ...outcome, loadMs: load.samples.map((s) => (s.status === 200 ? s.ms : Infinity)) };
    }
    case "burst": {
      await client.sendText(start);
      const webots = await client.waitFor(isWebots, webotsWaitMs);
      const port = Number(webots.text.slice(webots.text.lastIndexOf(":") + 1));
      let state = "unknown";
      const running = await waitUntil(async () => {
        const sample = await timedGet(`${server.baseUrl}/monitor/data`);
        state = sessionState(sample.body, port) ?? "absent";
        return state === "running";
      }, 8000);
      await client.leave();
      const ended = await processesEnd(server, plan.world, performance.now(), endBoundMs);
      if (!running) {
        return fail(`after ${sizes.burstLines} lines then real-time the session is ${state}`);
      }
      if (ended.endMs === undefined) return fail(`processes alive: ${ended.alive}`);
      return { plan, ok: true, detail: "", answered: true };
    }
    case "vanish": {
      await client.sendText(start);
      await client.waitFor(isWebots, webotsWaitMs);
      client.goSilent();
      const silentAt = performance.now();
      const bound = 3 * heartbeatTimeout * 1000 + endBoundMs;
      const ended = await processesEnd(server, plan.world, silentAt, bound);
      if (ended.endMs === undefined) {
        return fail(`Webots alive ${bound} ms after the browser went silent: ${ended.alive}`);
      }
      return { plan, ok: true, detail: "", answered: true, endMs: ended.endMs };
    }
    default: {
      const unreachable: never = plan.kind;
      throw new Error(`unknown fault ${unreachable}`);
    }
  }
}

/** The state `/monitor/data` shows for the session streaming on `port`. */
function sessionState(body: string, port: number): string | undefined {
  try {
    const data = JSON.parse(body) as { sessions?: { port?: string; state?: string }[] };
    return data.sessions?.find((s) => s.port === String(port))?.state;
  } catch {
    return undefined;
  }
}
