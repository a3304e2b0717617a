import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { ROOT } from "../helpers/server_process.ts";

/** Every local module `entry` loads, relative to the project root (`deno info --json`). */
async function localModules(entry: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", join(ROOT, entry)],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string }[];
  };
  return info.modules
    .map((m) => m.specifier)
    .filter((s) => s.startsWith("file://"))
    .map((s) => relative(ROOT, new URL(s).pathname));
}

const inFolder = (folder: string) => (path: string) => path.startsWith(`${folder}/`);

Deno.test("the session server loads no simulation-server module", async () => {
  for (const entry of ["session/main.ts", "session/launch.ts"]) {
    const modules = await localModules(entry);
    assert.ok(modules.includes(entry), `deno info lists ${entry} itself`);
    assert.ok(modules.some(inFolder("shared")), `${entry} uses shared/`);
    assert.deepEqual(modules.filter(inFolder("simulation")), [], entry);
  }
});

Deno.test("the simulation server loads no session-server module", async () => {
  for (const entry of ["simulation/main.ts", "simulation/launch.ts"]) {
    const modules = await localModules(entry);
    assert.ok(modules.includes(entry), `deno info lists ${entry} itself`);
    assert.ok(modules.some(inFolder("shared")), `${entry} uses shared/`);
    assert.deepEqual(modules.filter(inFolder("session")), [], entry);
  }
});

Deno.test("shared/ knows no server: no shared module loads session/ or simulation/", async () => {
  const shared = [];
  for await (const entry of Deno.readDir(join(ROOT, "shared"))) {
    if (entry.isFile && entry.name.endsWith(".ts")) shared.push(`shared/${entry.name}`);
  }
  assert.ok(shared.length > 5, `found the shared modules: ${shared}`);
  for (const module of shared) {
    const modules = await localModules(module);
    const servers = modules.filter((m) => inFolder("session")(m) || inFolder("simulation")(m));
    assert.deepEqual(servers, [], `${module} loads ${servers.join(", ")}`);
  }
});
