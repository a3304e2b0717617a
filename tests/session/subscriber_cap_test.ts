import assert from "node:assert/strict";
import {
  advisedMaxSubscribers,
  createSubscriberGate,
  RESERVED_DESCRIPTORS,
  subscriberCap,
} from "../../session/subscriber_cap.ts";
import { recordingLogger } from "../fakes/logger.ts";

Deno.test("the subscriber cap is maxSubscribers (0: none); the advice leaves the reserve free", () => {
  assert.equal(subscriberCap(500), 500);
  assert.equal(subscriberCap(0), undefined);
  assert.equal(advisedMaxSubscribers(20_000, 10), 20_000 - RESERVED_DESCRIPTORS - 20);
  assert.equal(advisedMaxSubscribers(131_072, 1000), 131_072 - RESERVED_DESCRIPTORS - 2000);
  assert.equal(advisedMaxSubscribers(100, 10), 1, "never below 1");
});

Deno.test("the gate refuses at the cap and logs once when refusals start and once when they end", () => {
  const logger = recordingLogger();
  let cap: number | undefined = 3;
  const gate = createSubscriberGate(() => cap, logger);
  assert.deepEqual([0, 1, 2].map((n) => gate.admit(n)), [true, true, true]);
  assert.deepEqual([3, 3, 4].map((n) => gate.admit(n)), [false, false, false]);
  assert.deepEqual(logger.lines.map((l) => [l.level, l.message]), [
    ["warn", "subscribers at their limit (3): new ones are refused with 503 until some leave"],
  ]);
  assert.equal(gate.admit(2), true);
  assert.equal(gate.admit(2), true);
  assert.deepEqual(logger.lines.at(-1)?.message, "subscribers accepted again");
  assert.equal(logger.lines.length, 2);
  cap = undefined;
  assert.equal(gate.admit(1_000_000), true, "no cap, no refusal");
});
