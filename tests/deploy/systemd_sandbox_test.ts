/**
 * The sandbox of docs/systemd/webots-simulation.service, played without systemd: the file-system
 * part of it (ProtectSystem=strict, ProtectHome=yes, PrivateTmp=yes, the folders systemd makes
 * writable) rebuilt with mounts in a mount namespace of the test's own (`unshare -m`, which ends
 * with the server), and a real simulation server with the stand-in Webots run in it through a
 * browser session. What it does not play: the seccomp and capability settings (no systemd here).
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { join, resolve } from "node:path";
import { connect } from "../helpers/ws_client.ts";
import { eventually, isAlive, writeProject } from "../helpers/simulation_fixture.ts";

const ROOT = resolve(import.meta.dirname ?? ".", "..", "..");

/**
 * Mounts, in the new namespace: every writable folder bound onto itself (so that it stays
 * writable), Deno's binary and cache bound where the server finds them (read-only, stricter than
 * the unit's CacheDirectory=), the root file system read-only, an empty /tmp, /root and /home
 * made inaccessible; then the launcher, as the unit's `deno task simulation` runs it.
 */
const SANDBOX = `set -e
dir=$1; deno=$2; cache=$3; app=$4; shift 4
for d in "$dir/log" "$dir/instances" "$dir/home" "$dir/records"; do mount --bind "$d" "$d"; done
# A checkout under /tmp, /root or /home (a CI clone) would vanish under the mounts below: keep it
# reachable, read-only, where it is (an installation lives elsewhere, e.g. /opt).
case "$app" in /tmp/*|/root/*|/home/*) mount --bind "$app" "$dir/app" ;; esac
mount --bind "$deno" "$dir/bin/deno"
mount --bind "$cache" "$dir/cache"
mount -o remount,bind,ro "$dir/cache"
mount -o remount,bind,ro /
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=000 tmpfs /root
mount -t tmpfs -o mode=000 tmpfs /home
case "$app" in
  /tmp/*|/root/*|/home/*) mkdir -p "$app"; mount --bind "$dir/app" "$app"; mount -o remount,bind,ro "$app" ;;
esac
exec "$dir/bin/deno" run --allow-read --allow-env --allow-run="$dir/bin/deno" "$@"
`;

/** Deno's cache folder, as `deno info --json` reports it. */
async function denoDir(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return (JSON.parse(new TextDecoder().decode(out.stdout)) as { denoDir: string }).denoDir;
}

/** A sandbox's folders and the running launcher in it. */
interface Sandbox {
  readonly dir: string;
  /** Everything the server printed so far. */
  output(): string;
  /** The port from the start line; rejects when the server exits first. */
  readonly port: Promise<number>;
  readonly status: Promise<Deno.CommandStatus>;
  readonly child: Deno.ChildProcess;
}

