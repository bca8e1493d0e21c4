// The summary's grid-intensity line against real simulations: the run's average intensity (the one
// the emissions reflect) leads; the last interval's value is labelled as such.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildReport, type ReportContext } from "../../exporters/report-json.js";
import { formatSummary } from "../../exporters/summary.js";
import { formatGrams, formatSi } from "../../src/units.js";
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
const intensityLine = (text: string) => text.split("\n").find((l) => l.startsWith("emissions"))!;
const scenarioFile = (name: string) => join(import.meta.dirname, "..", "fixtures", "scenarios", name);
async function simulated(name: string) {
  const scenario = validateScenario(JSON.parse(readFileSync(scenarioFile(name), "utf8")));
  const r = await simulate(scenario, {
    idlePolicy: "attribute",
    ledger: { pue: 1 },
    intensity: { at: async () => ({ intensityGramsPerKwh: 0, zone: "XX", source: "unused" }) },
    log: createStderrLogger({ quiet: true, write: () => {} }),
  });
  return buildReport(r.snapshot, context);
}

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
    expect(line).toContain(`at ${Number(average.toPrecision(3))} g/kWh on average, last 100`);
  });

  it("says no intensity was applied when no interval was recorded (not '0.0 gCO2e/kWh')", () => {
    const ledger = new Ledger({ pue: 1 }, 0);
    const line = intensityLine(formatSummary(buildReport(ledger.snapshot(), context)));
    expect(line).toContain("no intensity applied (no interval was recorded)");
    expect(line).not.toMatch(/0 g\/kWh/);
  });
});

describe("summary: what people read", () => {
  it("at most 12 lines of at most 100 characters, 3 significant digits, no exponent notation", async () => {
    const report = await simulated("design-example.json");
    const text = formatSummary(report);
    const lines = text.split("\n");
    expect(lines.length).toBeLessThanOrEqual(12);
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(100);
    expect(text).not.toMatch(/\de[+-]?\d/);
    expect(text).toContain("powerprint summary (simulate) · 10.0 min");
    // Hand check of the energy line: IT total with 3 significant digits in Wh with an SI prefix.
    const wh = report.totals.energyJoules / 3600;
    expect(lines[1]).toMatch(new RegExp(`^energy +${Number(wh.toPrecision(3)).toFixed(wh >= 100 ? 0 : wh >= 10 ? 1 : 2)} Wh IT \\(cpu .* counter, gpu .* counter\\)`));
    expect(text).toMatch(/^job train-a: /m);
    expect(text).not.toMatch(/^device /m); // provenance only with verbose
    const verbose = formatSummary(report, { verbose: true });
    expect(verbose).toMatch(/^device gpu0 \(NVIDIA H100 80GB HBM3\): .* by counter from sim; idle baseline scenario/m);
  });

  it("a per-phase table and per-unit figures when the job has marked phases", async () => {
    const report = await simulated("design-example.json");
    const job = report.jobs.find((j) => j.id === "train-a")!;
    // The ledger's per-phase stats (jobs[].phases[]) as the report carries them.
    const phases = [
      { name: "load", energyJoules: job.energyJoules.total * 0.25, emissionsGrams: 1, durationSeconds: 150, samples: 0, tokens: 0, steps: 0, joulesPerSample: null, joulesPerToken: null, joulesPerStep: null },
      { name: "train", energyJoules: job.energyJoules.total * 0.75, emissionsGrams: 3, durationSeconds: 450, samples: 1000, tokens: 2e6, steps: 10, joulesPerSample: (job.energyJoules.total * 0.75) / 1000, joulesPerToken: (job.energyJoules.total * 0.75) / 2e6, joulesPerStep: (job.energyJoules.total * 0.75) / 10 },
    ];
    const withPhases = { ...report, jobs: report.jobs.map((j) => (j.id === "train-a" ? { ...j, phases } : j)) };
    const lines = formatSummary(withPhases).split("\n");
    expect(lines.length).toBeLessThanOrEqual(14);
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(100);
    const train = lines.find((l) => l.startsWith("  train"))!;
    expect(train).toMatch(/ 75\.0% /);
    expect(train).toContain(formatSi((job.energyJoules.total * 0.75) / 1000, "J"));
    const units = lines.find((l) => l.startsWith("per unit"))!;
    // Job-level figures: the whole job's energy over all its samples/tokens.
    expect(units).toContain(`${formatSi(job.energyJoules.total / 1000, "J")}/sample`);
    expect(units).toContain(`${formatSi(job.energyJoules.total / 2e6, "J")}/token`);
    expect(units).toContain(`${formatGrams((job.emissionsGrams / 2e6) * 1e6)} CO2e per million tokens`);
  });
});

describe("-q", () => {
  it("prints the summary and nothing of the progress messages", async () => {
    const { runCli } = await import("../helpers/cli.js");
    const loud = await runCli(["run", "--sim", scenarioFile("design-example.json"), "--interval", "100ms", "--", "true"]);
    const quiet = await runCli(["run", "-q", "--sim", scenarioFile("design-example.json"), "--interval", "100ms", "--", "true"]);
    expect(loud.code, loud.stderr).toBe(0);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(loud.stderr).toContain("powerprint: simulated devices from scenario");
    expect(quiet.stderr).not.toContain("powerprint: simulated devices");
    expect(quiet.stderr).toMatch(/^── powerprint summary \(run: two-jobs-one-gpu\)/);
    const lines = quiet.stderr.trimEnd().split("\n");
    expect(lines.length).toBeLessThanOrEqual(12);
  });
});
