/**
 * monitor.csv on a log folder that fills up: one error line, lines dropped meanwhile, and the file
 * written again once there is room, with the loss logged. A real file on a small tmpfs (root
 * only) and an injected clock for the retry pause.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { emptySnapshot } from "../../simulation/metrics.ts";
import { csvLine, MONITOR_CSV_HEADER, openMonitorCsv } from "../../simulation/monitor_csv.ts";
import { recordingLogger } from "../fakes/logger.ts";
import { eventually } from "../helpers/simulation_fixture.ts";
import { fill, mountTmpfs, tmpfsUnavailable, unmount } from "../helpers/tmpfs.ts";

const unavailable = await tmpfsUnavailable();
if (unavailable) console.error(`monitor.csv disk-full test skipped: ${unavailable}`);

Deno.test({
  name:
    "a full disk costs monitor.csv one error line, and lines are written again once it has room",
  ignore: unavailable !== undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "monitor-csv-test-" });
    const logDir = join(dir, "log");
    await Deno.mkdir(logDir);
    await mountTmpfs(logDir, 64 * 1024);
    try {
      const path = join(logDir, "simulation", "monitor.csv");
      const logger = recordingLogger();
      let time = 0;
      const csv = openMonitorCsv(path, logger, { now: () => time, retryMs: 60_000 });
      const snapshots = Array.from({ length: 302 }, (_, i) => emptySnapshot(i));
      csv.append(snapshots[0]!);
      await eventually(async () =>
        (await Deno.readTextFile(path).catch(() => "")).includes(csvLine(snapshots[0]!))
      );
      const filler = await fill(logDir);
      // 300 lines (12 kB) outgrow the page the file already has: the disk refuses some.
      for (const snapshot of snapshots.slice(1, 301)) csv.append(snapshot);
      await eventually(() => logger.lines.length > 0, 10_000, "the error line");
      await Deno.remove(filler);
      time = 59_999;
      csv.append(snapshots[0]!);
      time = 60_000;
      csv.append(snapshots[301]!);
      await csv.close();
      const errors = logger.lines.filter((l) => l.level === "error");
      assert.equal(errors.length, 1, JSON.stringify(errors));
      assert.match(
        errors[0]!.message,
        /^Cannot write to '.*monitor\.csv': .*No space left on device.*; monitor lines are dropped until it works again$/,
      );
      const resumed = logger.lines.filter((l) => l.message.startsWith(`Writing '${path}' again`));
      assert.equal(resumed.length, 1);
      const dropped = resumed[0]!.fields.dropped as number;
      const lines = (await Deno.readTextFile(path)).split("\n");
      assert.equal(lines.pop(), "");
      assert.equal(lines[0], MONITOR_CSV_HEADER);
      assert.equal(lines.at(-1), csvLine(snapshots[301]!));
      // Every line is either in the file, whole, or counted as dropped (one may be torn).
      const whole = new Set(snapshots.map((s) => csvLine(s)));
      const written = lines.slice(1).filter((line) => whole.has(line));
      assert.ok(lines.length - 1 - written.length <= 1, "at most one torn line");
      assert.equal(written.length + dropped, 303);
      assert.ok(dropped >= 2, `dropped ${dropped}`);
    } finally {
      await unmount(logDir).catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
