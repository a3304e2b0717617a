import assert from "node:assert/strict";
import { canBindPort, createPortPool } from "../../simulation/ports.ts";

/** A base port `p` such that `p … p+count-1` can all be bound now. */
function freeRange(count: number): number {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    const held: Deno.Listener[] = [];
    try {
      for (let p = base; p < base + count; p++) {
        held.push(Deno.listen({ hostname: "0.0.0.0", port: p }));
      }
      return base;
    } catch {
      // A port in the range is taken: try another.
    } finally {
      for (const listener of held) listener.close();
    }
  }
  throw new Error(`no free range of ${count} ports`);
}

const always = () => true;

Deno.test("acquire hands out ports in ascending order and counts them", () => {
  const pool = createPortPool(2001, 2005, always);
  assert.deepEqual([pool.acquire(), pool.acquire(), pool.acquire()], [2001, 2002, 2003]);
  assert.equal(pool.inUse, 3);
});

Deno.test("a released port is handed out again, lowest first", () => {
  const pool = createPortPool(2001, 2005, always);
  pool.acquire();
  pool.acquire();
  pool.acquire();
  pool.release(2002);
  assert.equal(pool.inUse, 2);
  assert.equal(pool.acquire(), 2002);
  assert.equal(pool.acquire(), 2004);
  pool.release(2999); // never held: no effect
  assert.equal(pool.inUse, 4);
});

Deno.test("exhaustion returns undefined instead of port 0", () => {
  const pool = createPortPool(2001, 2002, always);
  assert.equal(pool.acquire(), 2001);
  assert.equal(pool.acquire(), 2002);
  assert.equal(pool.acquire(), undefined);
  assert.equal(pool.inUse, 2);
  pool.release(2001);
  assert.equal(pool.acquire(), 2001);
});

Deno.test("two acquires never return the same port", () => {
  const pool = createPortPool(3000, 3099, always);
  const ports = Array.from({ length: 100 }, () => pool.acquire());
  assert.equal(new Set(ports).size, 100);
  assert.ok(!ports.includes(undefined));
  assert.equal(pool.acquire(), undefined);
});

Deno.test("a port held by a foreign listener is skipped", () => {
  const base = freeRange(3);
  const foreign = Deno.listen({ hostname: "0.0.0.0", port: base });
  try {
    assert.equal(canBindPort(base), false);
    assert.equal(canBindPort(base + 1), true);
    const pool = createPortPool(base, base + 2, canBindPort);
    assert.equal(pool.acquire(), base + 1);
    assert.equal(pool.acquire(), base + 2);
    assert.equal(pool.acquire(), undefined);
  } finally {
    foreign.close();
  }
});

Deno.test("a listener on 127.0.0.1 only also makes the port unavailable", () => {
  const base = freeRange(1);
  const foreign = Deno.listen({ hostname: "127.0.0.1", port: base });
  try {
    assert.equal(canBindPort(base), false);
  } finally {
    foreign.close();
  }
});

Deno.test("canBindPort leaves the port free", () => {
  const base = freeRange(1);
  assert.equal(canBindPort(base), true);
  assert.equal(canBindPort(base), true);
  Deno.listen({ hostname: "0.0.0.0", port: base }).close();
});
