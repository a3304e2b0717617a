import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { zipSync } from "fflate";
import type { InitFields } from "../../shared/protocol.ts";
import {
  ClientError,
  prepareInit,
  prepareStart,
  resetController,
} from "../../simulation/projects.ts";
import { startFileServer, zipResponse } from "../fakes/http_files.ts";
import { workspace } from "./project_fixtures.ts";

const text = (s: string) => new TextEncoder().encode(s);

function init(extra: Partial<InitFields> = {}): InitFields {
  return {
    host: "https://robotbenchmark.net",
    app: "robots/ure",
    world: "ure.wbt",
    user1Id: "",
    user1Name: "",
    user1Authentication: "",
    user2Id: "",
    user2Name: "",
    customData: "",
    ...extra,
  };
}

const PROJECT = {
  "robots/ure/worlds/ure.wbt": "#VRML_SIM default world",
  "robots/ure/controllers/ure/ure.py": "print('original')",
  "robots/ure/controllers/ure/data.txt": "data",
  "robots/ure/plugins/x/notes.txt": "notes",
};

Deno.test("init copies the project into the given folder, writes host.txt and grants controllerEdit to anonymous users", async () => {
  await using ws = await workspace();
  await ws.write(ws.projectsDir, PROJECT);
  const deps = ws.deps();
  const dir = await ws.folder();
  const { project: instance, controllerEdit } = await prepareInit(init(), dir, deps);
  assert.equal(controllerEdit, true);
  assert.equal(instance.dir, dir);
  assert.equal(instance.projectDir, join(instance.dir, "ure"));
  assert.equal(instance.worldFile, join(instance.projectDir, "worlds", "ure.wbt"));
  assert.equal(instance.source, await Deno.realPath(join(ws.projectsDir, "robots/ure")));
  assert.equal(await Deno.readTextFile(instance.worldFile), "#VRML_SIM default world");
  assert.equal(
    await Deno.readTextFile(join(instance.projectDir, "plugins/x/notes.txt")),
    "notes",
  );
  assert.equal(
    await Deno.readTextFile(join(instance.projectDir, "host.txt")),
    "https://robotbenchmark.net",
  );
  // Only the project folder is added: the instance folder is the run's, and so is its removal.
  assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), ["ure"]);
  await ws.remove(instance);
  assert.deepEqual(await ws.instances(), []);
});

Deno.test("init copies symlinks inside the project as files and leaves out those pointing outside", async () => {
  await using ws = await workspace();
  await ws.write(ws.projectsDir, PROJECT);
  await ws.write(ws.root, { "secret.txt": "secret" });
  const project = join(ws.projectsDir, "robots/ure");
  await Deno.symlink(join(ws.root, "secret.txt"), join(project, "leak.txt"));
  await Deno.symlink("controllers/ure/data.txt", join(project, "inside.txt"));
  await Deno.symlink("..", join(project, "plugins/x/loop"));
  await Deno.symlink("/nonexistent", join(project, "dangling"));
  const { project: instance } = await prepareInit(init(), await ws.folder(), ws.deps());
  try {
    const info = await Deno.lstat(join(instance.projectDir, "inside.txt"));
    assert.ok(info.isFile && !info.isSymlink);
    assert.equal(await Deno.readTextFile(join(instance.projectDir, "inside.txt")), "data");
    await assert.rejects(Deno.lstat(join(instance.projectDir, "leak.txt")), Deno.errors.NotFound);
    await assert.rejects(Deno.lstat(join(instance.projectDir, "dangling")), Deno.errors.NotFound);
  } finally {
    await ws.remove(instance);
  }
});

