/**
 * The availability socket's message limit as a process: subscribers that send endless fragments
 * are each closed with 1009 while the message arrives, and the session server's memory stays
 * bounded; a subscriber that behaves is not disturbed.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { SUBSCRIBER_MAX_MESSAGE } from "../../session/server.ts";
import { startFakeSimServer } from "../fakes/sim_server.ts";
import {
  CLOSE,
  CONTINUATION,
  describe,
  maskedFrame,
  PING,
  PONG,
  rawConnect,
  TEXT,
} from "../helpers/raw_ws.ts";
import { serverPid, serverTest } from "../helpers/server_process.ts";
import { startSession, subscribe, unsubscribe } from "./_helpers.ts";

/** The resident memory of a process in KiB (`VmRSS` in /proc/<pid>/status). */
function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/^VmRSS:\s+(\d+) kB$/m)![1]);
}

const SOCKETS = 10;

serverTest(
  "10 subscribers sending endless 64 KiB fragments are each closed with 1009; RSS stays bounded",
  async () => {
    await using sim = startFakeSimServer({ load: 10 });
    const session = await startSession({ simulationServers: [sim.entry] });
    const url = session.baseUrl.replace("http", "ws") + "/";
    const bystander = subscribe(url);
    try {
      await bystander.messageCount(1);
      const pid = serverPid(session.pid);
      const before = rssKiB(pid);
      const fragment = new Uint8Array(64 * 1024).fill(0x30);
      const flooders = await Promise.all(
        Array.from({ length: SOCKETS }, () => rawConnect(url)),
      );
      const sentKiB: number[] = [];
      const results = await Promise.all(flooders.map(async (raw) => {
        let sent = 0;
        const sending = (async () => {
          try {
            // Endless, as far as the server can tell: up to 64 MiB each, never a final fragment.
            for (let i = 0; i < 1024; i++) {
              await raw.sendRaw(maskedFrame(i === 0 ? TEXT : CONTINUATION, fragment, false));
              sent += 64;
            }
          } catch {
            // The server ended the connection.
          }
        })();
        const frames = await raw.readToClose();
        await sending;
        raw.close();
        sentKiB.push(sent);
        return frames;
      }));
      const after = rssKiB(pid);
      for (const frames of results) {
        // The availability it was sent on connecting, then the close.
        deepEqual(
          frames.filter((f) => f.opcode === CLOSE).map(describe),
          ["1009 message too big"],
        );
        equal(frames.at(-1)!.opcode, CLOSE);
      }
      ok(sentKiB.every((kiB) => kiB < 64 * 1024), `sent: ${sentKiB}`);
      const grown = (after - before) / 1024;
      ok(grown < 8, `RSS grew by ${grown.toFixed(1)} MiB (${before} → ${after} KiB)`);
      ok(SUBSCRIBER_MAX_MESSAGE <= 64 * 1024);
      // The well-behaved subscriber is still there and still open.
      equal(bystander.socket.readyState, WebSocket.OPEN);
    } catch (error) {
      console.error(session.output());
      throw error;
    } finally {
      await unsubscribe(bystander);
      await session.cleanup();
    }
  },
);

serverTest(
  "a subscriber's message up to 4 KiB is ignored; one byte more closes it with 1009",
  async () => {
    await using sim = startFakeSimServer({ load: 10 });
    const session = await startSession({ simulationServers: [sim.entry] });
    const url = session.baseUrl.replace("http", "ws") + "/";
    const raw = await rawConnect(url);
    try {
      equal(SUBSCRIBER_MAX_MESSAGE, 4096);
      await raw.sendText("x".repeat(SUBSCRIBER_MAX_MESSAGE));
      // Frames are handled in order: a pong after the first message proves it was taken.
      await raw.sendRaw(maskedFrame(PING, new TextEncoder().encode("still open?")));
      await raw.sendText("x".repeat(SUBSCRIBER_MAX_MESSAGE + 1));
      const frames = await raw.readToClose();
      const kinds = frames.map((f) =>
        f.opcode === CLOSE
          ? `close ${describe(f)}`
          : `${f.opcode} ${new TextDecoder().decode(f.payload)}`
      );
      // What it is sent (0, and 1 once the first poll answers) comes in between.
      const values = kinds.slice(0, -2);
      ok(values.every((k) => k === `${TEXT} 0` || k === `${TEXT} 1`), JSON.stringify(kinds));
      deepEqual(kinds.slice(-2), [`${PONG} still open?`, "close 1009 message too big"]);
    } finally {
      raw.close();
      await session.cleanup();
    }
  },
);
