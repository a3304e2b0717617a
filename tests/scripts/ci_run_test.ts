import { deepEqual, equal, ok } from "node:assert/strict";
import { join, resolve } from "node:path";

/** The project root. */
const ROOT = resolve(import.meta.dirname ?? ".", "..", "..");

/** What a run of `.ci/run` (with a stand-in `npx`) printed and returned. */
interface CiRun {
  readonly code: number;
  readonly lines: string[];
  /** The arguments the stand-in `npx` was called with. */
  readonly npxArgs: string;
}

/**
 * Runs a copy of `.ci/run` in a temp project whose `npx` is a stand-in printing `output` and
 * exiting with `code`, so that the summary rules are checked without running the suite.
 */
async function ciRun(output: string, code: number): Promise<CiRun> {
  const dir = await Deno.makeTempDir({ prefix: "ci-run-" });
  try {
    await Deno.mkdir(join(dir, ".ci"));
    await Deno.mkdir(join(dir, "bin"));
    await Deno.copyFile(join(ROOT, ".ci", "run"), join(dir, ".ci", "run"));
    await Deno.chmod(join(dir, ".ci", "run"), 0o755);
    await Deno.writeTextFile(join(dir, "output.txt"), output);
    const npx = join(dir, "bin", "npx");
    await Deno.writeTextFile(
      npx,
      `#!/bin/sh\necho "$*" > "${dir}/npx-args"\ncat "${dir}/output.txt"\nexit ${code}\n`,
    );
    await Deno.chmod(npx, 0o755);
    const out = await new Deno.Command(join(dir, ".ci", "run"), {
      clearEnv: true,
      env: { PATH: `${join(dir, "bin")}:/usr/bin:/bin` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    equal(new TextDecoder().decode(out.stderr), "");
    const log = await Deno.readTextFile(join(dir, "deno-test.log"));
    equal(log, output, "the command's output is kept in deno-test.log");
    return {
      code: out.code,
      lines: stdout.trimEnd().split("\n"),
      npxArgs: (await Deno.readTextFile(join(dir, "npx-args"))).trim(),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(".ci/run runs the README's test command and ends with its summary", async (t) => {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  ok(readme.includes("\nnpx -y deno@2.9.6 task test "), "the README's quick start has the command");

  await t.step("a passing suite: its counts, exit 0", async () => {
    const run = await ciRun(
      "prerequisites: chromium installed\nok | 182 passed (40 steps) | 0 failed | 1 ignored (3m)\n",
      0,
    );
    equal(run.npxArgs, "-y deno@2.9.6 task test");
    equal(run.lines.at(-1), "182 passed, 0 failed");
    equal(run.code, 0);
  });

  await t.step("failing tests: their counts, the task's exit status", async () => {
    const run = await ciRun("FAILED | 175 passed | 7 failed (2m)\n", 1);
    equal(run.lines.at(-1), "175 passed, 7 failed");
    equal(run.code, 1);
  });

  await t.step("the prerequisites step or the check stops the task: 1 failed", async () => {
    const prerequisites =
      "prerequisites: missing nginx; run `sudo apt-get install -y nginx`, then run again\n";
    for (const output of [prerequisites, "error: Found 2 not formatted files\n"]) {
      const run = await ciRun(output, 1);
      deepEqual(run.lines.slice(-2), [output.trimEnd(), "0 passed, 1 failed"]);
      equal(run.code, 1);
    }
  });

  await t.step("a non-zero exit after an all-passed summary counts as 1 failed", async () => {
    const run = await ciRun("ok | 10 passed | 0 failed (1s)\nerror: Uncaught (in promise)\n", 1);
    equal(run.lines.at(-1), "10 passed, 1 failed");
    equal(run.code, 1);
  });

  await t.step("no summary at all is a failure even with exit 0", async () => {
    const run = await ciRun("nothing ran\n", 0);
    equal(run.lines.at(-1), "0 passed, 1 failed");
    equal(run.code, 1);
  });
});
