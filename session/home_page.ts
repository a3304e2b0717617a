/**
 * The page a plain `GET /` shows: what this server is and where to look. Issue #4 replaces it with
 * a demo page.
 *
 * @module
 */

/** The home page's HTML. */
export function homePage(): string {
  return `<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>Webots session server</title>
<style>body{font-family:sans-serif;margin:2em}code{background:#eee;padding:0 .2em}</style>
</head>
<body>
<h1>Webots session server</h1>
<p>This server balances Webots web simulations over a set of simulation servers.</p>
<ul>
<li><a href="monitor">monitor</a>: the simulation servers and their load</li>
<li><code>GET /session</code>: the WebSocket URL of the least-loaded simulation server</li>
<li><code>GET /load</code>: the average load of the simulation servers</li>
<li>WebSocket on <code>/</code>: <code>1</code> or <code>0</code> whenever availability changes</li>
</ul>
</body>
</html>
`;
}
