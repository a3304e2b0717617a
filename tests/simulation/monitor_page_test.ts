import assert from "node:assert/strict";
import { emptySnapshot, type HostInfo, type Snapshot } from "../../simulation/metrics.ts";
import {
  monitorData,
  renderMonitorPage,
  type SessionRow,
  snapshotsAsJson,
} from "../../simulation/monitor_page.ts";

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
  port: 2001,
  state: "running",
  startedAt: 1_000_000,
  remote: "127.0.0.1",
};

Deno.test("the monitor page has the reference's title and headings", () => {
  const page = renderMonitorPage({
    fqdn: "sim.example.com",
    host: HOST,
    history: history(5),
    sessions: [],
  });
  assert.match(page, /^<!DOCTYPE html>/);
  assert.ok(page.includes("<title>Webots simulation server</title>"));
  assert.ok(page.includes("<h1>Webots simulation server: sim.example.com</h1>"));
  assert.ok(page.includes("<h2>Host: Linux Debian GNU/Linux 12 bookworm</h2>"));
  assert.ok(page.includes("CPU load: 14% — AMD EPYC 7B13 (8 cores)"));
  assert.ok(page.includes("RAM: 25.3 GB (40% used) — swap: 0 GB (0% used)"));
  assert.ok(page.includes("No simulation is running."));
});

Deno.test("the monitor page shows Not recognized without a GPU and the GPU figures with one", () => {
  const without = renderMonitorPage({ fqdn: "h", host: HOST, history: history(2), sessions: [] });
  assert.ok(without.includes("GPU: Not recognized"));
  const s = { ...emptySnapshot(1), gpuCompute: 35, gpuMemoryLoad: 12, gpuMemory: 8.3 };
  const gpu = { name: "NVIDIA GeForce RTX 3090", count: 1, memoryTotalGB: 25.8 };
  const page = renderMonitorPage({ fqdn: "h", host: { ...HOST, gpu }, history: [s], sessions: [] });
  assert.ok(page.includes("GPU load compute: 35% — load memory: 12%"));
  assert.ok(page.includes("NVIDIA GeForce RTX 3090, 25.8 GB"));
  assert.ok(!page.includes("Not recognized"));
});

Deno.test("the monitor page escapes every outside value", () => {
  const evil = `<script>alert("x")</script>`;
  const page = renderMonitorPage({
    fqdn: evil,
    host: {
      ...HOST,
      os: evil,
      hostname: evil,
      cpuModel: evil,
      gpu: { name: evil, count: 1, memoryTotalGB: 1 },
    },
    history: history(3),
    sessions: [{ ...SESSION, id: evil, world: `${evil}.wbt`, state: evil, remote: evil }],
    now: 2_000_000,
  });
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
  const page = renderMonitorPage({
    fqdn: "h",
    host: HOST,
    history: history(600),
    sessions: [SESSION],
  });
  assert.deepEqual(scriptSources(page), OWN_SCRIPTS);
  assert.deepEqual([...page.matchAll(/<link\b[^>]*>/gi)].map((m) => m[0]), [
    `<link rel="stylesheet" href="assets/uPlot.min.css">`,
  ]);
  assert.ok(!/https?:\/\//i.test(page));
  assert.ok(!/\burl\(/i.test(page));
  assert.ok(!/<img/i.test(page));
});

Deno.test("each chart is described once for the live chart, which alone draws and scales it", () => {
  const page = renderMonitorPage({ fqdn: "h", host: HOST, history: history(600), sessions: [] });
  assert.ok(!page.includes("<svg"), "no server-side drawing");
  const figures = [
    ...page.matchAll(
      /<figure data-chart="([^"]+)" data-unit="([^"]*)"( data-max="(\d+)")? data-series="([^"]+)">/g,
    ),
  ];
  assert.deepEqual(figures.map((f) => [f[1], f[2], f[4]]), [
    ["load", "%", "100"],
    ["network", " MB/s", undefined],
    ["simulations", "", undefined],
  ]);
  const series = figures.map((f) => JSON.parse(f[5]!.replaceAll("&quot;", '"')));
  assert.deepEqual(series.map((s: { key: string }[]) => s.map((x) => x.key)), [
    ["cpu", "memory", "gpuCompute", "gpuMemoryLoad", "gpuMemory", "swap", "disk"],
    ["networkSent", "networkReceived"],
    ["webotsRunning", "webotsIdle"],
  ]);
  // Every series the charts draw is a column of /monitor/data's history.
  const columns = monitorData({ fqdn: "h", host: HOST, history: history(600), sessions: [] })
    .history;
  for (const list of series) {
    for (const { key } of list as { key: string }[]) assert.equal(columns[key]?.length, 600, key);
  }
  assert.equal(page.match(/The chart needs JavaScript\./g)?.length, 3);
});

Deno.test("the simulations table shows id, world, port, coloured state, age and address", () => {
  const page = renderMonitorPage({
    fqdn: "h",
    host: HOST,
    history: [],
    sessions: [
      SESSION,
      { ...SESSION, id: "c2", state: "idle", startedAt: 1_000_000 - 3_725_000, port: 2002 },
    ],
    now: 1_065_000,
  });
  assert.ok(
    page.includes(
      `<tr><td>c1</td><td>robots/ure.wbt</td><td>2001</td>` +
        `<td><span class="state state-running">running</span></td><td>1 min 05 s</td>` +
        `<td>127.0.0.1</td></tr>`,
    ),
  );
  assert.ok(page.includes(`<span class="state state-idle">idle</span></td><td>1 h 03 min</td>`));
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

Deno.test("monitorData gives the live parts: figure lines, history columns, display rows", () => {
  const data = monitorData({
    fqdn: "h",
    host: HOST,
    history: history(3),
    sessions: [{ ...SESSION, state: "<weird>" }],
    now: 1_065_000,
  });
  assert.equal(data.figures[0], "CPU load: 12% — AMD EPYC 7B13 (8 cores)");
  assert.equal(data.figures.length, 5);
  assert.deepEqual(data.history.cpu, [10, 11, 12]);
  assert.deepEqual(data.sessions, [{
    id: "c1",
    world: "robots/ure.wbt",
    port: "2001",
    state: "<weird>",
    stateClass: "state-other",
    age: "1 min 05 s",
    remote: "127.0.0.1",
  }]);
});

Deno.test("each chart names its live series on its figure", () => {
  const page = renderMonitorPage({ fqdn: "h", host: HOST, history: [], sessions: [] });
  const figures = [...page.matchAll(/<figure data-chart="(\w+)"[^>]*data-series="([^"]*)"/g)];
  assert.deepEqual(figures.map((f) => f[1]), ["load", "network", "simulations"]);
  const series = JSON.parse(figures[0]![2]!.replaceAll("&quot;", '"'));
  assert.deepEqual(series[0], { key: "cpu", label: "CPU", color: "#1f77b4" });
  assert.ok(page.includes(`data-chart="load" data-unit="%" data-max="100"`));
});
