import { deepEqual, equal, match, throws } from "node:assert/strict";
import { ConfigError, parseJsonc, schemaTable, validateConfig } from "../../shared/config.ts";
import { sessionSchema } from "../../session/config.ts";
import { simulationSchema } from "../../simulation/config.ts";

const env = {
  root: "/srv/webots",
  vars: { HOME: "/home/op", WEBOTS_HOME: "/opt/webots" },
  tmpDir: "/tmp",
};

Deno.test("config files may contain comments and trailing commas", () => {
  const raw = parseJsonc(
    '// c\n{ "port": 1999, /* x */ "simulationServers": ["a:1",], }',
    "f.json",
  );
  deepEqual(raw, { port: 1999, simulationServers: ["a:1"] });
});

Deno.test("a syntax error names the file and the line", () => {
  throws(() => parseJsonc('{\n  "port": ,\n}', "bad.json"), (e: unknown) => {
    equal((e as Error).message, "bad.json: ValueExpected at line 2");
    return e instanceof ConfigError;
  });
});

Deno.test("session defaults match the reference and new keys default to 5 s", () => {
  const config = validateConfig(sessionSchema, { simulationServers: ["localhost:2000"] }, "f", env);
  equal(config.port, 1999);
  equal(config.server, "localhost");
  equal(config.portRewrite, false);
  equal(config.mailServerPort, 0);
  equal(config.logDir, "/srv/webots/log");
  equal(config.debug, false);
  equal(config.loadRefresh, 5);
  equal(config.loadTimeout, 5);
  equal(config.administrator, undefined);
});

Deno.test("simulation defaults match the reference", () => {
  const config = validateConfig(simulationSchema, {}, "f", env);
  equal(config.port, 2000);
  equal(config.webotsHome, "/opt/webots");
  equal(config.projectsDir, "/opt/webots/projects/samples/robotbenchmark");
  equal(config.keyDir, "/srv/webots/key");
  equal(config.maxConnections, 100);
  equal(config.monitorLogEnabled, true);
  equal(config.instancesDir, "/tmp/webots/instances");
  equal(config.startTimeout, 60);
  equal(config.killTimeout, 5);
});

Deno.test("relative paths resolve against the project root, ~ and $VAR expand", () => {
  const config = validateConfig(
    simulationSchema,
    { logDir: "~/logs", keyDir: "$WEBOTS_HOME/keys", projectsDir: "projects" },
    "f",
    env,
  );
  equal(config.logDir, "/home/op/logs");
  equal(config.keyDir, "/opt/webots/keys");
  equal(config.projectsDir, "/srv/webots/projects");
});

Deno.test("an unknown key, a wrong type or a missing required key is one clear error", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ simulationServers: [], prot: 1 }, 'f.json: unknown key "prot"'],
    [{ simulationServers: "a:1" }, 'f.json: key "simulationServers" must be an array of strings'],
    [{ simulationServers: [], port: "1999" }, 'f.json: key "port" must be an integer'],
    [{ simulationServers: [], port: 70000 }, 'f.json: key "port" must be at most 65535'],
    [{ simulationServers: [], debug: 1 }, 'f.json: key "debug" must be true or false'],
    [{}, 'f.json: missing required key "simulationServers"'],
    [
      { simulationServers: [], sslKey: "k.pem" },
      'f.json: key "sslKey" needs key "sslCertificate" as well',
    ],
  ];
  for (const [raw, message] of cases) {
    throws(() => validateConfig(sessionSchema, raw, "f.json", env), (e: unknown) => {
      equal((e as Error).message, message);
      return e instanceof ConfigError;
    });
  }
});

Deno.test("the reference's ssl key is accepted and ignored", () => {
  const config = validateConfig(sessionSchema, { simulationServers: [], ssl: true }, "f", env);
  equal("ssl" in config, false);
});

Deno.test("sandbox accepts only none and firejail", () => {
  throws(
    () => validateConfig(simulationSchema, { sandbox: "docker" }, "f", env),
    /key "sandbox" must be one of "none", "firejail"/,
  );
});

Deno.test("schema tables list every key with its default", () => {
  const table = schemaTable(sessionSchema);
  for (const key of Object.keys(sessionSchema)) match(table, new RegExp(`\\| \`${key}\` \\|`));
  match(table, /\| `loadRefresh` \| number \| `5` \|/);
  match(table, /\| `simulationServers` \| string\[\] \| required \|/);
});

