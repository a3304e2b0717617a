/**
 * The session server's config schema: every key of the reference `session_server.py`, with its
 * meaning and default, plus the keys this implementation adds.
 *
 * @module
 */
import { ADMIN_TOKEN_KEY } from "../shared/admin.ts";
import { LEASE_SECRET_KEYS } from "../shared/lease_secret.ts";
import { ALLOWED_ORIGINS_KEY } from "../shared/origins.ts";
import { resolve } from "node:path";
import {
  type ConfigEnv,
  type ConfigOf,
  hostCheck,
  processConfigEnv,
  type Schema,
} from "../shared/config.ts";
import { heartbeatTimeoutKey } from "../shared/heartbeat.ts";
import { DEFAULT_THRESHOLDS } from "./load_rules.ts";
import { nameServerCheck, serverSourcesCheck } from "./dns.ts";

/** The project root: relative config paths resolve against it. */
export const PROJECT_ROOT: string = resolve(import.meta.dirname ?? ".", "..");

/** The environment this server's config defaults are computed from. */
export function sessionConfigEnv(): ConfigEnv {
  return processConfigEnv(PROJECT_ROOT, []);
}

/** Keys, types, defaults and meanings of a session-server config file. */
export const sessionSchema = {
  port: { type: "integer", default: 1999, min: 0, max: 65535, doc: "Port the server listens on." },
  server: {
    type: "string",
    default: "localhost",
    check: hostCheck,
    doc: "This server's host name, used in the link of notification e-mails.",
  },
  simulationServers: {
    type: "string[]",
    required: true,
    check: (value) => hostCheck(value) ?? serverSourcesCheck(value),
    doc:
      "Simulation servers as `host:port`, or `host/port` behind a port-rewriting proxy, in order of preference; or DNS records to discover them from: `dns:<name>:<port>` (every A and AAAA address of `<name>`, at `<port>`) and `dns+srv:<name>` (each SRV record's host and port), looked up again every `loadRefresh` (not more often than `dnsMinInterval`).",
  },
  portRewrite: {
    type: "boolean",
    default: false,
    doc:
      "Simulation servers sit behind a proxy that maps `/port` to the port: URLs become `wss://host/port` and `https://host/port`.",
  },
  sslCertificate: {
    type: "string",
    path: true,
    together: "sslKey",
    doc: "PEM certificate; with `sslKey` the server serves HTTPS and WSS itself.",
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
      'In shipped configs of every release (R2019b–R2021b recomputed it from the certificate keys, R2022a+ read it as "use wss/https URLs"); here URLs are secure exactly when `sslCertificate` and `sslKey` are set or `portRewrite` is on.',
  },
  administrator: {
    type: "string",
    doc:
      "E-mail address told when a simulation server goes down, comes back, fills up or frees up.",
  },
  mailServer: { type: "string", doc: "SMTP server host for notifications." },
  mailServerPort: {
    type: "integer",
    default: 0,
    min: 0,
    max: 65535,
    doc: "SMTP port; 0 means the standard port (587 when a password is set, else 25).",
  },
  mailSender: { type: "string", doc: "Sender address of notification e-mails." },
  mailSenderUser: {
    type: "string",
    doc: "SMTP login user; defaults to `mailSender`.",
  },
  mailSenderPassword: {
    type: "string",
    doc: "SMTP password; when set the connection is upgraded with STARTTLS and logs in.",
  },
  logDir: {
    type: "string",
    default: "log",
    path: true,
    doc: "Log folder; the log goes to `<logDir>/session/output.log`, rotated 500 kB × 10.",
  },
  debug: { type: "boolean", default: false, doc: "Log to standard output instead of the file." },
  loadRefresh: {
    type: "number",
    default: 5,
    min: 0.05,
    doc: "Seconds between two polls of the simulation servers' `/load` (fractions allowed).",
  },
  loadTimeout: {
    type: "number",
    default: 5,
    min: 0.05,
    doc: "Seconds a simulation server has to answer `/load` before it counts as unavailable.",
  },
  logFormat: {
    type: "string",
    default: "text",
    oneOf: ["text", "json"],
    doc:
      "`text` (default): lines in the reference's shape, `<time> [INFO   ]  <message>` then the fields as `key=value`; `json`: one JSON object a line (pino), for log tools.",
  },
  // hb (issue 9): WebSocket heartbeat on `/`.
  heartbeatTimeout: heartbeatTimeoutKey("which drops it from the availability feed"),
  // steady (issue 10): a band between full and available again, against flapping.
  fullAt: {
    type: "number",
    default: DEFAULT_THRESHOLDS.fullAt,
    min: 0,
    max: 100,
    doc:
      "Load (0–100) at which a simulation server becomes full: `GET /session` stops handing it out, and the feed, the e-mails and `/monitor` say so.",
  },
  availableAt: {
    type: "number",
    default: DEFAULT_THRESHOLDS.availableAt,
    min: 0,
    max: 100,
    check: (value, earlier) =>
      typeof value === "number" && typeof earlier.fullAt === "number" &&
        value >= earlier.fullAt
        ? `must be below "fullAt" (${earlier.fullAt}), got ${value}`
        : undefined,
    doc:
      "Load (0–100, below `fullAt`) under which a full simulation server is available again; between the two a server keeps its standing.",
  },
  // issue 10: the admin API (shared/admin.ts).
  adminToken: ADMIN_TOKEN_KEY,
  // lease (issue 10): slot leases (grant.ts, shared/lease_secret.ts).
  ...LEASE_SECRET_KEYS,
  // admin (issue 10): which pages may open the WebSockets (shared/origins.ts).
  allowedOrigins: ALLOWED_ORIGINS_KEY,
  // queue (issue 10): the queue on the availability feed `/` (session/queue.ts).
  queueMax: {
    type: "integer",
    default: 100,
    min: 0,
    doc:
      'Most pages waiting in the queue of `/` (`{"queue": {}}`) at once; one more is told `queue: full`. 0 turns the queue off (`queue: off`). Pages that never ask see nothing of it.',
  },
  queueTimeout: {
    type: "number",
    default: 600,
    min: 0,
    doc:
      "Seconds a page may wait in the queue; then it is told `queue: timeout` and leaves it. 0: no limit.",
  },
  queuePerAddress: {
    type: "integer",
    default: 1,
    min: 0,
    doc:
      "Places in the queue one client address may hold; one more is told `queue: limit`. Behind a reverse proxy every page has the proxy's address: raise it or set 0 (no limit).",
  },
  // issue 11: DNS discovery of the simulation servers (session/dns.ts, session/discovery.ts).
  nameServer: {
    type: "string",
    check: nameServerCheck,
    doc:
      'DNS server asked for the `dns:` and `dns+srv:` entries of `simulationServers`, as an IP address with an optional port (`"127.0.0.1:8600"`, `"[::1]:53"`; 53 by default). Unset: the system\'s resolver (`/etc/resolv.conf`).',
  },
  dnsMinInterval: {
    type: "number",
    default: 1,
    min: 0.05,
    doc:
      "Fewest seconds between two lookups of a `dns:`/`dns+srv:` entry: they are looked up every `loadRefresh`, but not more often than this.",
  },
  // issue 11: subscribers of `/` stop before the open-files limit (session/subscriber_cap.ts).
  maxSubscribers: {
    type: "integer",
    default: 0,
    min: 0,
    doc:
      "Most WebSockets on `/` (subscribers and queued pages) at once; one more is refused with 503 `Too many subscribers`, so that the sockets never take the descriptors the polls, lease requests, `/session`, e-mail and the log need. Set it to the open-files limit (`LimitNOFILE=`, `ulimit -n`) minus 256 minus 2 per simulation server. 0 (default): no limit.",
  },
} as const satisfies Schema;

/** A validated session-server config. */
export type SessionConfig = ConfigOf<typeof sessionSchema>;
