/**
 * A subscriber process of the session bench: `deno run -A bench/subscriber_clients.ts <url> <n>
 * <changes>` opens `n` WebSockets to `url` (250 at a time), each waiting for its first value, and
 * prints `connected {"open":…,"failed":…,"ms":…}`. Then, for each of `changes` availability changes,
 * once every open socket has received it: `change <i> {"value":…,"at":[receipt times]}` (wall
 * clock ms, sub-millisecond). It exits after the last change, closing its sockets.
 *
 * @module
 */
import { wallClockMs } from "../tests/fakes/sim_server.ts";

const BATCH = 250;

/** What one change looked like from this process. */
interface Change {
  value: string | undefined;
  readonly at: number[];
}

async function main(url: string, n: number, changes: number): Promise<void> {
  const sockets: WebSocket[] = [];
  const received: Change[] = Array.from({ length: changes }, () => ({ value: undefined, at: [] }));
  let open = 0;
  let failed = 0;
  const started = performance.now();
  const lastChange = Promise.withResolvers<void>();
  // Each socket's messages after the first (its current value) are the changes, in order.
  const report = (i: number) => {
    const change = received[i]!;
    if (change.at.length !== open) return;
    console.log(`change ${i} ${JSON.stringify(change)}`);
    if (i === changes - 1) lastChange.resolve();
  };
  for (let i = 0; i < n; i += BATCH) {
    const batch: Promise<void>[] = [];
    for (let j = i; j < Math.min(n, i + BATCH); j++) {
      batch.push(
        new Promise<void>((resolve) => {
          const socket = new WebSocket(url);
          let messages = 0;
          socket.onerror = () => {
            if (messages === 0) failed++;
            resolve();
          };
          socket.onmessage = (event) => {
            const at = wallClockMs();
            messages++;
            if (messages === 1) {
              sockets.push(socket);
              open++;
              return resolve();
            }
            const change = received[messages - 2];
            if (change === undefined) return;
            if (change.value === undefined) change.value = String(event.data);
            else if (change.value !== String(event.data)) change.value = "mixed";
            change.at.push(at);
            report(messages - 2);
          };
        }),
      );
    }
    await Promise.all(batch);
  }
  const ms = Math.round(performance.now() - started);
  console.log(`connected ${JSON.stringify({ open, failed, ms })}`);
  if (open === 0 || changes === 0) lastChange.resolve();
  await lastChange.promise;
  const closed = sockets.map((socket) =>
    new Promise<void>((resolve) => {
      socket.onclose = () => resolve();
      socket.close();
    })
  );
  await Promise.all(closed);
}

if (import.meta.main) {
  const [url, n, changes] = Deno.args;
  await main(url!, Number(n), Number(changes));
}
