// The report's time series: bounded for a 30-day run, and merging keeps the energy: the sum over
// points of (average device power × span) equals each device's energy, and cumulative figures end
// at the final totals.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TimeSeriesRecorder, DEFAULT_MAX_POINTS } from "../../exporters/timeseries.js";
import type { LedgerSnapshot } from "../../src/core/types.js";
import { createStderrLogger } from "../../src/log.js";
import { validateScenario } from "../../src/sim/scenario.js";
import { simulate } from "../../src/sim/simulate.js";

async function run(durationSeconds: number, intervalMillis: number, recorder: TimeSeriesRecorder) {
  const base = JSON.parse(readFileSync(join(import.meta.dirname, "..", "fixtures", "scenarios", "design-example.json"), "utf8"));
  const scenario = validateScenario({ ...base, durationSeconds, intervalMillis });
  let last: LedgerSnapshot | undefined;
  const r = await simulate(scenario, {
    idlePolicy: "attribute",
    ledger: { pue: 1.2 },
    intensity: { at: async () => ({ intensityGramsPerKwh: 0, zone: "XX", source: "unused" }) },
    log: createStderrLogger({ quiet: true, write: () => {} }),
    onTick: (s) => {
      recorder.update(s);
      last = s;
    },
  });
  await recorder.shutdown(r.snapshot);
  return { final: r.snapshot, last: last! };
}

describe("TimeSeriesRecorder", () => {
  it("a 30-day run at 10-minute ticks stays within the bound and conserves energy", async () => {
    const rec = new TimeSeriesRecorder();
    const { final } = await run(30 * 86_400, 600_000, rec);
    const t = rec.series();
    expect(t.pointCount).toBeLessThanOrEqual(DEFAULT_MAX_POINTS);
    expect(t.pointCount).toBeGreaterThan(DEFAULT_MAX_POINTS / 2);
    expect(t.endSeconds[t.pointCount - 1]).toBe(30 * 86_400);
    expect(t.spanSeconds.reduce((a, b) => a + b, 0)).toBeCloseTo(30 * 86_400, 6);
    for (const d of final.devices) {
      const joules = t.devicePowerWatts[d.id].reduce((a, w, i) => a + w * t.spanSeconds[i], 0);
      expect(joules / d.energyJoules).toBeCloseTo(1, 9);
    }
    const all = [...final.jobs, final.buckets.system, final.buckets.idle];
    expect(t.cumulativeEnergyJoules.at(-1)).toBeCloseTo(all.reduce((a, j) => a + j.energyJoules.total, 0), 6);
    expect(t.cumulativeEmissionsGrams.at(-1)).toBeCloseTo(all.reduce((a, j) => a + j.emissionsGrams, 0), 9);
    // The scenario's intensity is 120 after 300 s: every 10-minute interval ends later.
    const meanIntensity = t.intensityGramsPerKwh.reduce((a, g, i) => a + g * t.spanSeconds[i], 0) / (30 * 86_400);
    expect(meanIntensity).toBeCloseTo(120, 9);
    const job = final.jobs.find((j) => j.id === "train-a")!;
    const jobJoules = t.jobPowerWatts["train-a"].reduce((a, w, i) => a + w * t.spanSeconds[i], 0);
    expect(jobJoules / job.energyJoules.total).toBeCloseTo(1, 9);
  }, 120_000);

  it("keeps each job's cumulative ledger totals per point: they end at the job's totals after merging", async () => {
    const rec = new TimeSeriesRecorder(8);
    const { final } = await run(20, 1000, rec);
    const t = rec.series();
    for (const job of final.jobs) {
      const c = t.jobCumulative![job.id];
      expect(c.cpuEnergyJoules.at(-1)).toBe(job.energyJoules.cpu);
      expect(c.gpuEnergyJoules.at(-1)).toBe(job.energyJoules.gpu);
      expect(c.memoryEnergyJoules.at(-1)).toBe(job.energyJoules.memory);
      expect(c.facilityEnergyJoules.at(-1)).toBe(job.facilityEnergyJoules);
      expect(c.emissionsGrams.at(-1)).toBe(job.emissionsGrams);
      // Cumulative: never decreasing, so per-point differences are the job's energy per point.
      for (let i = 1; i < t.pointCount; i++) expect(c.facilityEnergyJoules[i]).toBeGreaterThanOrEqual(c.facilityEnergyJoules[i - 1]);
    }
  });

  it("halves by merging adjacent pairs once over the bound; the JSON stays small", async () => {
    const rec = new TimeSeriesRecorder(8);
    await run(20, 1000, rec);
    const t = rec.series();
    // 20 one-second intervals: 9 → 5 (merge), ..., bounded by 8; spans sum to the run.
    expect(t.pointCount).toBeLessThanOrEqual(8);
    expect(t.endSeconds.at(-1)).toBe(20);
    expect(t.spanSeconds.reduce((a, b) => a + b, 0)).toBeCloseTo(20, 9);
    expect(Math.max(...t.spanSeconds)).toBeGreaterThan(1);
    expect(JSON.stringify(t).length).toBeLessThan(4000);
    expect(() => new TimeSeriesRecorder(1)).toThrow(RangeError);
  });
});
