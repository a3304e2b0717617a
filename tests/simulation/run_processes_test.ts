/**
 * The ownership rules of the run-process scans, on a scripted process table behind the fake
 * command runner, and the TERM → grace → KILL rounds on a fake clock.
 */
import assert from "node:assert/strict";
import { FakeClock, flush } from "../fakes/fake_clock.ts";
import { recordingLogger } from "../fakes/logger.ts";
import { type FakeProc, ProcessTable } from "../fakes/process_table.ts";
import {
  isMarker,
  type Leader,
  LEADER_WAIT_MS,
  MAX_KILL_ROUNDS,
  newMarker,
  parseStat,
  type ProcessRow,
  runMembers,
} from "../../simulation/run_processes.ts";

const RUN = "0123456789abcdef0123456789abcdef";
const OTHER = "fedcba9876543210fedcba9876543210";
const SELF = 100;

const marked = (marker = RUN) => ({ WEBOTS_SERVER_RUN: marker, PATH: "/usr/bin" });

/** The server (100, in group and session 90 with its launcher) and init. */
function base(): FakeProc[] {
  return [
    { pid: 1, ppid: 0, pgid: 1, sid: 1, startTime: 1, env: {} },
    { pid: 90, ppid: 1, pgid: 90, sid: 90, startTime: 5, env: {} },
    { pid: SELF, ppid: 90, pgid: 90, sid: 90, startTime: 6, env: {} },
  ];
}

/**
 * A run: Webots 200 (own group and session), a controller in its group, one that left the group
 * and the session (setsid), one that cleared its environment but stayed in the group, a child of
 * the escaped one that cleared its environment and called setsid again, and a process that
 * cleared its environment in the escaped one's session.
 */
function run(marker = RUN, at = 200): FakeProc[] {
  return [
    { pid: at, ppid: SELF, pgid: at, sid: at, startTime: 1000, env: marked(marker) },
    { pid: at + 1, ppid: at, pgid: at, sid: at, startTime: 1001, env: marked(marker) },
    { pid: at + 2, ppid: at, pgid: at + 2, sid: at + 2, startTime: 1002, env: marked(marker) },
    { pid: at + 3, ppid: at, pgid: at, sid: at, startTime: 1003, env: {} },
    { pid: at + 4, ppid: at + 2, pgid: at + 4, sid: at + 4, startTime: 1004, env: {} },
    { pid: at + 5, ppid: 1, pgid: at + 5, sid: at + 2, startTime: 1005, env: {} },
  ];
}

const row = (p: FakeProc): ProcessRow => ({
  pid: p.pid,
  ppid: p.ppid,
  pgid: p.pgid,
  sid: p.sid,
  state: p.state ?? "S",
  startTime: String(p.startTime),
});

/**
 * Runs `promise` to its end, moving the fake clock on a second at a time (the clock fires the
 * timers due within it one by one, in order, letting the scans in between run).
 */
async function drive<T>(clock: FakeClock, promise: Promise<T>): Promise<T> {
  let settled = false;
  promise.then(() => settled = true, () => settled = true);
  while (!settled) await clock.advance(1000);
  return await promise;
}

/** A leader whose group the table signals, and which exits when its pid leaves the table. */
function leaderOf(table: ProcessTable, pgid: number): Leader & { signals: string[] } {
  let exit!: () => void;
  const exited = new Promise<void>((resolve) => exit = resolve);
  const signals: string[] = [];
  return {
    pgid,
    signals,
    exited,
    async signal(name) {
      signals.push(name);
      await table.runCommand("/usr/bin/kill", ["-s", name, "--", `-${pgid}`]);
      if (!table.processes.has(pgid)) exit();
    },
  };
}

Deno.test("a run is its marked processes, their groups and sessions, and their descendants", () => {
  const table = [
    ...base(),
    ...run(),
    // Another run of this server, and an unrelated process of the same user.
    ...run(OTHER, 400),
    { pid: 500, ppid: 90, pgid: 500, sid: 90, startTime: 9, env: {} },
  ].map(row);
  const members = runMembers(table, new Set([200, 201, 202]), SELF);
  assert.deepEqual(members.map((r) => r.pid), [200, 201, 202, 203, 204, 205]);
});

