/**
 * The HTTP engine (shared/http_server.ts) alone as a process, for the tests that need a process of
 * its own, such as one started with a low open-files limit. It answers `ok` to every request and
 * prints one JSON line per event on stdout: `{"listening":<port>}`, `{"error":<what>,"message":…}`
 * for each report, `{"resumed":{"failures":…,"ms":…}}` when accepting works again. SIGTERM shuts
 * it down gracefully.
 *
 * `deno run --allow-net tests/helpers/engine_process.ts`
 *
 * @module
 */
import { listenHttp } from "../../shared/http_server.ts";

if (import.meta.main) {
  const say = (event: Record<string, unknown>) => console.log(JSON.stringify(event));
  const server = listenHttp({
    hostname: "127.0.0.1",
    port: 0,
    handler: () => new Response("ok"),
    onError: (error, what) =>
      say({ error: what, message: error instanceof Error ? error.message : String(error) }),
    onAcceptResumed: (pause) => say({ resumed: pause }),
  });
  const stop = () => void server.shutdown().then(() => Deno.exit(0));
  Deno.addSignalListener("SIGTERM", stop);
  say({ listening: server.port });
}
