/**
 * The demo world of `demo/projects`, started over a plain WebSocket, for the operator tests.
 *
 * @module
 */
import { join } from "node:path";
import { ROOT } from "../helpers/server_process.ts";

/**
 * Opens `/client` on the simulation server, asks for the demo world and resolves with the
 * `webots:` reply and the socket (the caller closes it or lets the server close it).
 */
export async function startDemoWorld(
  port: number,
): Promise<{ reply: string; closed: Promise<void> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/client`);
  const closed = new Promise<void>((resolve) => ws.addEventListener("close", () => resolve()));
  const reply = new Promise<string>((resolve, reject) => {
    ws.addEventListener("message", (event) => {
      if (String(event.data).startsWith("webots:")) resolve(String(event.data));
    });
    ws.addEventListener("close", () => reject(new Error("closed before the webots: reply")));
  });
  ws.addEventListener("open", () => {
    const world = `file://${join(ROOT, "demo", "projects", "hello", "worlds", "hello.wbt")}`;
    ws.send(JSON.stringify({ start: { url: world } }));
  });
  return { reply: await reply, closed };
}
