/**
 * The campaign: runs the chosen parts one after the other in a temp folder of their own, each
 * with its own seeded random stream, and gathers their verdicts. A part that cannot go on fails
 * the checks it has not decided; the others still run.
 *
 * @module
 */
import { failRest, type Part, PARTS, type Verdicts } from "./checks.ts";
import type { CampaignOptions } from "./options.ts";
import { createRandom } from "./random.ts";
import { runSessions } from "./sessions.ts";
import { runHardKill } from "./hard_kill.ts";
import { runFleet } from "./fleet.ts";
import { runSubscribers } from "./subscribers.ts";

/** Runs the parts of `options` in `dir`; `log` gets progress lines. */
export async function runCampaign(
  options: CampaignOptions,
  dir: string,
  log: (line: string) => void,
): Promise<Verdicts> {
  // Marks every process the campaign's simulation servers start (see servers.ts).
  const campaign = `${options.seed}-${Deno.pid}`;
  // One stream per part, so that `--only` replays a part exactly as the full run played it.
  const randomOf = (part: Part) => createRandom(options.seed + 7919 * PARTS.indexOf(part));
  const parts: Record<Part, () => Promise<Verdicts>> = {
    sessions: () =>
      runSessions({
        dir,
        campaign,
        random: randomOf("sessions"),
        sessions: options.sessions,
        concurrency: options.concurrency,
        timings: options.timings,
        sizes: options.sizes,
        log,
      }),
    kill: () =>
      runHardKill({
        dir,
        campaign,
        random: randomOf("kill"),
        sessions: options.killSessions,
        timings: options.timings,
        log,
      }),
    fleet: () => runFleet({ dir, campaign, log, short: options.short }),
    subscribers: () =>
      runSubscribers({
        dir,
        random: randomOf("subscribers"),
        toggles: options.toggles,
        churn: options.churn,
        fragmentSockets: options.fragmentSockets,
        fragmentBytes: options.subscriberFragmentBytes,
        log,
      }),
  };
  let verdicts: Verdicts = {};
  for (const part of PARTS.filter((p) => options.parts.has(p))) {
    const partStart = performance.now();
    try {
      verdicts = { ...verdicts, ...(await parts[part]()) };
    } catch (error) {
      log(`part ${part} failed: ${error instanceof Error ? error.stack : error}`);
      verdicts = failRest(part, verdicts, error);
    }
    log(`part ${part} took ${((performance.now() - partStart) / 1000).toFixed(1)} s`);
  }
  return verdicts;
}
