import assert from "node:assert/strict";
import {
  parseSlotHeaders,
  SIMULATIONS_HEADER,
  slotHeaders,
  SLOTS_HEADER,
} from "../../shared/load_headers.ts";

Deno.test("the slot headers are written as used/max and a count, and read back exactly", () => {
  const written = slotHeaders({ used: 2, max: 5, simulations: 2 });
  assert.deepEqual(written, { [SLOTS_HEADER]: "2/5", [SIMULATIONS_HEADER]: "2" });
  assert.deepEqual(parseSlotHeaders(new Headers(written)), { used: 2, max: 5, simulations: 2 });
  assert.deepEqual(
    parseSlotHeaders(new Headers({ [SLOTS_HEADER]: " 0/10 ", [SIMULATIONS_HEADER]: "0" })),
    { used: 0, max: 10, simulations: 0 },
  );
});

Deno.test("missing or malformed slot headers give nothing rather than a guess", () => {
  const cases: Record<string, string>[] = [
    {},
    { [SLOTS_HEADER]: "2/5" },
    { [SIMULATIONS_HEADER]: "2" },
    { [SLOTS_HEADER]: "2 of 5", [SIMULATIONS_HEADER]: "2" },
    { [SLOTS_HEADER]: "-1/5", [SIMULATIONS_HEADER]: "2" },
    { [SLOTS_HEADER]: "2/5", [SIMULATIONS_HEADER]: "two" },
    { [SLOTS_HEADER]: "1.5/5", [SIMULATIONS_HEADER]: "1" },
    { [SLOTS_HEADER]: "12345678901/5", [SIMULATIONS_HEADER]: "1" },
  ];
  for (const headers of cases) {
    assert.equal(parseSlotHeaders(new Headers(headers)), undefined, JSON.stringify(headers));
  }
});
