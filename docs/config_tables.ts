/**
 * Writes the configuration reference tables into README.md from the servers' schemas, between
 * `<!-- BEGIN session-config -->` / `<!-- END session-config -->` (and `simulation-config`).
 * `deno task docs` runs it; a test fails when README.md is out of step with the schemas.
 *
 * @module
 */
import { join } from "node:path";
import { schemaTable } from "../shared/config.ts";
import { sessionSchema } from "../session/config.ts";
import { simulationSchema } from "../simulation/config.ts";
import { referenceKeysTable } from "./reference_keys.ts";

/** The generated blocks, by marker name. */
export const TABLES: Readonly<Record<string, string>> = {
  "session-config": schemaTable(sessionSchema),
  "simulation-config": schemaTable(simulationSchema),
  "reference-keys": referenceKeysTable(),
};

/** Replaces every marked block of `readme` with its generated table. */
export function updateReadme(readme: string): string {
  let out = readme;
  for (const [name, table] of Object.entries(TABLES)) {
    const begin = `<!-- BEGIN ${name} -->`;
    const end = `<!-- END ${name} -->`;
    const from = out.indexOf(begin);
    const to = out.indexOf(end);
    if (from === -1 || to === -1 || to < from) {
      throw new Error(`README.md lacks the ${name} markers`);
    }
    out = `${out.slice(0, from + begin.length)}\n${table}\n${out.slice(to)}`;
  }
  return out;
}

if (import.meta.main) {
  const file = join(import.meta.dirname ?? ".", "..", "README.md");
  await Deno.writeTextFile(file, updateReadme(await Deno.readTextFile(file)));
  console.log("README.md configuration tables updated");
}
