/**
 * The origin rules of `allowedOrigins` (shared/origins.ts), in-process: which upgrades are
 * refused, which CORS headers `/session` gets, and how the key is validated on both servers.
 */
import assert from "node:assert/strict";
import {
  corsHeadersFor,
  createOriginPolicy,
  originProblem,
  originRefusal,
  preparedCorsResponses,
} from "../../shared/origins.ts";
import { ConfigError, validateConfig } from "../../shared/config.ts";
import { sessionSchema } from "../../session/config.ts";
import { simulationSchema } from "../../simulation/config.ts";
import { CORS_HEADERS } from "../../shared/http.ts";

const ENV = { root: "/srv", vars: {}, tmpDir: "/tmp" };
const withOrigin = (origin?: string) =>
  new Request("http://server.test/", origin === undefined ? {} : { headers: { origin } });

Deno.test("without allowedOrigins every upgrade is allowed and CORS stays *", () => {
  const policy = createOriginPolicy(undefined);
  assert.equal(policy.restricted, false);
  assert.equal(policy.refused(withOrigin("https://anything.test")), undefined);
  assert.equal(policy.refused(withOrigin()), undefined);
  assert.deepEqual(corsHeadersFor(policy, "https://anything.test", CORS_HEADERS), CORS_HEADERS);
});

Deno.test("with allowedOrigins an upgrade from another origin is refused, one without Origin is not", () => {
  const policy = createOriginPolicy(["https://example.org", "http://localhost:8080"]);
  assert.equal(policy.refused(withOrigin("https://example.org")), undefined);
  assert.equal(policy.refused(withOrigin("http://localhost:8080")), undefined);
  assert.equal(policy.refused(withOrigin("https://evil.test")), "https://evil.test");
  assert.equal(policy.refused(withOrigin("https://example.org:443")), "https://example.org:443");
  assert.equal(policy.refused(withOrigin("http://example.org")), "http://example.org");
  assert.equal(policy.refused(withOrigin("null")), "null", "sandboxed pages send null");
  assert.equal(policy.refused(withOrigin()), undefined, "non-browser clients send no Origin");
});

Deno.test("the 403 answer of a refused upgrade", async () => {
  const response = originRefusal();
  assert.equal(response.status, 403);
  assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(await response.text(), "Forbidden: origin not allowed\n");
});

Deno.test("with allowedOrigins CORS reflects an allowed origin and names no other", () => {
  const policy = createOriginPolicy(["https://example.org"]);
  assert.deepEqual(corsHeadersFor(policy, "https://example.org", CORS_HEADERS), {
    ...CORS_HEADERS,
    "access-control-allow-origin": "https://example.org",
    vary: "origin",
  });
  assert.deepEqual(corsHeadersFor(policy, "https://evil.test", CORS_HEADERS), { vary: "origin" });
  assert.deepEqual(corsHeadersFor(policy, null, CORS_HEADERS), { vary: "origin" });
});

Deno.test("prepared CORS answers pick the request's origin and follow the body", async () => {
  const policy = createOriginPolicy(["https://a.test", "https://b.test"]);
  const answer = preparedCorsResponses(policy, { "content-type": "text/html" }, CORS_HEADERS);
  const cases: [string | undefined, string | null][] = [
    ["https://a.test", "https://a.test"],
    ["https://b.test", "https://b.test"],
    ["https://c.test", null],
    [undefined, null],
  ];
  for (const body of ["ws://one:2000", "ws://two:2000"]) {
    for (const [origin, allowed] of cases) {
      const response = answer(withOrigin(origin), body);
      assert.equal(await response.text(), body);
      assert.equal(response.headers.get("access-control-allow-origin"), allowed, String(origin));
      assert.equal(response.headers.get("vary"), "origin");
      assert.equal(response.headers.get("content-type"), "text/html");
      assert.equal(
        response.headers.has("access-control-allow-methods"),
        allowed !== null,
        String(origin),
      );
    }
  }
  const open = preparedCorsResponses(createOriginPolicy(undefined), {}, CORS_HEADERS);
  const response = open(withOrigin("https://c.test"), "x");
  await response.body?.cancel();
  assert.equal(response.headers.get("access-control-allow-origin"), "*");
  assert.equal(response.headers.get("vary"), null);
});

Deno.test("an allowedOrigins entry must be an origin as browsers send it", () => {
  assert.equal(originProblem("https://example.org"), undefined);
  assert.equal(originProblem("http://localhost:1999"), undefined);
  for (
    const [value, words] of [
      ["example.org", "such as"],
      ["https://example.org/", "no path or trailing slash"],
      ["https://Example.org", "lower-case host"],
      ["https://example.org:443", '"https://example.org"'],
      ["https://example.org/app", "no path"],
      ["ftp://example.org", "http or https"],
      ["*", "such as"],
    ]
  ) {
    const problem = originProblem(value!);
    assert.ok(problem?.includes(words!), `${value}: ${problem}`);
  }
});

Deno.test("allowedOrigins is a key of both servers, checked when the config is read", () => {
  for (
    const [schema, base] of [
      [sessionSchema, { simulationServers: ["a:2000"] }],
      [simulationSchema, {}],
    ] as const
  ) {
    const ok = validateConfig(
      schema,
      { ...base, allowedOrigins: ["https://example.org"] },
      "c.json",
      ENV,
    );
    assert.deepEqual(ok.allowedOrigins, ["https://example.org"]);
    assert.equal(validateConfig(schema, { ...base }, "c.json", ENV).allowedOrigins, undefined);
    assert.throws(
      () =>
        validateConfig(
          schema,
          { ...base, allowedOrigins: ["https://example.org/"] },
          "c.json",
          ENV,
        ),
      (error: Error) =>
        error instanceof ConfigError &&
        error.message.startsWith('c.json: key "allowedOrigins" must list'),
    );
  }
});
