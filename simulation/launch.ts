/**
 * `deno task simulation [CONFIG]`: validates the config, derives the simulation server's
 * permission flags from it (the Webots binary, firejail, the folders) and runs
 * `simulation/main.ts` with them (see `shared/launcher.ts`).
 *
 * @module
 */
import { join } from "node:path";
import { launch, type LaunchSpec } from "../shared/launcher.ts";
import { PROJECT_ROOT, simulationConfigEnv, simulationSchema } from "./config.ts";
import { simulationPermissions } from "./permissions.ts";

/** The simulation server as the launcher runs it. */
export const simulationLaunch: LaunchSpec<typeof simulationSchema> = {
  name: "simulation",
  root: PROJECT_ROOT,
  schema: simulationSchema,
  env: simulationConfigEnv,
  permissions: simulationPermissions,
  main: join(PROJECT_ROOT, "simulation", "main.ts"),
};

if (import.meta.main) {
  Deno.exit(await launch(simulationLaunch, Deno.args));
}
