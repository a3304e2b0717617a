/**
 * The campaign's own logic, in-process: the check table, the report lines, the command line, the
 * seeded plans; and the leftover scan against a real process.
 */
import { deepEqual, equal, match, notDeepEqual, ok, throws } from "node:assert/strict";
import { CHECKS, checksOf, failRest, PARTS, report } from "../../chaos/checks.ts";
import { parseOptions } from "../../chaos/options.ts";
import { createRandom } from "../../chaos/random.ts";
import { FAULT_KINDS, planSessions } from "../../chaos/session_faults.ts";
import { endLeftovers, isAlive, scanProcesses, waitUntil } from "../../chaos/leftovers.ts";

const SIZES = { fragmentedBytes: 1, fragmentBytes: 1, longLineBytes: 1, burstLines: 1 };

Deno.test("the check table holds 36 checks with unique ids, every part has some", () => {
  equal(CHECKS.length, 36);
  equal(new Set(CHECKS.map(([id]) => id)).size, 36);
  for (const part of PARTS) ok(checksOf(part).length > 0, part);
});

Deno.test("the report prints one PASS/FAIL line per check and a summary; undecided checks fail", () => {
  const verdicts = failRest(
    "kill",
    { B01: { ok: true, detail: "webots: after 40 ms" } },
    new Error("boom"),
  );
  const { lines, failed } = report(
    { ...verdicts, A01: { ok: true, detail: "1/1 answered" } },
    new Set(["sessions", "kill"]),
  );
  equal(lines.length, 37);
  equal(lines[0], "PASS A01 every waiting client got an answer: 1/1 answered");
  match(lines[1]!, /^FAIL A02 .*: not decided/);
  ok(lines.includes("PASS B01 the restarted server serves a new session: webots: after 40 ms"));
  match(lines.find((l) => l.includes(" B02 "))!, /^FAIL B02 .*: part failed: boom$/);
  match(lines.find((l) => l.includes(" C01 "))!, /^SKIP C01 /);
  equal(failed, checksOf("sessions").length - 1 + checksOf("kill").length - 1);
  equal(lines.at(-1), `SUMMARY 2 passed, ${failed} failed, 7 skipped of 36 checks`);
});

Deno.test("network checks come after the table's and count in the summary", () => {
  const { lines, failed } = report({}, new Set(), [
    { id: "N01", name: "cut link seen", ok: true, detail: "1.2 s" },
    { id: "N02", name: "restore seen", ok: false, detail: "never" },
  ]);
  equal(lines.length, 39);
  equal(lines[36], "PASS N01 cut link seen: 1.2 s");
  equal(lines[37], "FAIL N02 restore seen: never");
  equal(failed, 1);
  equal(lines[38], "SUMMARY 1 passed, 1 failed, 36 skipped of 36 checks and 2 network checks");
});

Deno.test("the command line: defaults, --short, --only, and clear errors", () => {
  const full = parseOptions([], 5);
  equal(full.sessions, 300);
  equal(full.concurrency, 10);
  equal(full.seed, 5);
  deepEqual([...full.parts], [...PARTS]);
  equal(full.network, false);
  equal(parseOptions(["--network"], 5).network, true);
  const short = parseOptions(["--short", "--seed", "9", "--only", "kill,fleet"], 5);
  equal(short.sessions, 34);
  equal(short.seed, 9);
  deepEqual([...short.parts], ["kill", "fleet"]);
  throws(() => parseOptions(["--only", "sessions,nope"], 1), /unknown part "nope"/);
  throws(() => parseOptions(["--sessions", "0"], 1), /--sessions must be an integer ≥ 1/);
  throws(() => parseOptions(["--concurrency", "two"], 1), /--concurrency must be an integer/);
});

Deno.test("a seed replays the same sessions; every fault kind is played evenly", () => {
  const plan = (seed: number) => planSessions(createRandom(seed), 34, 65536, SIZES);
  deepEqual(plan(42), plan(42));
  notDeepEqual(plan(42).map((p) => p.kind), plan(43).map((p) => p.kind));
  const counts = new Map<string, number>();
  for (const p of plan(42)) counts.set(p.kind, (counts.get(p.kind) ?? 0) + 1);
  deepEqual([...counts.keys()].sort(), [...FAULT_KINDS].sort());
  ok([...counts.values()].every((n) => n === 2), JSON.stringify([...counts]));
  for (const p of plan(42).filter((p) => p.kind === "oversized")) ok(p.bytes > 65536);
  ok(plan(42).every((p, i) => p.world === `s${i}.wbt`));
});

Deno.test("the leftover scan finds a process by the campaign's marker, and ends only it", async () => {
  const marker = `CHAOS_CAMPAIGN=plan-test-${Deno.pid}`;
  const marked = new Deno.Command("sleep", {
    args: ["30"],
    env: { CHAOS_CAMPAIGN: `plan-test-${Deno.pid}` },
    stdout: "null",
    stderr: "null",
  }).spawn();
  const unmarked = new Deno.Command("sleep", { args: ["30"], stdout: "null", stderr: "null" })
    .spawn();
  try {
    const target = {
      envMarker: marker,
      instancesDir: "/nonexistent-chaos",
      except: new Set<number>(),
    };
    await waitUntil(() => scanProcesses(target).length > 0, 2000);
    deepEqual(scanProcesses(target).map((p) => [p.pid, p.why]), [[marked.pid, "campaign env"]]);
    equal(endLeftovers(target), 1);
    equal((await marked.status).signal, "SIGKILL");
    ok(isAlive(unmarked.pid));
    deepEqual(scanProcesses(target), []);
  } finally {
    try {
      marked.kill("SIGKILL");
    } catch { /* ended by the test */ }
    unmarked.kill("SIGKILL");
    await Promise.all([marked.status, unmarked.status]);
  }
});
