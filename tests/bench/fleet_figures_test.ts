/** The pure parts of the 1,000-server fleet benchmark (bench/fleet_figures.ts). */
import assert from "node:assert/strict";
import { cpuPerRound, pollCoverage, rssMiB, standInAddresses } from "../../bench/fleet_figures.ts";
import { standInLoad } from "../../bench/fleet_stand_in.ts";

Deno.test("1,000 stand-in addresses are distinct, outside 127.0.0.0/24, 250 to each of 4 processes", () => {
  const groups = standInAddresses(1000, 4);
  assert.deepEqual(groups.map((g) => g.length), [250, 250, 250, 250]);
  const all = groups.flat();
  assert.equal(new Set(all).size, 1000);
  assert.equal(all[0], "127.0.1.1");
  assert.equal(all[249], "127.0.1.250");
  assert.equal(all[250], "127.0.2.1");
  assert.equal(all[999], "127.0.4.250");
  for (const address of all) {
    const [a, b, x, y] = address.split(".").map(Number);
    assert.deepEqual([a, b], [127, 0]);
    assert.ok(x! >= 1 && y! >= 1 && y! <= 250, address);
  }
  assert.deepEqual(standInAddresses(5, 2), [
    ["127.0.1.1", "127.0.1.2", "127.0.1.3"],
    ["127.0.1.4", "127.0.1.5"],
  ]);
  assert.throws(() => standInAddresses(0, 1), RangeError);
  assert.throws(() => standInAddresses(3, 4), RangeError);
});

Deno.test("the stand-ins' loads keep index 0 the least loaded at every poll", () => {
  for (let poll = 0; poll < 100; poll++) {
    for (let index = 1; index < 1000; index++) {
      const load = standInLoad(index, poll);
      assert.ok(load > standInLoad(0, poll) && load < 90, `${index} at poll ${poll}: ${load}`);
    }
  }
});

/** Polls at `starts[r] + offset` for each address listed in `rounds[r]`. */
function polled(rounds: string[][], starts: number[], offset = 3): Map<string, number[]> {
  const polls = new Map<string, number[]>();
  rounds.forEach((addresses, r) =>
    addresses.forEach((address, i) => {
      const times = polls.get(address) ?? [];
      times.push(starts[r]! + offset + i);
      polls.set(address, times);
    })
  );
  return polls;
}

Deno.test("poll coverage counts the rounds begun in the window and the addresses polled in each", () => {
  const starts = [0, 5000, 10_000, 15_000, 20_000];
  const polls = polled([
    ["a", "b", "c"],
    ["a", "b", "c"],
    ["a", "b", "c"],
    ["a", "b", "c"],
    ["a", "b", "c"],
  ], starts);
  const c = pollCoverage(polls, 2500, 17_500, 5000);
  assert.equal(c.rounds.length, 3, "the rounds of 5, 10 and 15 s");
  assert.deepEqual(c.rounds[0], { first: 5003, last: 5005, polls: 3 });
  assert.equal(c.addresses, 3);
  assert.equal(c.minPollsPerAddress, 3);
  assert.equal(c.maxPollsPerAddress, 3);
  assert.deepEqual(c.missed, {});
  assert.equal(c.maxGapMs, 5000);
  assert.equal(c.meanPeriodMs, 5000);
});

Deno.test("poll coverage names an address missing from a round and the gap it left", () => {
  const polls = polled([["a", "b"], ["a"], ["a", "b"], ["a", "b"]], [0, 5000, 10_000, 15_000]);
  const c = pollCoverage(polls, 0, 20_000, 5000);
  assert.equal(c.rounds.length, 4);
  assert.deepEqual(c.missed, { b: 1 });
  assert.equal(c.minPollsPerAddress, 3);
  assert.equal(c.maxPollsPerAddress, 4);
  assert.equal(c.maxGapMs, 10_000, "b from 4 ms to 10,004 ms");
});

Deno.test("a round's answers spread over up to half a period are one round, a second poll counts twice", () => {
  const polls = new Map([["a", [0, 2400, 5000]], ["b", [2000, 7000]]]);
  const c = pollCoverage(polls, 0, 10_000, 5000);
  assert.deepEqual(c.rounds, [
    { first: 0, last: 2400, polls: 3 },
    { first: 5000, last: 7000, polls: 2 },
  ]);
  assert.equal(c.maxPollsPerAddress, 3, "a was polled again inside the first round");
  assert.equal(c.minPollsPerAddress, 2);
});

Deno.test("CPU per round divides by the rounds and subtracts the idle server's share", () => {
  assert.deepEqual(cpuPerRound(2.42, 0.06, 12), {
    perRound: 0.202,
    idlePerRound: 0.005,
    pollingPerRound: 0.197,
  });
  assert.throws(() => cpuPerRound(1, 0, 0), RangeError);
});

Deno.test("RSS is read from VmRSS in /proc/<pid>/status, in MiB", () => {
  assert.equal(rssMiB("Name:\tdeno\nVmPeak:\t  999 kB\nVmRSS:\t  159949 kB\nThreads: 9\n"), 156.2);
  assert.throws(() => rssMiB("Name:\tdeno\n"), /VmRSS/);
});
