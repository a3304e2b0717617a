import assert from "node:assert/strict";
import { ClientError } from "../../simulation/client_error.ts";
import { checkRepositoryLists, parseStartUrl } from "../../simulation/world_url.ts";

Deno.test("webots:// URLs give user, repo, ref, folder and world", () => {
  assert.deepEqual(
    parseStartUrl(
      "webots://github.com/cyberbotics/webots/branch/develop/projects/languages/python/worlds/example.wbt",
    ),
    {
      kind: "github",
      user: "cyberbotics",
      repo: "webots",
      ref: "refs/heads/develop",
      folder: ["projects", "languages", "python"],
      world: "example.wbt",
      normalized:
        "https://github.com/cyberbotics/webots/blob/develop/projects/languages/python/worlds/example.wbt",
    },
  );
  const root = parseStartUrl("webots://github.com/u/r/tag/R2021b/worlds/w.wbt");
  assert.equal(root.kind, "github");
  if (root.kind === "github") {
    assert.equal(root.ref, "refs/tags/R2021b");
    assert.deepEqual(root.folder, []);
  }
});

Deno.test("https://github.com blob URLs take the ref as one segment", () => {
  const world = parseStartUrl("https://github.com/u/my.repo/blob/v1.0/a/b/worlds/w.wbt");
  assert.equal(world.kind, "github");
  if (world.kind === "github") {
    assert.equal(world.ref, "v1.0");
    assert.equal(world.repo, "my.repo");
    assert.deepEqual(world.folder, ["a", "b"]);
  }
});

Deno.test("file:// URLs give the project folder and the world", () => {
  assert.deepEqual(parseStartUrl("file:///srv/projects/demo/worlds/w.wbt"), {
    kind: "file",
    path: "/srv/projects/demo/worlds/w.wbt",
    projectPath: "/srv/projects/demo",
    world: "w.wbt",
  });
});

Deno.test("wrong start URLs give the reference's messages", () => {
  const cases: [string, string][] = [
    ["webots://github.com/u/r/branch/worlds/w.wbt", "Wrong Webots URL"],
    ["webots://github.com/u/r/branch/main/x/world/w.wbt", "Missing worlds folder in Webots URL"],
    [
      "webots://github.com/u/r/branch/main/x/worlds/w.txt",
      "Wrong Webots URL: missing world file in w.txt",
    ],
    [
      "webots://github.com/u/r/commit/main/x/worlds/w.wbt",
      "Wrong tag/branch in Webots URL: commit",
    ],
    [
      "http://github.com/u/r/blob/main/worlds/w.wbt",
      "Unsupported url protocol: http://github.com/u/r/blob/main/worlds/w.wbt",
    ],
    [
      "svn://example.com/x/worlds/w.wbt",
      "Unsupported url protocol: svn://example.com/x/worlds/w.wbt",
    ],
    ["file:///etc/passwd", "Wrong Webots URL: missing world file in passwd"],
    ["file:///x/w.wbt", "Missing worlds folder in Webots URL"],
  ];
  for (const [url, message] of cases) {
    assert.throws(
      () => parseStartUrl(url),
      (e) => e instanceof ClientError && e.message === message,
      url,
    );
  }
});

Deno.test("hostile start URLs are refused with a ClientError", () => {
  for (
    const url of [
      "webots://github.com/u/r/branch/main/../../worlds/x.wbt",
      "webots://github.com/u/r/branch/../x/worlds/x.wbt",
      "webots://github.com/u/../branch/main/worlds/x.wbt",
      "webots://github.com/u/r/branch/main/%2e%2e/worlds/x.wbt",
      "webots://github.com/u/r/branch/main/a\\b/worlds/x.wbt",
      "webots://github.com/u/r/branch/main/a b/worlds/x.wbt",
      'webots://github.com/u/r/branch/main/a"b/worlds/x.wbt',
      "webots://github.com/u/r/branch/main/a/worlds/x y.wbt",
      "webots://github.com/u/r/branch/main/a/worlds/-x.wbt",
      "webots://github.com/u/r/branch/main/a\0/worlds/x.wbt",
      "webots://github.com/u/r/branch/main/a/worlds/world.wbt/../x.wbt",
      "webots://github.com/u/r/branch/-main/worlds/x.wbt",
      "webots://github.com/u/r/branch/main/a?x=1/worlds/x.wbt",
      "https://github.com/u/r/tree/main/worlds/x.wbt",
      "https://github.com/u/r/blob/main//worlds/x.wbt",
      "https://github.com/-u/r/blob/main/worlds/x.wbt",
      "https://github.com/u/r/blob/main/a/worlds/.wbt",
      "file:///srv/projects/../../etc/worlds/x.wbt",
      "file:///srv/projects/./demo/worlds/x.wbt",
      "file:///srv//demo/worlds/x.wbt",
      "file:///srv/demo/worlds/a\\b.wbt",
      "file:///srv/demo/worlds/a b.wbt",
      "file://host/srv/demo/worlds/x.wbt",
      "javascript:alert(1)//worlds/x.wbt",
      "",
    ]
  ) {
    assert.throws(() => parseStartUrl(url), ClientError, JSON.stringify(url));
  }
});

Deno.test("allowedRepositories and blockedRepositories apply to both GitHub URL forms", () => {
  const webots = "webots://github.com/cyberbotics/webots/branch/main/p/worlds/w.wbt";
  const https = "https://github.com/cyberbotics/webots/blob/main/p/worlds/w.wbt";
  const other = "webots://github.com/someone/else/branch/main/p/worlds/w.wbt";
  const check = (url: string, allowed: string[], blocked: string[]) => {
    try {
      checkRepositoryLists(url, parseStartUrl(url), {
        allowedRepositories: allowed,
        blockedRepositories: blocked,
      });
      return "ok";
    } catch (error) {
      assert.ok(error instanceof ClientError);
      return error.message;
    }
  };
  const allow = ["https://github.com/cyberbotics/"];
  assert.equal(check(webots, allow, []), "ok");
  assert.equal(check(https, allow, []), "ok");
  assert.equal(check(other, allow, []), `Repository not allowed on this server: ${other}`);
  assert.equal(check(webots, ["webots://github.com/cyberbotics/"], []), "ok");
  assert.equal(check(webots, [], allow), `Repository blocked on this server: ${webots}`);
  assert.equal(check(https, [], allow), `Repository blocked on this server: ${https}`);
  // GitHub owner names are case-insensitive: changing the case does not slip past a block.
  const upper = "webots://github.com/CyberBotics/webots/branch/main/p/worlds/w.wbt";
  assert.match(check(upper, [], allow), /blocked/);
  assert.equal(check(other, [], allow), "ok");
  // Blocked wins over allowed.
  assert.match(check(https, allow, ["https://github.com/cyberbotics/webots/"]), /blocked/);
  // file:// URLs match the lists by prefix too.
  assert.match(check("file:///srv/p/worlds/w.wbt", allow, []), /not allowed/);
  assert.equal(check("file:///srv/p/worlds/w.wbt", ["file:///srv/"], []), "ok");
});
