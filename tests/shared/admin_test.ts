import { deepEqual, equal, match, throws } from "node:assert/strict";
import { adminGate, adminJson, bearerToken } from "../../shared/admin.ts";
import { ConfigError, validateConfig } from "../../shared/config.ts";
import { sessionSchema } from "../../session/config.ts";
import { simulationSchema } from "../../simulation/config.ts";
import { recordingLogger, silentLogger } from "../fakes/logger.ts";

const TOKEN = "s3cret-admin-token-0123456789";
const INFO = { remoteAddr: { transport: "tcp", hostname: "10.1.2.3", port: 5555 } as Deno.NetAddr };
const ok = () => adminJson({ ok: true });

function get(path: string, authorization?: string): Request {
  return new Request(`http://host${path}`, {
    headers: authorization === undefined ? {} : { authorization },
  });
}

Deno.test("without adminToken every admin path answers 404, whatever it sends", async () => {
  const gate = adminGate(undefined, silentLogger, ok);
  equal((await gate(get("/admin/sessions", `Bearer ${TOKEN}`), INFO)).status, 404);
  equal((await gate(get("/admin/sessions"), INFO)).status, 404);
});

Deno.test("the right bearer token reaches the route", async () => {
  const gate = adminGate(TOKEN, silentLogger, ok);
  const response = await gate(get("/admin/sessions", `Bearer ${TOKEN}`), INFO);
  equal(response.status, 200);
  deepEqual(await response.json(), { ok: true });
  equal(response.headers.get("cache-control"), "no-store");
  equal((await gate(get("/admin/x", `bearer   ${TOKEN} `), INFO)).status, 200);
});

Deno.test("a missing or wrong token gets 401 and one log line that never holds what was sent", async () => {
  const logger = recordingLogger();
  const gate = adminGate(TOKEN, logger, ok);
  const attempts = [
    undefined,
    `Bearer ${TOKEN}x`,
    `Bearer ${TOKEN.slice(0, -1)}`,
    `Basic ${btoa(`admin:${TOKEN}`)}`,
    TOKEN,
    "Bearer ",
  ];
  for (const authorization of attempts) {
    const response = await gate(get("/admin/drain?x=1", authorization), INFO);
    equal(response.status, 401, String(authorization));
    match(response.headers.get("www-authenticate") ?? "", /^Bearer/);
    await response.body?.cancel();
  }
  equal(logger.lines.length, attempts.length);
  for (const line of logger.lines) {
    equal(line.level, "warn");
    equal(line.message, "admin request refused");
    equal(line.fields.path, "/admin/drain");
    equal(line.fields.remote, "10.1.2.3");
    const text = JSON.stringify(line);
    equal(text.includes(TOKEN.slice(0, 12)), false, text);
  }
  deepEqual(logger.lines.map((line) => line.fields.token), [
    "missing",
    "wrong",
    "wrong",
    "missing",
    "missing",
    "missing",
  ]);
});

Deno.test("bearerToken reads only the Bearer scheme", () => {
  equal(bearerToken("Bearer abc"), "abc");
  equal(bearerToken("bearer abc"), "abc");
  equal(bearerToken("Bearer a b"), undefined);
  equal(bearerToken("Basic abc"), undefined);
  equal(bearerToken(null), undefined);
});

Deno.test("adminToken is optional on both servers and refused when shorter than 16 characters", () => {
  const vars = { root: "/srv", vars: {}, tmpDir: "/tmp" };
  const cases = [
    { schema: sessionSchema, base: { simulationServers: ["localhost:2000"] } },
    { schema: simulationSchema, base: {} },
  ] as const;
  for (const { schema, base } of cases) {
    const read = (extra: Record<string, unknown>) =>
      validateConfig(schema, { ...base, ...extra }, "c.json", vars);
    equal(read({}).adminToken, undefined);
    equal(read({ adminToken: TOKEN }).adminToken, TOKEN);
    throws(
      () => read({ adminToken: "short" }),
      (error: unknown) => error instanceof ConfigError && /at least 16/.test(error.message),
    );
  }
});