Deno.test("init with a user downloads the project with the site key and unpacks it over the copy", async () => {
  await using ws = await workspace();
  await ws.write(ws.projectsDir, PROJECT);
  await ws.write(ws.keyDir, { "127.0.0.1": "s3cret-key\nsecond line\n" });
  const zip = zipSync({
    "controllers/": new Uint8Array(),
    "controllers/ure/": new Uint8Array(),
    "controllers/ure/ure.py": text("print('saved')"),
    "controllers/ure/ure": text("binary"),
    "controllers/ure/notes.md": text("md"),
  });
  await using server = await startFileServer(() => zipResponse(zip));
  const fields = init({
    host: server.base,
    user1Id: "42",
    user1Name: "Ann & Bob",
    user1Authentication: "",
    user2Id: "7",
    user2Name: "Zoé",
    customData: "a=b&c",
  });
  const { project: instance, controllerEdit } = await prepareInit(
    fields,
    await ws.folder(),
    ws.deps(),
  );
  try {
    assert.equal(controllerEdit, false);
    assert.equal(server.requests.length, 1);
    const request = server.requests[0]!;
    assert.equal(request.method, "POST");
    assert.equal(request.path, "/ajax/download-project.php");
    assert.match(request.headers.get("content-type") ?? "", /^application\/x-www-form-urlencoded/);
    assert.deepEqual(Object.fromEntries(new URLSearchParams(request.body)), {
      project: "robots/ure",
      key: "s3cret-key",
      user1Id: "42",
      user1Name: "Ann & Bob",
      user1Authentication: "",
      user2Id: "7",
      user2Name: "Zoé",
      customData: "a=b&c",
    });
    const controllers = join(instance.projectDir, "controllers/ure");
    assert.equal(await Deno.readTextFile(join(controllers, "ure.py")), "print('saved')");
    assert.equal(await Deno.readTextFile(join(controllers, "data.txt")), "data");
    assert.equal(await Deno.readTextFile(instance.worldFile), "#VRML_SIM default world");
    assert.equal((await Deno.stat(join(controllers, "ure.py"))).mode! & 0o777, 0o775);
    assert.equal((await Deno.stat(join(controllers, "ure"))).mode! & 0o777, 0o775);
    assert.notEqual((await Deno.stat(join(controllers, "notes.md"))).mode! & 0o777, 0o775);
    assert.notEqual((await Deno.stat(controllers)).mode! & 0o777, 0o775);
  } finally {
    await ws.remove(instance);
  }
  const own = await prepareInit(
    { ...fields, user1Authentication: "token" },
    await ws.folder(),
    ws.deps(),
  );
  assert.equal(own.controllerEdit, true);
  await ws.remove(own.project);
});

Deno.test("an 'Error: no such directory: ' answer keeps the default copy", async () => {
  await using ws = await workspace();
  await ws.write(ws.projectsDir, PROJECT);
  await ws.write(ws.keyDir, { "127.0.0.1": "k" });
  await using server = await startFileServer(() =>
    new Response("Error: no such directory: robots/ure/42")
  );
  const { project: instance } = await prepareInit(
    init({ host: server.base, user1Id: "42" }),
    await ws.folder(),
    ws.deps(),
  );
  try {
    assert.equal(
      await Deno.readTextFile(join(instance.projectDir, "controllers/ure/ure.py")),
      "print('original')",
    );
  } finally {
    await ws.remove(instance);
  }
});

Deno.test("failed site downloads are ClientErrors and write nothing outside the instance folder", async (t) => {
  await using ws = await workspace();
  await ws.write(ws.projectsDir, PROJECT);
  await ws.write(ws.keyDir, { "127.0.0.1": "k" });
  const big = zipSync({ "a.bin": new Uint8Array(50_000) }, { level: 0 });
  const bomb = zipSync({ "a.bin": new Uint8Array(500_000) });
  const cases: [string, () => Response, RegExp][] = [
    [
      "other Error: answer",
      () => new Response("Error: wrong key"),
      /^Failed to download project: Error: wrong key$/,
    ],
    ["HTTP error", () => new Response("oops", { status: 500 }), /HTTP 500/],
    [
      "redirect (the key is not resent)",
      () => new Response(null, { status: 307, headers: { location: "http://127.0.0.1:9/x" } }),
      /^Failed to download project: HTTP 307$/,
    ],
    ["not a ZIP", () => new Response("<html>"), /not a ZIP archive/],
    ["zip-slip ..", () => zipResponse(zipSync({ "../../evil.txt": text("x") })), /unsafe entry/],
    ["absolute entry", () => zipResponse(zipSync({ "/tmp/evil.txt": text("x") })), /unsafe/],
    ["backslash entry", () => zipResponse(zipSync({ "..\\evil.txt": text("x") })), /unsafe/],
    [
      "symlink entry",
      () => zipResponse(zipSync({ "l": [text("/etc"), { os: 3, attrs: 0o120777 << 16 }] })),
      /symlink/,
    ],
    ["archive too large", () => zipResponse(big), /larger than 20000 bytes/],
    ["unpacked too large", () => zipResponse(bomb), /unpacked size larger than 20000 bytes/],
  ];
  for (const [label, answer, message] of cases) {
    await t.step(label, async () => {
      await using server = await startFileServer(answer);
      await assert.rejects(
        prepareInit(
          init({ host: server.base, user1Id: "42" }),
          await ws.folder(),
          ws.deps({ maxDownloadSize: 20000 }),
        ),
        (e) => e instanceof ClientError && message.test(e.message),
      );
      await assert.rejects(Deno.stat(join(ws.root, "evil.txt")), Deno.errors.NotFound);
    });
  }
});

