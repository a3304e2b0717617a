/**
 * The simulation server's config schema: every key of the reference `simulation_server.py`, with
 * its meaning and default, plus the keys this implementation adds.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { type ConfigEnv, type ConfigOf, processConfigEnv, type Schema } from "../shared/config.ts";

/** The project root: relative config paths resolve against it. */
export const PROJECT_ROOT: string = resolve(import.meta.dirname ?? ".", "..");

/** The environment this server's config defaults are computed from. */
export function simulationConfigEnv(): ConfigEnv {
  return processConfigEnv(PROJECT_ROOT, ["WEBOTS_HOME"]);
}

/** Keys, types, defaults and meanings of a simulation-server config file. */
export const simulationSchema = {
  port: { type: "integer", default: 2000, min: 0, max: 65535, doc: "Port the server listens on." },
  webotsHome: {
    type: "string",
    path: true,
    computeDefault: (env) => env.vars.WEBOTS_HOME ?? "/usr/local/webots",
    defaultDoc: "`$WEBOTS_HOME`, else `/usr/local/webots`",
    doc: "Webots installation folder; Webots is started as `<webotsHome>/webots`.",
  },
  projectsDir: {
    type: "string",
    path: true,
    computeDefault: (_env, earlier) =>
      join(String(earlier.webotsHome), "projects/samples/robotbenchmark"),
    defaultDoc: "`<webotsHome>/projects/samples/robotbenchmark`",
    doc: "Folder of the projects that `init` names and that `file://` worlds must lie in.",
  },
  keyDir: {
    type: "string",
    path: true,
    default: "key",
    doc: "Folder of site keys: `<keyDir>/<host>` holds the key sent with project downloads.",
  },
  maxConnections: {
    type: "integer",
    default: 100,
    min: 1,
    max: 10000,
    doc: "Most simulations at once; Webots streams on ports `port+1` … `port+maxConnections`.",
  },
  fullyQualifiedDomainName: {
    type: "string",
    doc: "Host name put in `webots:` URLs; default: the request's Host header without its port.",
  },
  portRewrite: {
    type: "boolean",
    default: false,
    doc: "Behind a proxy that maps `/port` to the port: Webots URLs become `wss://host/port`.",
  },
  sslCertificate: {
    type: "string",
    path: true,
    together: "sslKey",
    doc:
      "PEM certificate; with `sslKey` the server serves HTTPS/WSS and Webots streams with `ssl`.",
  },
  sslKey: {
    type: "string",
    path: true,
    together: "sslCertificate",
    doc: "PEM private key matching `sslCertificate`.",
  },
  ssl: {
    type: "boolean",
    ignored: true,
    doc:
      "Found in old shipped configs; SSL is on exactly when `sslCertificate` and `sslKey` are set.",
  },
  logDir: {
    type: "string",
    default: "log",
    path: true,
    doc: "Log folder: `<logDir>/simulation/output.log` (rotated 500 kB × 10) and `monitor.csv`.",
  },
  monitorLogEnabled: {
    type: "boolean",
    default: true,
    doc: "Append one line per second of figures to `<logDir>/simulation/monitor.csv`.",
  },
  debug: { type: "boolean", default: false, doc: "Log to standard output instead of the file." },
  multimediaServer: {
    type: "string",
    doc: "Passed to Webots as `multimediaServer=` in `--stream` (MJPEG/WebRTC relay).",
  },
  multimediaStream: {
    type: "string",
    doc: "Passed to Webots as `multimediaStream=` in `--stream`.",
  },
  instancesDir: {
    type: "string",
    path: true,
    computeDefault: (env) => join(env.tmpDir, "webots", "instances"),
    defaultDoc: "`webots/instances` in the system temp folder",
    doc:
      "Folder of the per-connection project copies; only this server's own leftovers are removed.",
  },
  allowedRepositories: {
    type: "string[]",
    default: [],
    doc:
      "URL prefixes a `start` world must match (e.g. `https://github.com/cyberbotics/`); empty: all.",
  },
  blockedRepositories: {
    type: "string[]",
    default: [],
    doc: "URL prefixes a `start` world must not match; checked after `allowedRepositories`.",
  },
  githubArchiveBase: {
    type: "string",
    default: "https://codeload.github.com",
    doc:
      "Where GitHub projects are downloaded: `<base>/<user>/<repo>/zip/<ref>` (tests point it at loopback).",
  },
  sandbox: {
    type: "string",
    default: "none",
    oneOf: ["none", "firejail"],
    doc: "`firejail` runs Webots itself in firejail, confined to its instance folder.",
  },
  firejailPath: {
    type: "string",
    default: "/usr/bin/firejail",
    doc: "The firejail binary, used when `sandbox` is `firejail`.",
  },
  nvidiaSmiPath: {
    type: "string",
    default: "/usr/bin/nvidia-smi",
    doc: "The `nvidia-smi` binary for GPU figures; absent or failing means GPU figures are 0.",
  },
  startTimeout: {
    type: "number",
    default: 60,
    min: 0.1,
    doc: "Seconds Webots has to become ready before it is ended with an `error:` reply.",
  },
  killTimeout: {
    type: "number",
    default: 5,
    min: 0,
    doc: "Seconds between SIGTERM and SIGKILL when Webots is stopped.",
  },
  downloadTimeout: {
    type: "number",
    default: 30,
    min: 0.1,
    doc: "Seconds a project download (site ZIP or GitHub archive) may take.",
  },
  maxDownloadSize: {
    type: "integer",
    default: 200_000_000,
    min: 1,
    doc: "Largest project archive accepted, in bytes, both compressed and unpacked.",
  },
  maxMessageSize: {
    type: "integer",
    default: 65536,
    min: 64,
    doc: "Largest `/client` message accepted, in bytes; larger ones get an `error:` reply.",
  },
  webotsVersion: {
    type: "string",
    doc:
      "The release at `webotsHome` (`R2019b`…`R2025a`), used when `resources/version.txt` there is unreadable or unknown.",
  },
  webotsHomes: {
    type: "string{}",
    path: true,
    doc:
      'Installations by release, e.g. `{"R2021b": "/opt/webots-R2021b", "R2025a": "/usr/local/webots"}`: each world runs on the one its `#VRML_SIM` header names; replaces `webotsHome`.',
  },
  webotsVersionFallback: {
    type: "string",
    default: "newest",
    oneOf: ["newest", "refuse"],
    doc:
      "With `webotsHomes`, a world of a release not installed runs on the newest installation (`newest`) or gets an `error:` (`refuse`).",
  },
} as const satisfies Schema;

/** A validated simulation-server config. */
export type SimulationConfig = ConfigOf<typeof simulationSchema>;
