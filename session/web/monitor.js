// The session server's /monitor page, live: polls monitor/data every second and updates the table
// of simulation servers and the uPlot load chart (see session/monitor_page.ts).
(function () {
  "use strict";
  const live = globalThis.WebotsLive;
  const charts = live.mountCharts(document);
  const tbody = document.getElementById("servers");
  const state = document.getElementById("live");

  live.poll(new URL("monitor/data", location.href), 1000, (data) => {
    const rows = data.servers.map((s, i) => [
      String(i + 1),
      { text: s.entry, href: s.monitor },
      { text: s.state, className: s.stateClass },
      { text: s.load, cellClass: s.loadClass },
    ]);
    rows.push({
      className: "average",
      cells: ["", { text: "average:", colSpan: 2 }, {
        text: data.average.text,
        cellClass: data.average.className,
      }],
    });
    live.fillRows(tbody, rows);
    charts.update(data.history);
  }, (ok) => {
    state.textContent = ok ? "(live)" : "(not updating: server unreachable)";
    state.classList.toggle("stale", !ok);
  });
})();
