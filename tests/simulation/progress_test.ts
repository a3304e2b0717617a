/**
 * The wording of set-up steps and the pacing of download progress, on a fake clock.
 */
import { deepEqual, equal } from "node:assert/strict";
import {
  describeProgress,
  type ProjectProgress,
  startingWebots,
  throttleProgress,
} from "../../simulation/progress.ts";
import { FakeClock } from "../fakes/fake_clock.ts";

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
