/**
 * Port ranges that outgoing connections never take. A simulation server hands a streaming port
 * out only if it can bind it; a port in the kernel's ephemeral range may be held for a while by
 * any client connection on the machine (or sit in TIME_WAIT after one), which would make a slot
 * vanish in a test that counts slots exactly.
 *
 * @module
 */

/** The kernel's ephemeral port range (`ip_local_port_range`), or Linux's default. */
export function ephemeralRange(): [number, number] {
  try {
    const [low, high] = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range")
      .trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return [low!, high!];
  } catch {
    // Not Linux: assume the default below.
  }
  return [32768, 60999];
}

/**
 * A free port `p` such that `p+1 … p+count` are free too, all outside the ephemeral range and
 * above the well-known ports (for a simulation server whose Webots stream on the ports after its
 * own).
 */
export function quietPortRange(count: number): number {
  const [low, high] = ephemeralRange();
  const spans = [[10000, low - 1], [high + 1, 65535]].filter(([a, b]) => b! - a! > count + 1);
  for (let attempt = 0; attempt < 200; attempt++) {
    const [a, b] = spans[attempt % spans.length]!;
    const base = a! + Math.floor(Math.random() * (b! - a! - count));
    const held: Deno.Listener[] = [];
    try {
      for (let p = base; p <= base + count; p++) {
        held.push(Deno.listen({ hostname: "0.0.0.0", port: p }));
      }
      return base;
    } catch {
      // Some port in the range is taken: try another base.
    } finally {
      for (const l of held) l.close();
    }
  }
  throw new Error(`no free range of ${count + 1} ports outside the ephemeral range`);
}
