import assert from "node:assert/strict";
import { ClientError } from "../../simulation/client_error.ts";
import {
  checkRelativePath,
  checkResetPath,
  checkWorldName,
  parseSiteHost,
} from "../../simulation/names.ts";

const HOSTILE = [
  "",
  ".",
  "..",
  "../../etc",
  "/etc/passwd",
  "a/../../b",
  "world.wbt/../x.wbt",
  "%2e%2e",
  "%2e%2e/x.wbt",
  "a\\b",
  "..\\..\\x.wbt",
  "a\0b",
  "a b",
  "a'b",
  'a"b',
  "a/",
  "/a",
  "a//b",
  "-rf",
  ".hidden",
];

Deno.test("project paths are relative paths of safe segments", () => {
  assert.deepEqual(checkRelativePath("robots/universal_robots", "project"), [
    "robots",
    "universal_robots",
  ]);
  for (const app of HOSTILE) {
    assert.throws(() => checkRelativePath(app, "project"), ClientError, JSON.stringify(app));
  }
});

Deno.test("world names are bare .wbt file names", () => {
  assert.equal(checkWorldName("ure.wbt"), "ure.wbt");
  for (const world of [...HOSTILE, "a/b.wbt", "x.wbt.txt", ".wbt", "x", "--x.wbt"]) {
    assert.throws(() => checkWorldName(world), ClientError, JSON.stringify(world));
  }
});

Deno.test("reset controller paths are exactly <folder>/<file>", () => {
  assert.deepEqual(checkResetPath("my_ctrl/my_ctrl.py"), ["my_ctrl", "my_ctrl.py"]);
  for (const path of [...HOSTILE, "a", "a/b/c", "../b", "a/..", "/a/b"]) {
    assert.throws(() => checkResetPath(path), ClientError, JSON.stringify(path));
  }
});

Deno.test("site hosts are http(s) origins whose bare host names the key file", () => {
  assert.deepEqual(parseSiteHost("https://robotbenchmark.net"), {
    raw: "https://robotbenchmark.net",
    scheme: "https",
    bareHost: "robotbenchmark.net",
    origin: "https://robotbenchmark.net",
  });
  assert.deepEqual(parseSiteHost("http://127.0.0.1:8080/"), {
    raw: "http://127.0.0.1:8080/",
    scheme: "http",
    bareHost: "127.0.0.1",
    origin: "http://127.0.0.1:8080",
  });
  for (
    const host of [
      "",
      "robotbenchmark.net",
      "ftp://robotbenchmark.net",
      "file:///etc",
      "https://",
      "https://../etc",
      "https://a..b",
      "https://user@host",
      "https://host:99999",
      "https://host:port",
      "https://host/path",
      "https://ho st",
      "https://host\0",
      "https://[::1]:80",
      "https://-host",
    ]
  ) {
    assert.throws(() => parseSiteHost(host), ClientError, JSON.stringify(host));
  }
});
