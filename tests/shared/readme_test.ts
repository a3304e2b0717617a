import { equal } from "node:assert/strict";
import { join } from "node:path";
import { updateReadme } from "../../docs/config_tables.ts";
import { ROOT } from "../helpers/server_process.ts";

Deno.test("README's configuration tables match the schemas (run `deno task docs` to update)", async () => {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  equal(readme, updateReadme(readme));
});