Deno.test("a site download that takes longer than downloadTimeout fails", async () => {
  await using ws = await workspace();
  await ws.write(ws.projectsDir, PROJECT);
  await ws.write(ws.keyDir, { "127.0.0.1": "k" });
  await using server = await startFileServer(async (_req, { closing }) => {
    await closing;
    return new Response("late");
  });
  const started = Date.now();
  await assert.rejects(
    prepareInit(
      init({ host: server.base, user1Id: "42" }),
      await ws.folder(),
      ws.deps({ downloadTimeout: 0.3 }),
    ),
    (e) =>
      e instanceof ClientError && e.message === "Failed to download project: timed out after 0.3 s",
  );
  assert.ok(Date.now() - started < 5000);
});

Deno.test("aborting the signal cancels a download", async () => {
  await using ws = await workspace();
  await ws.write(ws.projectsDir, PROJECT);
  await ws.write(ws.keyDir, { "127.0.0.1": "k" });
  const controller = new AbortController();
  await using server = await startFileServer(async (_req, { closing }) => {
    controller.abort(new Error("browser left"));
    await closing;
    return new Response("late");
  });
  await assert.rejects(
    prepareInit(
      init({ host: server.base, user1Id: "42" }),
      await ws.folder(),
      ws.deps(),
      controller.signal,
    ),
    /browser left/,
  );
});

Deno.test("the site key is only sent over https (or to loopback) and must exist", async () => {
  await using ws = await workspace();
  await ws.write(ws.projectsDir, PROJECT);
  await ws.write(ws.keyDir, { "example.com": "k" });
  await assert.rejects(
    prepareInit(init({ host: "http://example.com", user1Id: "42" }), await ws.folder(), ws.deps()),
    (e) => e instanceof ClientError && /https is required/.test(e.message),
  );
  await assert.rejects(
    prepareInit(
      init({ host: "https://nokey.example.com", user1Id: "42" }),
      await ws.folder(),
      ws.deps(),
    ),
    (e) => e instanceof ClientError && e.message === "No key for: nokey.example.com",
  );
  assert.deepEqual(await ws.filled(), []);
});

Deno.test("hostile init fields are refused before anything is written", async () => {
  await using ws = await workspace();
  await ws.write(ws.projectsDir, PROJECT);
  await ws.write(ws.root, { "outside/worlds/ure.wbt": "x" });
  await Deno.symlink(join(ws.root, "outside"), join(ws.projectsDir, "escape"));
  const apps = [
    "..",
    "../../etc",
    "/etc/passwd",
    "a/../../b",
    "robots/../../outside",
    "%2e%2e",
    "robots\\ure",
    "robots/ure\0",
    "robots/ure/",
    "robots//ure",
    "",
    "robots/missing",
    "escape",
  ];
  for (const app of apps) {
    await assert.rejects(
      prepareInit(init({ app }), await ws.folder(), ws.deps()),
      ClientError,
      JSON.stringify(app),
    );
  }
  const worlds = [
    "../ure.wbt",
    "world.wbt/../x.wbt",
    "/etc/passwd",
    "ure.txt",
    "worlds/ure.wbt",
    "u re.wbt",
    'u"re.wbt',
    "ure.wbt\0",
    "%2e%2e.wbt",
    "missing.wbt",
  ];
  let copiedFirst = "";
  for (const world of worlds) {
    const dir = await ws.folder();
    await assert.rejects(
      prepareInit(init({ world }), dir, ws.deps()),
      ClientError,
      JSON.stringify(world),
    );
    // A well-formed name is looked for in the copy: only then is anything written.
    if (world === "missing.wbt") copiedFirst = basename(dir);
  }
  for (const host of ["ftp://x.com", "x.com", "https://../x", "https://a/b", "javascript:1"]) {
    await assert.rejects(
      prepareInit(init({ host }), await ws.folder(), ws.deps()),
      ClientError,
      host,
    );
  }
  assert.deepEqual(await ws.filled(), [copiedFirst]);
});

