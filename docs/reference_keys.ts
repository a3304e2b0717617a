/**
 * Every config key of the reference servers (Cyberbotics' `session_server.py` and
 * `simulation_server.py`, R2019b–R2023, in `cyberbotics/webots` `resources/web/server/` and then
 * `cyberbotics/webots-server`): the keys their shipped `config/*\/*.json` files use and the keys
 * their code reads, with what this implementation does with each. README.md's compatibility table
 * is generated from this list (`deno task docs`), and a test checks that each server's schema
 * accepts every key of its list the way the list says.
 *
 * Sources: the shipped configs `session/{default,local,cyberbotics1,amazon}.json`,
 * `simulation/{local,cyberbotics1,cyberbotics2,amazon,video}.json` (cyberbotics/webots, several
 * commits), `session/fftai.json`, `simulation/{local,cyberbotics2,fftai}.json`
 * (cyberbotics/webots-server), and the `config[…]` reads of both programs in the R2019b, R2020a,
 * R2021b, R2022a and webots-server versions (see shared/reference/webots-servers.md §2.2, §3.2, §6).
 *
 * @module
 */

/** What this implementation does with a reference key. */
export type Treatment =
  /** Read with the reference's meaning. */
  | "used"
  /** Read under another key's name (`aliasOf` in the schema). */
  | "mapped"
  /** Accepted, dropped, one warning line at start. */
  | "ignored";

/** One key of a reference config. */
export interface ReferenceKey {
  readonly server: "session" | "simulation";
  readonly key: string;
  /** Releases whose shipped configs or code have it. */
  readonly releases: string;
  /** What the reference did with it. */
  readonly meaning: string;
  readonly treatment: Treatment;
  /** What this implementation does, when more than the treatment says. */
  readonly note?: string;
  /** A value as the reference's configs hold it (the test loads it). */
  readonly sample: unknown;
}

const ALL = "R2019b–R2023";

