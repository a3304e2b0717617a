import assert from "node:assert/strict";
import { emptySnapshot, type HostInfo, type Snapshot } from "../../simulation/metrics.ts";
import {
  monitorData,
  type MonitorPageData,
  renderMonitorPage,
  type SessionRow,
  snapshotsAsJson,
} from "../../simulation/monitor_page.ts";
import type { LoadStatus } from "../../simulation/load.ts";

const HOST: HostInfo = {
  hostname: "sim1",
  os: "Linux Debian GNU/Linux 12 bookworm",
  kernel: "6.1.0",
  cpuModel: "AMD EPYC 7B13",
  cpuCores: 8,
  gpu: undefined,
  ramTotalGB: 25.3,
  swapTotalGB: 0,
};

function history(n: number): Snapshot[] {
  return Array.from({ length: n }, (_, i) => ({
    ...emptySnapshot(1_700_000_000 + i),
    webotsRunning: i % 3,
    webotsIdle: 1,
    cpu: 10 + i,
    memory: 40,
    disk: 55.5,
    networkSent: 0.25 * i,
    networkReceived: 1.5,
  }));
}

const SESSION: SessionRow = {
  id: "c1",
  world: "robots/ure.wbt",
  release: "R2025a",
  port: 2001,
  state: "running",
  startedAt: 1_000_000,
  idleSince: undefined,
  remote: "127.0.0.1",
};

const STATUS: LoadStatus = {
  load: 14,
  draining: false,
  drainRemainingS: undefined,
  counts: { running: 0, idle: 1 },
  maxConnections: 4,
};

/** The page's input: `history` and `sessions`, with what `/load` answers. */
function pageData(
  history: Snapshot[],
  sessions: SessionRow[],
  extra: Partial<MonitorPageData> = {},
): MonitorPageData {
  return {
    fqdn: "h",
    host: HOST,
    history,
    sessions,
    status: STATUS,
    loadFigures: history.at(-1),
    loadWindow: 5,
    ...extra,
  };
}

Deno.test("the monitor page has the reference's title, /load and its parts first, then the simulations", () => {
  const page = renderMonitorPage(pageData(history(5), [], { fqdn: "sim.example.com" }));
  assert.match(page, /^<!DOCTYPE html>/);
  assert.ok(page.includes("<title>Webots simulation server</title>"));
  assert.ok(page.includes("<h1>Webots simulation server: sim.example.com"));
  assert.ok(page.includes(`Load reported on /load: <strong id="load-figure">14.0%</strong>`));
  assert.ok(page.includes("Slots: 1 used, 3 free of maxConnections 4"));
  // The largest part is marked (memory 40% over one idle Webots of 4 slots, 25%); the figure
  // itself is what /load answered.
  assert.ok(page.includes(`<tr class="decides"><td>Memory</td><td class="num">40.0%</td>`));
  assert.ok(page.includes(`<tr><td>Slots</td><td class="num">25.0%</td><td>1 of 4 taken</td>`));
  assert.ok(page.includes(`<td>CPU</td><td class="num">14.0%</td><td>mean of the last 5 s</td>`));
  assert.ok(page.includes("<h2>Host: Linux Debian GNU/Linux 12 bookworm</h2>"));
  assert.ok(page.includes("CPU: AMD EPYC 7B13 (8 cores) — 14.0% in the last second"));
  assert.ok(page.includes("RAM: 25.3 GB (40.0% used) — swap: 0 GB (0.0% used)"));
  assert.ok(page.includes("No simulation is running."));
  const order = ["load-figure", "<h2>Simulations</h2>", "<figure", "<h2>Host:"].map((s) =>
    page.indexOf(s)
  );
  assert.deepEqual(order, [...order].sort((a, b) => a - b), "load, simulations, charts, host");
  assert.ok(page.includes(`<p id="drain" class="drain" hidden>`), "no drain, no banner");
});

Deno.test("without a GPU no GPU figure nor series is shown; with one, both are", () => {
  const without = renderMonitorPage(pageData(history(2), []));
  assert.ok(without.includes("GPU: none found"));
  assert.ok(!without.includes("GPU compute"), "no GPU part, no GPU series");
  assert.ok(!without.includes("gpuComputeMean"));
  const s = { ...emptySnapshot(1), gpuCompute: 35, gpuMemoryLoad: 12, gpuMemory: 8.3 };
  const gpu = { name: "NVIDIA GeForce RTX 3090", count: 1, memoryTotalGB: 25.8 };
  const page = renderMonitorPage(pageData([s], [], { host: { ...HOST, gpu } }));
  assert.ok(page.includes("GPU: NVIDIA GeForce RTX 3090, 25.8 GB — compute 35.0%"));
  assert.ok(page.includes(`<td>GPU compute</td><td class="num">35.0%</td>`));
  assert.ok(page.includes("gpuComputeMean") && page.includes("gpuMemoryMean"));
  assert.ok(!page.includes("none found"));
});

