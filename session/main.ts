// placeholder: replaced by the real wiring
import { loadConfig } from "../shared/config.ts";
import { configEnv } from "../shared/launch.ts";
import { sessionSchema } from "./config.ts";
import { serveUntilSignal } from "../shared/serve.ts";
if (import.meta.main) {
  const config = await loadConfig(sessionSchema, Deno.args[0]!, configEnv([]));
  await serveUntilSignal({
    name: "Session",
    port: config.port,
    handler: () => new Response("x"),
    onShutdown: async () => {},
  });
}
