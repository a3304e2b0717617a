/**
 * Projects fetched over HTTP by the real server process: GitHub archives and site ZIPs, from
 * loopback servers standing in for GitHub and for the website.
 */
import { serverTest } from "../helpers/server_process.ts";
import { equal, match } from "node:assert/strict";
import { join } from "node:path";
import { strToU8, zipSync } from "fflate";
import { startFileServer, zipResponse } from "../fakes/http_files.ts";
import { connect } from "../helpers/ws_client.ts";
import { eventually, startSimulationServer } from "../helpers/simulation_fixture.ts";

// Laid out like a GitHub archive: one top folder <repo>-<ref>/ with folder entries.
const archive = zipSync({
  "robots-main": {
    "projects": {
      "demo": {
        "worlds": { "arm.wbt": strToU8("#VRML_SIM R2021b utf8\n") },
        "controllers": { "c": { "c.py": strToU8("print('hi')\n") } },
      },
    },
    "README.md": strToU8("not part of the project"),
  },
});
// codeload.github.com serves a branch both as zip/refs/heads/<b> and as zip/<b>.
const ARCHIVE_PATHS = ["/cyberbotics/robots/zip/refs/heads/main", "/cyberbotics/robots/zip/main"];

serverTest(
  "a webots:// GitHub world is fetched as an archive and runs; other repositories are refused",
  async (t) => {
    await using github = await startFileServer((request) =>
      ARCHIVE_PATHS.includes(request.path)
        ? zipResponse(archive)
        : new Response("Not Found", { status: 404 })
    );
    await using fixture = await startSimulationServer({
      config: {
        githubArchiveBase: github.base,
        allowedRepositories: ["https://github.com/cyberbotics/"],
      },
    });
    await t.step("an allowed repository runs", async () => {
      const client = await connect(fixture.clientUrl);
      client.send(JSON.stringify({
        start: {
          url: "webots://github.com/cyberbotics/robots/branch/main/projects/demo/worlds/arm.wbt",
        },
      }));
      match(
        await client.waitFor((m) => m.startsWith("webots:")),
        /^webots:ws:\/\/127\.0\.0\.1:\d+$/,
      );
      const [record] = await fixture.records();
      match(record!.args.at(-1)!, /\/demo\/worlds\/arm\.wbt$/);
      await client.close();
      await eventually(async () => (await fixture.instances()).length === 0);
    });
    await t.step("the same project as a github.com blob URL runs too", async () => {
      const client = await connect(fixture.clientUrl);
      client.send(JSON.stringify({
        start: {
          url: "https://github.com/cyberbotics/robots/blob/main/projects/demo/worlds/arm.wbt",
        },
      }));
      await client.waitFor((m) => m.startsWith("webots:"));
      await client.close();
    });
    await t.step(
      "a repository outside the allowed list is refused without a download",
      async () => {
        const before = github.requests.length;
        const client = await connect(fixture.clientUrl);
        client.send(JSON.stringify({
          start: { url: "https://github.com/mallory/evil/blob/main/worlds/x.wbt" },
        }));
        match(
          await client.waitFor((m) => m.startsWith("error:")),
          /^error: Repository not allowed/,
        );
        equal(github.requests.length, before);
        await client.closed;
      },
    );
    await t.step("a missing branch is reported", async () => {
      const client = await connect(fixture.clientUrl);
      client.send(JSON.stringify({
        start: {
          url: "https://github.com/cyberbotics/robots/blob/nope/projects/demo/worlds/arm.wbt",
        },
      }));
      match(await client.waitFor((m) => m.startsWith("error:")), /HTTP 404/);
      await client.closed;
    });
    await eventually(async () => (await fixture.instances()).length === 0);
  },
);

serverTest(
  "an init with a user downloads the user's project from the site with the site key",
  async () => {
    const userProject = zipSync({ "worlds/mine.wbt": strToU8("#VRML_SIM R2021b utf8\n") });
    await using site = await startFileServer((request) =>
      request.path === "/ajax/download-project.php"
        ? zipResponse(userProject)
        : new Response("?", { status: 404 })
    );
    await using fixture = await startSimulationServer();
    const host = site.base; // http://127.0.0.1:<port>: plain http is allowed for loopback only
    await Deno.writeTextFile(join(fixture.keyDir, "127.0.0.1"), "s3cret\nsecond line ignored\n");
    const client = await connect(fixture.clientUrl);
    client.send(JSON.stringify({
      init: [host, "robots/demo", "mine.wbt", "42", "Ada", "token", "", "", "custom"],
    }));
    await client.waitFor((m) => m.startsWith("webots:"));
    const [request] = site.requests;
    equal(request?.method, "POST");
    const form = new URLSearchParams(request!.body);
    equal(form.get("project"), "robots/demo");
    equal(form.get("key"), "s3cret");
    equal(form.get("user1Id"), "42");
    equal(form.get("user1Name"), "Ada");
    equal(form.get("user1Authentication"), "token");
    equal(form.get("customData"), "custom");
    const [record] = await fixture.records();
    match(record!.args.find((a) => a.startsWith("--stream="))!, /;controllerEdit"$/);
    await client.close();
    await eventually(async () => (await fixture.instances()).length === 0);
  },
);