Deno.test("while draining the page says /load answers 100, and when the rest end", () => {
  const page = renderMonitorPage(pageData(history(3), [SESSION], {
    status: { ...STATUS, load: 100, draining: true, drainRemainingS: 62 },
    now: Date.UTC(2026, 10, 29, 21, 0, 0),
  }));
  assert.ok(page.includes(`<strong id="load-figure">100.0%</strong>`));
  assert.ok(page.includes(`<span class="state state-draining">draining</span>`));
  assert.ok(
    page.includes(
      "Draining: no new simulation starts and /load answers 100; the running ones end in " +
        "1 min 02 s (at 2026-11-29 21:01:02) unless they end before.",
    ),
  );
  assert.ok(!page.includes(`class="decides"`), "no part decides a drain's 100");
});

Deno.test("the monitor page escapes every outside value", () => {
  const evil = `<script>alert("x")</script>`;
  const page = renderMonitorPage(pageData(history(3), [{
    ...SESSION,
    id: evil,
    world: `${evil}.wbt`,
    release: evil,
    state: evil,
    remote: evil,
  }], {
    fqdn: evil,
    host: {
      ...HOST,
      os: evil,
      hostname: evil,
      cpuModel: evil,
      gpu: { name: evil, count: 1, memoryTotalGB: 1 },
    },
    now: 2_000_000,
  }));
  assert.ok(!page.includes("<script>"));
  assert.deepEqual(scriptSources(page), OWN_SCRIPTS);
  assert.ok(page.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
  assert.ok(page.includes(`<h1>Webots simulation server: &lt;script&gt;`));
  assert.ok(page.includes(`class="state state-other"`)); // an unknown state gets no class of its own
});

const OWN_SCRIPTS = [
  "assets/uPlot.iife.min.js",
  "assets/live_chart.js",
  "assets/simulation_monitor.js",
];

/** The `src` of every `<script` element, in order. */
function scriptSources(page: string): string[] {
  return [...page.matchAll(/<script\b[^>]*>/gi)].map((m) => m[0].match(/src="([^"]*)"/)?.[1] ?? "");
}

Deno.test("the monitor page loads only its own assets, by relative URLs", () => {
  const page = renderMonitorPage(pageData(history(600), [SESSION]));
  assert.deepEqual(scriptSources(page), OWN_SCRIPTS);
  assert.deepEqual([...page.matchAll(/<link\b[^>]*>/gi)].map((m) => m[0]), [
    `<link rel="stylesheet" href="assets/uPlot.min.css">`,
  ]);
  assert.ok(!/https?:\/\//i.test(page));
  assert.ok(!/\burl\(/i.test(page));
  assert.ok(!/<img/i.test(page));
});

Deno.test("each chart is described once: Load plots /load and its parts, simulations on whole numbers", () => {
  const page = renderMonitorPage(pageData(history(600), []));
  assert.ok(!page.includes("<svg"), "no server-side drawing");
  const figures = [
    ...page.matchAll(
      /<figure data-chart="([^"]+)" data-unit="([^"]*)"( data-max="(\d+)")?( data-integer)? data-series="([^"]+)">/g,
    ),
  ];
  assert.deepEqual(figures.map((f) => [f[1], f[2], f[4], f[5] !== undefined]), [
    ["load", "%", "100", false],
    ["simulations", "", "4", true],
    ["network", " MB/s", undefined, false],
  ]);
  const series = figures.map((f) => JSON.parse(f[6]!.replaceAll("&quot;", '"')));
  assert.deepEqual(series.map((s: { key: string }[]) => s.map((x) => x.key)), [
    ["load", "slots", "cpuMean", "memory", "swap"],
    ["webotsRunning", "webotsIdle"],
    ["networkSent", "networkReceived"],
  ]);
  assert.equal(series[0][0].label, "Load (/load)");
  // Every series the charts draw is a column of /monitor/data's history.
  const columns = monitorData(pageData(history(600), [])).history;
  for (const list of series) {
    for (const { key } of list as { key: string }[]) assert.equal(columns[key]?.length, 600, key);
  }
  assert.equal(page.match(/The chart needs JavaScript\./g)?.length, 3);
});

Deno.test("the simulations table shows id, world, release, coloured state, age, idle time, address and port", () => {
  const page = renderMonitorPage(pageData([], [
    SESSION,
    {
      ...SESSION,
      id: "c2",
      state: "idle",
      startedAt: 1_000_000 - 3_725_000,
      idleSince: 1_000_000,
      port: 2002,
    },
    { ...SESSION, id: "c3", state: "preparing", release: undefined, port: 0 },
  ], { now: 1_065_000 }));
  assert.ok(
    page.includes(
      `<tr><td>c1</td><td>robots/ure.wbt</td><td>R2025a</td>` +
        `<td><span class="state state-running">running</span></td><td>1 min 05 s</td><td></td>` +
        `<td>127.0.0.1</td><td>2001</td></tr>`,
    ),
  );
  assert.ok(
    page.includes(
      `<span class="state state-idle">idle</span></td><td>1 h 03 min</td><td>1 min 05 s</td>`,
    ),
  );
  assert.ok(page.includes(`<td>c3</td><td>robots/ure.wbt</td><td></td>`));
  assert.ok(page.includes(`<td>127.0.0.1</td><td></td></tr>`), "no port before Webots has one");
});

Deno.test("snapshotsAsJson gives one column per snapshot field", () => {
  const json = JSON.parse(snapshotsAsJson(history(3)));
  assert.deepEqual(Object.keys(json), [
    "timestamp",
    "webotsRunning",
    "webotsIdle",
    "cpu",
    "memory",
    "gpuCompute",
    "gpuMemoryLoad",
    "gpuMemory",
    "swap",
    "disk",
    "networkSent",
    "networkReceived",
  ]);
  assert.deepEqual(json.cpu, [10, 11, 12]);
  assert.deepEqual(json.timestamp, [1_700_000_000, 1_700_000_001, 1_700_000_002]);
});

Deno.test("monitorData gives the live parts: load view, host lines, history columns, display rows", () => {
  const data = monitorData(pageData(history(3), [{ ...SESSION, state: "<weird>" }], {
    now: 1_065_000,
  }));
  assert.equal(data.load.load, "14.0%");
  assert.equal(data.load.standing, "available");
  assert.deepEqual(
    data.load.parts.map((p) => [p.name, p.value, p.decides]),
    [
      ["Slots", "25.0%", false],
      ["CPU", "12.0%", false],
      ["Memory", "40.0%", true],
      ["Swap", "0.0%", false],
    ],
  );
  assert.equal(data.host[0], "CPU: AMD EPYC 7B13 (8 cores) — 12.0% in the last second");
  assert.equal(data.host.length, 4);
  assert.deepEqual(data.history.cpu, [10, 11, 12]);
  // /load's figure over time: max(slots of that second's simulations, CPU mean, memory 40%).
  assert.deepEqual(data.history.load, [40, 50, 75]);
  assert.deepEqual(data.history.cpuMean, [10, 10.5, 11]);
  assert.deepEqual(data.history.slots, [25, 50, 75]);
  assert.deepEqual(data.sessions, [{
    id: "c1",
    world: "robots/ure.wbt",
    release: "R2025a",
    state: "<weird>",
    stateClass: "state-other",
    age: "1 min 05 s",
    idle: "",
    remote: "127.0.0.1",
    port: "2001",
  }]);
});

Deno.test("with leases on, the slots say how many leases hold, and they count in the slot share", () => {
  const data = monitorData(pageData(history(2), [], {
    status: { ...STATUS, counts: { running: 0, idle: 1, reserved: 1 } },
  }));
  assert.equal(
    data.load.slots,
    "2 used (1 held by slot leases, no Webots yet), 2 free of maxConnections 4",
  );
  assert.deepEqual(data.load.parts[0], {
    name: "Slots",
    value: "50.0%",
    note: "2 of 4 taken",
    decides: true,
  });
  const without = monitorData(pageData(history(2), []));
  assert.equal(without.load.slots, "1 used, 3 free of maxConnections 4");
});

Deno.test("the load chart counts the slots leases held at each second, as /load did", () => {
  const snapshots = history(2).map((s, i) => ({ ...s, webotsRunning: 0, reserved: i + 1 }));
  const columns = monitorData(pageData(snapshots, [])).history;
  // One idle Webots and 1, then 2 leased slots of 4.
  assert.deepEqual(columns.slots, [50, 75]);
  assert.deepEqual(columns.load, [50, 75]);
});
