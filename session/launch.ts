/**
 * `deno task session [CONFIG]`: validates the config, derives the session server's permission
 * flags from it and runs `session/main.ts` with them (see `shared/launcher.ts`).
 *
 * @module
 */
import { join } from "node:path";
import { launch, type LaunchSpec } from "../shared/launcher.ts";
import { PROJECT_ROOT, sessionConfigEnv, sessionSchema } from "./config.ts";
import { sessionPermissions } from "./permissions.ts";

/** The session server as the launcher runs it. */
export const sessionLaunch: LaunchSpec<typeof sessionSchema> = {
  name: "session",
  root: PROJECT_ROOT,
  schema: sessionSchema,
  env: sessionConfigEnv,
  permissions: sessionPermissions,
  main: join(PROJECT_ROOT, "session", "main.ts"),
};

if (import.meta.main) {
  Deno.exit(await launch(sessionLaunch, Deno.args));
}
