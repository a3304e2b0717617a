import assert from "node:assert/strict";
import { type LogLine, recordingLogger } from "../fakes/logger.ts";
import { join, resolve } from "node:path";
import {
  computeLoad,
  createMetrics,
  emptySnapshot,
  type MetricsDeps,
} from "../../simulation/metrics.ts";
import { createCommandRunner, type RunCommand } from "../../simulation/command_runner.ts";
import { parseNvidiaSmi, summarizeGpus } from "../../simulation/gpu.ts";
import { networkRates, parseNetDev, readNetwork } from "../../simulation/network.ts";
import { MONITOR_CSV_HEADER } from "../../simulation/monitor_csv.ts";
import {
  type CpuTimes,
  createCpuSampler,
  osString,
  realSystemSources,
  type SystemSources,
} from "../../simulation/system_stats.ts";
import { FakeClock } from "../fakes/fake_clock.ts";

const ROOT = resolve(import.meta.dirname ?? ".", "..", "..");
const FAKE_NVIDIA_SMI = join(ROOT, "tests", "fakes", "nvidia-smi");

/** Timers that fire only when the test says so. */
function manualTimers() {
  const pending = new Map<number, { callback: () => void; ms: number }>();
  let next = 0;
  return {
    pending,
    timers: {
      setTimeout(callback: () => void, ms: number) {
        pending.set(++next, { callback, ms });
        return next;
      },
      clearTimeout(id: unknown) {
        pending.delete(id as number);
      },
    },
  };
}

const NET_DEV_SAMPLE = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:   16589     128    0    0    0     0          0         0    16589     128    0    0    0     0       0          0
  eth0: 209910188    5139    0    0    0     0          0         0   203625    2585    0    0    0     0       0          0
  wlan0:1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0
