/**
 * `deno task chaos`: the reliability campaign of issue 9, run against real server processes on
 * loopback. Prints one line per check and a summary; exits 1 when a check fails.
 *
 * @module
 */
import { join } from "node:path";
import { failRest, type Part, report, type Verdicts } from "./checks.ts";
import { parseOptions, USAGE } from "./options.ts";
import { createRandom } from "./random.ts";
import { runSessions } from "./sessions.ts";
import { runHardKill } from "./hard_kill.ts";
import { runFleet } from "./fleet.ts";
import { runSubscribers } from "./subscribers.ts";

async function main(args: string[]): Promise<number> {
  let options;
  try {
    options = parseOptions(args, Math.floor(Math.random() * 2 ** 31));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : error}\n${USAGE}`);
    return 2;
  }
  const started = performance.now();
  const dir = await Deno.makeTempDir({ prefix: "webots-chaos-" });
  const campaign = `${options.seed}-${Deno.pid}`;
  const log = (line: string) => console.error(`chaos: ${line}`);
  log(
    `seed ${options.seed} (replay: deno task chaos${
      options.short ? " --short" : ""
    } --seed ${options.seed}` +
      ` --sessions ${options.sessions} --concurrency ${options.concurrency}), folder ${dir}`,
  );
  const random = createRandom(options.seed);
  const parts: Record<Part, () => Promise<Verdicts>> = {
    sessions: () =>
      runSessions({
        dir,
        campaign,
        random,
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
        random,
        sessions: options.killSessions,
        timings: options.timings,
        log,
      }),
    fleet: () => runFleet({ dir, campaign, log, short: options.short }),
    subscribers: () =>
      runSubscribers({
        dir,
        random,
        toggles: options.toggles,
        churn: options.churn,
        fragmentSockets: options.fragmentSockets,
        fragmentBytes: options.subscriberFragmentBytes,
        log,
      }),
  };
  let verdicts: Verdicts = {};
  for (const part of options.parts) {
    const partStart = performance.now();
    try {
      verdicts = { ...verdicts, ...(await parts[part]()) };
    } catch (error) {
      log(`part ${part} failed: ${error instanceof Error ? error.stack : error}`);
      verdicts = failRest(part, verdicts, error);
    }
    log(`part ${part} took ${((performance.now() - partStart) / 1000).toFixed(1)} s`);
  }
  const { lines, failed } = report(verdicts, options.parts);
  for (const line of lines) console.log(line);
  console.log(
    `campaign took ${((performance.now() - started) / 1000).toFixed(1)} s, seed ${options.seed}`,
  );
  if (failed === 0) await Deno.remove(dir, { recursive: true }).catch(() => {});
  else log(`folders (logs, records) kept in ${join(dir)}`);
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
