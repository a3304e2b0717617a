/**
 * The simulation server's config schema: every key of the reference `simulation_server.py`, with
 * its meaning and default, plus the keys this implementation adds.
 *
 * @module
 */
import { ADMIN_TOKEN_KEY } from "../shared/admin.ts";
import { LEASE_SECRET_KEYS } from "../shared/lease_secret.ts";
import { ALLOWED_ORIGINS_KEY } from "../shared/origins.ts";
import { join, relative, resolve } from "node:path";
import {
  type ConfigEnv,
  type ConfigOf,
  hostCheck,
  processConfigEnv,
  type Schema,
} from "../shared/config.ts";
import { heartbeatTimeoutKey } from "../shared/heartbeat.ts";

/** The project root: relative config paths resolve against it. */
export const PROJECT_ROOT: string = resolve(import.meta.dirname ?? ".", "..");

/** The environment this server's config defaults are computed from. */
export function simulationConfigEnv(): ConfigEnv {
  return processConfigEnv(PROJECT_ROOT, ["WEBOTS_HOME"]);
}

/**
 * Webots takes `--stream="k=v;k=v"` and splits it on `;` (the quotes are stripped once), so a
 * value passed inside it must not hold either; spaces and control characters have no place in a
 * host or a stream name either.
 */
function streamOptionCheck(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  if (value === "") return "must not be empty";
  if (/[;"\s\p{Cc}]/u.test(value)) {
    return `must not contain ';', '"', spaces or control characters: ${JSON.stringify(value)}`;
  }
  return undefined;
}

function inside(path: string, folder: string): boolean {
  const rel = relative(folder, path);
  return rel === "" || (!rel.startsWith("..") && !rel.startsWith("/"));
}

/** An ignored key of the reference servers. */
function ignored(type: "string" | "boolean" | "integer" | "number" | "string[]", doc: string) {
  return { type, ignored: true, doc } as const;
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
    check: (value, earlier) =>
      Number(earlier.port) + Number(value) > 65535
        ? `reaches past port 65535 with port ${earlier.port} (Webots streams on port+1 … port+maxConnections)`
        : undefined,
    doc: "Most simulations at once; Webots streams on ports `port+1` … `port+maxConnections`.",
  },
  fullyQualifiedDomainName: {
    type: "string",
    check: hostCheck,
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
      'In shipped configs of every release (R2019b–R2021b recomputed it from the certificate keys, R2022a+ read it as "use wss URLs"); here `webots:` URLs are secure exactly when `sslCertificate` and `sslKey` are set or `portRewrite` is on.',
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
    check: streamOptionCheck,
    doc: "Passed to Webots as `multimediaServer=` in `--stream` (MJPEG/WebRTC relay).",
  },
  multimediaStream: {
    type: "string",
    check: streamOptionCheck,
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
    check: (value) =>
      (value as string[]).includes("") ? "must not hold an empty prefix" : undefined,
    doc:
      "URL prefixes a `start` world must match (e.g. `https://github.com/cyberbotics/`); empty: all.",
  },
  blockedRepositories: {
    type: "string[]",
    default: [],
    check: (value) =>
      (value as string[]).includes("") ? "must not hold an empty prefix" : undefined,
    doc: "URL prefixes a `start` world must not match; checked after `allowedRepositories`.",
  },
  githubArchiveBase: {
    type: "string",
    default: "https://codeload.github.com",
    check: (value) =>
      /^https?:\/\/[^\s/]+/.test(String(value)) && URL.canParse(String(value))
        ? undefined
        : `must be an http:// or https:// URL: ${JSON.stringify(value)}`,
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
    doc:
      "Largest `/client` message accepted, in bytes (UTF-8, all fragments together); a larger one closes the socket with 1009 while it arrives, and its simulation ends like a departure.",
  },
  // cfg (issue 8): file roots, then the keys of the reference servers' configs (R2019b–R2023)
  // that this server reads under another name or does not use.
  fileRoots: {
    type: "string[]",
    path: true,
    computeDefault: (_env, earlier) => [earlier.projectsDir],
    defaultDoc: "`[projectsDir]`",
    check: (value, earlier) => {
      const roots = value as string[];
      if (roots.includes("/")) return "must not name the root folder /";
      // A project copied from a root must not carry secrets, nor other clients' instances.
      const kept = [
        ["keyDir", earlier.keyDir],
        ["sslKey", earlier.sslKey],
        ["instancesDir", earlier.instancesDir],
      ] as const;
      for (const [name, path] of kept) {
        if (typeof path !== "string") continue;
        const root = roots.find((r) => inside(path, r) || inside(r, path));
        if (root !== undefined) return `must not overlap ${name} (${path} and root ${root})`;
      }
      return undefined;
    },
    doc:
      "Folders `file://` worlds may come from (e.g. `$WEBOTS_HOME/projects` for Webots' own samples); the world and its project folder must lie in one of them, symlinks resolved. `[]` refuses every `file://` world.",
  },
  server: {
    type: "string",
    aliasOf: "fullyQualifiedDomainName",
    check: hostCheck,
    doc: "R2022a+ name of `fullyQualifiedDomainName`.",
  },
  publicPort: ignored(
    "integer",
    "In the shipped `video.json` (R2019b–R2021b); no release ever read it.",
  ),
  docker: ignored(
    "boolean",
    "R2022a+: run Webots in Docker; this server runs the installed Webots (optionally in firejail).",
  ),
  shareIdleTime: ignored(
    "number",
    "R2022a+: load below which repositories outside `allowedRepositories` may run (Docker only); here `allowedRepositories` always applies.",
  ),
  notify: ignored(
    "string[]",
    "R2022a+: web services (a URL or a list) told at start that this server exists, such as webots.cloud; nothing is posted here.",
  ),
  bannedRepositories: ignored(
    "string[]",
    "R2022a read this name in place of `blockedRepositories` (a bug); use `blockedRepositories`.",
  ),
  title: ignored("string", "R2022b+: heading of the `/monitor` page."),
  description: ignored("string", "R2022b+: paragraph under the `/monitor` heading."),
  webots: ignored(
    "string",
    "Set by the reference itself (the Webots binary); a value in the file had no effect there either.",
  ),
  instancesPath: ignored(
    "string",
    "Set by the reference itself (the instances folder); see `instancesDir`.",
  ),
  WEBOTS_HOME: ignored(
    "string",
    "Set by R2019b–R2021a from the environment; see `webotsHome`.",
  ),
  dockerConfDir: ignored("string", "Set by the R2022a+ reference itself in Docker mode."),
  logFormat: {
    type: "string",
    default: "text",
    oneOf: ["text", "json"],
    doc:
      "`text` (default): lines in the reference's shape, `<time> [INFO   ]  <message>` then the fields as `key=value`; `json`: one JSON object a line (pino), for log tools.",
  },
  // Messages for current clients (issue 8).
  clientProtocol: {
    type: "string",
    default: "auto",
    oneOf: ["auto", "r2021b", "r2023"],
    doc:
      "Browser client generation: `auto` tells it from the first message (see the `/client` protocol), `r2021b` sends only what the R2021b client knows, `r2023` adds `loading:` and `shutdownTimeout:`.",
  },
  timeout: {
    type: "integer",
    min: 1,
    doc:
      "Seconds a simulation may run after Webots starts; then it is ended like a departure (current clients get `shutdownTimeout:` at the start and `error:` at the end). Unset: no limit.",
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
  // hb (issue 9): WebSocket heartbeat on `/client`.
  heartbeatTimeout: heartbeatTimeoutKey(
    "which ends its simulation like a departure (Webots stopped, folder removed, port freed)",
  ),
  // steady (issue 10): steady load figures.
  loadWindow: {
    type: "integer",
    default: 5,
    min: 1,
    max: 60,
    doc:
      "Seconds over which the CPU and GPU figures of `/load` are averaged (1–60; 1 is the latest one-second figure, as before); the slot share, memory and swap are taken as they are now.",
  },
  // net (issue 9): a hung helper program (nvidia-smi) is ended.
  helperTimeout: {
    type: "number",
    default: 10,
    min: 0.1,
    doc:
      "Seconds a helper program (`nvidia-smi`, `cat /proc/net/dev`, `kill`) may run before it gets SIGTERM, then SIGKILL a second later; a hung `nvidia-smi` then counts as failing (GPU figures 0, logged once).",
  },
  // issue 10: the admin API (shared/admin.ts).
  adminToken: ADMIN_TOKEN_KEY,
  // drain (issue 10): drain, idle limit, per-address limit.
  drainTimeout: {
    type: "number",
    default: 0,
    min: 0,
    doc:
      "Seconds a drain (SIGTERM, `POST /admin/drain`) lets running simulations go on: no new sessions, `/load` 100, `/ready` 503, running clients told `shutdownTimeout: <remaining>`; at the deadline the rest are ended, and after SIGTERM the process exits 0 once none is left (a second SIGTERM ends everything at once). 0: SIGTERM ends everything at once.",
  },
  idleTimeout: {
    type: "number",
    default: 0,
    min: 0,
    doc:
      "Seconds a simulation may stay paused (Webots' `pause` mode, or never set running) before it is ended; current clients get `shutdownTimeout: <seconds left>` before the end (half-way, at most 60 s before). `real-time`, `fast` or `step` restarts the count. 0: no limit.",
  },
  maxSessionsPerAddress: {
    type: "integer",
    default: 0,
    min: 0,
    doc:
      "Simulations one client address may have at once; a start beyond it gets `error:` and the socket closes. 0: no limit.",
  },
  // lease (issue 10): slot leases (leases.ts, shared/lease_secret.ts).
  ...LEASE_SECRET_KEYS,
  leaseTimeout: {
    type: "number",
    default: 30,
    min: 1,
    max: 3600,
    doc:
      "Seconds a granted slot lease waits for its browser (`/lease/<token>/client`); then the slot is free again and the token is void.",
  },
  requireLease: {
    type: "boolean",
    default: false,
    check: (value, earlier) =>
      value === true && earlier.leaseSecret === undefined && earlier.leaseSecretFile === undefined
        ? 'needs "leaseSecret" or "leaseSecretFile"'
        : undefined,
    doc:
      "Refuse `/client` sockets that do not come with a valid slot lease (`error: …`, then close): every browser must have been sent here by a session server that holds the secret.",
  },
  // admin (issue 10): which pages may open the WebSockets (shared/origins.ts).
  allowedOrigins: ALLOWED_ORIGINS_KEY,
} as const satisfies Schema;

/** A validated simulation-server config. */
export type SimulationConfig = ConfigOf<typeof simulationSchema>;