Deno.test("file:// worlds inside projectsDir are copied; outside ones are refused", async () => {
  await using ws = await workspace();
  await ws.write(ws.projectsDir, PROJECT);
  await ws.write(ws.root, { "outside/worlds/w.wbt": "x", "outside/controllers/c/c.py": "x" });
  await Deno.symlink(join(ws.root, "outside"), join(ws.projectsDir, "link"));
  await Deno.symlink(
    join(ws.root, "outside/worlds/w.wbt"),
    join(ws.projectsDir, "robots/ure/worlds/w.wbt"),
  );
  const url = `file://${ws.projectsDir}/robots/ure/worlds/ure.wbt`;
  const instance = await prepareStart(url, await ws.folder(), ws.deps());
  try {
    assert.equal(instance.projectDir, join(instance.dir, "ure"));
    assert.equal(await Deno.readTextFile(instance.worldFile), "#VRML_SIM default world");
    assert.equal(instance.source, await Deno.realPath(join(ws.projectsDir, "robots/ure")));
  } finally {
    await ws.remove(instance);
  }
  const refused = [
    "file:///etc/passwd",
    "file:///etc/worlds/passwd.wbt",
    `file://${ws.projectsDir}/../outside/worlds/w.wbt`,
    `file://${ws.projectsDir}/robots/../../outside/worlds/w.wbt`,
    `file://${ws.projectsDir}/link/worlds/w.wbt`,
    `file://${ws.projectsDir}/robots/ure/worlds/w.wbt`,
    `file://${ws.projectsDir}/robots/ure/worlds/missing.wbt`,
    `file://${ws.projectsDir}/robots/ure/controllers/ure.wbt`,
    `file://${ws.root}/outside/worlds/w.wbt`,
  ];
  for (const bad of refused) {
    await assert.rejects(prepareStart(bad, await ws.folder(), ws.deps()), ClientError, bad);
  }
  await assert.rejects(
    prepareStart(
      url,
      await ws.folder(),
      ws.deps({ blockedRepositories: [`file://${ws.projectsDir}/robots/`] }),
    ),
    /blocked/,
  );
  assert.deepEqual(await ws.filled(), []);
});

/** A GitHub-like archive: one top folder holding a repository. */
function githubZip(top: string) {
  return zipSync({
    [`${top}/`]: new Uint8Array(),
    [`${top}/README.md`]: text("readme"),
    [`${top}/worlds/root.wbt`]: text("root world"),
    [`${top}/controllers/r/r.py`]: text("root controller"),
    [`${top}/projects/demo/worlds/demo.wbt`]: text("demo world"),
    [`${top}/projects/demo/controllers/d/d.py`]: [text("demo"), { os: 3, attrs: 0o100755 << 16 }],
    [`${top}/projects/demo/link`]: [text("/etc/passwd"), { os: 3, attrs: 0o120777 << 16 }],
    [`${top}/projects/other/worlds/other.wbt`]: text("other"),
  });
}

