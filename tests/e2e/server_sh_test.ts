/**
 * `server.sh` as an operator runs it: from another directory, with a config name, through the
 * real `deno task` launchers, servers detached, pid files, stale pid files, restart, status.
 * Pid files and server output go to a temp folder (`SERVER_SH_LOG_DIR`) so that the test never
 * touches servers an operator runs from this checkout.
 */
import { exists } from "../helpers/simulation_fixture.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, freePortRange, ROOT } from "../helpers/server_process.ts";
import { startDemoWorld } from "./demo_world.ts";

const SCRIPT = join(ROOT, "server.sh");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface Setup {
  /** The CONFIG name. */
  readonly name: string;
  readonly runDir: string;
  readonly sessionPort: number;
  readonly simulationPort: number;
  /** The temp folder (instances, logs): every process of the test names it. */
  readonly tmp: string;
  /** Runs `server.sh args…` from a temp directory that is not the project. */
  run(...args: string[]): Promise<Run>;
}

/** Processes whose command line contains `text` (our unique config name or folder). */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name) || Number(entry.name) === Deno.pid) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      if (cmdline.includes(text)) pids.push(Number(entry.name));
    } catch {
      // Exited meanwhile.
    }
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

async function answersLoad(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/load`);
  assert.equal(response.status, 200);
  return await response.text();
}

/** Writes `config/<server>/<unique>.json` for the servers asked, runs `body`, cleans up. */
async function withSetup(
  servers: readonly ("session" | "simulation")[],
  body: (setup: Setup) => Promise<void>,
): Promise<void> {
  const name = `e2e-server-sh-${crypto.randomUUID().slice(0, 8)}`;
  const tmp = await Deno.makeTempDir({ prefix: "server-sh-test-" });
  const runDir = join(tmp, "run");
  const cwd = join(tmp, "elsewhere");
  await Deno.mkdir(cwd);
  const simulationPort = freePortRange(2);
  let sessionPort = freePort();
  while (sessionPort >= simulationPort && sessionPort <= simulationPort + 2) {
    sessionPort = freePort();
  }
  const files: string[] = [];
  const write = async (server: string, config: Record<string, unknown>) => {
    const file = join(ROOT, "config", server, `${name}.json`);
    files.push(file);
    await Deno.writeTextFile(file, JSON.stringify(config, null, 2));
  };
  const run = async (...args: string[]): Promise<Run> => {
    const out = await new Deno.Command(SCRIPT, {
      args,
      cwd,
      env: { SERVER_SH_LOG_DIR: runDir, NO_COLOR: "1" },
      stdin: "null",
    }).output();
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
  };
  try {
    if (servers.includes("simulation")) {
      await write("simulation", {
        port: simulationPort,
        maxConnections: 2,
        webotsHome: "tests/fakes/webots",
        projectsDir: "demo/projects",
        instancesDir: join(tmp, "instances"),
        logDir: join(tmp, "log"),
        monitorLogEnabled: false,
      });
    }
    if (servers.includes("session")) {
      await write("session", {
        port: sessionPort,
        simulationServers: [`localhost:${simulationPort}`],
        logDir: join(tmp, "log"),
      });
    }
    await body({ name, runDir, sessionPort, simulationPort, tmp, run });
  } catch (error) {
    for (const server of ["simulation", "session"]) {
      try {
        console.error(
          `--- ${server} server.out:\n${await Deno.readTextFile(
            join(runDir, server, "server.out"),
          )}`,
        );
      } catch { /* never started */ }
    }
    throw error;
  } finally {
    await run("stop");
    for (const file of files) await Deno.remove(file).catch(() => {});
    assert.deepEqual(processesMentioning(name), [], "a server of this test is still running");
    assert.deepEqual(processesMentioning(tmp), [], "a Webots of this test is still running");
    await Deno.remove(tmp, { recursive: true });
  }
}

function startedPid(stdout: string, name: string, server: string): number {
  const match = stdout.match(new RegExp(`^Started ${name} ${server} server \\((\\d+)\\)$`, "m"));
  assert.ok(match, `no "Started ${name} ${server} server (<pid>)" line in:\n${stdout}`);
  return Number(match[1]);
}

Deno.test("server.sh starts both servers from another directory, reports them and stops them", async (t) => {
  await withSetup(
    ["simulation", "session"],
    async ({ name, runDir, sessionPort, simulationPort, tmp, run }) => {
      let simulationPid = 0;
      let sessionPid = 0;
      await t.step(
        "start: simulation server first, then session server, each with its pid",
        async () => {
          const started = await run("start", name);
          assert.equal(started.code, 0, started.stderr);
          simulationPid = startedPid(started.stdout, name, "simulation");
          sessionPid = startedPid(started.stdout, name, "session");
          assert.ok(
            started.stdout.indexOf("simulation server") < started.stdout.indexOf("session server"),
          );
          assert.equal(
            (await Deno.readTextFile(join(runDir, ".simulation.pid"))).trim(),
            String(simulationPid),
          );
          assert.equal(
            (await Deno.readTextFile(join(runDir, ".session.pid"))).trim(),
            String(sessionPid),
          );
        },
      );
      await t.step(
        "the servers answer on their ports and write their output to server.out",
        async () => {
          assert.match(await answersLoad(simulationPort), /^\d+(\.\d+)?$/);
          assert.match(await answersLoad(sessionPort), /^-?\d+(\.\d+)?$/);
          assert.match(
            await Deno.readTextFile(join(runDir, "session", "server.out")),
            new RegExp(`Session server running on port ${sessionPort} \\(no SSL\\)`),
          );
        },
      );
      await t.step("status: both run, with pid and port, exit 0", async () => {
        const status = await run("status", name);
        assert.equal(status.code, 0, status.stdout + status.stderr);
        assert.match(
          status.stdout,
          new RegExp(
            `simulation server is running \\(pid ${simulationPid}, port ${simulationPort}\\)`,
          ),
        );
        assert.match(
          status.stdout,
          new RegExp(`session server is running \\(pid ${sessionPid}, port ${sessionPort}\\)`),
        );
      });
      let webots: { reply: string; closed: Promise<void> } | undefined;
      await t.step("a client gets a (stand-in) Webots through the simulation server", async () => {
        webots = await startDemoWorld(simulationPort);
        assert.match(webots.reply, /^webots:ws:\/\/127\.0\.0\.1:\d+$/);
        assert.ok(processesMentioning(join(tmp, "instances")).length > 0, "no Webots started");
      });
      await t.step("start again refuses: they already run", async () => {
        const again = await run("start", name);
        assert.notEqual(again.code, 0);
        assert.match(again.stderr, /already running/);
      });
      await t.step("stop: both stopped and gone, pid files removed, exit 0", async () => {
        const stopped = await run("stop");
        assert.equal(stopped.code, 0, stopped.stderr);
        assert.match(
          stopped.stdout,
          new RegExp(`^Stopped session server \\(${sessionPid}\\)$`, "m"),
        );
        assert.match(
          stopped.stdout,
          new RegExp(`^Stopped simulation server \\(${simulationPid}\\)$`, "m"),
        );
        assert.ok(!alive(simulationPid) && !alive(sessionPid));
        assert.deepEqual(processesMentioning(name), []);
        assert.deepEqual(processesMentioning(tmp), [], "Webots outlived its server");
        await webots?.closed;
        assert.ok(!await exists(join(runDir, ".session.pid")));
        assert.ok(!await exists(join(runDir, ".simulation.pid")));
        await assert.rejects(fetch(`http://127.0.0.1:${sessionPort}/load`));
      });
      await t.step("status after stop: not running, non-zero exit", async () => {
        const status = await run("status", name);
        assert.notEqual(status.code, 0);
        assert.match(status.stdout, /session server is not running/);
      });
    },
  );
});

