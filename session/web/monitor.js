// The session server's /monitor page, live: polls monitor/data every second and updates the
// table of simulation servers and its totals, the leases, queue and discovery sections (shown
// only when the server reports them), the uPlot load chart and the list of changes (see
// session/monitor_page.ts).
(function () {
  "use strict";
  const live = globalThis.WebotsLive;
  const charts = live.mountCharts(document);
  const servers = document.getElementById("servers");
  const totals = document.getElementById("totals");
  const changes = document.getElementById("changes");
  const state = document.getElementById("live");
  const managed = document.getElementById("managed");

  function showLines(id, lines) {
    const section = document.getElementById(id);
    section.hidden = !Array.isArray(lines);
    const items = (lines || []).map((line) => {
      const li = document.createElement("li");
      li.textContent = line;
      return li;
    });
    section.querySelector("ul").replaceChildren(...items);
  }

  function showChanges(rows) {
    changes.querySelector("p.none").hidden = rows.length > 0;
    changes.querySelector("table").hidden = rows.length === 0;
    live.fillRows(
      changes.querySelector("tbody"),
      rows.map((r) => [
        r.time,
        r.entry,
        r.from,
        { text: r.to, className: r.toClass },
        { text: r.load, cellClass: "load" },
      ]),
    );
  }

  live.poll(new URL("monitor/data", location.href), 1000, (data) => {
    live.fillRows(
      servers,
      data.servers.map((s, i) => [
        String(i + 1),
        { text: s.entry, href: s.monitor },
        { text: s.state, className: s.stateClass },
        s.lastAnswer,
        { text: s.load, cellClass: s.loadClass },
        { text: s.simulations, cellClass: "num" },
        { text: s.freeSlots, cellClass: "num" },
      ]),
    );
    const n = data.servers.length;
    managed.textContent = `${n} simulation server${n === 1 ? "" : "s"}`;
    const t = data.totals;
    live.fillRows(totals, [{
      className: "total",
      cells: [
        "",
        { text: "fleet (average load; free slots of available servers):", colSpan: 3 },
        { text: t.average.text, cellClass: t.average.className },
        { text: t.simulations, cellClass: "num" },
        { text: t.freeSlots, cellClass: "num" },
      ],
    }]);
    showLines("leases", data.leases);
    showLines("queue", data.queue);
    showLines("discovery", data.discovery);
    showChanges(data.changes);
    // The servers may have changed (a reload, DNS discovery): the chart follows them.
    charts.update(data.history, { load: data.series });
  }, (ok) => {
    state.textContent = ok ? "(live)" : "(not updating: server unreachable)";
    state.classList.toggle("stale", !ok);
  });
})();