Deno.test("a run never includes the server, its group or session, pid 1, nor a zombie", () => {
  const table = [
    ...base(),
    // A marked process in the server's session and group (as if Webots had not been detached)…
    { pid: 210, ppid: SELF, pgid: 90, sid: 90, startTime: 1010, env: marked() },
    // …one re-parented to init, in a group of its own…
    { pid: 211, ppid: 1, pgid: 211, sid: 211, startTime: 1011, env: marked() },
    // …one that joined session 1 and group 0 (what kernel threads show)…
    { pid: 212, ppid: 211, pgid: 0, sid: 1, startTime: 1012, env: marked() },
    // …and a zombie of the run.
    { pid: 213, ppid: 211, pgid: 211, sid: 211, startTime: 1013, env: marked(), state: "Z" },
    // Another process of the server's group, and another of session 1.
    { pid: 91, ppid: 90, pgid: 90, sid: 90, startTime: 7, env: {} },
    { pid: 2, ppid: 0, pgid: 0, sid: 0, startTime: 0, env: {} },
    { pid: 3, ppid: 1, pgid: 3, sid: 1, startTime: 2, env: {} },
  ].map(row);
  const members = runMembers(table, new Set([SELF, 1, 210, 211, 212, 213]), SELF);
  assert.deepEqual(members.map((r) => r.pid), [211, 212]);
});

Deno.test("a scan finds the processes carrying exactly this marker, of the server's user only", async () => {
  const table = new ProcessTable([
    ...base(),
    ...run(),
    // A different marker, one that merely starts with ours, one whose environ cannot be read
    // (setuid), and a process of another user that carries our marker.
    { pid: 300, ppid: 1, pgid: 300, sid: 300, startTime: 3, env: marked(OTHER) },
    { pid: 301, ppid: 1, pgid: 301, sid: 301, startTime: 3, env: marked(`${RUN}0`) },
    { pid: 302, ppid: 1, pgid: 302, sid: 302, startTime: 3, env: undefined },
    { pid: 303, ppid: 1, pgid: 303, sid: 303, startTime: 3, env: marked(), uid: 2000 },
  ]);
  const processes = table.runProcesses(new FakeClock());
  const rows = await processes.scan(RUN);
  assert.deepEqual(rows.map((r) => r.pid), [200, 201, 202, 203, 204, 205]);
  assert.deepEqual(rows[0], {
    pid: 200,
    ppid: SELF,
    pgid: 200,
    sid: 200,
    state: "S",
    startTime: "1000",
  });
  assert.deepEqual(table.commands.map((c) => c.split(" ").slice(0, 5).join(" ")), [
    "/usr/bin/ps -u 1000 -U 1000",
    "/usr/bin/cat /proc/1/stat /proc/90/stat /proc/100/stat /proc/200/stat",
    `/usr/bin/grep -lsFxz -e WEBOTS_SERVER_RUN=${RUN} --`,
  ]);
  assert.deepEqual(await processes.scan(OTHER).then((r) => r.map((p) => p.pid)), [300]);
  // Nothing that is not a marker reaches a command line.
  await assert.rejects(processes.scan("x; rm -rf /"), /not a run marker/);
});

Deno.test("end: TERM to every process of the run, and after the grace period KILL to those that ignore it", async () => {
  const clock = new FakeClock();
  const table = new ProcessTable([
    ...base(),
    ...run().map((p) => p.pid === 202 || p.pid === 204 ? { ...p, ignoreTerm: true } : p),
    { pid: 500, ppid: 90, pgid: 500, sid: 90, startTime: 9, env: {} },
  ]);
  const at: Record<string, number[]> = { TERM: [], KILL: [] };
  table.onCommand = (cmd, args) => {
    if (cmd === "/usr/bin/kill") at[args[1]!]!.push(clock.now());
  };
  const start = clock.now();
  const leader = leaderOf(table, 200);
  const report = await drive(clock, table.runProcesses(clock).end(RUN, 5000, leader));
  assert.deepEqual(leader.signals, ["TERM", "KILL"]);
  // Webots' group had TERM through its leader; the others one by one.
  assert.deepEqual(report.termed, [202, 204, 205]);
  assert.deepEqual(report.killed, [202, 204]);
  assert.deepEqual(report.survivors, []);
  assert.equal(report.graceful, false);
  assert.deepEqual(table.pids, [1, 90, SELF, 500]);
  assert.deepEqual(at.TERM!.map((t) => t - start), [0, 0]);
  // No KILL before the grace period is over.
  assert.ok(at.KILL!.every((t) => t - start >= 5000), String(at.KILL));
  assert.deepEqual(table.signals.filter((s) => s.pid === 500 || s.pid <= SELF), []);
});