Deno.test("server.sh restart replaces both servers with new processes", async () => {
  await withSetup(["simulation", "session"], async ({ name, sessionPort, run }) => {
    const first = await run("start", name);
    assert.equal(first.code, 0, first.stderr);
    const oldSession = startedPid(first.stdout, name, "session");
    const oldSimulation = startedPid(first.stdout, name, "simulation");
    const restarted = await run("restart", name);
    assert.equal(restarted.code, 0, restarted.stderr);
    assert.match(restarted.stdout, new RegExp(`Stopped session server \\(${oldSession}\\)`));
    assert.match(restarted.stdout, new RegExp(`Stopped simulation server \\(${oldSimulation}\\)`));
    const newSession = startedPid(restarted.stdout, name, "session");
    assert.notEqual(newSession, oldSession);
    assert.ok(!alive(oldSession) && !alive(oldSimulation));
    await answersLoad(sessionPort);
    const stopped = await run("stop");
    assert.equal(stopped.code, 0, stopped.stderr);
  });
});

Deno.test("server.sh removes stale pid files and never signals a process that is not its server", async () => {
  await withSetup(["session"], async ({ name, runDir, run }) => {
    const dead = new Deno.Command("true").spawn();
    await dead.status;
    const stranger = new Deno.Command("sleep", { args: ["60"], stdin: "null" }).spawn();
    try {
      await Deno.mkdir(runDir, { recursive: true });
      await Deno.writeTextFile(join(runDir, ".simulation.pid"), `${dead.pid}\n`);
      await Deno.writeTextFile(join(runDir, ".session.pid"), `${stranger.pid}\n`);
      const status = await run("status", name);
      assert.notEqual(status.code, 0);
      assert.match(
        status.stderr,
        new RegExp(`stale .*\\.simulation\\.pid: process ${dead.pid} is gone`),
      );
      assert.match(
        status.stderr,
        new RegExp(`stale .*\\.session\\.pid: process ${stranger.pid} is not our session server`),
      );
      assert.ok(!await exists(join(runDir, ".session.pid")));
      assert.ok(!await exists(join(runDir, ".simulation.pid")));

      await Deno.writeTextFile(join(runDir, ".session.pid"), `${stranger.pid}\n`);
      const stopped = await run("stop");
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.doesNotMatch(stopped.stdout, /Stopped/);
      assert.match(stopped.stderr, /not our session server/);

      await Deno.writeTextFile(join(runDir, ".session.pid"), `${stranger.pid}\n`);
      const started = await run("start", name);
      assert.equal(started.code, 0, started.stderr);
      assert.notEqual(startedPid(started.stdout, name, "session"), stranger.pid);
      assert.ok(alive(stranger.pid), "the foreign process was signalled");
    } finally {
      stranger.kill("SIGKILL");
      await stranger.status;
    }
  });
});

