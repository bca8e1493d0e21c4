// A job the ledger first hears of through an interval's energy (a scenario's job under run --sim:
// it is not registered, its energy creates it) keeps that interval's CPU seconds, recorded before
// the energy. A job never seen again does not keep them past the tick. Known jobs get their name
// and tags; scheduled marks wait for their job.
import { describe, expect, it } from "vitest";
import { Ledger } from "../../src/core/ledger.js";
import type { DeviceInterval } from "../../src/core/types.js";

const interval = (durationMillis: number, energyJoules: number): DeviceInterval => ({
  deviceId: "cpu0", kind: "cpu", source: "test", method: "counter", energyJoules, idleJoules: 0, idleOrigin: "reported", durationMillis, powerWatts: (energyJoules * 1000) / durationMillis,
});
const grid = { intensityGramsPerKwh: 100, zone: "XX", source: "fixed" };

describe("ledger: a job first seen in an interval", () => {
  it("keeps that interval's CPU seconds; another tick's unclaimed seconds are not carried over", () => {
    const ledger = new Ledger({ pue: 1 }, 0);
    ledger.endTick(0, 0);
    ledger.beginTick();
    ledger.recordCpuSeconds(new Map([["sim-job", 2.5], ["ghost", 1]]), 0);
    ledger.record(interval(1000, 100), new Map([["sim-job", 100]]), grid, 1000);
    ledger.endTick(1000, 1000);
    ledger.beginTick();
    ledger.recordCpuSeconds(new Map([["sim-job", 2.5]]), 0);
    ledger.record(interval(1000, 100), new Map([["sim-job", 60], ["ghost", 40]]), grid, 2000);
    ledger.endTick(2000, 2000);
    const jobs = Object.fromEntries(ledger.snapshot().jobs.map((j) => [j.id, j]));
    expect(jobs["sim-job"].cpuSeconds).toBe(5);
    // "ghost" had CPU in the first tick but energy only in the second: only the second tick's CPU (none).
    expect(jobs.ghost.cpuSeconds).toBe(0);
    expect(jobs["sim-job"].durationMillis).toBe(2000);
  });

  it("known jobs get their name and tags whichever way they appear; scheduled marks wait for their job", () => {
    const known = new Map([["a", { name: "job A", attributes: { team: "x" } }], ["b", { attributes: { team: "y" } }]]);
    const ledger = new Ledger({ pue: 1, knownJobs: known, scheduledMarks: [{ jobId: "b", phase: "warm", atMillis: 500, samples: 7 }] }, 0);
    ledger.registerJob("a", "a", { extra: "1" }, 0);
    ledger.endTick(0, 0);
    ledger.beginTick();
    ledger.record(interval(1000, 100), new Map([["b", 100]]), grid, 1000);
    ledger.endTick(1000, 1000);
    const jobs = Object.fromEntries(ledger.snapshot().jobs.map((j) => [j.id, j]));
    expect([jobs.a.name, { ...jobs.a.attributes }]).toEqual(["job A", { team: "x", extra: "1" }]);
    expect([jobs.b.name, { ...jobs.b.attributes }]).toEqual(["b", { team: "y" }]);
    // b appeared with its first interval [0, 1000]: its mark at 500 splits it.
    const phases = Object.fromEntries(jobs.b.phases!.map((p) => [p.name, p]));
    expect(phases.warm.energyJoules).toBeCloseTo(50, 9);
    expect(phases.warm.durationSeconds).toBeCloseTo(0.5, 9);
    expect(jobs.b.work).toEqual({ samples: 7 });
  });
});