Deno.test("end: a run whose processes all obey TERM is over at once, without KILL", async () => {
  const clock = new FakeClock();
  const table = new ProcessTable([...base(), ...run()]);
  const leader = leaderOf(table, 200);
  const ending = table.runProcesses(clock).end(RUN, 5000, leader);
  let over = false;
  ending.then(() => over = true);
  // Without the clock moving: nothing waited for a timer.
  await flush();
  assert.ok(over);
  const report = await ending;
  assert.deepEqual(leader.signals, ["TERM"]);
  assert.equal(report.graceful, true);
  assert.deepEqual(report.killed, []);
  assert.deepEqual(table.signalled("KILL"), []);
  assert.deepEqual(table.pids, [1, 90, SELF]);
});

Deno.test("end: a Webots that ends at TERM and leaves nothing is over after a single scan", async () => {
  const clock = new FakeClock();
  const table = new ProcessTable([
    ...base(),
    ...run().filter((p) => p.pgid === 200),
    // Another run of the same server: neither signalled nor waited for.
    { pid: 300, ppid: SELF, pgid: 300, sid: 300, startTime: 3, env: marked(OTHER) },
  ]);
  const leader = leaderOf(table, 200);
  const ending = table.runProcesses(clock).end(RUN, 5000, leader);
  let over = false;
  ending.then(() => over = true);
  await flush();
  assert.ok(over, "over without the clock moving");
  const report = await ending;
  assert.deepEqual(report, { termed: [], killed: [], survivors: [], graceful: true });
  assert.deepEqual(leader.signals, ["TERM"]);
  assert.deepEqual(table.pids, [1, 90, SELF, 300]);
  // The whole process table was read once: one ps, one cat, one grep.
  assert.deepEqual(table.commands.map((c) => c.split(" ")[0]), [
    "/usr/bin/kill",
    "/usr/bin/ps",
    "/usr/bin/cat",
    "/usr/bin/grep",
  ]);
});

Deno.test("end: a Webots slow to end holds back the TERM of the processes outside its group by LEADER_WAIT_MS at most", async () => {
  const clock = new FakeClock();
  const table = new ProcessTable([
    ...base(),
    ...run().map((p) => p.pid === 200 ? { ...p, ignoreTerm: true } : p),
  ]);
  const termAt: number[] = [];
  const start = clock.now();
  table.onCommand = (cmd, args) => {
    if (cmd === "/usr/bin/kill" && args[1] === "TERM") termAt.push(clock.now() - start);
  };
  const leader = leaderOf(table, 200);
  const report = await drive(clock, table.runProcesses(clock).end(RUN, 5000, leader));
  // Webots' group at once, the others (202, 204, 205) once the wait for Webots is over.
  assert.deepEqual(termAt, [0, LEADER_WAIT_MS]);
  assert.deepEqual(report.termed, [202, 204, 205]);
  // Webots ignored TERM: KILL to its group after the grace period.
  assert.deepEqual(leader.signals, ["TERM", "KILL"]);
  assert.deepEqual(table.signalled("KILL"), [200]);
  assert.equal(report.graceful, false);
  assert.deepEqual(table.pids, [1, 90, SELF]);
});

Deno.test("end without a leader (crash recovery) also ends a run whose Webots is gone", async () => {
  const clock = new FakeClock();
  const table = new ProcessTable([
    ...base(),
    // Webots died: its escaped children are init's now, one ignores TERM.
    { pid: 202, ppid: 1, pgid: 202, sid: 202, startTime: 1002, env: marked(), ignoreTerm: true },
    { pid: 206, ppid: 1, pgid: 206, sid: 206, startTime: 1006, env: marked() },
    { pid: 300, ppid: 1, pgid: 300, sid: 300, startTime: 3, env: marked(OTHER) },
  ]);
  const report = await drive(clock, table.runProcesses(clock).end(RUN, 2000));
  assert.deepEqual(report.termed, [202, 206]);
  assert.deepEqual(report.killed, [202]);
  assert.deepEqual(table.pids, [1, 90, SELF, 300]);
});

