/**
 * The bare baseline of the subscriber bench: the runtime's own WebSocket server (`Deno.serve` and
 * `Deno.upgradeWebSocket`) that sends `1` to each socket once open and, on `GET /flip`, the other
 * value to every open socket in one loop, answering the wall-clock ms at which that loop started.
 * No polling, no hub, no slices: what fanning one message out to N sockets costs a Deno process.
 *
 * `deno run -A bench/bare_broadcast.ts` prints `port <port>`; it listens on every address so that
 * clients can spread over 127.0.0.x.
 *
 * @module
 */
import { wallClockMs } from "../tests/fakes/sim_server.ts";

if (import.meta.main) {
  const sockets = new Set<WebSocket>();
  let value = "1";
  const server = Deno.serve({ hostname: "0.0.0.0", port: 0, onListen: () => {} }, (request) => {
    if (new URL(request.url).pathname === "/flip") {
      value = value === "1" ? "0" : "1";
      const at = wallClockMs();
      for (const socket of sockets) socket.send(value);
      return Response.json({ at, value, sockets: sockets.size });
    }
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onopen = () => {
      sockets.add(socket);
      socket.send(value);
    };
    socket.onclose = () => sockets.delete(socket);
    return response;
  });
  console.log(`port ${server.addr.port}`);
  Deno.addSignalListener("SIGTERM", () => void server.shutdown().then(() => Deno.exit(0)));
}
