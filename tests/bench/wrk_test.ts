/**
 * The benchmark's load-generator wrapper: reading wrk's report, finding wrk, and one real short
 * run against a loopback server (skipped where wrk is not installed: it is a bench prerequisite,
 * not a test one).
 */
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { findWrk, parseWrkReport, runWrk, WRK_MISSING } from "../../bench/wrk.ts";

const REPORT = `Running 5s test @ http://127.0.0.1:40000/session
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   617.11us  200.03us   8.97ms   93.12%
    Req/Sec   104.10k     5.12k  110.01k    80.00%
  518123 requests in 5.00s, 80.04MB read
  Socket errors: connect 0, read 2, write 1, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec: 103600.12
Transfer/sec:     16.01MB
`;

Deno.test("wrk's report gives requests/s, requests, duration and every kind of error", () => {
  deepEqual(parseWrkReport(REPORT), {
    requestsPerSecond: 103600.12,
    requests: 518123,
    seconds: 5,
    errors: 10,
  });
  const clean = REPORT.replace(/^\s*(Socket errors|Non-2xx).*\n/gm, "")
    .replace("in 5.00s", "in 1.50m");
  deepEqual(parseWrkReport(clean), {
    requestsPerSecond: 103600.12,
    requests: 518123,
    seconds: 90,
    errors: 0,
  });
});

Deno.test("a report that is not wrk's is refused", () => {
  let error: unknown;
  try {
    parseWrkReport("unable to connect to 127.0.0.1:1 Connection refused\n");
  } catch (e) {
    error = e;
  }
  ok(error instanceof Error);
  match(error.message, /cannot read wrk's report/);
});

Deno.test("a missing wrk is reported with the install command", () => {
  equal(findWrk(["/nonexistent/wrk", "/nonexistent/bin/wrk"]), undefined);
  match(WRK_MISSING, /apt-get install -y wrk/);
  equal(WRK_MISSING.includes("\n"), false);
});

Deno.test({
  name: "wrk drives a loopback server and its own CPU time is measured",
  ignore: findWrk() === undefined,
  async fn() {
    let served = 0;
    await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
      served++;
      return new Response("ok");
    });
    const result = await runWrk(findWrk()!, `http://127.0.0.1:${server.addr.port}/`, {
      threads: 1,
      connections: 2,
      seconds: 1,
    });
    equal(result.errors, 0);
    ok(result.requests > 0, "some requests");
    // wrk counts the answers it read; the server may have answered a few more as it stopped.
    ok(served >= result.requests, `served ${served} >= counted ${result.requests}`);
    ok(result.seconds >= 0.9 && result.seconds <= 1.5, `seconds ${result.seconds}`);
    ok(result.wrkCpuSeconds > 0, `wrk used ${result.wrkCpuSeconds} s of CPU`);
    ok(result.wrkCpuSeconds <= result.seconds * 1.5, `wrk used ${result.wrkCpuSeconds} s`);
  },
});