Deno.test("server.sh starts only the session server when only its config exists", async () => {
  await withSetup(["session"], async ({ name, runDir, sessionPort, run }) => {
    const started = await run("start", name);
    assert.equal(started.code, 0, started.stderr);
    const pid = startedPid(started.stdout, name, "session");
    assert.doesNotMatch(started.stdout, /simulation/);
    assert.ok(!await exists(join(runDir, ".simulation.pid")));
    await answersLoad(sessionPort);
    const status = await run("status", name);
    assert.equal(status.code, 0, status.stdout);
    const stopped = await run("stop");
    assert.equal(stopped.stdout.trim(), `Stopped session server (${pid})`);
    // The same config named by its path: used for the server whose folder it lies in.
    const path = join(ROOT, "config", "session", `${name}.json`);
    const byPath = await run("start", path);
    assert.equal(byPath.code, 0, byPath.stderr);
    startedPid(byPath.stdout, path.replace(/[.\/]/g, "\\$&"), "session");
    assert.equal((await run("stop")).code, 0);
  });
});

Deno.test("server.sh with an unknown command or config prints usage and fails", async () => {
  await withSetup([], async ({ run }) => {
    const unknown = await run("launch");
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^Usage: \.\/server\.sh start\|stop\|restart\|status \[CONFIG\]/);
    const none = await run("start", "no-such-config-here");
    assert.equal(none.code, 2);
    assert.match(none.stderr, /No config named no-such-config-here/);
  });
});
