/**
 * The lease secret's config keys on both servers: `leaseSecret` or `leaseSecretFile` (exactly one),
 * the file read at start, `requireLease` needing a secret, and no error message that quotes it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { sessionSchema } from "../../session/config.ts";
import { sessionPermissions } from "../../session/permissions.ts";
import { ConfigError, validateConfig } from "../../shared/config.ts";
import { carriesSecret, LeaseSecretError, readLeaseSecret } from "../../shared/lease_secret.ts";
import { simulationSchema } from "../../simulation/config.ts";

const ENV = { root: "/srv", vars: {}, tmpDir: "/tmp" };
const SECRET = "a-random-lease-secret-42";

Deno.test("leaseSecret and leaseSecretFile: one of them, on both servers", () => {
  const servers = { simulationServers: ["sim.test:2000"] };
  for (const [schema, base] of [[sessionSchema, servers], [simulationSchema, {}]] as const) {
    const off = validateConfig(schema, { ...base }, "c.json", ENV);
    assert.equal(off.leaseSecret, undefined);
    assert.equal(off.leaseSecretFile, undefined);
    const inline = validateConfig(schema, { ...base, leaseSecret: SECRET }, "c.json", ENV);
    assert.equal(inline.leaseSecret, SECRET);
    const file = validateConfig(
      schema,
      { ...base, leaseSecretFile: "secrets/lease" },
      "c.json",
      ENV,
    );
    assert.equal(file.leaseSecretFile, "/srv/secrets/lease");
    assert.throws(
      () =>
        validateConfig(
          schema,
          { ...base, leaseSecret: SECRET, leaseSecretFile: "x" },
          "c.json",
          ENV,
        ),
      (error: Error) =>
        error instanceof ConfigError && /both set; keep one/.test(error.message) &&
        !error.message.includes(SECRET),
    );
    assert.throws(
      () => validateConfig(schema, { ...base, leaseSecret: "short" }, "c.json", ENV),
      (error: Error) =>
        /at least 16 characters/.test(error.message) &&
        !error.message.includes('short"'),
    );
  }
});

Deno.test("simulation server: leaseTimeout defaults to 30 s, requireLease to false and needs a secret", () => {
  const config = validateConfig(simulationSchema, {}, "c.json", ENV);
  assert.equal(config.leaseTimeout, 30);
  assert.equal(config.requireLease, false);
  assert.throws(
    () => validateConfig(simulationSchema, { requireLease: true }, "c.json", ENV),
    /key "requireLease" needs "leaseSecret" or "leaseSecretFile"/,
  );
  const on = validateConfig(
    simulationSchema,
    { requireLease: true, leaseSecretFile: "/etc/lease", leaseTimeout: 5 },
    "c.json",
    ENV,
  );
  assert.equal(on.requireLease, true);
  assert.equal(on.leaseTimeout, 5);
});

Deno.test("the secret file is read at start, trimmed; an unusable one is a clear error without its content", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lease-secret-" });
  try {
    const file = join(dir, "lease");
    await Deno.writeTextFile(file, `  ${SECRET}\n`);
    assert.equal(await readLeaseSecret({ leaseSecretFile: file }), SECRET);
    assert.equal(await readLeaseSecret({ leaseSecret: SECRET }), SECRET);
    assert.equal(await readLeaseSecret({}), undefined);
    await Deno.writeTextFile(file, "tooshort\n");
    await assert.rejects(
      () => readLeaseSecret({ leaseSecretFile: file }),
      (error: Error) =>
        error instanceof LeaseSecretError && error.message.includes(file) &&
        /at least 16 characters/.test(error.message) && !error.message.includes("tooshort"),
    );
    await assert.rejects(
      () => readLeaseSecret({ leaseSecretFile: join(dir, "missing") }),
      /cannot read leaseSecretFile .*missing: NotFound/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the session server may read the secret file (permissions derived from the config)", () => {
  const config = validateConfig(
    sessionSchema,
    {
      simulationServers: ["sim.test:2000"],
      leaseSecretFile: "/etc/webots/lease",
    },
    "c",
    ENV,
  );
  const flags = sessionPermissions(config, { root: "/srv", configFile: "/srv/c.json" });
  assert.ok(flags.some((f) => f.startsWith("--allow-read=") && f.includes("/etc/webots/lease")));
});

Deno.test("carriesSecret accepts exactly `Bearer <secret>`", () => {
  assert.equal(carriesSecret(`Bearer ${SECRET}`, SECRET), true);
  assert.equal(carriesSecret(`bearer  ${SECRET} `, SECRET), true);
  assert.equal(carriesSecret(null, SECRET), false);
  assert.equal(carriesSecret(SECRET, SECRET), false);
  assert.equal(carriesSecret(`Bearer ${SECRET}x`, SECRET), false);
  assert.equal(carriesSecret(`Basic ${SECRET}`, SECRET), false);
});