`;

/** A stand-in runner for tests about scheduling, not about the helper programs. */
function cannedRunner(calls: string[] = []): RunCommand {
  return (cmd) => {
    calls.push(cmd);
    if (cmd.endsWith("cat")) return Promise.resolve({ success: true, stdout: NET_DEV_SAMPLE });
    return Promise.resolve({ success: true, stdout: "Tesla T4, 50, 20, 1000, 16000\n" });
  };
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "metrics_test_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function deps(
  dir: string,
  overrides: Partial<MetricsDeps> = {},
): MetricsDeps & { lines: LogLine[] } {
  const logger = recordingLogger();
  const lines = logger.lines;
  return {
    config: {
      logDir: join(dir, "log"),
      monitorLogEnabled: false,
      maxConnections: 100,
      nvidiaSmiPath: FAKE_NVIDIA_SMI,
      instancesDir: dir,
      // The latest figure alone, as before `loadWindow`: the window has tests of its own.
      loadWindow: 1,
    },
    logger,
    now: Date.now,
    runCommand: cannedRunner(),
    probeBudgetMs: 30_000,
    lines,
    ...overrides,
  };
}

const warnings = (lines: LogLine[], probe: string) =>
  lines.filter((l) => l.level === "warn" && l.fields.probe === probe);

// ---------------------------------------------------------------- load formula

Deno.test("load is 100 when every connection slot holds a Webots", () => {
  const s = emptySnapshot(0);
  assert.equal(computeLoad(s, { running: 60, idle: 40 }, 100), 100);
  assert.equal(computeLoad(s, { running: 3, idle: 0 }, 3), 100);
  assert.equal(computeLoad(s, { running: 150, idle: 0 }, 100), 100);
  assert.equal(computeLoad(s, { running: 1, idle: 2 }, 8), 37.5);
});

Deno.test("load ignores connected sockets without Webots and raw counts in the snapshot", () => {
  // 99 browsers connected but none started Webots: the server counts 0 running, 0 idle.
  const s = { ...emptySnapshot(0), webotsIdle: 99, webotsRunning: 99 };
  assert.equal(computeLoad(s, { running: 0, idle: 0 }, 100), 0);
});

Deno.test("load never counts network MB/s as a percentage", () => {
  const s = { ...emptySnapshot(0), networkSent: 99, networkReceived: 250, cpu: 12.5 };
  assert.equal(computeLoad(s, { running: 0, idle: 0 }, 100), 12.5);
});

Deno.test("load is the highest capacity percentage when it beats the slots", () => {
  const s = { ...emptySnapshot(0), cpu: 87.25, memory: 40, gpuCompute: 10, disk: 99 };
  assert.equal(computeLoad(s, { running: 1, idle: 0 }, 100), 87.3);
  assert.equal(computeLoad({ ...s, cpu: 5, swap: 66 }, { running: 1, idle: 0 }, 100), 66);
  assert.equal(computeLoad({ ...s, cpu: 5, gpuMemory: 91 }, { running: 1, idle: 0 }, 100), 91);
  assert.equal(computeLoad({ ...s, cpu: Number.NaN }, { running: 0, idle: 0 }, 100), 40);
  assert.equal(computeLoad({ ...s, cpu: 140 }, { running: 0, idle: 0 }, 100), 100);
});

// ---------------------------------------------------------------- GPU

Deno.test("nvidia-smi lines are parsed and several GPUs are merged", () => {
  const gpus = parseNvidiaSmi(
    "NVIDIA A100-SXM4-40GB, 80, 30, 20000, 40960\nNVIDIA A100-SXM4-40GB, [N/A], 10, 0, 40960\n",
  );
  assert.equal(gpus.length, 2);
  assert.deepEqual(gpus[1], {
    name: "NVIDIA A100-SXM4-40GB",
    compute: 0,
    memoryLoad: 10,
    memoryUsed: 0,
    memoryTotal: 40960,
  });
  assert.deepEqual(summarizeGpus(gpus), {
    name: "2 × NVIDIA A100-SXM4-40GB",
    count: 2,
    compute: 40,
    memoryLoad: 20,
    memory: 24.4,
    memoryTotalGB: 85.9,
  });
  assert.throws(() => parseNvidiaSmi("No devices were found\n"), /unexpected nvidia-smi output/);
});

Deno.test("the nvidia-smi stand-in's figures reach the snapshot and the host info", async () => {
  await withTempDir(async (dir) => {
    const metrics = createMetrics(deps(dir, { runCommand: createCommandRunner() }));
    try {
      const s = await metrics.takeSnapshot();
      assert.equal(s.gpuCompute, 35);
      assert.equal(s.gpuMemoryLoad, 12);
      assert.equal(s.gpuMemory, 8.3);
      assert.deepEqual(metrics.hostInfo().gpu, {
        name: "NVIDIA GeForce RTX 3090",
        count: 1,
        memoryTotalGB: 25.8,
      });
    } finally {
      await metrics.stop();
    }
  });
});

Deno.test("a failing nvidia-smi gives zeros and is logged once across many snapshots", async () => {
  await withTempDir(async (dir) => {
    const runLog = join(dir, "runs.txt");
    const d = deps(dir, {
      runCommand: createCommandRunner({
        env: { FAKE_NVIDIA_SMI_MODE: "fail", FAKE_NVIDIA_SMI_LOG: runLog },
      }),
      probeRetryMs: 0,
    });
    const metrics = createMetrics(d);
    try {
      for (let i = 0; i < 4; i++) {
        const s = await metrics.takeSnapshot();
        assert.deepEqual([s.gpuCompute, s.gpuMemoryLoad, s.gpuMemory], [0, 0, 0]);
      }
      assert.equal((await Deno.readTextFile(runLog)).trim().split("\n").length, 4);
      const gpu = warnings(d.lines, "gpu");
      assert.equal(gpu.length, 1);
      assert.match(gpu[0]!.message, /NVIDIA-SMI has failed because it couldn't communicate/);
      assert.equal(metrics.hostInfo().gpu, undefined);
    } finally {
      await metrics.stop();
    }
  });
});

Deno.test("an absent nvidia-smi gives zeros and is logged once", async () => {
  await withTempDir(async (dir) => {
    const d = deps(dir, { runCommand: createCommandRunner(), probeRetryMs: 0 });
    d.config = { ...d.config, nvidiaSmiPath: join(dir, "no-such-nvidia-smi") };
    const metrics = createMetrics(d);
    try {
      for (let i = 0; i < 5; i++) assert.equal((await metrics.takeSnapshot()).gpuMemory, 0);
      assert.equal(warnings(d.lines, "gpu").length, 1);
      assert.match(warnings(d.lines, "gpu")[0]!.message, /GPU figures unavailable/);
    } finally {
      await metrics.stop();
    }
  });
});

Deno.test("a slow nvidia-smi is never run twice at once and does not hold snapshots", async () => {
  await withTempDir(async (dir) => {
    const real = createCommandRunner({ env: { FAKE_NVIDIA_SMI_DELAY_MS: "60000" } });
    let gpuRuns = 0;
    const runCommand: RunCommand = (cmd, args, options) => {
      if (cmd === FAKE_NVIDIA_SMI) gpuRuns++;
      return real(cmd, args, options);
    };
    const metrics = createMetrics(deps(dir, { runCommand, probeBudgetMs: 50, probeRetryMs: 0 }));
    try {
      for (let i = 0; i < 3; i++) assert.equal((await metrics.takeSnapshot()).gpuCompute, 0);
      assert.equal(gpuRuns, 1);
    } finally {
      await metrics.stop(); // aborts the run under way and waits for it
    }
  });
});

Deno.test("a failed helper program is run again only after probeRetryMs", async () => {
  await withTempDir(async (dir) => {
    let clock = 1_000_000;
    let gpuRuns = 0;
    const runCommand: RunCommand = (cmd) => {
      if (cmd !== FAKE_NVIDIA_SMI) return cannedRunner()(cmd, []);
      gpuRuns++;
      return Promise.resolve({ success: false, stdout: "" });
    };
    const metrics = createMetrics(
      deps(dir, { runCommand, now: () => clock, probeRetryMs: 60_000 }),
    );
    try {
      for (let i = 0; i < 3; i++) await metrics.takeSnapshot();
      assert.equal(gpuRuns, 1);
      clock += 60_000;
      await metrics.takeSnapshot();
      assert.equal(gpuRuns, 2);
    } finally {
      await metrics.stop();
    }
  });
});

// ---------------------------------------------------------------- network

Deno.test("a /proc/net/dev sample gives MB/s per second without lo", () => {
  const interfaces = parseNetDev(NET_DEV_SAMPLE);
  assert.deepEqual([...interfaces.keys()], ["eth0", "wlan0"]);
  assert.deepEqual(interfaces.get("eth0"), { received: 209910188, sent: 203625 });
  const later = new Map(interfaces);
  later.set("eth0", { received: 209910188 + 4_000_000, sent: 203625 + 1_000_000 });
  later.set("wlan0", { received: 0, sent: 2000 }); // counter reset: counts as 0
  later.set("tun0", { received: 9e9, sent: 9e9 }); // new interface: no previous reading
  assert.deepEqual(
    networkRates({ at: 0, interfaces }, { at: 2000, interfaces: later }),
    { sent: 0.5, received: 2 },
  );
  assert.deepEqual(networkRates({ at: 5, interfaces }, { at: 5, interfaces: later }), {
    sent: 0,
    received: 0,
  });
});

Deno.test("network counters are read from the real /proc/net/dev through cat", async () => {
  const reading = await readNetwork(createCommandRunner(), () => 42);
  const direct = parseNetDev(await Deno.readTextFile("/proc/net/dev"));
  assert.equal(reading.at, 42);
  assert.deepEqual([...reading.interfaces.keys()].sort(), [...direct.keys()].sort());
  assert.ok(!reading.interfaces.has("lo"));
});

Deno.test("a failing cat gives zero network figures, logged once", async () => {
  await withTempDir(async (dir) => {
    const d = deps(dir, {
      runCommand: createCommandRunner(),
      catPath: join(dir, "no-such-cat"),
      probeRetryMs: 0,
    });
    const metrics = createMetrics(d);
    try {
      for (let i = 0; i < 3; i++) {
        const s = await metrics.takeSnapshot();
        assert.deepEqual([s.networkSent, s.networkReceived], [0, 0]);
      }
      assert.equal(warnings(d.lines, "network").length, 1);
    } finally {
      await metrics.stop();
    }
  });
});

// ---------------------------------------------------------------- CPU, memory, swap, disk

Deno.test("CPU use is the busy share of the time elapsed between samples", () => {
  let times = [{ user: 100, nice: 0, sys: 100, idle: 800, irq: 0 }];
  const sample = createCpuSampler({ cpus: () => times.map((t) => ({ model: "x", times: t })) });
  assert.equal(sample(), 20); // since boot
  times = [{ user: 250, nice: 0, sys: 100, idle: 850, irq: 0 }];
  assert.equal(sample(), 75);
  assert.equal(sample(), 75); // no time elapsed: previous figure
});

Deno.test("real CPU, memory, swap and disk figures are plausible", async () => {
  await withTempDir(async (dir) => {
    const metrics = createMetrics(deps(dir, { runCommand: createCommandRunner() }));
    try {
      await metrics.takeSnapshot();
      const s = await metrics.takeSnapshot();
      for (const key of ["cpu", "memory", "swap", "disk"] as const) {
        assert.ok(s[key] >= 0 && s[key] <= 100, `${key} = ${s[key]}`);
      }
      assert.ok(s.memory > 0);
      const fs = await realSystemSources().statfs(dir);
      const used = (fs.blocks - fs.bfree) * fs.bsize;
      const expected = (used / (used + fs.bavail * fs.bsize)) * 100;
      assert.ok(Math.abs(s.disk - expected) < 1, `disk ${s.disk} vs ${expected}`);
      assert.ok(s.networkSent >= 0 && s.networkReceived >= 0);
      assert.equal(s.timestamp, Math.floor(s.timestamp));
      const host = metrics.hostInfo();
      assert.ok(host.cpuCores >= 1 && host.ramTotalGB > 0 && host.hostname.length > 0);
      assert.match(host.os, /^Linux /);
    } finally {
      await metrics.stop();
    }
  });
});

Deno.test("the OS string is built from /etc/os-release like the reference's distro", () => {
  assert.equal(
    osString(
      'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n' +
        'VERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
    ),
    "Linux Debian GNU/Linux 12 bookworm",
  );
  assert.equal(osString('PRETTY_NAME="Some OS"\n'), "Linux Some OS");
  assert.equal(osString(""), "Linux");
});

// ---------------------------------------------------------------- CSV, history, timer, load

Deno.test("monitor.csv is truncated, has the exact header and one line per snapshot", async () => {
  await withTempDir(async (dir) => {
    const d = deps(dir, { timers: manualTimers().timers });
    d.config = { ...d.config, monitorLogEnabled: true };
    const csvPath = join(dir, "log", "simulation", "monitor.csv");
    await Deno.mkdir(join(dir, "log", "simulation"), { recursive: true });
    await Deno.writeTextFile(csvPath, "old content\n".repeat(100));
    const metrics = createMetrics(d);
    metrics.start(() => ({ running: 2, idle: 1 }));
    try {
      for (let i = 0; i < 3; i++) await metrics.takeSnapshot();
    } finally {
      await metrics.stop();
    }
    const lines = (await Deno.readTextFile(csvPath)).split("\n");
    assert.equal(lines.pop(), "");
    assert.equal(
      lines[0],
      "Timestamp, Webots running, Webots idle, CPU load, CPU memory, GPU load compute, " +
        "GPU load memory, GPU memory, Swap, Disk, Network sent, Network received",
    );
    assert.equal(lines[0], MONITOR_CSV_HEADER);
    assert.equal(lines.length, 4);
    for (const [i, line] of lines.slice(1).entries()) {
      const s = metrics.history[i]!;
      assert.equal(
        line,
        [
          s.timestamp,
          2,
          1,
          s.cpu,
          s.memory,
          50,
          20,
          6.3,
          s.swap,
          s.disk,
          s.networkSent,
          s.networkReceived,
        ].join(", "),
      );
    }
  });
});

Deno.test("an unwritable logDir is logged and the metrics go on", async () => {
  await withTempDir(async (dir) => {
    const notADir = join(dir, "file");
    await Deno.writeTextFile(notADir, "");
    const d = deps(dir, { timers: manualTimers().timers });
    d.config = { ...d.config, monitorLogEnabled: true, logDir: notADir };
    const metrics = createMetrics(d);
    metrics.start(() => ({ running: 0, idle: 0 }));
    try {
      assert.equal((await metrics.takeSnapshot()).gpuCompute, 50);
      await metrics.takeSnapshot();
    } finally {
      await metrics.stop();
    }
    const path = join(notADir, "simulation", "monitor.csv");
    const errors = d.lines.filter((l) => l.level === "error");
    assert.equal(errors.length, 1);
    assert.ok(errors[0]!.message.startsWith(`Log file '${path}' cannot be created: `));
    assert.equal(metrics.history.length, 2);
  });
});

Deno.test("no monitor.csv is written when monitorLogEnabled is false", async () => {
  await withTempDir(async (dir) => {
    const metrics = createMetrics(deps(dir, { timers: manualTimers().timers }));
    metrics.start(() => ({ running: 0, idle: 0 }));
    try {
      await metrics.takeSnapshot();
    } finally {
      await metrics.stop();
    }
    await assert.rejects(Deno.stat(join(dir, "log")), Deno.errors.NotFound);
  });
});

Deno.test("the history keeps the last 600 snapshots", async () => {
  await withTempDir(async (dir) => {
    let clock = 0;
    const metrics = createMetrics(deps(dir, { now: () => clock }));
    try {
      for (let i = 1; i <= 605; i++) {
        clock = i * 1000;
        await metrics.takeSnapshot();
      }
      assert.equal(metrics.history.length, 600);
      assert.equal(metrics.history[0]!.timestamp, 6); // the first five were dropped
      assert.equal(metrics.history.at(-1)!.timestamp, 605);
    } finally {
      await metrics.stop();
    }
  });
});

Deno.test("snapshots follow one another every interval and never overlap", async () => {
  await withTempDir(async (dir) => {
    const { pending, timers } = manualTimers();
    const calls: string[] = [];
    const metrics = createMetrics(deps(dir, { timers, runCommand: cannedRunner(calls) }));
    const fire = async () => {
      const [id, entry] = [...pending.entries()][0]!;
      pending.delete(id);
      entry.callback();
      // The tick schedules the next one when its snapshot is done.
      while (pending.size === 0) await new Promise((r) => setTimeout(r, 0));
    };
    metrics.start(() => ({ running: 1, idle: 0 }));
    try {
      assert.equal([...pending.values()][0]!.ms, 0); // first snapshot at once
      await fire();
      assert.equal(metrics.history.length, 1);
      const delay = [...pending.values()][0]!.ms;
      assert.ok(delay > 0 && delay <= 1000, `next in ${delay} ms`);
      await fire();
      assert.equal(metrics.history.length, 2);
      const [a, b] = [metrics.takeSnapshot(), metrics.takeSnapshot()];
      assert.equal(a, b); // overlapping calls share one computation
      await a;
      assert.equal(metrics.history.length, 3);
      assert.equal(calls.length, 6); // one nvidia-smi and one cat per snapshot
    } finally {
      await metrics.stop();
    }
    assert.equal(pending.size, 0);
  });
});

Deno.test("load() combines the latest figures with the current session counts", async () => {
  await withTempDir(async (dir) => {
    let counts = { running: 0, idle: 0 };
    const d = deps(dir, { timers: manualTimers().timers });
    d.config = { ...d.config, maxConnections: 4 };
    const metrics = createMetrics(d);
    assert.equal(metrics.load(), 0); // before any snapshot
    metrics.start(() => counts);
    try {
      const s = await metrics.takeSnapshot();
      counts = { running: 1, idle: 1 };
      assert.equal(metrics.load(), Math.max(50, s.cpu, s.memory, s.swap, 50, 6.3));
      counts = { running: 3, idle: 1 };
      assert.equal(metrics.load(), 100);
      // Computed once per change of its inputs: a new snapshot or new counts show at once.
      counts = { running: 0, idle: 0 };
      assert.equal(metrics.load(), computeLoad(s, counts, 4));
      const next = await metrics.takeSnapshot();
      assert.equal(metrics.load(), computeLoad(next, counts, 4));
    } finally {
      await metrics.stop();
    }
  });
});

// ---------------------------------------------------------------- load window (steady figures)

/**
 * A machine whose CPU use, GPU use and memory the test sets second by second; snapshots are
 * taken on a fake clock by the metrics' own timer, so each `second()` is one tick of it.
 */
function scriptedMachine(dir: string, loadWindow: number, maxConnections = 100) {
  const clock = new FakeClock();
  const cores: CpuTimes[] = [0, 1].map(() => ({ user: 0, nice: 0, sys: 0, idle: 0, irq: 0 }));
  let gpu = 0;
  let memoryUsed = 20;
  const system: SystemSources = {
    cpus: () => cores.map((times) => ({ model: "Test CPU", times: { ...times } })),
    memory: () => ({
      total: 1000,
      available: 1000 - memoryUsed * 10,
      swapTotal: 0,
      swapFree: 0,
    }),
    statfs: () => Promise.resolve({ blocks: 100, bfree: 50, bavail: 50, bsize: 4096 }),
    hostname: () => "test-host",
    osRelease: () => "6.1.0",
    osReleaseFile: () => "",
  };
  const runCommand: RunCommand = (cmd) =>
    Promise.resolve({
      success: true,
      stdout: cmd.endsWith("cat") ? NET_DEV_SAMPLE : `Tesla T4, ${gpu}, 0, 0, 16000\n`,
    });
  let taken: (() => void) | undefined;
  const d = deps(dir, {
    now: () => clock.now(),
    timers: clock,
    system,
    runCommand,
    onSnapshot: () => taken?.(),
  });
  d.config = { ...d.config, loadWindow, maxConnections };
  const metrics = createMetrics(d);
  let counts = { running: 0, idle: 0 };
  let first = true;
  return {
    metrics,
    setCounts(running: number, idle: number) {
      counts = { running, idle };
    },
    setMemory(percent: number) {
      memoryUsed = percent;
    },
    /** One second with the CPU at `cpu` % and the GPU at `gpuCompute` %, ending in a snapshot. */
    async second(cpu: number, gpuCompute = 0) {
      for (const core of cores) {
        core.user += cpu * 10;
        core.idle += 1000 - cpu * 10;
      }
      gpu = gpuCompute;
      const snapshot = new Promise<void>((resolve) => (taken = resolve));
      if (first) metrics.start(() => counts);
      await clock.advance(first ? 0 : 1000);
      first = false;
      await snapshot;
    },
    /** `second()` for each CPU figure, returning `/load` after each. */
    async seconds(cpus: readonly number[]): Promise<number[]> {
      const loads = [];
      for (const cpu of cpus) {
        await this.second(cpu);
        loads.push(metrics.load());
      }
      return loads;
    },
  };
}

Deno.test("with loadWindow 5 a 4-second CPU spike at 100 % in a 30 % window stays below 99", async () => {
  await withTempDir(async (dir) => {
    const machine = scriptedMachine(dir, 5);
    try {
      const loads = await machine.seconds([30, 100, 100, 100, 100, 30, 30, 30, 30]);
      assert.deepEqual(loads, [30, 65, 76.7, 82.5, 86, 86, 72, 58, 44]);
      assert.ok(loads.every((load) => load < 99));
      assert.equal(machine.metrics.history.at(4)!.cpu, 100); // the snapshots keep the raw figure
    } finally {
      await machine.metrics.stop();
    }
  });
});

Deno.test("with loadWindow 1 the same spike reads 100 at once, as before the window", async () => {
  await withTempDir(async (dir) => {
    const machine = scriptedMachine(dir, 1);
    try {
      assert.deepEqual(await machine.seconds([30, 100, 100, 30]), [30, 100, 100, 30]);
    } finally {
      await machine.metrics.stop();
    }
  });
});

Deno.test("a sustained 100 % CPU reaches 99 once it fills the window, not before", async () => {
  await withTempDir(async (dir) => {
    const machine = scriptedMachine(dir, 5);
    try {
      await machine.seconds([30, 30, 30, 30, 30]);
      assert.equal(machine.metrics.load(), 30);
      assert.deepEqual(await machine.seconds([100, 100, 100, 100, 100, 100]), [
        44,
        58,
        72,
        86,
        100,
        100,
      ]);
    } finally {
      await machine.metrics.stop();
    }
  });
});

Deno.test("the GPU compute figure of /load is averaged over the window like the CPU", async () => {
  await withTempDir(async (dir) => {
    const machine = scriptedMachine(dir, 5);
    try {
      const loads = [];
      for (const gpu of [30, 100, 100, 100, 100]) {
        await machine.second(10, gpu);
        loads.push(machine.metrics.load());
      }
      assert.deepEqual(loads, [30, 65, 76.7, 82.5, 86]);
      assert.equal(machine.metrics.history.at(-1)!.gpuCompute, 100);
    } finally {
      await machine.metrics.stop();
    }
  });
});

Deno.test("memory is taken as it is now, not averaged", async () => {
  await withTempDir(async (dir) => {
    const machine = scriptedMachine(dir, 5);
    try {
      await machine.seconds([10, 10, 10]);
      assert.equal(machine.metrics.load(), 20); // memory 20 % beats the CPU
      machine.setMemory(97);
      await machine.second(10);
      assert.equal(machine.metrics.load(), 97);
      machine.setMemory(40);
      await machine.second(10);
      assert.equal(machine.metrics.load(), 40);
    } finally {
      await machine.metrics.stop();
    }
  });
});

Deno.test("the slot share of /load moves at once when a simulation starts or ends", async () => {
  await withTempDir(async (dir) => {
    const machine = scriptedMachine(dir, 5, 4);
    try {
      await machine.seconds([30, 30]);
      assert.equal(machine.metrics.load(), 30);
      // No snapshot and no time in between: the counts are read when /load is asked.
      machine.setCounts(1, 1);
      assert.equal(machine.metrics.load(), 50);
      machine.setCounts(3, 1);
      assert.equal(machine.metrics.load(), 100);
      machine.setCounts(0, 1);
      assert.equal(machine.metrics.load(), 30);
      machine.setCounts(0, 0);
      assert.equal(machine.metrics.load(), 30);
    } finally {
      await machine.metrics.stop();
    }
  });
});

// ---------------------------------------------------------------- under the server's permissions

Deno.test("metrics work under exactly the simulation server's permissions", async () => {
  await withTempDir(async (dir) => {
    const { simulationPermissions } = await import("../../simulation/permissions.ts");
    const { loadConfig } = await import("../../shared/config.ts");
    const { simulationConfigEnv } = await import("../../simulation/config.ts");
    const { simulationSchema } = await import("../../simulation/config.ts");
    for (const sub of ["webots", "projects", "key", "instances"]) {
      await Deno.mkdir(join(dir, sub));
    }
    const configFile = join(dir, "simulation.json");
    await Deno.writeTextFile(
      configFile,
      JSON.stringify({
        port: 0,
        webotsHome: join(dir, "webots"),
        projectsDir: join(dir, "projects"),
        keyDir: join(dir, "key"),
        instancesDir: join(dir, "instances"),
        logDir: join(dir, "log"),
        nvidiaSmiPath: FAKE_NVIDIA_SMI,
        maxConnections: 10,
      }),
    );
    const config = await loadConfig(simulationSchema, configFile, simulationConfigEnv());
    const flags = simulationPermissions(config, { root: ROOT, configFile });
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-P=simulation",
        ...flags,
        join(ROOT, "tests", "simulation", "collect_snapshot.ts"),
        configFile,
      ],
      cwd: ROOT,
      env: { NO_COLOR: "1", FAKE_NVIDIA_SMI_GPUS: "Tesla T4, 70, 30, 4000, 16000" },
      stdin: "null",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, `exit ${out.code}\n${stdout}\n${stderr}`);
    const { snapshots, host, load } = JSON.parse(stdout);
    assert.equal(snapshots.length, 2);
    const [first, second] = snapshots;
    assert.ok(second.timestamp > first.timestamp); // one second apart on the real timer
    assert.deepEqual([second.webotsRunning, second.webotsIdle], [1, 2]);
    assert.deepEqual([second.gpuCompute, second.gpuMemoryLoad, second.gpuMemory], [70, 30, 25]);
    assert.ok(second.cpu >= 0 && second.cpu <= 100);
    assert.ok(second.memory > 0 && second.disk > 0);
    assert.ok(second.networkSent >= 0 && second.networkReceived >= 0);
    assert.equal(host.gpu.name, "Tesla T4");
    assert.match(host.os, /^Linux /);
    assert.ok(load >= 30); // 3 of 10 slots at least
    const log = await Deno.readTextFile(join(dir, "log", "simulation", "output.log"));
    assert.ok(!/unavailable|failed/.test(log), log);
    const csv = (await Deno.readTextFile(join(dir, "log", "simulation", "monitor.csv")))
      .trim().split("\n");
    assert.equal(csv[0], MONITOR_CSV_HEADER);
    assert.equal(csv.length, 3);
  });
});
