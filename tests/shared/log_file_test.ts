/**
 * The log file outlives a full or read-only log folder: one line on stderr, serving goes on, and
 * logging resumes with a count of the lines lost. In-process with a folder that cannot be opened,
 * then with the real session server on a small tmpfs (root only).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openLogFile } from "../../shared/log_file.ts";
import { serverTest } from "../helpers/server_process.ts";
import { eventually } from "../helpers/simulation_fixture.ts";
import { fill, mountTmpfs, remount, tmpfsUnavailable, unmount } from "../helpers/tmpfs.ts";
import {
  get,
  type SessionUnderTest,
  startSession,
  subscribe,
  unsubscribe,
} from "../session/_helpers.ts";

Deno.test("a log file that cannot be written reports once, drops lines, and resumes after the retry pause", async () => {
  const dir = await Deno.makeTempDir({ prefix: "log-file-test-" });
  try {
    // A file where the log folder should be: every open fails (also for root).
    const logDir = join(dir, "log");
    await Deno.writeTextFile(logDir, "not a folder");
    let time = 0;
    const failures: string[] = [];
    const recoveries: number[] = [];
    const failed = Promise.withResolvers<void>();
    const recovered = Promise.withResolvers<void>();
    const file = openLogFile({
      dir: join(logDir, "session"),
      maxBytes: 500_000,
      maxFiles: 2,
      now: () => time,
      retryMs: 1000,
      onFailure: (path, reason) => {
        failures.push(`${path}: ${reason}`);
        failed.resolve();
      },
      onRecovery: (_path, dropped) => {
        recoveries.push(dropped);
        recovered.resolve();
      },
    });
    file.write("lost 1\n");
    await failed.promise;
    for (let i = 2; i <= 4; i++) file.write(`lost ${i}\n`);
    time = 999;
    file.write("lost 5\n");
    await Deno.remove(logDir);
    await Deno.mkdir(join(logDir, "session"), { recursive: true });
    time = 1000;
    file.write("kept\n");
    await recovered.promise;
    await file.close();
    assert.equal(failures.length, 1, failures.join("\n"));
    assert.match(failures[0]!, /log\/session\/output\.log: .*(ENOTDIR|Not a directory)/i);
    assert.deepEqual(recoveries, [5]);
    assert.equal(await Deno.readTextFile(join(logDir, "session", "output.log")), "kept\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Opens and closes one availability subscriber: two log lines (New client, Client disconnected). */
async function visit(baseUrl: string): Promise<void> {
  const subscriber = subscribe(`${baseUrl.replace("http", "ws")}/`);
  await subscriber.messageCount(1);
  await unsubscribe(subscriber);
}

const stderrLines = (output: string, pattern: RegExp) =>
  output.split("\n").filter((line) => pattern.test(line));

const unavailable = await tmpfsUnavailable();
if (unavailable) console.error(`log folder fault tests skipped: ${unavailable}`);

// Full: filled up while the server runs. Read-only: when the server starts (a file system with a
// file open for writing cannot be remounted read-only, so that is how an operator meets it).
for (const fault of ["full", "read-only"] as const) {
  serverTest({
    name: `a ${fault} log folder gives one stderr line, serving goes on, and logging resumes`,
    ignore: unavailable !== undefined,
    fn: async (t) => {
      const dir = await Deno.makeTempDir({ prefix: "log-fault-test-" });
      const logDir = join(dir, "log");
      await Deno.mkdir(logDir);
      await mountTmpfs(logDir, 256 * 1024);
      // Its own temp folder (the config) goes with it: `cleanup`, also when a step fails.
      let server: SessionUnderTest | undefined;
      try {
        const logPath = join(logDir, "session", "output.log");
        if (fault === "read-only") {
          await Deno.mkdir(join(logDir, "session"));
          await remount(logDir, "ro");
        }
        server = await startSession({ logDir, simulationServers: ["127.0.0.1:9"] });
        const { baseUrl, output } = server;
        let filler = "";
        if (fault === "full") {
          await visit(baseUrl);
          await eventually(async () => (await Deno.readTextFile(logPath)).includes("New client"));
        }
        await t.step(
          `with the folder ${fault}, 20 visits and 20 /session requests are served`,
          async () => {
            if (fault === "full") filler = await fill(logDir);
            for (let i = 0; i < 20; i++) {
              await visit(baseUrl);
              const answer = await get(`${baseUrl}/session`);
              assert.equal(answer.status, 200);
              assert.equal(answer.body, "Error: no simulation server available at the moment.");
            }
          },
        );
        await t.step(
          "exactly one line on stderr says the log cannot be written, and why",
          async () => {
            await eventually(() => /cannot write the log file/.test(output()));
            const lines = stderrLines(output(), /cannot write the log file/);
            assert.equal(lines.length, 1, output());
            assert.match(
              lines[0]!,
              new RegExp(
                `^session server: cannot write the log file ${logPath}: .*` +
                  (fault === "full" ? "No space left on device" : "read-only file system"),
                "i",
              ),
            );
          },
        );
        await t.step(
          "once the folder is fixed, logging resumes and says how much was lost",
          async () => {
            if (fault === "full") await Deno.remove(filler);
            else await remount(logDir, "rw");
            // The file is tried again at most once a second: visit until a line gets through.
            await eventually(
              async () => {
                await visit(baseUrl);
                return /writing the log file .* again/.test(output());
              },
              15_000,
              "the log to resume",
            );
            const resumed = stderrLines(output(), /writing the log file .* again/);
            assert.equal(resumed.length, 1, output());
            const dropped = Number(resumed[0]!.match(/\((\d+) lines were dropped\)/)?.[1]);
            assert.ok(dropped >= 40, resumed[0]!);
            // The write the disk cut short may have left half a line; every later line is whole.
            const lines = (await Deno.readTextFile(logPath)).trim().split("\n");
            const entries = lines.flatMap((line) => {
              try {
                return [JSON.parse(line)];
              } catch {
                return [];
              }
            });
            assert.ok(
              lines.length - entries.length <= (fault === "full" ? 1 : 0),
              lines.join("\n"),
            );
            const note = entries.find((e) =>
              e.msg === "Writing the log file again, lines were dropped"
            );
            assert.equal(note?.dropped, dropped);
            assert.equal(stderrLines(output(), /cannot write the log file/).length, 1);
          },
        );
        await server.cleanup();
        await unmount(logDir);
        await Deno.remove(dir, { recursive: true });
      } catch (error) {
        await server?.cleanup().catch(() => {});
        await unmount(logDir).catch(() => {});
        await Deno.remove(dir, { recursive: true }).catch(() => {});
        throw error;
      }
    },
  });
}
