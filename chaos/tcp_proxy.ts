/**
 * A small TCP proxy that makes a link slow or lossy, run inside a network namespace (where
 * `tc netem` is not available): `deno run --allow-net chaos/tcp_proxy.ts LISTEN_PORT TARGET_PORT`
 * forwards `0.0.0.0:LISTEN_PORT` to `127.0.0.1:TARGET_PORT`.
 *
 * Commands, one a line on stdin, each answered `ok <command>` on stdout:
 * - `delay MS`: every chunk waits MS milliseconds before it is forwarded, in both directions
 *   (an HTTP exchange of one chunk each way takes 2 × MS longer);
 * - `loss P`: each chunk is lost with probability P and "retransmitted" the way TCP would: after
 *   200 ms, then 400 ms, 800 ms … while the retransmissions are lost too (probability P each), so
 *   that it arrives late but whole, as over a lossy link (with P = 0.5, one chunk in 8 is 1.4 s
 *   late or more);
 * - `normal`: no delay, no loss.
 * The proxy exits when its stdin ends, so it never outlives the campaign that started it.
 *
 * @module
 */

let delayMs = 0;
let loss = 0;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  try {
    for await (const chunk of from.readable.values({ preventCancel: false })) {
      const late = delayMs + retransmissionDelay();
      if (late > 0) await sleep(late);
      let done = 0;
      while (done < chunk.length) done += await to.write(chunk.subarray(done));
    }
  } catch {
    // Either side went away.
  } finally {
    try {
      await to.closeWrite();
    } catch {
      // Already closed.
    }
  }
}

/** The time lost to retransmissions of one chunk: 200 ms × (2^k − 1) for k losses in a row. */
function retransmissionDelay(): number {
  let losses = 0;
  while (losses < 6 && Math.random() < loss) losses++;
  return 200 * (2 ** losses - 1);
}

async function handle(conn: Deno.Conn, targetPort: number): Promise<void> {
  let upstream: Deno.Conn;
  try {
    upstream = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
  } catch {
    conn.close();
    return;
  }
  await Promise.all([pipe(conn, upstream), pipe(upstream, conn)]);
  for (const c of [conn, upstream]) {
    try {
      c.close();
    } catch {
      // Already closed.
    }
  }
}

function command(line: string): string | undefined {
  const [name, value] = line.trim().split(/\s+/);
  const number = Number(value);
  if (name === "delay" && number >= 0) delayMs = number;
  else if (name === "loss" && number >= 0 && number <= 1) loss = number;
  else if (name === "normal") [delayMs, loss] = [0, 0];
  else return undefined;
  return `ok ${line.trim()}`;
}

async function readCommands(): Promise<void> {
  let pending = "";
  for await (const text of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    pending += text;
    let newline;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (line.trim()) console.log(command(line) ?? `unknown command: ${line}`);
    }
  }
  Deno.exit(0);
}

if (import.meta.main) {
  const [listenPort, targetPort] = Deno.args.map(Number);
  if (!listenPort || !targetPort) {
    console.error("Usage: tcp_proxy.ts LISTEN_PORT TARGET_PORT");
    Deno.exit(2);
  }
  const listener = Deno.listen({ hostname: "0.0.0.0", port: listenPort });
  console.log(`proxy listening on ${listenPort}`);
  readCommands();
  for await (const conn of listener) handle(conn, targetPort);
}
