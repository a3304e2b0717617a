import { deepEqual, equal, throws } from "node:assert/strict";
import {
  clientGeneration,
  type ClientMessage,
  formatAvailability,
  formatError,
  formatLoading,
  formatQueuePosition,
  formatQueueRefusal,
  formatResetController,
  formatSessionGranted,
  formatShutdownTimeout,
  formatWebotsUrl,
  NO_SERVER_AVAILABLE,
  parseClientMessage,
  parseSubscriberMessage,
  parseWebotsLine,
  ProtocolError,
} from "../../shared/protocol.ts";

Deno.test("the legacy init message (as the Webots client concatenates it) parses into fields", () => {
  const text =
    '{ "init" : [ "https://robotbenchmark.net", "robots/ure", "ure.wbt", "", "", "", "", "", "" ] }';
  const message = parseClientMessage(text);
  equal(message.kind, "init");
  if (message.kind !== "init") return;
  equal(message.init.host, "https://robotbenchmark.net");
  equal(message.init.app, "robots/ure");
  equal(message.init.world, "ure.wbt");
  equal(message.init.customData, "");
});

Deno.test("start messages parse with and without mode", () => {
  deepEqual(parseClientMessage('{"start":{"url":"webots://github.com/a/b"}}'), {
    kind: "start",
    url: "webots://github.com/a/b",
    mode: undefined,
  });
  deepEqual(parseClientMessage('{"start":{"url":"x","mode":"mjpeg"}}'), {
    kind: "start",
    url: "x",
    mode: "mjpeg",
  });
});

Deno.test("reset controller parses", () => {
  deepEqual(parseClientMessage('{ "reset controller" : "c/c.py" }'), {
    kind: "reset controller",
    path: "c/c.py",
  });
});

Deno.test("malformed messages are ProtocolErrors with a clear reason", () => {
  const cases: [string, string][] = [
    ["not json", "Cannot parse message: not valid JSON"],
    ["[1]", "Cannot parse message: expected a JSON object"],
    ['{"init":["a"]}', 'Cannot parse message: "init" must be an array of 9 strings'],
    ['{"init":[1,2,3,4,5,6,7,8,9]}', 'Cannot parse message: "init" must be an array of 9 strings'],
    ['{"start":"x"}', 'Cannot parse message: "start" must be an object'],
    ['{"start":{}}', 'Cannot parse message: "start.url" must be a string'],
    [
      '{"start":{"url":"x","mode":"x3d --shell"}}',
      'Cannot parse message: "start.mode" must be "x3d" or "mjpeg"',
    ],
    ['{"reset controller":1}', 'Cannot parse message: "reset controller" must be a string'],
    ['{"stop":1}', 'Cannot parse message: expected one of "init", "start" or "reset controller"'],
  ];
  for (const [text, reason] of cases) {
    throws(() => parseClientMessage(text), (e: unknown) => {
      equal((e as Error).message, reason);
      return e instanceof ProtocolError;
    });
  }
});

Deno.test("replies use the exact strings the Webots client expects", () => {
  equal(formatWebotsUrl("ws://localhost:2001"), "webots:ws://localhost:2001");
  equal(formatError("no such world"), "error: no such world");
  equal(formatResetController("c/c.py"), "reset controller: c/c.py");
  equal(formatAvailability(true), "1");
  equal(formatAvailability(false), "0");
  equal(NO_SERVER_AVAILABLE, "Error: no simulation server available at the moment.");
});

Deno.test("loading: and shutdownTimeout: are the exact strings the R2023b client parses", () => {
  // The client reads message.substring(9) and parseFloat(message.substring(17)).
  const loading = formatLoading("downloading cyberbotics/webots@master (35%)");
  equal(loading, "loading: downloading cyberbotics/webots@master (35%)");
  equal(loading.substring(9), "downloading cyberbotics/webots@master (35%)");
  equal(formatLoading("starting Webots"), "loading: starting Webots");
  const shutdown = formatShutdownTimeout(3600);
  equal(shutdown, "shutdownTimeout: 3600");
  equal(parseFloat(shutdown.substring(17)), 3600);
});

Deno.test("the client generation follows what the client sent", async (t) => {
  const start = (url: string) =>
    parseClientMessage(JSON.stringify({ start: { url } })) as Extract<
      ClientMessage,
      { kind: "start" }
    >;
  await t.step("a GitHub blob URL is the R2022a+ client's", () => {
    equal(
      clientGeneration(start("https://github.com/cyberbotics/webots/blob/master/p/worlds/w.wbt")),
      "r2023",
    );
    equal(clientGeneration(start("https://github.com/u/r/blob/v1/worlds/w.wbt")), "r2023");
  });
  await t.step("webots://, file://, init and anything else are the R2021b client's", () => {
    equal(
      clientGeneration(
        start("webots://github.com/cyberbotics/webots/branch/master/p/worlds/w.wbt"),
      ),
      "r2021b",
    );
    equal(clientGeneration(start("file:///projects/p/worlds/w.wbt")), "r2021b");
    equal(clientGeneration(start("https://github.com/u/r/tree/main/worlds/w.wbt")), "r2021b");
    equal(clientGeneration(start("https://example.com/u/r/blob/main/worlds/w.wbt")), "r2021b");
    equal(clientGeneration(start("http://github.com/u/r/blob/main/worlds/w.wbt")), "r2021b");
    const init = parseClientMessage(
      JSON.stringify({ init: ["h", "p", "w.wbt", "", "", "", "", "", ""] }),
    ) as Extract<ClientMessage, { kind: "init" }>;
    equal(clientGeneration(init), "r2021b");
  });
});

Deno.test("Webots stdout lines are classified", () => {
  equal(parseWebotsLine("open").kind, "open");
  equal(parseWebotsLine("open world.wbt").kind, "open");
  equal(parseWebotsLine(".").kind, "activity");
  deepEqual(parseWebotsLine("pause"), { kind: "mode", running: false, mode: "pause" });
  deepEqual(parseWebotsLine("fast"), { kind: "mode", running: true, mode: "fast" });
  deepEqual(parseWebotsLine("real-time\r"), { kind: "mode", running: true, mode: "real-time" });
  equal(parseWebotsLine("INFO: something").kind, "other");
});

Deno.test('parseSubscriberMessage: {"queue": {}} asks for a place; anything else is other', () => {
  deepEqual(parseSubscriberMessage('{"queue": {}}'), { kind: "queue" });
  deepEqual(parseSubscriberMessage('{"queue": {"x": 1}, "y": 2}'), { kind: "queue" });
  for (const text of ["hello", "1", "[]", "null", '{"start": {}}', '"queue"', ""]) {
    deepEqual(parseSubscriberMessage(text), { kind: "other", text }, text);
  }
  for (const text of ['{"queue": 1}', '{"queue": null}', '{"queue": []}', '{"queue": "x"}']) {
    throws(
      () => parseSubscriberMessage(text),
      (error) =>
        error instanceof ProtocolError &&
        error.message === 'Cannot parse message: "queue" must be an object',
      text,
    );
  }
});

Deno.test("the queue's messages: position with an optional estimate, refusals, the grant", () => {
  equal(formatQueuePosition(1), "queue: 1");
  equal(formatQueuePosition(3, 120), "queue: 3 ~120");
  deepEqual(
    (["full", "limit", "timeout", "off"] as const).map(formatQueueRefusal),
    ["queue: full", "queue: limit", "queue: timeout", "queue: off"],
  );
  equal(formatSessionGranted("ws://sim.test:2000"), "session: ws://sim.test:2000");
});