/** Makes the folders under /var/tmp (the sandbox's own /tmp hides /tmp) and starts the server. */
async function startSandboxed(config: (dir: string) => Record<string, unknown>): Promise<Sandbox> {
  const dir = await Deno.makeTempDir({ dir: "/var/tmp", prefix: "systemd-sandbox-" });
  for (
    const d of ["log", "instances", "home", "records", "bin", "cache", "projects", "keys", "app"]
  ) {
    await Deno.mkdir(join(dir, d));
  }
  await Deno.writeTextFile(join(dir, "bin", "deno"), "");
  await writeProject(join(dir, "projects", "p"), { "w.wbt": "#VRML_SIM R2021b utf8\n" });
  const file = join(dir, "simulation.json");
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      port: 0,
      webotsHome: join(ROOT, "tests", "fakes", "webots"),
      projectsDir: join(dir, "projects"),
      keyDir: join(dir, "keys"),
      logDir: join(dir, "log"),
      instancesDir: join(dir, "instances"),
      nvidiaSmiPath: join(ROOT, "tests", "fakes", "nvidia-smi"),
      ...config(dir),
    }),
  );
  const child = new Deno.Command("/usr/bin/unshare", {
    args: [
      "--mount",
      "--propagation",
      "private",
      "/bin/sh",
      "-c",
      SANDBOX,
      "sh",
      dir,
      Deno.execPath(),
      await denoDir(),
      ROOT,
      join(ROOT, "simulation", "launch.ts"),
      file,
    ],
    cwd: ROOT,
    clearEnv: true,
    env: {
      // The unit's environment: HOME and DENO_DIR in folders systemd made for it.
      HOME: join(dir, "home"),
      DENO_DIR: join(dir, "cache"),
      PATH: `${join(dir, "bin")}:/usr/bin:/bin`,
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
      FAKE_WEBOTS_RECORD_DIR: join(dir, "records"),
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const started = Promise.withResolvers<number>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      output += chunk;
      const m = /Simulation server running on port (\d+)/.exec(output);
      if (m) started.resolve(Number(m[1]));
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status.then(async (s) => (await pumps, s));
  status.then((s) => started.reject(new Error(`the server exited (${s.code}) before listening`)));
  started.promise.catch(() => {});
  return { dir, output: () => output, port: started.promise, status, child };
}

/** Runs `fn` on a sandboxed server; then kills what is left and removes the folders. */
async function withSandbox(
  config: (dir: string) => Record<string, unknown>,
  fn: (sandbox: Sandbox) => Promise<void>,
): Promise<void> {
  const sandbox = await startSandboxed(config);
  try {
    await fn(sandbox);
  } catch (error) {
    console.error(`--- sandboxed server output ---\n${sandbox.output()}`);
    throw error;
  } finally {
    try {
      sandbox.child.kill("SIGKILL");
    } catch { /* already gone */ }
    await sandbox.status;
    await Deno.remove(sandbox.dir, { recursive: true });
  }
}

Deno.test("the simulation server runs a session with the file system read-only but for its log and instances folders, a private /tmp and no /home", async () => {
  await withSandbox(() => ({}), async ({ dir, port: portPromise, child, status }) => {
    const port = await portPromise;
    const client = await connect(`ws://127.0.0.1:${port}/client`);
    const url = `file://${join(dir, "projects", "p", "worlds", "w.wbt")}`;
    client.send(JSON.stringify({ start: { url } }));
    const answer = await client.waitFor((m) => m.startsWith("webots:") || m.startsWith("error:"));
    ok(answer.startsWith("webots:ws://"), answer);
    const instances = [...Deno.readDirSync(join(dir, "instances"))].map((e) => e.name);
    equal(instances.filter((n) => !n.startsWith(".")).length, 1, "its instance folder is made");
    const records = [...Deno.readDirSync(join(dir, "records"))].filter((e) =>
      e.name.endsWith(".json")
    );
    equal(records.length, 1, "the stand-in Webots ran");
    const record = JSON.parse(
      await Deno.readTextFile(join(dir, "records", records[0]!.name)),
    ) as { pid: number; env: Record<string, string> };
    ok(record.env.WEBOTS_SERVER_RUN, "the run's marker, by which its processes are found");

    await client.close();
    await eventually(() => !isAlive(record.pid), 10_000, "Webots ended");
    await eventually(
      () => [...Deno.readDirSync(join(dir, "instances"))].every((e) => e.name.startsWith(".")),
      10_000,
      "the instance folder removed",
    );
    ok(Deno.statSync(join(dir, "log", "simulation", "output.log")).size > 0, "it logs");

    child.kill("SIGTERM");
    const end = await status;
    deepEqual({ code: end.code, signal: end.signal }, { code: 0, signal: null });
  });
});

Deno.test("in that sandbox a log folder outside the writable ones stops the server at start", async () => {
  // The check above proves something only if the sandbox bites: the checkout is read-only there.
  await withSandbox(() => ({ logDir: join(ROOT, "log", "sandboxed") }), async (sandbox) => {
    const end = await sandbox.status;
    equal(end.code === 0, false);
    ok(/Read-only file system/.test(sandbox.output()), sandbox.output());
    await sandbox.port.then(() => ok(false, "it started"), () => {});
  });
  ok(!(await Deno.stat(join(ROOT, "log", "sandboxed")).then(() => true, () => false)));
});

/** The Xvfb unit's file-system sandbox: read-only root, private /tmp, /home and /root hidden. */
const XVFB_SANDBOX = `set -e
mount -o remount,bind,ro /
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=000 tmpfs /root
mount -t tmpfs -o mode=000 tmpfs /home
exec /usr/bin/Xvfb -displayfd 1 -screen 0 640x480x24 -nolisten tcp
`;

Deno.test("Xvfb in its unit's sandbox (private /tmp) takes X11 connections from outside through its abstract socket", async () => {
  const child = new Deno.Command("/usr/bin/unshare", {
    args: ["--mount", "--propagation", "private", "/bin/sh", "-c", XVFB_SANDBOX],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  try {
    // -displayfd: Xvfb picks a free display and writes its number once it accepts connections.
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`Xvfb exited: ${await stderr}`);
      text += value;
    }
    reader.releaseLock();
    const display = Number(text.trim());
    ok(Number.isInteger(display), text);
    // Its socket file is in its own /tmp, out of sight here.
    const file = await Deno.stat(`/tmp/.X11-unix/X${display}`).then(() => true, () => false);
    equal(file, false);
    // The X11 connection setup (little-endian, protocol 11.0, no authorization) is answered
    // with success (1) and protocol 11 on the abstract socket, as Webots' Xlib would connect.
    const conn = await Deno.connect({ transport: "unix", path: `\0/tmp/.X11-unix/X${display}` });
    try {
      await conn.write(new Uint8Array([0x6c, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
      const reply = new Uint8Array(8);
      let got = 0;
      while (got < 8) {
        const n = await conn.read(reply.subarray(got));
        ok(n !== null, "the X server closed the connection");
        got += n;
      }
      deepEqual([reply[0], new DataView(reply.buffer).getUint16(2, true)], [1, 11]);
    } finally {
      conn.close();
    }
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await stderr;
  }
});
