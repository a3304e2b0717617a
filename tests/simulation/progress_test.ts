/**
 * The wording of set-up steps and the pacing of download progress, on a fake clock.
 */
import assert, { deepEqual, equal } from "node:assert/strict";
import { join } from "node:path";
import { strToU8, zipSync } from "fflate";
import { prepareStart } from "../../simulation/projects.ts";
import {
  describeProgress,
  type ProjectProgress,
  startingWebots,
  throttleProgress,
} from "../../simulation/progress.ts";
import { FakeClock } from "../fakes/fake_clock.ts";
import { workspace } from "./project_fixtures.ts";

const SOURCE = "cyberbotics/webots@master";
/** A download update of a 1000-byte archive, or of one of unknown size with `sized` false. */
const chunk = (received: number, sized = true): ProjectProgress => ({
  step: "downloading",
  source: SOURCE,
  received,
  total: sized ? 1000 : undefined,
});

Deno.test("each step has its loading: text", () => {
  equal(describeProgress(chunk(350)), "downloading cyberbotics/webots@master (35%)");
  equal(describeProgress(chunk(999)), "downloading cyberbotics/webots@master (99%)");
  equal(describeProgress(chunk(1000)), "downloading cyberbotics/webots@master (100%)");
  equal(describeProgress(chunk(350, false)), "downloading cyberbotics/webots@master");
  equal(describeProgress({ step: "unpacking" }), "unpacking");
  equal(describeProgress({ step: "copying" }), "copying project");
  equal(startingWebots(), "starting Webots");
  equal(startingWebots("R2025a"), "starting Webots R2025a");
});

Deno.test("download progress passes only on a new whole percent, at most every 250 ms", async () => {
  const clock = new FakeClock();
  const reported: string[] = [];
  const report = throttleProgress(clock, (p) => reported.push(describeProgress(p)));
  report(chunk(0));
  report(chunk(1)); // same whole percent (0 %)
  report(chunk(100)); // 10 %, but too soon
  await clock.advance(249);
  report(chunk(200)); // still too soon
  await clock.advance(1);
  report(chunk(200)); // 20 %, 250 ms later
  report(chunk(209)); // same percent
  await clock.advance(1000);
  report(chunk(209)); // same percent, however late
  report(chunk(1000)); // 100 % always passes
  report({ step: "unpacking" });
  deepEqual(reported, [
    `downloading ${SOURCE} (0%)`,
    `downloading ${SOURCE} (20%)`,
    `downloading ${SOURCE} (100%)`,
    "unpacking",
  ]);
});

Deno.test("a download of unknown size is announced once; other steps always pass", () => {
  const clock = new FakeClock();
  const reported: string[] = [];
  const report = throttleProgress(clock, (p) => reported.push(describeProgress(p)));
  report({ step: "copying" });
  report(chunk(0, false));
  report(chunk(5000, false));
  report(chunk(9000, false));
  report({ step: "unpacking" });
  report({ step: "unpacking" });
  deepEqual(reported, [
    "copying project",
    `downloading ${SOURCE}`,
    "unpacking",
    "unpacking",
  ]);
});

/** A fetch answering every request with `body` in `parts` chunks, declaring its size or not. */
function chunkedFetch(body: Uint8Array, parts: number, declared: boolean): typeof fetch {
  return () => {
    const size = Math.ceil(body.length / parts);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < body.length; at += size) {
          controller.enqueue(body.slice(at, at + size));
        }
        controller.close();
      },
    });
    const headers: Record<string, string> = declared
      ? { "content-length": String(body.length) }
      : {};
    return Promise.resolve(new Response(stream, { headers }));
  };
}

Deno.test("a GitHub project's preparation reports its download chunk by chunk, then unpacking", async (t) => {
  const archive = zipSync({
    "robots-v1.0": { "worlds": { "w.wbt": strToU8("#VRML_SIM R2023b utf8\n") } },
  }, { level: 0 });
  const url = "webots://github.com/cyberbotics/robots/tag/v1.0/worlds/w.wbt";
  for (const declared of [true, false]) {
    await t.step(declared ? "size declared" : "size unknown", async () => {
      await using ws = await workspace();
      const steps: ProjectProgress[] = [];
      const project = await prepareStart(
        url,
        await ws.folder(),
        { ...ws.deps(), fetch: chunkedFetch(archive, 4, declared) },
        undefined,
        (step) => steps.push(step),
      );
      equal(project.worldFile, join(project.projectDir, "worlds", "w.wbt"));
      const total = declared ? archive.length : undefined;
      const received = steps.flatMap((s) => s.step === "downloading" ? [s.received] : []);
      equal(received.length, 5); // before the first chunk, then after each of the 4
      equal(received[0], 0);
      equal(received.at(-1), archive.length);
      deepEqual(received, [...received].sort((a, b) => a - b));
      for (const step of steps.slice(0, -1)) {
        deepEqual(step, {
          step: "downloading",
          source: "cyberbotics/robots@v1.0",
          received: (step as { received: number }).received,
          total,
        });
      }
      deepEqual(steps.at(-1), { step: "unpacking" });
    });
  }
});

Deno.test("a failed GitHub download reports no progress", async () => {
  await using ws = await workspace();
  const steps: ProjectProgress[] = [];
  const notFound: typeof fetch = () => Promise.resolve(new Response("Not Found", { status: 404 }));
  await assert.rejects(
    prepareStart(
      "webots://github.com/cyberbotics/robots/tag/v1.0/worlds/w.wbt",
      await ws.folder(),
      { ...ws.deps(), fetch: notFound },
      undefined,
      (step) => steps.push(step),
    ),
    /HTTP 404/,
  );
  deepEqual(steps, []);
});