/** The list. */
export const REFERENCE_KEYS: readonly ReferenceKey[] = [
  // Session server.
  {
    server: "session",
    key: "port",
    releases: ALL,
    meaning: "listen port",
    treatment: "used",
    sample: 1999,
  },
  {
    server: "session",
    key: "server",
    releases: ALL,
    meaning: "own host name, in the link of notification e-mails",
    treatment: "used",
    sample: "cyberbotics2.cyberbotics.com",
  },
  {
    server: "session",
    key: "simulationServers",
    releases: ALL,
    meaning: "simulation servers, `host:port` or `host/port`",
    treatment: "used",
    sample: ["localhost:2000"],
  },
  {
    server: "session",
    key: "portRewrite",
    releases: "R2021a–R2023",
    meaning: "behind a port-rewriting proxy: `wss://host/port` URLs",
    treatment: "used",
    note: "default `false` as in R2021b (R2022a+ defaulted to `true`)",
    sample: true,
  },
  {
    server: "session",
    key: "sslCertificate",
    releases: "R2019b–R2022a",
    meaning: "PEM certificate: serve HTTPS/WSS",
    treatment: "used",
    sample: "ssl/cert.pem",
  },
  {
    server: "session",
    key: "sslKey",
    releases: "R2019b–R2022a",
    meaning: "PEM private key",
    treatment: "used",
    sample: "ssl/privkey.pem",
  },
  {
    server: "session",
    key: "ssl",
    releases: "shipped R2021b, read R2022b+",
    meaning: "R2021b: recomputed from the certificate keys; R2022b+: use wss/https URLs",
    treatment: "ignored",
    note: "secure URLs exactly with `sslCertificate`+`sslKey` or `portRewrite`",
    sample: false,
  },
  ...["administrator", "mailServer", "mailSender"].map((key) => ({
    server: "session" as const,
    key,
    releases: ALL,
    meaning: "e-mail notifications",
    treatment: "used" as const,
    sample: key === "mailServer" ? "www.cyberbotics.com" : "webmaster@cyberbotics.com",
  })),
  ...["mailServerPort", "mailSenderUser", "mailSenderPassword"].map((key) => ({
    server: "session" as const,
    key,
    releases: "R2020a–R2023",
    meaning: "SMTP port, login and password",
    treatment: "used" as const,
    sample: key === "mailServerPort" ? 587 : "secret",
  })),
  {
    server: "session",
    key: "logDir",
    releases: ALL,
    meaning: "log folder",
    treatment: "used",
    sample: "log/",
  },
  {
    server: "session",
    key: "debug",
    releases: "R2021a–R2023",
    meaning: "log to standard output",
    treatment: "used",
    sample: true,
  },
  // Simulation server.
  {
    server: "simulation",
    key: "port",
    releases: ALL,
    meaning: "listen port",
    treatment: "used",
    sample: 3000,
  },
  {
    server: "simulation",
    key: "projectsDir",
    releases: ALL,
    meaning: "projects of `init`; `file://` worlds (R2021b)",
    treatment: "used",
    note: "`file://` worlds: `fileRoots`, default `[projectsDir]`",
    sample: "/home/cyberbotics/streaming_projects",
  },
  {
    server: "simulation",
    key: "keyDir",
    releases: "R2019b–R2021b",
    meaning: "site keys for project downloads",
    treatment: "used",
    sample: "key",
  },
  {
    server: "simulation",
    key: "logDir",
    releases: ALL,
    meaning: "log folder",
    treatment: "used",
    sample: "log/",
  },
  {
    server: "simulation",
    key: "monitorLogEnabled",
    releases: ALL,
    meaning: "write `monitor.csv`",
    treatment: "used",
    sample: true,
  },
  {
    server: "simulation",
    key: "sslCertificate",
    releases: "R2019b–R2021b",
    meaning: "PEM certificate: serve HTTPS/WSS, Webots streams with `ssl`",
    treatment: "used",
    sample: "ssl/cert.pem",
  },
  {
    server: "simulation",
    key: "sslKey",
    releases: "R2019b–R2021b",
    meaning: "PEM private key",
    treatment: "used",
    sample: "ssl/privkey.pem",
  },
  {
    server: "simulation",
    key: "maxConnections",
    releases: "R2020a–R2023",
    meaning: "most simulations at once",
    treatment: "used",
    sample: 100,
  },
  {
    server: "simulation",
    key: "timeout",
    releases: "R2023 (webots-server)",
    meaning:
      "seconds a simulation may run: Webots started under `timeout <s>`, `shutdownTimeout: <s>` sent to the client",
    treatment: "used",
    note: "ended by the server's own clock, with the same clean-up as a departure",
    sample: 3600,
  },
  {
    server: "simulation",
    key: "multimediaServer",
    releases: "R2019b–R2022b",
    meaning: "`multimediaServer=` in `--stream` (and the reference started Janus)",
    treatment: "used",
    note: 'checked at start: no `;`, `"`, spaces; Janus is not started',
    sample: "http://cyberbotics2.cyberbotics.com:9088",
  },
  {
    server: "simulation",
    key: "multimediaStream",
    releases: "R2019b–R2022b",
    meaning: "`multimediaStream=` in `--stream`",
    treatment: "used",
    note: 'checked at start: no `;`, `"`, spaces',
    sample: "localhost:5004",
  },
  {
    server: "simulation",
    key: "debug",
    releases: "R2021a–R2023",
    meaning: "log to standard output",
    treatment: "used",
    sample: true,
  },
  {
    server: "simulation",
    key: "portRewrite",
    releases: "R2020b–R2023",
    meaning: "behind a port-rewriting proxy: `wss://host/port` URLs",
    treatment: "used",
    note: "default `false` as in R2021b (R2022a+ defaulted to `true`)",
    sample: false,
  },
  {
    server: "simulation",
    key: "fullyQualifiedDomainName",
    releases: "R2021b",
    meaning: "host in `webots:` URLs",
    treatment: "used",
    sample: "cyberbotics1.epfl.ch",
  },
  {
    server: "simulation",
    key: "server",
    releases: "R2022a–R2023",
    meaning: "host in `webots:` URLs (replaced `fullyQualifiedDomainName`)",
    treatment: "mapped",
    note: "read as `fullyQualifiedDomainName`; both set: they must agree",
    sample: "localhost",
  },
  {
    server: "simulation",
    key: "webotsHome",
    releases: "R2021b–R2023",
    meaning: "Webots installation",
    treatment: "used",
    sample: "/usr/local/webots",
  },
  ...["allowedRepositories", "blockedRepositories"].map((key) => ({
    server: "simulation" as const,
    key,
    releases: "R2022a–R2023",
    meaning: "URL prefixes a world must / must not match",
    treatment: "used" as const,
    sample: ["https://github.com/cyberbotics"],
  })),
  {
    server: "simulation",
    key: "ssl",
    releases: "shipped R2021b+, read R2021b+",
    meaning: "R2021b: recomputed from the certificate keys; R2022a+: wss `webots:` URLs",
    treatment: "ignored",
    note: "secure URLs exactly with `sslCertificate`+`sslKey` or `portRewrite`",
    sample: false,
  },
  {
    server: "simulation",
    key: "publicPort",
    releases: "R2019b–R2021b (`video.json`)",
    meaning: "never read by any release",
    treatment: "ignored",
    sample: 80,
  },
  {
    server: "simulation",
    key: "docker",
    releases: "R2022a–R2023",
    meaning: "run Webots in Docker",
    treatment: "ignored",
    note: "the installed Webots runs, optionally in firejail (`sandbox`)",
    sample: false,
  },
  {
    server: "simulation",
    key: "shareIdleTime",
    releases: "R2022a–R2023",
    meaning: "load below which other repositories may run (Docker only)",
    treatment: "ignored",
    note: "`allowedRepositories` always applies",
    sample: 50,
  },
  {
    server: "simulation",
    key: "notify",
    releases: "R2022a–R2023",
    meaning: "URLs (one or a list) told at start that this server exists (webots.cloud)",
    treatment: "ignored",
    note: "nothing is posted",
    sample: "https://webots.cloud/ajax/server/setup.php",
  },
  {
    server: "simulation",
    key: "bannedRepositories",
    releases: "R2022a",
    meaning: "read in place of `blockedRepositories` (a bug)",
    treatment: "ignored",
    note: "use `blockedRepositories`",
    sample: ["https://github.com/x/"],
  },
  {
    server: "simulation",
    key: "title",
    releases: "webots-server",
    meaning: "`/monitor` heading",
    treatment: "ignored",
    sample: "Webots simulation server",
  },
  {
    server: "simulation",
    key: "description",
    releases: "webots-server",
    meaning: "`/monitor` paragraph",
    treatment: "ignored",
    sample: "Cloud simulations",
  },
  ...[
    ["webots", "the Webots binary"],
    ["instancesPath", "the instances folder"],
    ["WEBOTS_HOME", "`$WEBOTS_HOME` (R2019b–R2021a)"],
    ["dockerConfDir", "the Docker files (R2022a+)"],
  ].map(([key, what]) => ({
    server: "simulation" as const,
    key: key!,
    releases: key === "WEBOTS_HOME"
      ? "R2019b–R2021a"
      : key === "dockerConfDir"
      ? "R2022a–R2023"
      : ALL,
    meaning: `set by the reference itself: ${what}; a value in the file had no effect`,
    treatment: "ignored" as const,
    sample: "/usr/local/webots",
  })),
];

/** The README table: one row per reference key. */
export function referenceKeysTable(): string {
  const rows = [
    "| server | key | releases | in the reference | here |",
    "|---|---|---|---|---|",
  ];
  for (const k of REFERENCE_KEYS) {
    const here = k.note ? `${k.treatment}: ${k.note}` : k.treatment;
    rows.push(`| ${k.server} | \`${k.key}\` | ${k.releases} | ${k.meaning} | ${here} |`);
  }
  return rows.join("\n");
}
