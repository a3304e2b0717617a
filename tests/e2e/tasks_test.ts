/**
 * The operator tasks: `deno task cert` (scripts/cert.ts), `deno task start` (scripts/start.ts),
 * the demo and example configs, and `deno task compile`'s explanation when it cannot download its
 * runtime. Each script runs as a real process with the permissions its task grants.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../../shared/config.ts";
import { simulationConfigEnv } from "../../simulation/config.ts";
import { sessionSchema } from "../../session/config.ts";
import { simulationSchema } from "../../simulation/config.ts";
import { compileArgs, explainFailure } from "../../scripts/compile.ts";
import { resolveConfigs } from "../../scripts/configs.ts";
import { freePort, freePortRange, ROOT } from "../helpers/server_process.ts";
import { startDemoWorld } from "./demo_world.ts";

const decoder = new TextDecoder();

/** The flags `deno task start|demo|compile` run their script with. */
const TASK_FLAGS = ["--allow-read", "--allow-env", `--allow-run=${Deno.execPath()}`];

async function runCert(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-run=openssl",
      "--allow-read",
      "--allow-env=INIT_CWD",
      "--allow-write",
      join(ROOT, "scripts", "cert.ts"),
      ...args,
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test("cert.ts makes a self-signed certificate that Deno's TLS serves and trusts", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "cert-test-" });
  try {
    const certFile = join(dir, "ssl", "cert.pem");
    const keyFile = join(dir, "ssl", "privkey.pem");
    await t.step("it writes cert.pem and a private privkey.pem", async () => {
      const made = await runCert(["--out-dir", join(dir, "ssl"), "--days", "2"]);
      assert.equal(made.code, 0, made.stderr);
      assert.match(made.stdout, /^Wrote .*cert\.pem and .*privkey\.pem/);
      assert.equal((await Deno.stat(keyFile)).mode! & 0o777, 0o600);
    });
    await t.step("the certificate carries the extensions rustls requires", async () => {
      const out = await new Deno.Command("openssl", {
        args: ["x509", "-noout", "-text", "-in", certFile],
      }).output();
      const text = decoder.decode(out.stdout);
      assert.match(text, /Subject: CN\s?=\s?localhost/);
      assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
      assert.match(text, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication/);
      assert.match(text, /DNS:localhost, IP Address:127\.0\.0\.1/);
    });
    await t.step(
      "Deno.serve serves it and a client trusting it connects by name and IP",
      async () => {
        const cert = await Deno.readTextFile(certFile);
        const key = await Deno.readTextFile(keyFile);
        const server = Deno.serve(
          { hostname: "127.0.0.1", port: 0, cert, key, onListen: () => {} },
          () => new Response("tls ok"),
        );
        const client = Deno.createHttpClient({ caCerts: [cert] });
        try {
          for (const host of ["localhost", "127.0.0.1"]) {
            const response = await fetch(`https://${host}:${server.addr.port}/`, { client });
            assert.equal(await response.text(), "tls ok");
          }
        } finally {
          client.close();
          await server.shutdown();
        }
      },
    );
    await t.step("it refuses to overwrite without --force and replaces with it", async () => {
      const before = await Deno.readTextFile(certFile);
      const refused = await runCert(["--out-dir", join(dir, "ssl")]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /already exist.*--force/);
      assert.equal(await Deno.readTextFile(certFile), before);
      const forced = await runCert(["--out-dir", join(dir, "ssl"), "--force"]);
      assert.equal(forced.code, 0, forced.stderr);
      assert.notEqual(await Deno.readTextFile(certFile), before);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Processes whose command line contains `text`. */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name) || Number(entry.name) === Deno.pid) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).includes(text)) {
        pids.push(Number(entry.name));
      }
    } catch {
      // Exited meanwhile.
    }
  }
  return pids;
}

interface StartRun {
  readonly child: Deno.ChildProcess;
  output(): string;
  /** Resolves once `pattern` appears in the output; rejects if the process ends first. */
  waitFor(pattern: RegExp): Promise<void>;
  readonly status: Promise<Deno.CommandStatus>;
}

/** Runs scripts/start.ts with the `start` task's permissions. */
function runStart(args: string[]): StartRun {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...TASK_FLAGS, join(ROOT, "scripts", "start.ts"), ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const waiters = new Set<() => void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      output += chunk;
      for (const w of waiters) w();
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status.then(async (s) => {
    await pumps;
    return s;
  });
  const waitFor = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pattern.test(output)) {
          waiters.delete(check);
          resolve();
        }
      };
      waiters.add(check);
      check();
      status.then(() => {
        waiters.delete(check);
        if (!pattern.test(output)) reject(new Error(`exited without ${pattern}:\n${output}`));
      });
    });
  return { child, output: () => output, waitFor, status };
}

async function writeConfigs(
  dir: string,
  configs: { session?: unknown; simulation?: unknown },
): Promise<void> {
  for (const [server, config] of Object.entries(configs)) {
    await Deno.mkdir(join(dir, server), { recursive: true });
    await Deno.writeTextFile(join(dir, server, "t.json"), JSON.stringify(config));
  }
}

