/**
 * A small run of the network-fault campaign: one simulation server in its own network namespace,
 * its link cut and restored. Needs root (skipped, with what is missing, otherwise).
 */
import assert from "node:assert/strict";
import { runNetworkFaults } from "../../chaos/network.ts";
import { listNamespaces, netnsUnavailable } from "../../chaos/netns.ts";

const missing = await netnsUnavailable();
if (missing) console.error(`network fault test skipped: ${missing}`);

Deno.test({
  name: "a cut link is seen within 2 polls, /session never waits on it, and nothing is left",
  ignore: missing !== undefined,
  fn: async () => {
    const lines: string[] = [];
    const checks = await runNetworkFaults({
      servers: 1,
      faults: ["link-down"],
      holdMs: 1000,
      log: (line) => lines.push(line),
    });
    const failed = checks.filter((c) => !c.ok);
    assert.deepEqual(failed, [], lines.join("\n"));
    assert.deepEqual(checks.map((c) => c.id), [
      "net-setup",
      "net-link-down-detect",
      "net-link-down-restore",
      "net-link-down-session",
      "net-cleanup",
    ]);
    // The figures behind the verdicts, as printed: polls from the monitor and from the socket.
    const detect = checks.find((c) => c.id === "net-link-down-detect")!.detail;
    const [monitorPolls, socketPolls] = [...detect.matchAll(/= (\d+\.\d) polls/g)].map((m) =>
      Number(m[1])
    );
    assert.ok(monitorPolls! > 0 && monitorPolls! <= 2, detect);
    assert.ok(socketPolls! > 0 && socketPolls! <= 2.1, detect);
    assert.equal(
      (await listNamespaces()).filter((n) => n.startsWith(`wbnet-${Deno.pid}-`)).length,
      0,
    );
  },
});
