/**
 * `deno task demo`: both servers with `config/*\/demo.json` — a stand-in Webots
 * (`tests/fakes/webots/webots`) and the projects in `demo/projects` — after a banner that says
 * Webots is a stand-in and which pages to open.
 *
 * @module
 */
import { join } from "node:path";
import { ConfigError, loadConfig } from "../shared/config.ts";
import { sessionConfigEnv, sessionSchema } from "../session/config.ts";
import { simulationConfigEnv, simulationSchema } from "../simulation/config.ts";
import { fileExists, resolveConfigs } from "./configs.ts";
import { ROOT, runServers } from "./start.ts";

/** The banner printed before the servers start. */
export function banner(facts: {
  webots: string;
  webotsExists: boolean;
  sessionPort: number;
  simulationPort: number;
  /** The demo world as a file:// URL. */
  world: string;
}): string {
  const missing = facts.webotsExists ? "" : `\n  WARNING: ${facts.webots} does not exist yet.`;
  return `DEMO: Webots is played by a stand-in (${facts.webots}): it streams nothing and shows no 3D view;
      it only speaks the protocol the servers rely on (it prints "open", then "." every few seconds).${missing}
  Open:
    http://localhost:${facts.sessionPort}/?url=${encodeURIComponent(facts.world)}
                                     the session server's page, with the demo world filled in
    http://localhost:${facts.sessionPort}/monitor  the simulation servers and their load
    http://localhost:${facts.simulationPort}/monitor  the simulation server's figures
  Try: curl http://localhost:${facts.sessionPort}/session   (the WebSocket URL of a simulation server)
  Demo world: ${facts.world}
    (browser client: ws://localhost:${facts.sessionPort}/session?url=${facts.world})
  Ctrl-C stops both servers.
`;
}

async function main(): Promise<number> {
  const files = resolveConfigs("demo", { root: ROOT, cwd: ROOT, exists: fileExists });
  let simulation, session;
  try {
    simulation = await loadConfig(simulationSchema, files.simulation!, simulationConfigEnv());
    session = await loadConfig(sessionSchema, files.session!, sessionConfigEnv());
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return 1;
  }
  const webots = join(simulation.webotsHome, "webots");
  console.log(banner({
    webots: webots.startsWith(ROOT + "/") ? webots.slice(ROOT.length + 1) : webots,
    webotsExists: fileExists(webots),
    sessionPort: session.port,
    simulationPort: simulation.port,
    world: `file://${join(simulation.projectsDir, "hello", "worlds", "hello.wbt")}`,
  }));
  return await runServers({ root: ROOT, files, deno: Deno.execPath(), print: console.log });
}

if (import.meta.main) {
  Deno.exit(await main());
}