Deno.test("what the config alone decides is checked at start, one line naming file and key", () => {
  const simulation: [Record<string, unknown>, string][] = [
    [
      { multimediaServer: "http://relay:9088;ssl" },
      `f.json: key "multimediaServer" must not contain ';', '"', spaces or control characters: "http://relay:9088;ssl"`,
    ],
    [
      { multimediaStream: 'a"b' },
      `f.json: key "multimediaStream" must not contain ';', '"', spaces or control characters: "a\\"b"`,
    ],
    [
      { multimediaStream: "localhost:5004 x" },
      `f.json: key "multimediaStream" must not contain ';', '"', spaces or control characters: "localhost:5004 x"`,
    ],
    [{ multimediaServer: "" }, 'f.json: key "multimediaServer" must not be empty'],
    [
      { port: 65500, maxConnections: 100 },
      'f.json: key "maxConnections" reaches past port 65535 with port 65500 (Webots streams on port+1 … port+maxConnections)',
    ],
    [
      { fullyQualifiedDomainName: "https://sim.example.org" },
      'f.json: key "fullyQualifiedDomainName" must name a host without a scheme such as https://: "https://sim.example.org"',
    ],
    [
      { server: "sim example" },
      'f.json: key "server" must not contain spaces or control characters: "sim example"',
    ],
    [
      { githubArchiveBase: "codeload.github.com" },
      'f.json: key "githubArchiveBase" must be an http:// or https:// URL: "codeload.github.com"',
    ],
    [
      { allowedRepositories: ["https://github.com/a/", ""] },
      'f.json: key "allowedRepositories" must not hold an empty prefix',
    ],
    [
      { blockedRepositories: [""] },
      'f.json: key "blockedRepositories" must not hold an empty prefix',
    ],
    [{ fileRoots: ["/srv/p", "/"] }, 'f.json: key "fileRoots" must not name the root folder /'],
    [
      { fileRoots: ["/srv/p"], keyDir: "/srv/p/keys" },
      'f.json: key "fileRoots" must not overlap keyDir (/srv/p/keys and root /srv/p)',
    ],
    [
      { fileRoots: ["/srv/p"], sslKey: "/srv/p/tls/key.pem", sslCertificate: "/etc/c.pem" },
      'f.json: key "fileRoots" must not overlap sslKey (/srv/p/tls/key.pem and root /srv/p)',
    ],
    [
      { fileRoots: ["/tmp"] },
      'f.json: key "fileRoots" must not overlap instancesDir (/tmp/webots/instances and root /tmp)',
    ],
    [
      { fileRoots: ["/srv/i/p"], instancesDir: "/srv/i" },
      'f.json: key "fileRoots" must not overlap instancesDir (/srv/i and root /srv/i/p)',
    ],
  ];
  for (const [raw, message] of simulation) {
    throws(() => validateConfig(simulationSchema, raw, "f.json", env), (e: unknown) => {
      equal((e as Error).message, message);
      return e instanceof ConfigError;
    });
  }
  const session: [Record<string, unknown>, string][] = [
    [
      { simulationServers: ["localhost:2000", "ws://sim:2000"] },
      'f.json: key "simulationServers" must name a host without a scheme such as https://: "ws://sim:2000"',
    ],
    [{ simulationServers: [""] }, 'f.json: key "simulationServers" must not be empty'],
    [
      { simulationServers: [], server: "a\tb" },
      'f.json: key "server" must not contain spaces or control characters: "a\\tb"',
    ],
  ];
  for (const [raw, message] of session) {
    throws(() => validateConfig(sessionSchema, raw, "f.json", env), (e: unknown) => {
      equal((e as Error).message, message);
      return e instanceof ConfigError;
    });
  }
  // What the checks let through.
  const ok = validateConfig(
    simulationSchema,
    {
      port: 65400,
      maxConnections: 135,
      multimediaServer: "http://cyberbotics2.cyberbotics.com:9088",
      fullyQualifiedDomainName: "example.org/sim",
      githubArchiveBase: "http://127.0.0.1:8080",
    },
    "f.json",
    env,
  );
  equal(ok.maxConnections, 135);
  equal(ok.fullyQualifiedDomainName, "example.org/sim");
});

Deno.test("fileRoots resolve like paths and default to projectsDir", () => {
  deepEqual(validateConfig(simulationSchema, {}, "f", env).fileRoots, [
    "/opt/webots/projects/samples/robotbenchmark",
  ]);
  deepEqual(
    validateConfig(simulationSchema, { fileRoots: ["projects", "$WEBOTS_HOME/projects"] }, "f", env)
      .fileRoots,
    ["/srv/webots/projects", "/opt/webots/projects"],
  );
  deepEqual(validateConfig(simulationSchema, { fileRoots: [] }, "f", env).fileRoots, []);
});
