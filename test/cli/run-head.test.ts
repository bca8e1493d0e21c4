// The head of a run, end to end (issue 18): `run` sets its measuring pipeline up after the spawn,
// so the devices are first read tens of ms after it. The report's first interval (spawn → first
// tick) used to hold 0 W for every device and 0 g/kWh, although modelled and power-read devices
// are counted from the spawn: its energy was only added to the second interval. Now the first
// interval carries it: each modelled device's power, the intensity, and energy = Σ power × span.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";

describe("run: the first interval of the report", () => {
  it("holds the modelled devices' power, the grid intensity and their energy from the spawn", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-run-head-"));
    try {
      const report = join(dir, "r.json");
      // Two ticks at least: the first interval, and one after it to compare the constant memory model with.
      const r = await runCli(["run", "-q", "--interval", "200ms", "--report", report, "--", "sleep", "0.7"]);
      expect(r.code, r.stderr).toBe(0);
      const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
      const ts = rep.timeSeries!;
      expect(ts.pointCount).toBeGreaterThanOrEqual(2);
      const modelled = rep.devices.filter((d) => d.method === "model" || d.method === "power");
      // This host has no RAPL and no GPU: the CPU and memory models (the check can fail: they exist).
      expect(modelled.map((d) => d.id)).toEqual(expect.arrayContaining(["mem-model"]));
      for (const d of modelled) expect(ts.devicePowerWatts[d.id][0], d.id).toBeGreaterThan(0);
      // The memory model draws constant power: the first interval holds that same power.
      expect(ts.devicePowerWatts["mem-model"][0]).toBeCloseTo(ts.devicePowerWatts["mem-model"][1], 9);
      expect(ts.intensityGramsPerKwh[0]).toBeCloseTo(rep.intensity.lastGramsPerKwh, 6);
      expect(ts.intensityGramsPerKwh[0]).toBeGreaterThan(0);
      // Its energy: every device's power over the span from the spawn (the span on the wall clock,
      // the intervals on the monotonic one, both read at the same instants: ms rounding apart).
      const spanSeconds = ts.spanSeconds[0];
      expect(spanSeconds).toBeGreaterThan(0);
      const powerWatts = Object.values(ts.devicePowerWatts).reduce((a, p) => a + p[0], 0);
      expect(Math.abs(ts.cumulativeEnergyJoules[0] - powerWatts * spanSeconds)).toBeLessThanOrEqual(powerWatts * 0.003);
      expect(ts.cumulativeEmissionsGrams[0]).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