Deno.test("a pid reused between the scan and the signal is never signalled", async () => {
  const clock = new FakeClock();
  const table = new ProcessTable([...base(), ...run()]);
  const stranger: FakeProc = { pid: 205, ppid: 1, pgid: 205, sid: 90, startTime: 7777, env: {} };
  let cats = 0;
  table.onCommand = (cmd) => {
    // The second `cat` is the check right before TERM: 205 has exited and its pid was reused.
    if (cmd === "/usr/bin/cat" && ++cats === 2) table.add(stranger);
  };
  const report = await drive(clock, table.runProcesses(clock).end(RUN, 1000, leaderOf(table, 200)));
  assert.ok(!report.termed.includes(205));
  assert.ok(!report.killed.includes(205));
  assert.deepEqual(table.signals.filter((s) => s.pid === 205), []);
  assert.deepEqual(table.processes.get(205), stranger);
  assert.deepEqual(table.pids, [1, 90, SELF, 205]);
});

Deno.test("a process that forks while it is killed cannot outrun the KILL rounds", async () => {
  const clock = new FakeClock();
  const table = new ProcessTable(base());
  let next = 600;
  // Each one forks a marked child (out of the group and session) as KILL reaches it.
  const forker = (pid: number): FakeProc => ({
    pid,
    ppid: 1,
    pgid: pid,
    sid: pid,
    startTime: pid,
    env: marked(),
    ignoreTerm: true,
    onSignal: (signal, t) => {
      if (signal === "KILL" && next < 610) t.add(forker(next++));
    },
  });
  table.add(forker(next++));
  const logger = recordingLogger();
  const processes = table.runProcesses(clock, { logger });
  const report = await drive(clock, processes.end(RUN, 1000));
  assert.deepEqual(table.pids, [1, 90, SELF]);
  assert.deepEqual(report.killed, [600, 601, 602, 603, 604, 605, 606, 607, 608, 609]);
  assert.deepEqual(report.survivors, []);
});

Deno.test("a process that KILL does not end is given up after the last round, and logged", async () => {
  const clock = new FakeClock();
  const logger = recordingLogger();
  const stuck = new ProcessTable(base());
  const unkillable: FakeProc = {
    pid: 700,
    ppid: 1,
    pgid: 700,
    sid: 700,
    startTime: 700,
    env: marked(),
    ignoreTerm: true,
  };
  stuck.add(unkillable);
  stuck.onCommand = (cmd, args) => {
    // It is back, the same process, right after each KILL.
    if (cmd === "/usr/bin/kill" && args[1] === "KILL") queueMicrotask(() => stuck.add(unkillable));
  };
  const given = await drive(clock, stuck.runProcesses(clock, { logger }).end(RUN, 100));
  assert.deepEqual(given.survivors, [700]);
  assert.equal(stuck.signalled("KILL").length, MAX_KILL_ROUNDS);
  assert.ok(
    logger.lines.some((l) =>
      l.level === "error" && l.message === "processes of a run survived SIGKILL" &&
      String(l.fields.survivors) === "700"
    ),
  );
});

Deno.test("when the helpers cannot run, end logs it and still ends Webots' group", async () => {
  const clock = new FakeClock();
  const table = new ProcessTable([...base(), ...run()]);
  table.unavailable.add("/usr/bin/ps");
  const logger = recordingLogger();
  const leader = leaderOf(table, 200);
  const report = await drive(clock, table.runProcesses(clock, { logger }).end(RUN, 1000, leader));
  assert.deepEqual(leader.signals, ["TERM"]);
  assert.deepEqual(report, { termed: [], killed: [], survivors: [], graceful: true });
  assert.ok(!table.processes.has(200) && !table.processes.has(201) && !table.processes.has(203));
  assert.ok(
    logger.lines.some((l) =>
      l.level === "error" && l.message === "cannot scan the processes of a run"
    ),
  );
});

Deno.test("markers are 128 random bits in hex, and stat lines parse with odd command names", () => {
  const a = newMarker();
  assert.ok(isMarker(a));
  assert.notEqual(a, newMarker());
  assert.ok(!isMarker(`${a} `) && !isMarker(a.toUpperCase()) && !isMarker(a.slice(1)));
  const fields = Array.from({ length: 49 }, (_, i) => String(i + 4));
  fields[0] = "7"; // ppid
  fields[1] = "8"; // pgid
  fields[2] = "9"; // sid
  fields[18] = "123456"; // field 22
  assert.deepEqual(parseStat(`42 (a) b (c)) S ${fields.join(" ")}`), {
    pid: 42,
    ppid: 7,
    pgid: 8,
    sid: 9,
    state: "S",
    startTime: "123456",
  });
  assert.equal(parseStat("42 (sleep"), undefined);
  assert.equal(parseStat(""), undefined);
});