Deno.test("start.ts runs the simulation server, then the session server, and SIGINT stops both with exit 0", async () => {
  const dir = await Deno.makeTempDir({ prefix: "start-test-" });
  const simulationPort = freePortRange(2);
  const sessionPort = freePort();
  await writeConfigs(dir, {
    simulation: {
      port: simulationPort,
      maxConnections: 2,
      webotsHome: "tests/fakes/webots",
      projectsDir: "demo/projects",
      instancesDir: join(dir, "instances"),
      logDir: join(dir, "log"),
      monitorLogEnabled: false,
    },
    session: {
      port: sessionPort,
      simulationServers: [`localhost:${simulationPort}`],
      logDir: join(dir, "log"),
    },
  });
  const run = runStart([join(dir, "simulation", "t.json")]);
  try {
    await run.waitFor(/\[session\] Session server running on port \d+ \(no SSL\)/);
    const output = run.output();
    assert.match(
      output,
      new RegExp(
        `^\\[simulation\\] Simulation server running on port ${simulationPort} \\(no SSL\\)$`,
        "m",
      ),
    );
    assert.ok(
      output.indexOf("[simulation] Simulation server running") <
        output.indexOf("[session] Session server running"),
      "the simulation server must be listening before the session server starts",
    );
    for (const port of [simulationPort, sessionPort]) {
      const response = await fetch(`http://127.0.0.1:${port}/load`);
      assert.equal(response.status, 200);
      await response.body?.cancel();
    }
    const webots = await startDemoWorld(simulationPort);
    assert.match(webots.reply, /^webots:ws:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(processesMentioning(join(dir, "instances")).length > 0, "no Webots started");
    run.child.kill("SIGINT");
    const status = await run.status;
    assert.equal(status.code, 0, run.output());
    await webots.closed;
    assert.deepEqual(processesMentioning(dir), [], "a server or Webots is still running");
  } catch (error) {
    console.error(run.output());
    throw error;
  } finally {
    try {
      run.child.kill("SIGKILL");
    } catch { /* already gone */ }
    await run.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("start.ts exits non-zero without starting the session server when the simulation server fails", async () => {
  const dir = await Deno.makeTempDir({ prefix: "start-test-" });
  await writeConfigs(dir, {
    simulation: { port: "not a port" },
    session: { port: freePort(), simulationServers: ["localhost:1"], logDir: join(dir, "log") },
  });
  const run = runStart([join(dir, "session", "t.json")]);
  try {
    const status = await run.status;
    assert.notEqual(status.code, 0);
    assert.match(run.output(), /\[simulation\] .*port/);
    assert.match(run.output(), /the simulation server failed to start/);
    assert.doesNotMatch(run.output(), /\[session\]/);
    assert.deepEqual(processesMentioning(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("start.ts with an unknown config name explains and exits 2", async () => {
  const run = runStart(["no-such-config-here"]);
  const status = await run.status;
  assert.equal(status.code, 2);
  assert.match(run.output(), /No config named no-such-config-here/);
});

Deno.test("CONFIG names and paths resolve to the same files as server.sh", () => {
  const present = new Set([
    "/r/config/session/a.json",
    "/r/config/simulation/a.json",
    "/x/session/b.json",
  ]);
  const place = { root: "/r", cwd: "/x", exists: (p: string) => present.has(p) };
  assert.deepEqual(resolveConfigs("a", place), {
    session: "/r/config/session/a.json",
    simulation: "/r/config/simulation/a.json",
  });
  assert.deepEqual(resolveConfigs("session/b.json", place), { session: "/x/session/b.json" });
  assert.throws(() => resolveConfigs("c", place), /No config named c/);
  assert.throws(() => resolveConfigs("/x/b.json", place), /folder named session or simulation/);
  assert.throws(() => resolveConfigs("simulation/b.json", place), /No config file/);
});

Deno.test("the demo and example configs are valid and the demo world exists", async () => {
  const env = simulationConfigEnv();
  const simulation = await loadConfig(
    simulationSchema,
    join(ROOT, "config/simulation/demo.json"),
    env,
  );
  const session = await loadConfig(sessionSchema, join(ROOT, "config/session/demo.json"), env);
  assert.equal(simulation.port, 2000);
  assert.equal(session.port, 1999);
  assert.deepEqual(session.simulationServers, ["localhost:2000"]);
  assert.equal(simulation.webotsHome, join(ROOT, "tests/fakes/webots"));
  assert.ok((await Deno.stat(join(simulation.projectsDir, "hello/worlds/hello.wbt"))).isFile);
  assert.ok(
    (await Deno.stat(join(simulation.projectsDir, "hello/controllers/hello/hello.py"))).isFile,
  );
  const tls = await loadConfig(sessionSchema, join(ROOT, "config/session/tls.json"), env);
  assert.equal(tls.sslCertificate, join(ROOT, "ssl/cert.pem"));
  const rewrite = await loadConfig(sessionSchema, join(ROOT, "config/session/rewrite.json"), env);
  assert.equal(rewrite.portRewrite, true);
  const simRewrite = await loadConfig(
    simulationSchema,
    join(ROOT, "config/simulation/rewrite.json"),
    env,
  );
  assert.equal(simRewrite.portRewrite, true);
});

Deno.test("compile builds each server with its permission set and explains a failed runtime download", () => {
  const args = compileArgs("session", ["--allow-net"]);
  assert.deepEqual(args.slice(0, 4), [
    "compile",
    `--config=${join(ROOT, "deno.json")}`,
    "-P=session",
    "--allow-net",
  ]);
  assert.equal(args.at(-1), join(ROOT, "session", "main.ts"));
  // The poll worker is loaded as a Worker, which deno compile does not follow on its own.
  assert.ok(args.includes(`--include=${join(ROOT, "session", "poll_worker.ts")}`));
  assert.ok(!compileArgs("simulation", []).some((arg) => arg.startsWith("--include")));
  const stderr =
    "error sending request for url (https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip): dns error";
  assert.match(explainFailure(stderr) ?? "", /must download its runtime .*DENORT_BIN/);
  assert.equal(explainFailure("TS2307 Cannot find module"), undefined);
});
