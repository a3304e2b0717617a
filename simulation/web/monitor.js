// The simulation server's /monitor page, live: polls monitor/data every second and updates the
// figures list, the uPlot charts and the simulations table (see simulation/monitor_page.ts).
(function () {
  "use strict";
  const live = globalThis.WebotsLive;
  const charts = live.mountCharts(document);
  const figures = document.getElementById("figures");
  const sessions = document.getElementById("sessions");
  const state = document.getElementById("live");

  function showFigures(lines) {
    const items = lines.map((line) => {
      const li = document.createElement("li");
      li.textContent = line;
      return li;
    });
    figures.replaceChildren(...items);
  }

  function showSessions(rows) {
    sessions.querySelector("p.none").hidden = rows.length > 0;
    sessions.querySelector("table").hidden = rows.length === 0;
    live.fillRows(
      sessions.querySelector("tbody"),
      rows.map((r) => [
        r.id,
        r.world,
        r.port,
        { text: r.state, className: `state ${r.stateClass}` },
        r.age,
        r.remote,
      ]),
    );
  }

  live.poll(new URL("monitor/data", location.href), 1000, (data) => {
    showFigures(data.figures);
    charts.update(data.history);
    showSessions(data.sessions);
  }, (ok) => {
    state.textContent = ok ? "(live)" : "(not updating: server unreachable)";
    state.classList.toggle("stale", !ok);
  });
})();
