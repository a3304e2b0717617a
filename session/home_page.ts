/**
 * The page a plain `GET /` shows: a small demo of the Webots client sequence. It shows the live
 * availability (this server's own `/` WebSocket feed), and its Start button runs what the Webots
 * browser client does: `GET /session`, a WebSocket to `<answer>/client`, the `start` message, then
 * shows the `webots:` URL, counts the `.` activity messages and shows `error: …` messages and the
 * socket's close; Stop closes the socket, which ends the simulation. Wait in line takes a place in
 * the queue of `/` instead of `GET /session`, shows the position and the estimated wait as the line
 * moves, and opens the granted `session: <url>` the same way.
 *
 * The script is `assets/session_home.js`; the world URL field is prefilled from `?url=`. Without
 * JavaScript the page still describes the server's routes.
 *
 * @module
 */
import { escapeHtml } from "../shared/http.ts";

const STYLE = `body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1000px}
code{background:#eee;padding:0 .2em}
.badge{display:inline-block;padding:.1em .6em;border-radius:.8em;color:#fff;background:#757575}
.badge.available{background:#2e7d32}.badge.full{background:#c62828}
form{margin:1em 0;display:flex;gap:.5em;align-items:center;flex-wrap:wrap}
form label{flex:1 1 30em;display:flex;gap:.5em;align-items:center}
#url{flex:1;padding:.35em;font:inherit}
button{padding:.35em 1em;font:inherit}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.35em 1em}
dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
.error{color:#c00}
#log{font-family:monospace;font-size:.9em;background:#f6f6f6;border:1px solid #ddd;
padding:.5em 1em .5em 2.5em;max-height:16em;overflow:auto}`;

/** The home page's HTML; `url` prefills the world URL field. */
export function homePage(url = ""): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Webots session server</title>
<style>
${STYLE}
</style>
<script src="assets/session_home.js" defer></script>
</head>
<body>
<h1>Webots session server</h1>
<p>This server balances Webots web simulations over a set of simulation servers.
Simulation servers: <span id="availability" class="badge">unknown</span></p>
<h2>Try a simulation</h2>
<form id="start-form">
<label for="url">World URL <input id="url" name="url" type="text" value="${escapeHtml(url)}"
placeholder="webots://github.com/…/worlds/x.wbt or file:///…/worlds/x.wbt"></label>
<button id="start" type="submit">Start</button>
<button id="queue-button" type="button">Wait in line</button>
<button id="stop" type="button" disabled>Stop</button>
</form>
<noscript><p>Starting a simulation from this page needs JavaScript.</p></noscript>
<dl>
<dt>Place in line</dt><dd id="queue">–</dd>
<dt>Session server answer</dt><dd id="answer">–</dd>
<dt>Simulation socket</dt><dd id="socket">–</dd>
<dt>Webots stream</dt><dd id="webots">–</dd>
<dt>Activity messages</dt><dd id="dots">0</dd>
<dt>Error</dt><dd id="error" class="error">–</dd>
</dl>
<ol id="log"></ol>
<h2>Routes</h2>
<ul>
<li><a href="monitor">monitor</a>: the simulation servers and their load</li>
<li><code>GET /session</code>: the WebSocket URL of the least-loaded simulation server</li>
<li><code>GET /load</code>: the average load of the simulation servers</li>
<li>WebSocket on <code>/</code>: <code>1</code> or <code>0</code> whenever availability changes;
after <code>{"queue": {}}</code> also <code>queue: &lt;position&gt;</code> and then
<code>session: &lt;url&gt;</code></li>
</ul>
</body>
</html>
`;
}
