/**
 * Configs shipped with the Python reference servers, started through the launcher: ignored keys
 * give one warning line each (printed by the launcher, not again by the server), keys no
 * reference had and values the config alone shows wrong stop the start with one line, exit 1.
 */
import { equal, match } from "node:assert/strict";
import { join } from "node:path";
import { runLauncher, serverTest, startServer } from "../helpers/server_process.ts";

const warningLines = (output: string) =>
  output.split("\n").filter((line) => line.includes("is not used by this server"));

serverTest(
  "the reference's video.json starts the simulation server with one warning line",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "reference-configs-" });
    try {
      const server = await startServer("simulation", {
        // config/simulation/video.json of cyberbotics/webots (R2019b–R2021b), as shipped…
        publicPort: 80,
        multimediaServer: "http://cyberbotics2.cyberbotics.com:9088",
        multimediaStream: "localhost:5004",
        // …and what a test needs: any port, its own folders.
        port: 0,
        logDir: join(dir, "log"),
        instancesDir: join(dir, "instances"),
      }, { dir });
      const status = await server.stop();
      equal(status.code, 0);
      const file = join(dir, "simulation.json");
      equal(
        warningLines(server.output()).join("\n"),
        `${file}: key "publicPort" is not used by this server (ignored)`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

serverTest(
  "an R2021b session local.json (ssl: false) starts with one warning line for ssl",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "reference-configs-" });
    try {
      const server = await startServer("session", {
        server: "localhost",
        port: 0,
        portRewrite: false,
        ssl: false,
        debug: true,
        simulationServers: ["localhost:2000"],
        logDir: join(dir, "log"),
      }, { dir });
      await server.stop();
      equal(
        warningLines(server.output()).join("\n"),
        `${join(dir, "session.json")}: key "ssl" is not used by this server (ignored)`,
      );
      // debug: the log is on stdout, in text lines of the reference's shape.
      match(
        server.output(),
        /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[INFO {3}\] {2}Session server running on port \d+ \(no SSL\) port=\d+ ssl=false$/m,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("a key no reference had, or a bad multimediaServer, stops the launcher: one line, exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "reference-configs-" });
  try {
    const file = join(dir, "video.json");
    const cases: [Record<string, unknown>, string][] = [
      [
        { publicPort: 80, publicHost: "x" },
        `${file}: unknown key "publicHost"`,
      ],
      [
        { publicPort: 80, port: 65535 },
        `${file}: key "maxConnections" reaches past port 65535 with port 65535 (Webots streams on port+1 … port+maxConnections)`,
      ],
      [
        // publicPort's warning is not printed either: a file that fails gives its error alone.
        { publicPort: 80, multimediaServer: "http://relay:9088;controllerEdit" },
        `${file}: key "multimediaServer" must not contain ';', '"', spaces or control characters: "http://relay:9088;controllerEdit"`,
      ],
    ];
    for (const [config, line] of cases) {
      await Deno.writeTextFile(file, JSON.stringify(config));
      const result = await runLauncher("simulation", [file]);
      equal(result.code, 1);
      equal(result.stdout, "");
      equal(result.stderr, `${line}\n`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
