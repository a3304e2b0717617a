/**
 * The heartbeat's config key and the sockets' heartbeat over loopback: the shared engine pings
 * and closes a silent peer when the timeout is set, and sends nothing when it is 0.
 */
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { ConfigError, validateConfig } from "../../shared/config.ts";
import { closedByHeartbeat } from "../../shared/heartbeat.ts";
import { listenHttp } from "../../shared/http_server.ts";
import { type ServerWebSocket, upgradeWebSocket } from "../../shared/websocket.ts";
import { sessionSchema } from "../../session/config.ts";
import { simulationSchema } from "../../simulation/config.ts";
import { CLOSE, describe, PING, rawConnect } from "../helpers/raw_ws.ts";

const env = { root: "/srv", vars: {}, tmpDir: "/tmp" };
const SESSION = { simulationServers: ["localhost:2000"] };

Deno.test("heartbeatTimeout defaults to 30 s on both servers, 0 turns it off", () => {
  equal(validateConfig(sessionSchema, SESSION, "s.json", env).heartbeatTimeout, 30);
  equal(validateConfig(simulationSchema, {}, "m.json", env).heartbeatTimeout, 30);
  equal(
    validateConfig(sessionSchema, { ...SESSION, heartbeatTimeout: 0 }, "s.json", env)
      .heartbeatTimeout,
    0,
  );
  equal(
    validateConfig(simulationSchema, { heartbeatTimeout: 2.5 }, "m.json", env).heartbeatTimeout,
    2.5,
  );
});

Deno.test("heartbeatTimeout refuses negative values and fractions of a second", () => {
  const refused = (value: unknown, message: string) => {
    throws(
      () => validateConfig(simulationSchema, { heartbeatTimeout: value }, "m.json", env),
      (e: unknown) => e instanceof ConfigError && e.message === message,
    );
  };
  refused(-1, 'm.json: key "heartbeatTimeout" must be at least 0');
  refused(0.5, 'm.json: key "heartbeatTimeout" must be 0 (off) or at least 1 second');
  refused("30", 'm.json: key "heartbeatTimeout" must be a number');
});

Deno.test("a silent peer is pinged and closed with 1001 after the timeout; with 0 nothing is sent", async () => {
  const closes = new Map<string, Promise<CloseEvent>>();
  const serverSockets = new Map<string, ServerWebSocket>();
  const server = listenHttp({
    hostname: "127.0.0.1",
    port: 0,
    handler: (request) => {
      const name = new URL(request.url).pathname;
      const { socket, response } = upgradeWebSocket(request, {
        maxMessageSize: 1024,
        heartbeatTimeout: name === "/on" ? 1 : 0,
      });
      if (socket === undefined) return response;
      serverSockets.set(name, socket);
      // Only the first close event counts (there is only one).
      closes.set(name, new Promise((resolve) => socket.addEventListener("close", resolve)));
      return response;
    },
  });
  const base = `ws://127.0.0.1:${server.port}`;
  const on = await rawConnect(`${base}/on`);
  const off = await rawConnect(`${base}/off`);
  try {
    const onFrames = await on.readToClose();
    const onClose = await closes.get("/on")!;
    deepEqual(onFrames.map((frame) => frame.opcode), [PING, CLOSE]);
    equal(describe(onFrames[1]!), "1001 No response from ping frame.");
    ok(closedByHeartbeat(onClose), `close event ${onClose.code} clean=${onClose.wasClean}`);

    // Opened together, the other socket would have been pinged by now: closing it from the
    // server shows what it was sent meanwhile.
    serverSockets.get("/off")!.close(1000, "done");
    const offFrames = await off.readToClose();
    deepEqual(offFrames.map((frame) => [frame.opcode, describe(frame)]), [[CLOSE, "1000 done"]]);
    // The hand-made peer never confirms; dropping the connection ends the socket.
    off.close();
    equal(closedByHeartbeat(await closes.get("/off")!), false);
  } finally {
    on.close();
    off.close();
    await server.shutdown();
  }
});
