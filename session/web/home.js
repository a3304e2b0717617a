// The session server's home page: live availability from this server's `/` WebSocket, and the
// Webots client sequence on Start (GET session → WebSocket <answer>/client → {"start":{"url"}}),
// or on Wait in line (the queue of `/` → session: <url> → the same), every step shown with
// textContent (see session/home_page.ts).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const here = new URL(".", location.href);
  const wsBase = here.href.replace(/^http/, "ws");
  let simulation;

  function log(text) {
    const item = document.createElement("li");
    item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
    $("log").appendChild(item);
    $("log").scrollTop = $("log").scrollHeight;
  }

  function watchAvailability() {
    const badge = $("availability");
    const socket = new WebSocket(wsBase);
    socket.onmessage = (event) => {
      const available = event.data === "1";
      badge.textContent = available ? "available" : "full";
      badge.className = `badge ${available ? "available" : "full"}`;
      log(`availability: ${event.data}`);
    };
    socket.onclose = () => {
      badge.textContent = "disconnected";
      badge.className = "badge";
      setTimeout(watchAvailability, 2000);
    };
  }

  function setRunning(running) {
    $("start").disabled = running;
    $("queue-button").disabled = running;
    $("stop").disabled = !running;
  }

  function reset() {
    for (const id of ["answer", "socket", "webots", "error"]) $(id).textContent = "–";
    $("dots").textContent = "0";
    if ($("url").value.trim()) return true;
    $("error").textContent = "Enter the URL of a world.";
    return false;
  }

  // "Wait in line": a socket of its own on `/` asks for a place with {"queue": {}}; the server
  // answers `queue: <position> [~<seconds>]` as the line moves, then `session: <url>`, which is
  // opened like the answer of GET session. Stop (or closing the page) leaves the line.
  let line;
  function leaveLine() {
    if (line === undefined) return;
    const socket = line;
    line = undefined;
    socket.close(1000, "left the line");
  }
  function waitInLine(url) {
    if (!reset()) return;
    setRunning(true);
    $("queue").textContent = "asking for a place";
    const socket = new WebSocket(wsBase);
    line = socket;
    socket.onopen = () => {
      socket.send(JSON.stringify({ queue: {} }));
      log('sent {"queue":{}}');
    };
    socket.onmessage = (event) => {
      const text = String(event.data);
      const place = /^queue: (\d+)(?: ~(\d+))?$/.exec(text);
      if (place) {
        const wait = place[2] === undefined ? "" : `, about ${place[2]} s`;
        $("queue").textContent = place[1] === "1"
          ? `next in line${wait}`
          : `position ${place[1]}${wait}`;
        log(text);
      } else if (text.startsWith("queue: ")) {
        $("queue").textContent = `not queued: ${text.slice(7)}`;
        $("error").textContent = text;
        log(text);
        leaveLine();
        setRunning(false);
      } else if (text.startsWith("session: ")) {
        const answer = text.slice(9);
        $("queue").textContent = "your turn";
        log(text);
        leaveLine();
        $("answer").textContent = answer;
        open(answer, url);
      }
    };
    socket.onclose = () => {
      if (line !== socket) return;
      line = undefined;
      $("queue").textContent = "line closed";
      setRunning(false);
    };
  }

  async function start(url) {
    if (!reset()) return;
    setRunning(true);
    log("GET session");
    let answer;
    try {
      const response = await fetch(new URL("session", here), { cache: "no-store" });
      answer = (await response.text()).trim();
      $("answer").textContent = response.ok ? answer : `HTTP ${response.status}: ${answer}`;
      if (!response.ok || answer.startsWith("Error:")) throw new Error(answer);
    } catch (error) {
      $("error").textContent = String(error.message || error);
      log(`no simulation server: ${error.message || error}`);
      setRunning(false);
      return;
    }
    open(answer, url);
  }

  function open(answer, url) {
    let dots = 0;
    const socket = new WebSocket(`${answer}/client`);
    simulation = socket;
    $("socket").textContent = `connecting to ${answer}/client`;
    socket.onopen = () => {
      const message = JSON.stringify({ start: { url } });
      socket.send(message);
      $("socket").textContent = `open: ${answer}/client`;
      log(`sent ${message}`);
    };
    socket.onmessage = (event) => {
      const text = String(event.data);
      if (text === ".") {
        $("dots").textContent = String(++dots);
      } else if (text.startsWith("webots:")) {
        $("webots").textContent = text;
        log(text);
      } else if (text.startsWith("error:")) {
        $("error").textContent = text;
        log(text);
      } else {
        log(`message: ${text}`);
      }
    };
    socket.onerror = () => log(`cannot connect to ${answer}/client`);
    socket.onclose = (event) => {
      const why = `closed (code ${event.code}${event.reason ? `: ${event.reason}` : ""})`;
      $("socket").textContent = why;
      log(`simulation socket ${why}`);
      if (simulation === socket) {
        simulation = undefined;
        setRunning(false);
      }
    };
  }

  $("start-form").addEventListener("submit", (event) => {
    event.preventDefault();
    simulation?.close();
    start($("url").value.trim());
  });
  $("queue-button").addEventListener("click", () => {
    simulation?.close();
    leaveLine();
    waitInLine($("url").value.trim());
  });
  $("stop").addEventListener("click", () => {
    if (line !== undefined) {
      log("stop: leaving the line");
      leaveLine();
      $("queue").textContent = "left the line";
      setRunning(false);
      return;
    }
    log("stop: closing the simulation socket");
    simulation?.close(1000, "stopped by the user");
  });
  watchAvailability();
})();