Deno.test("GitHub worlds are fetched as archives and only the project folder is kept", async (t) => {
  await using ws = await workspace();
  await using server = await startFileServer((req) =>
    req.path.startsWith("/cyberbotics/webots/zip/")
      ? zipResponse(githubZip("webots-abc"))
      : new Response("Not Found", { status: 404 })
  );
  const deps = () => ws.deps({ githubArchiveBase: server.base });
  await t.step("webots:// branch URL with a subfolder project", async () => {
    const instance = await prepareStart(
      "webots://github.com/cyberbotics/webots/branch/develop/projects/demo/worlds/demo.wbt",
      await ws.folder(),
      deps(),
    );
    try {
      assert.equal(server.requests.at(-1)?.path, "/cyberbotics/webots/zip/refs/heads/develop");
      assert.equal(instance.projectDir, join(instance.dir, "demo"));
      assert.equal(await Deno.readTextFile(instance.worldFile), "demo world");
      const controller = join(instance.projectDir, "controllers/d/d.py");
      assert.equal((await Deno.stat(controller)).mode! & 0o100, 0o100);
      await assert.rejects(Deno.lstat(join(instance.projectDir, "link")), Deno.errors.NotFound);
      await assert.rejects(Deno.stat(join(instance.projectDir, "README.md")), Deno.errors.NotFound);
      await assert.rejects(
        resetController(instance, "d/d.py", deps()),
        (e) =>
          e instanceof ClientError &&
          e.message === "reset controller is not available for GitHub projects",
      );
    } finally {
      await ws.remove(instance);
    }
  });
  await t.step("webots:// tag URL with a root-level project", async () => {
    const instance = await prepareStart(
      "webots://github.com/cyberbotics/webots/tag/R2021b/worlds/root.wbt",
      await ws.folder(),
      deps(),
    );
    try {
      assert.equal(server.requests.at(-1)?.path, "/cyberbotics/webots/zip/refs/tags/R2021b");
      assert.equal(instance.projectDir, join(instance.dir, "webots"));
      assert.equal(await Deno.readTextFile(instance.worldFile), "root world");
      assert.equal(await Deno.readTextFile(join(instance.projectDir, "README.md")), "readme");
    } finally {
      await ws.remove(instance);
    }
  });
  await t.step("https://github.com blob URL", async () => {
    const instance = await prepareStart(
      "https://github.com/cyberbotics/webots/blob/v1.2/projects/demo/worlds/demo.wbt",
      await ws.folder(),
      deps(),
    );
    try {
      assert.equal(server.requests.at(-1)?.path, "/cyberbotics/webots/zip/v1.2");
      assert.equal(await Deno.readTextFile(instance.worldFile), "demo world");
    } finally {
      await ws.remove(instance);
    }
  });
  await t.step("a missing repository is an HTTP error", async () => {
    await assert.rejects(
      prepareStart(
        "webots://github.com/nobody/nothing/branch/main/worlds/w.wbt",
        await ws.folder(),
        deps(),
      ),
      (e) =>
        e instanceof ClientError &&
        e.message === "Cannot download nobody/nothing at refs/heads/main: HTTP 404",
    );
  });
  await t.step("a missing folder or world is an error", async () => {
    const nope = await ws.folder();
    await assert.rejects(
      prepareStart(
        "webots://github.com/cyberbotics/webots/branch/m/nope/worlds/w.wbt",
        nope,
        deps(),
      ),
      /Folder nope not found in cyberbotics\/webots at refs\/heads\/m/,
    );
    await ws.remove({ dir: nope });
    const dir = await ws.folder();
    await assert.rejects(
      prepareStart(
        "webots://github.com/cyberbotics/webots/branch/m/projects/demo/worlds/x.wbt",
        dir,
        deps(),
      ),
      (e) => e instanceof ClientError && e.message === "x.wbt does not exist.",
    );
    await ws.remove({ dir });
  });
  await t.step("allowed and blocked repositories are checked before any download", async () => {
    const before = server.requests.length;
    const url =
      "webots://github.com/cyberbotics/webots/branch/develop/projects/demo/worlds/demo.wbt";
    await assert.rejects(
      prepareStart(
        url,
        await ws.folder(),
        ws.deps({
          githubArchiveBase: server.base,
          allowedRepositories: ["https://github.com/other/"],
        }),
      ),
      /not allowed/,
    );
    await assert.rejects(
      prepareStart(
        url,
        await ws.folder(),
        ws.deps({
          githubArchiveBase: server.base,
          blockedRepositories: ["https://github.com/cyberbotics/"],
        }),
      ),
      /blocked/,
    );
    assert.equal(server.requests.length, before);
    const allowed = await prepareStart(
      url,
      await ws.folder(),
      ws.deps({
        githubArchiveBase: server.base,
        allowedRepositories: ["https://github.com/cyberbotics/"],
      }),
    );
    await ws.remove(allowed);
  });
  assert.deepEqual(await ws.filled(), []);
});

