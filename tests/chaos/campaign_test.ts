/**
 * The short chaos campaign (`deno task chaos --short`) as CI runs it: real servers on loopback,
 * every one of the 36 checks must hold, within two minutes.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { ROOT } from "../helpers/server_process.ts";
import { CHECKS } from "../../chaos/checks.ts";

const LIMIT_S = 120;

Deno.test("the short chaos campaign holds all 36 checks within two minutes", async () => {
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "chaos", "main.ts"), "--short"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const seconds = (performance.now() - started) / 1000;
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  // A failing campaign keeps its folder for a look; the lines below say what failed.
  const kept = /logs and records kept in (\S+)/.exec(stderr)?.[1];
  if (kept?.includes("webots-chaos-")) await Deno.remove(kept, { recursive: true });
  const lines = stdout.split("\n").filter((line) => /^(PASS|FAIL|SKIP) [A-D]\d\d /.test(line));
  const failed = lines.filter((line) => !line.startsWith("PASS "));
  // The seed and the replay command are on the first stderr line.
  const context = `${failed.join("\n")}\n--- campaign progress ---\n${stderr.slice(-4000)}`;
  deepEqual(
    lines.map((line) => line.split(" ")[1]),
    CHECKS.map(([id]) => id),
    `one line per check, in table order:\n${stdout}`,
  );
  deepEqual(failed, [], context);
  ok(
    stdout.includes(`SUMMARY ${CHECKS.length} passed, 0 failed of ${CHECKS.length} checks`),
    stdout,
  );
  equal(out.code, 0, context);
  ok(seconds <= LIMIT_S, `the short campaign took ${seconds.toFixed(1)} s (limit ${LIMIT_S} s)`);
});
