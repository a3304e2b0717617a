/**
 * The HTTP engine at the open-files limit, as a real process started with a low `ulimit -n`
 * (tests/helpers/engine_process.ts) and driven over loopback.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";

const ENGINE = join(import.meta.dirname ?? ".", "..", "helpers", "engine_process.ts");
const LIMIT = 64;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The engine process's events (JSON lines on its stdout), in order, and a wait for the next. */
class Events {
  readonly seen: Record<string, unknown>[] = [];
  #waiters: { test: (e: Record<string, unknown>) => boolean; resolve: () => void }[] = [];
  readonly ended: Promise<void>;

  constructor(stdout: ReadableStream<Uint8Array>) {
    this.ended = (async () => {
      let buffer = "";
      for await (const chunk of stdout.pipeThrough(new TextDecoderStream())) {
        buffer += chunk;
        let newline;
        while ((newline = buffer.indexOf("\n")) !== -1) {
          const event = JSON.parse(buffer.slice(0, newline)) as Record<string, unknown>;
          buffer = buffer.slice(newline + 1);
          this.seen.push(event);
          for (const waiter of [...this.#waiters]) {
            if (waiter.test(event)) {
              this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
              waiter.resolve();
            }
          }
        }
      }
    })();
  }

  /**
   * Resolves with the first event (seen or to come) that has `key`; rejects after 10 s without
   * one, so that an engine that never says it fails the test instead of hanging it.
   */
  async next(key: string): Promise<Record<string, unknown>> {
    const has = (e: Record<string, unknown>) => key in e;
    if (!this.seen.some(has)) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waiter = { test: has, resolve: () => {} };
      try {
        await new Promise<void>((resolve, reject) => {
          waiter.resolve = resolve;
          this.#waiters.push(waiter);
          timer = setTimeout(() => reject(new Error(`no "${key}" event in 10 s`)), 10_000);
        });
      } finally {
        clearTimeout(timer);
        const at = this.#waiters.indexOf(waiter);
        if (at !== -1) this.#waiters.splice(at, 1);
      }
    }
    return this.seen.find(has)!;
  }

  count(key: string): number {
    return this.seen.filter((e) => key in e).length;
  }
}

/** Sends one request on `conn` and resolves with the body of its answer. */
async function ask(conn: Deno.Conn): Promise<string> {
  await conn.write(encoder.encode("GET / HTTP/1.1\r\nhost: test\r\n\r\n"));
  let text = "";
  const buffer = new Uint8Array(1024);
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error(`connection ended after ${JSON.stringify(text)}`);
    text += decoder.decode(buffer.subarray(0, n));
    const end = text.indexOf("\r\n\r\n");
    const length = Number(text.match(/content-length: (\d+)/i)?.[1]);
    if (end !== -1 && text.length >= end + 4 + length) return text.slice(end + 4);
  }
}

/** The named variables of this process's environment that are set. */
function passThrough(...names: string[]): Record<string, string> {
  return Object.fromEntries(
    names.flatMap((name) => {
      const value = Deno.env.get(name);
      return value === undefined ? [] : [[name, value]];
    }),
  );
}

/** User + system CPU seconds of `pid` so far. */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

Deno.test("out of file descriptors, the engine says so once, does not spin, and accepts again when one is free", async (t) => {
  // `exec` keeps the pid: the engine process is the shell's own.
  const child = new Deno.Command("sh", {
    args: ["-c", `ulimit -n ${LIMIT} && exec "$0" run --allow-net "$1"`, Deno.execPath(), ENGINE],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
    // Only what Deno needs to find its cache: the rest (NODE_EXTRA_CA_CERTS, …) would make the
    // runtime open files of its own at the limit and warn about them.
    clearEnv: true,
    env: { NO_COLOR: "1", ...passThrough("HOME", "DENO_DIR", "PATH") },
  }).spawn();
  const events = new Events(child.stdout);
  const accepted: Deno.Conn[] = [];
  const waiting: { conn: Deno.Conn; answer: Promise<string> }[] = [];
  try {
    const port = (await events.next("listening")).listening as number;
    const connect = () => Deno.connect({ hostname: "127.0.0.1", port });

    await t.step("connections are accepted until the descriptors run out", async () => {
      const failed = events.next("error");
      for (;;) {
        ok(accepted.length < LIMIT, "every connection was accepted: the limit did not apply");
        const conn = await connect();
        const answer = ask(conn);
        const first = await Promise.race([answer, failed.then(() => undefined)]);
        if (first === undefined) {
          // The kernel completed the handshake; the connection waits in the listen backlog.
          waiting.push({ conn, answer });
          break;
        }
        equal(first, "ok");
        accepted.push(conn);
      }
      ok(accepted.length > 10, `only ${accepted.length} connections before the limit`);
      const error = await failed;
      ok(/Too many open files/.test(String(error.message)), JSON.stringify(error));
      ok(/accept failed/.test(String(error.error)), JSON.stringify(error));
    });

    await t.step("while full, it neither spins nor logs per attempt", async () => {
      const second = await connect();
      waiting.push({ conn: second, answer: ask(second) });
      const cpuBefore = cpuSeconds(child.pid);
      // The pause has to last for a spin to show: this measures, it does not wait for a race.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const cpu = cpuSeconds(child.pid) - cpuBefore;
      ok(cpu < 0.2, `the engine used ${cpu} s of CPU in 1.5 s while out of descriptors`);
      equal(events.count("error"), 1);
      equal(events.count("resumed"), 0);
    });

    await t.step(
      "once connections close, the waiting ones are served and it says so once",
      async () => {
        for (const conn of accepted.splice(0, 3)) conn.close();
        deepEqual(await Promise.all(waiting.map((w) => w.answer)), ["ok", "ok"]);
        accepted.push(...waiting.splice(0).map((w) => w.conn));
        const fresh = await connect();
        accepted.push(fresh);
        equal(await ask(fresh), "ok");
        const { resumed } = await events.next("resumed") as {
          resumed: { failures: number; ms: number };
        };
        // Failed accepts retry on a doubling timer (10 ms up to 1 s) or when a connection closes.
        ok(resumed.failures >= 1 && resumed.failures <= 12, JSON.stringify(resumed));
        ok(resumed.ms >= 1500, JSON.stringify(resumed));
        equal(events.count("error"), 1);
        equal(events.count("resumed"), 1);
      },
    );
  } finally {
    for (const conn of [...accepted, ...waiting.map((w) => w.conn)]) {
      try {
        conn.close();
      } catch { /* closed by the test */ }
    }
    await Promise.allSettled(waiting.map((w) => w.answer));
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await events.ended;
  }
  equal((await child.status).code, 0);
});