Deno.test("GitHub archives with unsafe entries, or too large, are refused", async () => {
  await using ws = await workspace();
  const archives: Record<string, Uint8Array> = {
    slip: zipSync({ "r-main/worlds/w.wbt": text("w"), "r-main/../../evil.txt": text("x") }),
    big: zipSync({ "r-main/worlds/w.wbt": new Uint8Array(100_000) }, { level: 0 }),
    two: zipSync({ "a/worlds/w.wbt": text("w"), "b/worlds/w.wbt": text("w") }),
  };
  await using server = await startFileServer((req) =>
    zipResponse(archives[req.path.split("/")[1]!]!)
  );
  for (
    const [user, message] of [["slip", /unsafe entry/], ["big", /larger than 50000/], [
      "two",
      /one top folder/,
    ]] as const
  ) {
    await assert.rejects(
      prepareStart(
        `webots://github.com/${user}/r/branch/main/worlds/w.wbt`,
        await ws.folder(),
        ws.deps({ githubArchiveBase: server.base, maxDownloadSize: 50_000 }),
      ),
      (e) => e instanceof ClientError && message.test(e.message),
      user,
    );
  }
  assert.deepEqual(await ws.filled(), []);
  await assert.rejects(Deno.stat(join(ws.root, "evil.txt")), Deno.errors.NotFound);
});

Deno.test("a GitHub download that takes longer than downloadTimeout fails", async () => {
  await using ws = await workspace();
  await using server = await startFileServer(async (_req, { closing }) => {
    await closing;
    return new Response("late");
  });
  await assert.rejects(
    prepareStart(
      "webots://github.com/u/r/branch/main/worlds/w.wbt",
      await ws.folder(),
      ws.deps({ githubArchiveBase: server.base, downloadTimeout: 0.3 }),
    ),
    (e) =>
      e instanceof ClientError &&
      e.message === "Cannot download u/r at refs/heads/main: timed out after 0.3 s",
  );
  assert.deepEqual(await ws.filled(), []);
});

Deno.test("reset controller restores the original file of init and file:// projects", async () => {
  await using ws = await workspace();
  await ws.write(ws.projectsDir, PROJECT);
  const deps = ws.deps();
  const { project: instance } = await prepareInit(init(), await ws.folder(), deps);
  const fromFile = await prepareStart(
    `file://${ws.projectsDir}/robots/ure/worlds/ure.wbt`,
    await ws.folder(),
    deps,
  );
  try {
    for (const inst of [instance, fromFile]) {
      const file = join(inst.projectDir, "controllers/ure/ure.py");
      await Deno.writeTextFile(file, "print('edited')");
      await resetController(inst, "ure/ure.py", deps);
      assert.equal(await Deno.readTextFile(file), "print('original')");
      // A controller deleted by the user comes back too.
      await Deno.remove(join(inst.projectDir, "controllers/ure"), { recursive: true });
      await resetController(inst, "ure/ure.py", deps);
      assert.equal(await Deno.readTextFile(file), "print('original')");
    }
    for (
      const path of [
        "..",
        "../../etc/passwd",
        "/etc/passwd",
        "ure/../ure/ure.py",
        "ure",
        "a/b/c",
        "ure\\ure.py",
        "ure/ure.py\0",
        "%2e%2e/x",
      ]
    ) {
      await assert.rejects(
        resetController(instance, path, deps),
        ClientError,
        JSON.stringify(path),
      );
    }
    await assert.rejects(
      resetController(instance, "ure/missing.py", deps),
      (e) => e instanceof ClientError && /no such controller file/.test(e.message),
    );
    // A simulation that replaced its controller folder by a symlink cannot make the server write
    // outside the instance, and a symlinked file is replaced, not written through.
    await ws.write(ws.root, { "target/ure.py": "victim" });
    const controllers = join(instance.projectDir, "controllers/ure");
    await Deno.remove(controllers, { recursive: true });
    await Deno.symlink(join(ws.root, "target"), controllers);
    await assert.rejects(resetController(instance, "ure/ure.py", deps), /replaced/);
    await Deno.remove(controllers);
    await Deno.mkdir(controllers);
    await Deno.symlink(join(ws.root, "target/ure.py"), join(controllers, "ure.py"));
    await resetController(instance, "ure/ure.py", deps);
    assert.equal(await Deno.readTextFile(join(ws.root, "target/ure.py")), "victim");
    assert.equal(await Deno.readTextFile(join(controllers, "ure.py")), "print('original')");
    assert.ok(!(await Deno.lstat(join(controllers, "ure.py"))).isSymlink);
  } finally {
    await ws.remove(instance);
    await ws.remove(fromFile);
  }
});

