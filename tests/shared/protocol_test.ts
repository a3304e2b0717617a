import { deepEqual, equal, throws } from "node:assert/strict";
import {
  formatAvailability,
  formatError,
  formatResetController,
  formatWebotsUrl,
  NO_SERVER_AVAILABLE,
  parseClientMessage,
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

Deno.test("Webots stdout lines are classified", () => {
  equal(parseWebotsLine("open").kind, "open");
  equal(parseWebotsLine("open world.wbt").kind, "open");
  equal(parseWebotsLine(".").kind, "activity");
  deepEqual(parseWebotsLine("pause"), { kind: "mode", running: false, mode: "pause" });
  deepEqual(parseWebotsLine("fast"), { kind: "mode", running: true, mode: "fast" });
  deepEqual(parseWebotsLine("real-time\r"), { kind: "mode", running: true, mode: "real-time" });
  equal(parseWebotsLine("INFO: something").kind, "other");
});
