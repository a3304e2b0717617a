/**
 * `deno task chaos [--short] [--sessions N] [--concurrency N] [--seed S] [--only part,…]`: the
 * reliability campaign of issue 9 against real server processes on loopback. Prints one line per
 * check and a summary on stdout (progress on stderr); exits 1 when a check fails, 2 on bad usage.
 *
 * @module
 */
import { report } from "./checks.ts";
import { runCampaign } from "./campaign.ts";
import { runNetworkFaults } from "./network.ts";
import { parseOptions, USAGE } from "./options.ts";

async function main(args: string[]): Promise<number> {
  let options;
  try {
    options = parseOptions(args, Math.floor(Math.random() * 2 ** 31));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : error}\n${USAGE}`);
    return 2;
  }
  const log = (line: string) => console.error(`chaos: ${line}`);
  const started = performance.now();
  const dir = await Deno.makeTempDir({ prefix: "webots-chaos-" });
  log(
    `seed ${options.seed}, folder ${dir}; replay: deno task chaos${
      options.short ? " --short" : ""
    }` +
      ` --seed ${options.seed} --sessions ${options.sessions} --concurrency ${options.concurrency}`,
  );
  const verdicts = await runCampaign(options, dir, log);
  const extra = options.network ? await runNetworkFaults({ log }) : [];
  const { lines, failed } = report(verdicts, options.parts, extra);
  for (const line of lines) console.log(line);
  const seconds = (performance.now() - started) / 1000;
  console.log(`campaign took ${seconds.toFixed(1)} s, seed ${options.seed}`);
  if (failed === 0) await Deno.remove(dir, { recursive: true });
  else log(`logs and records kept in ${dir}`);
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
