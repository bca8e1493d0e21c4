// Piecewise-linear series with steps (two points at the same time, which the scenario format
// allows): integrals must use the value before the step up to it, and the value after it beyond.
import { describe, expect, it } from "vitest";
import { seriesAt, seriesIntegral } from "../../src/sim/series.js";
import { simulate } from "../../src/sim/simulate.js";
import { validateScenario } from "../../src/sim/scenario.js";
import { createStderrLogger } from "../../src/log.js";

describe("seriesIntegral", () => {
  const step = [[0, 4], [10, 4], [10, 8], [20, 8]] as const;
  it.each([
    [0, 10, 40],
    [0, 20, 120],
    [5, 15, 60],
    [10, 20, 80],
    [0, 30, 200],
  ])("a step at 10 s: ∫[%d, %d] = %d", (a, b, want) => {
    expect(seriesIntegral(step, a, b)).toBeCloseTo(want, 12);
  });
  it("a step at the first point: the value after it holds for t > 0", () => {
    expect(seriesAt([[0, 0], [0, 2]], 0.5)).toBe(2);
    expect(seriesIntegral([[0, 0], [0, 2]], 0, 10)).toBeCloseTo(20, 12);
  });
  it("linear pieces stay exact", () => {
    expect(seriesIntegral([[0, 0], [10, 10]], 0, 10)).toBeCloseTo(50, 12);
    expect(seriesIntegral([[0, 0], [10, 10]], 2, 4)).toBeCloseTo(6, 12);
  });
});

describe("simulate with a stepped CPU series", () => {
  it("attributes by the CPU seconds before and after the step (hand-computed)", async () => {
    // 10 cores, 0 → 100 W: 10 W per busy core. Job a: 2 cores, stepping to 6 at 10 s; job b: 4.
    const scenario = validateScenario({
      name: "cpu-step",
      durationSeconds: 20,
      devices: [{ id: "cpu0", kind: "cpu", idleWatts: 0, maxWatts: 100, cores: 10 }],
      processes: [
        { pid: 10, job: "a", cpu: [[0, 2], [10, 2], [10, 6]] },
        { pid: 20, job: "b", cpu: [[0, 4]] },
      ],
    });
    const r = await simulate(scenario, {
      idlePolicy: "attribute",
      ledger: { pue: 1 },
      intensity: { at: async () => ({ intensityGramsPerKwh: 100, zone: "XX", source: "fixed" }) },
      log: createStderrLogger({ quiet: true }),
    });
    const job = (id: string) => r.snapshot.jobs.find((j) => j.id === id)!;
    // 0–10 s: 60 W, a 2/6 → 200 J; 10–20 s: 100 W, a 6/10 → 600 J.
    expect(job("a").energyJoules.cpu).toBeCloseTo(800, 9);
    expect(job("b").energyJoules.cpu).toBeCloseTo(800, 9);
    expect(job("a").cpuSeconds).toBeCloseTo(80, 9);
    expect(job("b").cpuSeconds).toBeCloseTo(80, 9);
  });
});
