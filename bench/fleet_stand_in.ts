/**
 * Stand-in simulation servers for the fleet benchmark (bench/fleet.ts): one process serving
 * `/load` on many loopback addresses, one `Deno.serve` per address, all on the same port.
 *
 * Each address answers like our simulation servers: a load figure as `text/plain; charset=utf-8`
 * with the `x-webots-slots` and `x-webots-simulations` headers (shared/load_headers.ts). The
 * load of address `i` (its index in the whole fleet, from `firstIndex`) moves from poll to poll
 * between 20 and 79, except index 0, which always answers 5: so the session server has fresh
 * figures to apply each round while `GET /session` keeps naming the same server.
 *
 * Every answer's wall-clock time (ms, `performance.timeOrigin + performance.now()`) is kept per
 * address. A line `report` on stdin prints them all as one JSON line `{"<address>": [t, …], …}`;
 * the end of stdin ends the process.
 * It prints `listening <n>` once all its addresses are bound.
 *
 * Usage: `deno run --allow-net bench/fleet_stand_in.ts <port> <firstIndex> <address,address,…>`.
 *
 * @module
 */
import { slotHeaders } from "../shared/load_headers.ts";

/** The load address `index` answers at its `poll`-th poll (0-based). */
export function standInLoad(index: number, poll: number): number {
  return index === 0 ? 5 : 20 + (index * 7 + poll * 13) % 60;
}

const SLOTS = 4;

function serveAddress(address: string, port: number, index: number, times: number[]): void {
  Deno.serve({ hostname: address, port, onListen: () => {} }, (request) => {
    if (!request.url.endsWith("/load")) return new Response("Not found", { status: 404 });
    const load = standInLoad(index, times.length);
    times.push(performance.timeOrigin + performance.now());
    const used = Math.min(SLOTS, Math.floor(load / 25));
    return new Response(String(load), {
      headers: {
        "content-type": "text/plain; charset=utf-8",
        ...slotHeaders({ used, max: SLOTS, simulations: used }),
      },
    });
  });
}

if (import.meta.main) {
  const [portText, firstText, list] = Deno.args;
  const port = Number(portText);
  const firstIndex = Number(firstText);
  if (!Number.isInteger(port) || !Number.isInteger(firstIndex) || !list) {
    console.error("usage: fleet_stand_in.ts <port> <firstIndex> <address,address,…>");
    Deno.exit(2);
  }
  const polls = new Map<string, number[]>();
  list.split(",").forEach((address, i) => {
    const times: number[] = [];
    polls.set(address, times);
    serveAddress(address, port, firstIndex + i, times);
  });
  console.log(`listening ${polls.size}`);
  for await (const line of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    if (line.includes("report")) console.log(JSON.stringify(Object.fromEntries(polls)));
  }
  // stdin closed: the bench is gone (even killed), so nothing is left listening behind it.
  Deno.exit(0);
}
