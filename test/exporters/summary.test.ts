// The summary's grid-intensity line against real simulations: the run's average intensity (the one
// the emissions reflect) leads; the last interval's value is labelled as such.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildReport, type ReportContext } from "../../exporters/report-json.js";
import { formatSummary } from "../../exporters/summary.js";
import { Ledger } from "../../src/core/ledger.js";
import { createStderrLogger } from "../../src/log.js";
import { validateScenario } from "../../src/sim/scenario.js";
import { simulate } from "../../src/sim/simulate.js";

const context: ReportContext = {
  version: "test",
  mode: "simulate",
  idlePolicy: "attribute",
  pueOrigin: "default",
  intensityDescription: "scenario series",
  intensityZone: "GB",
  intensitySource: "none",
  fallbacks: {},
  wueLitersPerKwh: 0,
  waterIntensityLitersPerKwh: 0,
  waterOrigin: "none",
  pricePerKwh: 0,
  currency: "EUR",
  warnings: [],
  sampler: { ticks: 0, skippedTicks: 0, failures: {}, intervalMillis: 1000 },
  exportFailures: {},
};
const intensityLine = (text: string) => text.split("\n").find((l) => l.startsWith("grid intensity"))!;

describe("summary: grid intensity", () => {
  it("leads with the run's average when the intensity steps (400 → 100 g/kWh halfway)", async () => {
    const file = join(import.meta.dirname, "..", "fixtures", "scenarios", "two-hour-intensity-step.json");
    const scenario = validateScenario(JSON.parse(readFileSync(file, "utf8")));
    const r = await simulate(scenario, {
      idlePolicy: "attribute",
      ledger: { pue: 1 },
      intensity: { at: async () => ({ intensityGramsPerKwh: 0, zone: "XX", source: "unused" }) },
      log: createStderrLogger({ quiet: true }),
    });
    const report = buildReport(r.snapshot, context);
    const average = report.totals.emissionsGrams / (report.totals.facilityEnergyJoules / 3.6e6);
    expect(average).toBeGreaterThan(150); // far from the last interval's 100
    const line = intensityLine(formatSummary(report));
    expect(line).toContain(`${average.toFixed(1)} gCO2e/kWh on average`);
    expect(line).toContain("last interval 100.0");
  });

  it("says no intensity was applied when no interval was recorded (not '0.0 gCO2e/kWh')", () => {
    const ledger = new Ledger({ pue: 1 }, 0);
    const line = intensityLine(formatSummary(buildReport(ledger.snapshot(), context)));
    expect(line).toContain("none applied (no interval was recorded)");
    expect(line).not.toMatch(/0\.0 gCO2e/);
  });
});
