import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { ConfigError, validateConfig } from "../../shared/config.ts";
import { sessionSchema } from "../../session/config.ts";
import { simulationSchema } from "../../simulation/config.ts";
import { REFERENCE_KEYS } from "../../docs/reference_keys.ts";

const env = {
  root: "/srv/webots",
  vars: { HOME: "/home/op", WEBOTS_HOME: "/opt/webots" },
  tmpDir: "/tmp",
};

const schemas = { session: sessionSchema, simulation: simulationSchema } as const;
/** What each server's config needs besides the key under test. */
const base = {
  session: { simulationServers: ["localhost:2000"] },
  simulation: {},
} as const;

function validate(server: "session" | "simulation", raw: Record<string, unknown>) {
  const warnings: string[] = [];
  const config = validateConfig(
    schemas[server] as typeof simulationSchema,
    raw,
    "f.json",
    env,
    (line) => warnings.push(line),
  ) as Record<string, unknown>;
  return { config, warnings };
}

Deno.test("every key of the reference servers' configs is accepted the way the list says", () => {
  ok(REFERENCE_KEYS.length >= 40);
  for (const entry of REFERENCE_KEYS) {
    const what = `${entry.server} ${entry.key}`;
    const spec = (schemas[entry.server] as Record<string, Record<string, unknown>>)[entry.key];
    ok(spec !== undefined, `${what} is in the schema`);
    const raw: Record<string, unknown> = { ...base[entry.server], [entry.key]: entry.sample };
    // Keys that only come in pairs.
    if (entry.key === "sslCertificate") raw.sslKey = "ssl/privkey.pem";
    if (entry.key === "sslKey") raw.sslCertificate = "ssl/cert.pem";
    const { config, warnings } = validate(entry.server, raw);
    switch (entry.treatment) {
      case "used":
        equal(spec.ignored, undefined, what);
        equal(spec.aliasOf, undefined, what);
        ok(entry.key in config, what);
        deepEqual(warnings, [], what);
        break;
      case "mapped":
        equal(typeof spec.aliasOf, "string", what);
        equal(entry.key in config, false, what);
        equal(config[spec.aliasOf as string], entry.sample, what);
        deepEqual(warnings, [], what);
        break;
      case "ignored":
        equal(spec.ignored, true, what);
        equal(entry.key in config, false, what);
        deepEqual(warnings, [`f.json: key "${entry.key}" is not used by this server (ignored)`]);
        break;
    }
  }
});

Deno.test("the list names each key once per server", () => {
  const names = REFERENCE_KEYS.map((k) => `${k.server}/${k.key}`);
  equal(new Set(names).size, names.length);
});

Deno.test("the reference's video.json loads with one warning, for publicPort", () => {
  const { config, warnings } = validate("simulation", {
    publicPort: 80,
    multimediaServer: "http://cyberbotics2.cyberbotics.com:9088",
    multimediaStream: "localhost:5004",
  });
  deepEqual(warnings, ['f.json: key "publicPort" is not used by this server (ignored)']);
  equal(config.multimediaServer, "http://cyberbotics2.cyberbotics.com:9088");
  equal(config.multimediaStream, "localhost:5004");
});

Deno.test("an ignored key's value is not looked at: notify may be a string or a list", () => {
  for (const notify of ["https://webots.cloud/x", ["https://a/", "https://b/"]]) {
    deepEqual(validate("simulation", { notify }).warnings, [
      'f.json: key "notify" is not used by this server (ignored)',
    ]);
  }
});

Deno.test("a key no reference ever had is still an unknown key", () => {
  for (const server of ["session", "simulation"] as const) {
    throws(() => validate(server, { ...base[server], publicPorts: 80 }), (e: unknown) => {
      equal((e as Error).message, 'f.json: unknown key "publicPorts"');
      return e instanceof ConfigError;
    });
  }
  // Simulation-only reference keys are unknown to the session server.
  throws(
    () => validate("session", { ...base.session, publicPort: 80 }),
    /^ConfigError: f\.json: unknown key "publicPort"$/,
  );
});

Deno.test("server (R2022a+) is read as fullyQualifiedDomainName; both set must agree", () => {
  equal(
    validate("simulation", { server: "sim.example.org" }).config.fullyQualifiedDomainName,
    "sim.example.org",
  );
  equal(
    validate("simulation", { server: "a.org", fullyQualifiedDomainName: "a.org" }).config
      .fullyQualifiedDomainName,
    "a.org",
  );
  throws(
    () => validate("simulation", { server: "a.org", fullyQualifiedDomainName: "b.org" }),
    (e: unknown) => {
      equal(
        (e as Error).message,
        'f.json: keys "server" and "fullyQualifiedDomainName" disagree; keep one of them',
      );
      return e instanceof ConfigError;
    },
  );
  throws(() => validate("simulation", { server: 3 }), /key "server" must be a string/);
});
