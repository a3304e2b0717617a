import assert from "node:assert/strict";
import { AssetError, loadAssets } from "../../shared/assets.ts";
import { sessionAssets } from "../../session/page_assets.ts";
import { simulationAssets } from "../../simulation/page_assets.ts";

Deno.test("every page asset of both servers exists and is served with its type", async () => {
  const lists = { session: sessionAssets(), simulation: simulationAssets() };
  for (const [server, list] of Object.entries(lists)) {
    const assets = await loadAssets(list);
    for (const name of ["uPlot.iife.min.js", "uPlot.min.css", "live_chart.js"]) {
      assert.ok(assets.names.includes(name), `${server} serves ${name}`);
    }
    const js = assets.respond(new Request("http://h/assets/uPlot.iife.min.js"))!;
    assert.equal(js.status, 200);
    assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.match(await js.text(), /uPlot/);
    const css = assets.respond(new Request("http://h/assets/uPlot.min.css"))!;
    assert.equal(css.headers.get("content-type"), "text/css; charset=utf-8");
    await css.body?.cancel();
  }
});

Deno.test("assets answer 304 to a matching ETag, 404 to unknown names, nothing off /assets/", async () => {
  const assets = await loadAssets(simulationAssets());
  const first = assets.respond(new Request("http://h/assets/live_chart.js"))!;
  await first.body?.cancel();
  const etag = first.headers.get("etag")!;
  assert.match(etag, /^"[0-9a-f]{16}"$/);
  const again = assets.respond(
    new Request("http://h/assets/live_chart.js", { headers: { "if-none-match": etag } }),
  )!;
  assert.equal(again.status, 304);
  const head = assets.respond(new Request("http://h/assets/live_chart.js", { method: "HEAD" }))!;
  assert.equal(head.status, 200);
  assert.equal(head.body, null);
  const post = assets.respond(new Request("http://h/assets/live_chart.js", { method: "POST" }))!;
  assert.equal(post.status, 405);
  await post.body?.cancel();
  for (const path of ["/assets/session_home.js", "/assets/nope.js", "/assets/"]) {
    const response = assets.respond(new Request(`http://h${path}`))!;
    assert.equal(response.status, 404, path);
    await response.body?.cancel();
  }
  assert.equal(assets.respond(new Request("http://h/monitor")), undefined);
});

Deno.test("a missing asset stops loading with a message naming it", async () => {
  await assert.rejects(
    loadAssets([{ name: "x.js", url: "file:///nonexistent/node_modules/x.js" }]),
    (error: unknown) =>
      error instanceof AssetError && error.message.includes("x.js") &&
      error.message.includes("deno install"),
  );
});