Deno.test("fileRoots: a world under a second root is copied; symlinks out of a root and paths outside every root are refused", async () => {
  await using ws = await workspace();
  const samples = join(ws.root, "webots", "projects");
  await ws.write(ws.projectsDir, PROJECT);
  await ws.write(samples, {
    "robots/nao/worlds/nao_room.wbt": "#VRML_SIM R2021b utf8\n",
    "robots/nao/controllers/nao/nao.py": "print('nao')",
  });
  await ws.write(ws.root, { "outside/worlds/w.wbt": "x", "outside/controllers/c/c.py": "x" });
  // A symlinked project and a symlinked world, both in the second root, both pointing outside.
  await Deno.symlink(join(ws.root, "outside"), join(samples, "escape"));
  await Deno.symlink(
    join(ws.root, "outside/worlds/w.wbt"),
    join(samples, "robots/nao/worlds/w.wbt"),
  );
  // A link from the second root into the first one: still not inside the root the URL names.
  await Deno.symlink(join(ws.projectsDir, "robots"), join(samples, "first"));
  const deps = ws.deps({ fileRoots: [ws.projectsDir, samples] });

  const nao = `file://${samples}/robots/nao/worlds/nao_room.wbt`;
  const instance = await prepareStart(nao, await ws.folder(), deps);
  try {
    assert.equal(instance.projectDir, join(instance.dir, "nao"));
    assert.equal(await Deno.readTextFile(instance.worldFile), "#VRML_SIM R2021b utf8\n");
    assert.equal(
      await Deno.readTextFile(join(instance.projectDir, "controllers/nao/nao.py")),
      "print('nao')",
    );
    assert.equal(instance.source, join(samples, "robots/nao"));
  } finally {
    await ws.remove(instance);
  }
  // The first root still serves its worlds.
  const ure = await prepareStart(
    `file://${ws.projectsDir}/robots/ure/worlds/ure.wbt`,
    await ws.folder(),
    deps,
  );
  await ws.remove(ure);

  const outsideMessage = "The world file must lie in the projects folder of this server";
  const refused = [
    `file://${samples}/escape/worlds/w.wbt`,
    `file://${samples}/robots/nao/worlds/w.wbt`,
    `file://${samples}/first/ure/worlds/ure.wbt`,
    `file://${ws.root}/outside/worlds/w.wbt`,
    `file://${ws.root}/webots/worlds/w.wbt`,
    "file:///etc/worlds/passwd.wbt",
  ];
  for (const bad of refused) {
    await assert.rejects(
      prepareStart(bad, await ws.folder(), deps),
      (e: unknown) => e instanceof ClientError && e.message === outsideMessage,
      bad,
    );
  }
  // Without the second root, its worlds are outside; with no root at all, every world is.
  await assert.rejects(
    prepareStart(nao, await ws.folder(), ws.deps()),
    (e: unknown) => e instanceof ClientError && e.message === outsideMessage,
  );
  await assert.rejects(
    prepareStart(
      `file://${ws.projectsDir}/robots/ure/worlds/ure.wbt`,
      await ws.folder(),
      ws.deps({ fileRoots: [] }),
    ),
    (e: unknown) => e instanceof ClientError && e.message === outsideMessage,
  );
  assert.deepEqual(await ws.filled(), []);
});
