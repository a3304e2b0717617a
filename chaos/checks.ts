/**
 * The campaign's 36 checks, in one table: id, part and name. Parts fill in a verdict and the
 * numbers behind it; the report prints one line per check, `PASS|FAIL <id> <name>: <numbers>`,
 * then a summary line.
 *
 * @module
 */

/** The campaign's parts: sessions, hard kill, faulty servers, abusive subscribers. */
export type Part = "sessions" | "kill" | "fleet" | "subscribers";

export const PARTS: readonly Part[] = ["sessions", "kill", "fleet", "subscribers"];

/** Every check, in the order printed. */
export const CHECKS = [
  // (a) browser sessions with random faults, N at a time
  ["A01", "sessions", "every waiting client got an answer"],
  ["A02", "sessions", "a normal session gets webots: and ends clean"],
  ["A03", "sessions", "a client leaving during start-up leaves no Webots"],
  ["A04", "sessions", "a client leaving right after webots: leaves no Webots"],
  ["A05", "sessions", "garbage text gets error: and the session goes on"],
  ["A06", "sessions", "a binary frame gets error: and the session goes on"],
  ["A07", "sessions", "an oversized frame closes the socket with 1009"],
  ["A08", "sessions", "an oversized message in fragments closes with 1009, memory bounded"],
  ["A09", "sessions", "Webots crashing before ready gives error: and a close"],
  ["A10", "sessions", "Webots crashing after ready gives error: after webots:"],
  ["A11", "sessions", "Webots never ready gives error: at startTimeout"],
  ["A12", "sessions", "Webots ignoring SIGTERM is killed after killTimeout"],
  ["A13", "sessions", "in-group grandchildren end with the session"],
  ["A14", "sessions", "escaped grandchildren end with the session"],
  ["A15", "sessions", "escaped grandchildren ignoring SIGTERM end with the session"],
  ["A16", "sessions", "a long line without newline blocks neither /load nor the start"],
  ["A17", "sessions", "a burst of output keeps the mode line after it"],
  ["A18", "sessions", "a vanished browser is closed by the heartbeat, its Webots ended"],
  ["A19", "sessions", "/load stays fast during the sessions"],
  ["A20", "sessions", "no process left after the sessions"],
  ["A21", "sessions", "no instance folder or run record left after the sessions"],
  ["A22", "sessions", "no streaming port left listening after the sessions"],
  ["A23", "sessions", "the simulation server leaks no descriptor, its memory stays bounded"],
  // (b) hard kill of the simulation server, restart on the same config
  ["B01", "kill", "the restarted server serves a new session"],
  ["B02", "kill", "the restart ends the killed server's Webots"],
  ["B03", "kill", "the restart ends in-group children, also of dead leaders"],
  ["B04", "kill", "the restart ends escaped descendants"],
  ["B05", "kill", "the restart removes instance folders and run records"],
  ["B06", "kill", "no streaming port left listening after the restart"],
  // (c) faulty simulation servers behind the session server
  ["C01", "fleet", "a hanging simulation server is not available within 2 polls"],
  ["C02", "fleet", "/session never hands out a faulty server"],
  ["C03", "fleet", "/session latency unmoved while a server hangs"],
  ["C04", "fleet", "subscribers get 0 when no server is left and 1 when one is back"],
  // (d) abusive sockets on the availability socket
  ["D01", "subscribers", "normal subscribers get every 1/0 while others abuse the socket"],
  [
    "D02",
    "subscribers",
    "endless fragments and oversized messages close with 1009, memory bounded",
  ],
  ["D03", "subscribers", "churn and silent subscribers leave nothing behind, /session unmoved"],
] as const satisfies readonly (readonly [string, Part, string])[];

/** A check's id. */
export type CheckId = (typeof CHECKS)[number][0];

/** A verdict and the numbers it rests on. */
export interface Verdict {
  readonly ok: boolean;
  readonly detail: string;
}

/** The verdicts of one part, by check id. */
export type Verdicts = Partial<Record<CheckId, Verdict>>;

/** The ids of a part's checks. */
export function checksOf(part: Part): CheckId[] {
  return CHECKS.filter(([, p]) => p === part).map(([id]) => id);
}

/** A part that could not run to its end: every check it has not decided fails with the error. */
export function failRest(part: Part, verdicts: Verdicts, error: unknown): Verdicts {
  const message = error instanceof Error ? error.message : String(error);
  const out: Verdicts = { ...verdicts };
  for (const id of checksOf(part)) {
    out[id] ??= { ok: false, detail: `part failed: ${message.split("\n")[0]}` };
  }
  return out;
}

/** A check from outside the table (the network faults of `chaos/network.ts`). */
export interface ExtraCheck {
  readonly id: string;
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/**
 * One report line per check (`SKIP` for parts not run), then the `extra` checks, then the
 * summary; and the failures.
 */
export function report(
  verdicts: Verdicts,
  ran: ReadonlySet<Part>,
  extra: readonly ExtraCheck[] = [],
): {
  lines: string[];
  failed: number;
} {
  const lines: string[] = [];
  let passed = 0;
  let failed = 0;
  for (const [id, part, name] of CHECKS) {
    if (!ran.has(part)) {
      lines.push(`SKIP ${id} ${name}: part ${part} not run`);
      continue;
    }
    const verdict = verdicts[id] ?? { ok: false, detail: "not decided (campaign bug)" };
    if (verdict.ok) passed++;
    else failed++;
    lines.push(`${verdict.ok ? "PASS" : "FAIL"} ${id} ${name}: ${verdict.detail}`);
  }
  const skipped = CHECKS.length - passed - failed;
  for (const check of extra) {
    if (check.ok) passed++;
    else failed++;
    lines.push(`${check.ok ? "PASS" : "FAIL"} ${check.id} ${check.name}: ${check.detail}`);
  }
  const network = extra.length ? ` and ${extra.length} network checks` : "";
  lines.push(
    `SUMMARY ${passed} passed, ${failed} failed${
      skipped ? `, ${skipped} skipped` : ""
    } of ${CHECKS.length} checks${network}`,
  );
  return { lines, failed };
}
