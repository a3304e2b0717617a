/**
 * `/client`'s message limit as a process: `maxMessageSize` counts bytes, an oversized message is
 * refused while it arrives (close 1009, the session cleaned up as when the browser leaves), and
 * the server's memory does not grow with what the browser sends.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { join } from "node:path";
import { serverPid, serverTest } from "../helpers/server_process.ts";
import { CLOSE, CONTINUATION, describe, maskedFrame, rawConnect, TEXT } from "../helpers/raw_ws.ts";
import {
  eventually,
  type SimulationFixture,
  startFile,
  startSimulationServer,
} from "../helpers/simulation_fixture.ts";

/** The resident memory of a process in KiB (`VmRSS` in /proc/<pid>/status). */
function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/^VmRSS:\s+(\d+) kB$/m)![1]);
}

async function logLines(fixture: SimulationFixture): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(join(fixture.logDir, "simulation", "output.log"));
  return text.split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line));
}

const MiB = 1024 * 1024;

serverTest(
  "a 128 MiB /client message in 1 MiB fragments is closed with 1009 and the server's RSS barely moves",
  async () => {
    await using fixture = await startSimulationServer({});
    const pid = serverPid(fixture.server.pid);
    const raw = await rawConnect(fixture.clientUrl);
    try {
      const before = rssKiB(pid);
      const fragment = new Uint8Array(MiB).fill(0x61);
      let sent = 0;
      const sending = (async () => {
        try {
          for (let i = 0; i < 128; i++) {
            await raw.sendRaw(maskedFrame(i === 0 ? TEXT : CONTINUATION, fragment, i === 127));
            sent++;
          }
        } catch {
          // The server ended the connection.
        }
      })();
      const frames = await raw.readToClose();
      await sending;
      const after = rssKiB(pid);
      raw.close();
      deepEqual(frames.map((f) => [f.opcode, describe(f)]), [[CLOSE, "1009 message too big"]]);
      ok(sent < 128, `the server took all ${sent} MiB`);
      const grown = (after - before) / 1024;
      ok(grown < 4, `RSS grew by ${grown.toFixed(1)} MiB (${before} → ${after} KiB)`);
    } finally {
      raw.close();
    }
  },
);

serverTest(
  "maxMessageSize counts bytes: 30,000 '€' (90,000 bytes) are refused, 65,536 bytes pass, and the refused session is cleaned up",
  async (t) => {
    await using fixture = await startSimulationServer({
      worlds: { "p": { "w.wbt": "#fake activity-every 50\n" } },
    });
    await t.step(
      "a message of exactly 65,536 bytes passes (an error: reply, not a close)",
      async () => {
        const raw = await rawConnect(fixture.clientUrl);
        try {
          // Valid JSON of the limit's size: a start with an unknown URL scheme and padding.
          const prefix = '{"start":{"url":"ftp://x/worlds/a.wbt","pad":"';
          const message = prefix + "x".repeat(65536 - prefix.length - 3) + '"}}';
          equal(new TextEncoder().encode(message).length, 65536);
          await raw.sendText(message);
          const reply = await raw.readUntilText((m) => m.startsWith("error:"));
          ok(!reply.includes("too large"), reply);
        } finally {
          raw.close();
        }
      },
    );
    await t.step(
      "30,000 '€' close the socket with 1009; a session already started is ended",
      async () => {
        const raw = await rawConnect(fixture.clientUrl);
        try {
          await raw.sendText(startFile(fixture, "p", "w.wbt"));
          await raw.readUntilText((m) => m.startsWith("webots:"));
          equal((await fixture.instances()).length, 1);
          await raw.sendText("€".repeat(30_000));
          const frames = await raw.readToClose();
          deepEqual(frames.filter((f) => f.opcode === CLOSE).map(describe), [
            "1009 message too big",
          ]);
        } finally {
          raw.close();
        }
        await eventually(
          async () => (await fixture.instances()).length === 0,
          10_000,
          "the refused session's folder removed",
        );
        // The log file is written asynchronously: the line may follow the folder's removal.
        await eventually(
          async () =>
            (await logLines(fixture)).some((l) =>
              l.msg === "Client disconnected" && l.reason === "message too large"
            ),
          10_000,
          "the departure is logged with its reason",
        );
      },
    );
  },
);
