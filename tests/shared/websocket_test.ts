/**
 * The server-side WebSocket: the handshake's checks in-process, then sockets over loopback with a
 * hand-made client (tests/helpers/raw_ws.ts) and with Deno's own `WebSocket` client: messages,
 * ping and pong, the close handshake both ways, size limits in bytes, protocol errors, a
 * listener's throw.
 */
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { listenHttp } from "../../shared/http_server.ts";
import {
  acceptKey,
  handshakeProblem,
  MAX_UNSENT_BYTES,
  type ServerWebSocket,
  upgradeWebSocket,
  type WebSocketOptions,
} from "../../shared/websocket.ts";
import {
  BINARY,
  CLOSE,
  CONTINUATION,
  describe,
  type Frame,
  maskedFrame,
  PING,
  PONG,
  rawConnect,
  TEXT,
} from "../helpers/raw_ws.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const HANDSHAKE = {
  upgrade: "websocket",
  connection: "keep-alive, Upgrade",
  "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
  "sec-websocket-version": "13",
};

Deno.test("the accept key is RFC 6455's example", () => {
  equal(acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
});

Deno.test("a handshake without version 13, a 16-byte key or the upgrade fields is refused with 400", async () => {
  const request = (headers: Record<string, string>, method = "GET") =>
    new Request("http://x/client", { method, headers });
  equal(handshakeProblem(request(HANDSHAKE)), undefined);
  const refused: [Record<string, string>, string][] = [
    [{ ...HANDSHAKE, "sec-websocket-version": "8" }, "sec-websocket-version must be 13"],
    [{ ...HANDSHAKE, "sec-websocket-key": "c2hvcnQ=" }, "sec-websocket-key must be 16 bytes"],
    [{ ...HANDSHAKE, "sec-websocket-key": "not base64!" }, "sec-websocket-key must be 16 bytes"],
    [{ ...HANDSHAKE, connection: "keep-alive" }, "connection must include upgrade"],
    [{ ...HANDSHAKE, upgrade: "h2c" }, "upgrade must be websocket"],
  ];
  for (const [headers, problem] of refused) {
    const { socket, response } = upgradeWebSocket(request(headers), {
      maxMessageSize: 10,
      heartbeatTimeout: 0,
    });
    equal(socket, undefined);
    equal(response.status, 400);
    equal(response.headers.get("sec-websocket-version"), "13");
    ok((await response.text()).includes(problem), problem);
  }
  throws(
    () => upgradeWebSocket(request(HANDSHAKE), { maxMessageSize: 10, heartbeatTimeout: 0 }),
    TypeError,
    "a web Request is not a connection that can be handed over",
  );
});

/** A server whose sockets echo text as `echo:<text>` and binary as its length. */
function echoServer(options: Partial<WebSocketOptions> = {}) {
  const closes: CloseEvent[] = [];
  const sockets: ServerWebSocket[] = [];
  const closed: Promise<CloseEvent>[] = [];
  const listenerErrors: unknown[] = [];
  const server = listenHttp({
    hostname: "127.0.0.1",
    port: 0,
    handler: (request) => {
      const { socket, response } = upgradeWebSocket(request, {
        maxMessageSize: 1024,
        heartbeatTimeout: 0,
        onListenerError: (error) => listenerErrors.push(error),
        ...options,
      });
      if (socket === undefined) return response;
      sockets.push(socket);
      socket.onmessage = (event) => {
        if (event.data === "throw") throw new Error("listener failed");
        if (event.data === "flood") {
          const mebibyte = new Uint8Array(1024 * 1024);
          for (let i = 0; i < 12 && socket.readyState === 1; i++) socket.send(mebibyte);
          return;
        }
        socket.send(
          typeof event.data === "string"
            ? `echo:${event.data}`
            : `binary:${(event.data as ArrayBuffer).byteLength}`,
        );
      };
      closed.push(
        new Promise((resolve) =>
          socket.addEventListener("close", (event: CloseEvent) => {
            closes.push(event);
            resolve(event);
          })
        ),
      );
      return response;
    },
  });
  return {
    url: `ws://127.0.0.1:${server.port}/`,
    sockets,
    closes,
    closed,
    listenerErrors,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

const texts = (frames: Frame[]) =>
  frames.map((f) => f.opcode === CLOSE ? `close ${describe(f)}` : decoder.decode(f.payload));

Deno.test("Deno's own WebSocket client: open, messages both ways, and a clean close from the client", async () => {
  await using server = echoServer();
  const client = new WebSocket(server.url);
  const received: string[] = [];
  const gotTwo = new Promise<void>((resolve) => {
    client.onmessage = (event) => {
      received.push(String(event.data));
      if (received.length === 2) resolve();
    };
  });
  await new Promise((resolve) => client.onopen = resolve);
  client.send("héllo €");
  client.send(new Uint8Array(300));
  await gotTwo;
  deepEqual(received, ["echo:héllo €", "binary:300"]);
  const clientClosed = new Promise<CloseEvent>((resolve) => client.onclose = resolve);
  client.close(4000, "done here");
  const [serverSide, clientSide] = await Promise.all([server.closed[0]!, clientClosed]);
  deepEqual([serverSide.code, serverSide.reason, serverSide.wasClean], [4000, "done here", true]);
  deepEqual([clientSide.code, clientSide.wasClean], [4000, true]);
});

Deno.test("messages longer than a socket's first read buffer arrive whole, in order", async () => {
  await using server = echoServer({ maxMessageSize: 256 * 1024 });
  const client = new WebSocket(server.url);
  const received: string[] = [];
  const text = Array.from({ length: 5000 }, (_, i) => `${i},`).join("");
  const all = new Promise<void>((resolve) => {
    client.onmessage = (event) => {
      received.push(String(event.data));
      if (received.length === 4) resolve();
    };
  });
  await new Promise((resolve) => client.onopen = resolve);
  client.send("short");
  client.send(text);
  client.send(new Uint8Array(200_000));
  client.send("short again");
  await all;
  deepEqual(received, ["echo:short", `echo:${text}`, "binary:200000", "echo:short again"]);
  client.close();
  await server.closed[0];
});

Deno.test("a close from the server: the client's answer makes it clean", async () => {
  await using server = echoServer();
  const client = new WebSocket(server.url);
  await new Promise((resolve) => client.onopen = resolve);
  const clientClosed = new Promise<CloseEvent>((resolve) => client.onclose = resolve);
  server.sockets[0]!.close(1001, "server shutting down");
  const [serverSide, clientSide] = await Promise.all([server.closed[0]!, clientClosed]);
  deepEqual([serverSide.code, serverSide.wasClean], [1001, true]);
  deepEqual([clientSide.code, clientSide.reason], [1001, "server shutting down"]);
  equal(server.sockets[0]!.readyState, 3);
});

Deno.test("a ping is answered with a pong carrying its payload; fragments make one message", async () => {
  await using server = echoServer();
  const raw = await rawConnect(server.url);
  try {
    await raw.sendRaw(maskedFrame(PING, encoder.encode("p1")));
    await raw.sendRaw(maskedFrame(TEXT, encoder.encode("frag"), false));
    await raw.sendRaw(maskedFrame(PING, encoder.encode("p2")));
    await raw.sendRaw(maskedFrame(CONTINUATION, encoder.encode("ment")));
    // The client's close comes after them: its echo is the last frame.
    await raw.sendRaw(maskedFrame(CLOSE, new Uint8Array([0x03, 0xe8])));
    const frames = await raw.readToClose();
    deepEqual(frames.map((f) => f.opcode), [PONG, PONG, TEXT, CLOSE]);
    deepEqual(texts(frames), ["p1", "p2", "echo:fragment", "close 1000"]);
    deepEqual((await server.closed[0]!).wasClean, true);
  } finally {
    raw.close();
  }
});

Deno.test("a message at the limit in bytes passes; one byte more closes with 1009", async () => {
  await using server = echoServer({ maxMessageSize: 90 });
  const raw = await rawConnect(server.url);
  try {
    // 30 '€' are 90 bytes (and 30 UTF-16 units): at the limit.
    await raw.sendText("€".repeat(30));
    deepEqual(await raw.readUntilText(() => true), `echo:${"€".repeat(30)}`);
    await raw.sendText("€".repeat(30) + "x");
    const frames = await raw.readToClose();
    deepEqual(texts(frames), ["close 1009 message too big"]);
    const event = await server.closed[0]!;
    deepEqual([event.code, event.wasClean], [1009, false]);
  } finally {
    raw.close();
  }
});

Deno.test("endless fragments are closed with 1009 once their total passes the limit", async () => {
  await using server = echoServer({ maxMessageSize: 4096 });
  const raw = await rawConnect(server.url);
  try {
    const fragment = new Uint8Array(1000);
    await raw.sendRaw(maskedFrame(BINARY, fragment, false));
    const sending = (async () => {
      try {
        for (let i = 0; i < 1000; i++) {
          await raw.sendRaw(maskedFrame(CONTINUATION, fragment, false));
        }
      } catch { /* the server dropped the connection */ }
    })();
    const frames = await raw.readToClose();
    raw.close();
    await sending;
    deepEqual(texts(frames), ["close 1009 message too big"]);
    equal((await server.closed[0]!).code, 1009);
  } finally {
    raw.close();
  }
});

Deno.test("protocol errors close with their codes: unmasked 1002, invalid UTF-8 1007", async () => {
  await using server = echoServer();
  const cases: [Uint8Array, string][] = [
    [new Uint8Array([0x81, 0x02, 0x68, 0x69]), "close 1002 unmasked client frame"],
    [maskedFrame(TEXT, new Uint8Array([0xff, 0xfe])), "close 1007 invalid UTF-8"],
    [maskedFrame(PING, new Uint8Array(126)), "close 1002 control frame too long"],
  ];
  for (const [bytes, expected] of cases) {
    const raw = await rawConnect(server.url);
    try {
      await raw.sendRaw(bytes);
      deepEqual(texts(await raw.readToClose()), [expected]);
    } finally {
      raw.close();
    }
  }
  const codes = await Promise.all(server.closed);
  deepEqual(codes.map((c) => [c.code, c.wasClean]), [[1002, false], [1007, false], [1002, false]]);
});

Deno.test("a listener that throws is reported and its socket closed with 1011; other sockets go on", async () => {
  await using server = echoServer();
  const failing = await rawConnect(server.url);
  const other = await rawConnect(server.url);
  try {
    await failing.sendText("throw");
    deepEqual(texts(await failing.readToClose()), ["close 1011 internal error"]);
    equal(String(server.listenerErrors[0]), "Error: listener failed");
    await other.sendText("still here");
    equal(await other.readUntilText(() => true), "echo:still here");
  } finally {
    failing.close();
    other.close();
  }
});

Deno.test("a client that vanishes without a close frame ends its socket with 1006", async () => {
  await using server = echoServer();
  const raw = await rawConnect(server.url);
  await raw.sendText("hi");
  await raw.readUntilText(() => true);
  raw.close();
  const event = await server.closed[0]!;
  deepEqual([event.code, event.wasClean], [1006, false]);
});

Deno.test("a socket with more than 8 MiB unsent (its peer does not read) is dropped", async () => {
  await using server = echoServer();
  const raw = await rawConnect(server.url);
  try {
    // The hand-made client reads nothing from here on.
    await raw.sendText("flood");
    const event = await server.closed[0]!;
    deepEqual([event.code, event.reason, event.wasClean], [1006, "too much unsent data", false]);
    equal(server.sockets[0]!.bufferedAmount, 0);
    ok(MAX_UNSENT_BYTES < 12 * 1024 * 1024);
  } finally {
    raw.close();
  }
});
