// The simulation server's /monitor page, live: polls monitor/data every second and updates what
// /load answers and its parts, the slots, the drain, the simulations table, the uPlot charts and
// the host figures (see simulation/monitor_page.ts).
(function () {
  "use strict";
  const live = globalThis.WebotsLive;
  const charts = live.mountCharts(document);
  const host = document.getElementById("host");
  const sessions = document.getElementById("sessions");
  const state = document.getElementById("live");

  function showLoad(view) {
    document.getElementById("load-figure").textContent = view.load;
    const badge = document.querySelector("#load p.figure span.state");
    badge.textContent = view.standing;
    badge.className = `state ${view.standingClass}`;
    document.getElementById("slots").textContent = `Slots: ${view.slots}`;
    const drain = document.getElementById("drain");
    drain.hidden = !view.drain;
    drain.textContent = view.drain || "";
    live.fillRows(
      document.getElementById("parts"),
      view.parts.map((p) => ({
        className: p.decides ? "decides" : "",
        cells: [p.name, { text: p.value, cellClass: "num" }, p.note],
      })),
    );
  }

  function showHost(lines) {
    host.replaceChildren(...lines.map((line) => {
      const li = document.createElement("li");
      li.textContent = line;
      return li;
    }));
  }

  function showSessions(rows) {
    sessions.querySelector("p.none").hidden = rows.length > 0;
    sessions.querySelector("table").hidden = rows.length === 0;
    live.fillRows(
      sessions.querySelector("tbody"),
      rows.map((r) => [
        r.id,
        r.world,
        r.release,
        { text: r.state, className: `state ${r.stateClass}` },
        r.age,
        r.idle,
        r.remote,
        r.port,
      ]),
    );
  }

  live.poll(new URL("monitor/data", location.href), 1000, (data) => {
    // nvidia-smi answered (or stopped answering) since the page was drawn: draw it again, with
    // or without the GPU series.
    if (data.gpu !== (document.body.dataset.gpu === "true")) {
      location.reload();
      return;
    }
    showLoad(data.load);
    showSessions(data.sessions);
    charts.update(data.history);
    showHost(data.host);
  }, (ok) => {
    state.textContent = ok ? "(live)" : "(not updating: server unreachable)";
    state.classList.toggle("stale", !ok);
  });
})();
