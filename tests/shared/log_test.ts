import assert from "node:assert/strict";
import { join } from "node:path";
import { createLogger, textLine } from "../../shared/log.ts";

const TIME = String.raw`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}`;

Deno.test("a text line has the reference's shape, then the fields", () => {
  const date = new Date(2026, 10, 29, 8, 5, 3, 7);
  assert.equal(
    textLine(date, "info", "[c1] New client", { client: "c1", port: 2001 }),
    "2026-11-29 08:05:03,007 [INFO   ]  [c1] New client client=c1 port=2001\n",
  );
  assert.equal(
    textLine(date, "warn", "Webots exited", { world: "a b.wbt", code: null, args: ["x"] }),
    '2026-11-29 08:05:03,007 [WARNING]  Webots exited world="a b.wbt" code=null args=["x"]\n',
  );
  assert.equal(textLine(date, "error", "x", {}), "2026-11-29 08:05:03,007 [ERROR  ]  x\n");
});

Deno.test("the log file holds text lines by default and JSON lines with logFormat json", async () => {
  const dir = await Deno.makeTempDir({ prefix: "log-test-" });
  try {
    const text = createLogger({ server: "session", logDir: join(dir, "t"), debug: false });
    text.debug({}, "not at INFO");
    text.child({ client: "c7" }).info({ port: 2001 }, "Webots started");
    text.error({ err: new Error("boom") }, "failed");
    await text.close();
    const lines = (await Deno.readTextFile(join(dir, "t", "session", "output.log")))
      .trimEnd().split("\n");
    assert.equal(lines.length, 2, lines.join("\n"));
    assert.match(
      lines[0]!,
      new RegExp(`^${TIME} \\[INFO   \\]  Webots started client=c7 port=2001$`),
    );
    assert.match(lines[1]!, new RegExp(`^${TIME} \\[ERROR  \\]  failed err="Error: boom\\\\n`));

    const json = createLogger({
      server: "session",
      logDir: join(dir, "j"),
      debug: false,
      format: "json",
    });
    json.child({ client: "c7" }).info({ port: 2001 }, "Webots started");
    await json.close();
    const entry = JSON.parse(await Deno.readTextFile(join(dir, "j", "session", "output.log")));
    assert.equal(entry.msg, "Webots started");
    assert.equal(entry.client, "c7");
    assert.equal(entry.port, 2001);
    assert.equal(entry.server, "session");
    assert.equal(entry.level, 30);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
