// The summary's grid-intensity line against real simulations: the run's average intensity (the one
// the emissions reflect) leads; the last interval's value is labelled as such.
import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildReport, type ReportContext } from "../../exporters/report-json.js";
import { formatSummary } from "../../exporters/summary.js";
import { readReportFile } from "../../exporters/report-schema.js";
import { groupByTag, mergeReports, normalizeReport } from "../../src/cli/report-merge.js";
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
  it("at most 12 lines of at most 100 characters, 3 significant digits, no exponent notation; host and job said", async () => {
    const report = await simulated("design-example.json");
    const text = formatSummary(report);
    const lines = text.split("\n");
    expect(lines.length).toBeLessThanOrEqual(12);
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(100);
    expect(text).not.toMatch(/\de[+-]?\d/);
    expect(text).toContain("powerprint summary (simulate) · 10.0 min");
    // Hand check of the host line: IT total with 3 significant digits in Wh, and its parts named.
    const wh = report.totals.energyJoules / 3600;
    const host = lines.find((l) => l.startsWith("host "))!;
    expect(host).toMatch(new RegExp(`^host +${Number(wh.toPrecision(3)).toFixed(wh >= 100 ? 0 : wh >= 10 ? 1 : 2)} Wh IT = jobs .* \\+ system .* \\+ idle `));
    expect(lines.find((l) => l.startsWith("devices "))).toMatch(/^devices +cpu .* counter, gpu .* counter$/);
    // The job's own figures: its energy and its average power over its own duration (the model's).
    const job = report.jobs.find((j) => j.id === "train-a")!;
    expect(text).toMatch(new RegExp(`^job train-a: ${formatSi(job.energyJoules.total / 3600, "Wh")} IT, .* · ${formatSi(job.averagePowerWatts!.total, "W")} over 10.0 min`, "m"));
    expect(text).not.toMatch(/^device /m); // provenance only with verbose
    const verbose = formatSummary(report, { verbose: true });
    expect(verbose).toMatch(/^device gpu0 \(NVIDIA H100 80GB HBM3\): .* by counter from sim; idle baseline scenario/m);
  });

  it("a per-phase table, the work as whole grouped counts, and per-unit figures: all the report model's", async () => {
    const report = await simulated("design-example.json");
    const job = report.jobs.find((j) => j.id === "train-a")!;
    // Phases as the ledger gives them; the report model (reportJob) adds their figures and the job's.
    const total = job.energyJoules.total;
    const phases = [
      { name: "load", energyJoules: total * 0.25, emissionsGrams: job.emissionsGrams * 0.25, durationSeconds: 150, samples: 0, tokens: 0, steps: 0 },
      { name: "train", energyJoules: total * 0.75, emissionsGrams: job.emissionsGrams * 0.75, durationSeconds: 450, samples: 4096, tokens: 98_304, steps: 3 },
    ];
    const withPhases = normalizeReport({ ...report, jobs: report.jobs.map((j) => (j.id === "train-a" ? { ...j, phases: phases.map((p) => ({ ...p, joulesPerSample: null, joulesPerToken: null, joulesPerStep: null })) } : j)) });
    const lines = formatSummary(withPhases).split("\n");
    expect(lines.length).toBeLessThanOrEqual(14);
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(100);
    const train = lines.find((l) => l.startsWith("  train"))!;
    expect(train).toMatch(/ 75\.0% /);
    expect(train).toContain(" 4,096 ");
    expect(train).toContain(formatSi((total * 0.75) / 4096, "J"));
    // Counts are whole and grouped, never rounded to 3 digits.
    expect(lines.find((l) => l.startsWith("work"))).toBe("work        4,096 samples, 98,304 tokens, 3 steps");
    expect(lines.join("\n")).not.toMatch(/\b4100\b|\b98300\b/);
    const units = lines.find((l) => l.startsWith("per unit"))!;
    // Job-level figures: the whole job's energy over all its samples/tokens.
    expect(units).toContain(`${formatSi(total / 4096, "J")}/sample`);
    expect(units).toContain(`${formatSi(total / 98_304, "J")}/token`);
    expect(units).toContain(`${formatGrams((job.emissionsGrams / 98_304) * 1e6)} CO2e per million tokens`);
  });
});

/** The golden file of `name`; UPDATE_GOLDEN=1 writes it from the output instead (then review the diff). */
function golden(name: string, text: string): void {
  const file = join(import.meta.dirname, "summary-golden", `${name}.txt`);
  if (process.env.UPDATE_GOLDEN === "1") writeFileSync(file, text + "\n");
  expect(text + "\n").toBe(readFileSync(file, "utf8"));
}
const fixture = (name: string) => readReportFile(join(import.meta.dirname, "..", "fixtures", "reports", name));

/** What every summary holds to: labelled lines, one number format, the no-zone line once. */
function checkFormat(text: string): void {
  const lines = text.split("\n");
  for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(100);
  // Each figure line says whose it is.
  for (const l of lines.slice(1)) expect(l, l).toMatch(/^(job |host |devices |facility +host |emissions +host |water +host |phase|  |work |per unit |serving |grid |note |failed |group |budget |            …)/);
  // 3 significant digits: no "473.0", no "21.143%", no exponent; counts of 4+ digits grouped.
  expect(text).not.toMatch(/\d\.\d{4,}|\d+\.\d+e[+-]?\d|\b\d{1,3}\.\d0{2,}\b/);
  expect(text).not.toMatch(/\b473\.0\b/);
  for (const m of text.matchAll(/\b(\d[\d,]*) (samples|tokens|steps)\b/g)) expect(m[1], m[0]).toMatch(/^\d{1,3}(,\d{3})*$/);
  expect(text).not.toContain("fell back in");
}

describe("summary golden files (run, agent, simulate, merged report)", () => {
  it("run: the job and the host named, a 0.65 s phase with its share, grouped counts, the no-zone line once", () => {
    const r = fixture("run-marks.json");
    const text = formatSummary(r);
    checkFormat(text);
    expect(text.match(/^grid +no --zone: world average 473 g\/kWh \(set --zone or a provider\)$/gm)).toHaveLength(1);
    const job = r.jobs[0];
    expect(text).toContain(`job train-golden (python3 train.py): ${formatSi(job.energyJoules.total / 3600, "Wh")} IT`);
    expect(text).toContain(`host        ${formatSi(r.totals.energyJoules / 3600, "Wh")} IT = jobs ${formatSi(job.energyJoules.total / 3600, "Wh")} + system`);
    expect(text).toMatch(/^ {2}eval +\S+ \S+ +\d+(\.\d+)?% /m); // eval has its share, not 0
    golden("run", text);
  });

  it("agent's report: its job and the host, the no-zone line", () => {
    const text = formatSummary(fixture("agent-selector.json"));
    checkFormat(text);
    expect(text).toMatch(/^── powerprint summary \(agent\) · /);
    expect(text).toMatch(/^job burner: /m);
    expect(text).toMatch(/^grid +no --zone: world average 473 g\/kWh/m);
    golden("agent", text);
  });

  it("simulate (the CLI's own summary)", async () => {
    const { runCli } = await import("../helpers/cli.js");
    const r = await runCli(["simulate", scenarioFile("design-example.json"), "-q"]);
    expect(r.code, r.stderr).toBe(0);
    const text = r.stderr.trimEnd();
    checkFormat(text);
    expect(text).not.toContain("no --zone"); // the scenario's series names its zone
    golden("simulate", text);
  });

  it("merged report: what was merged (runs, jobs, span), the failed run, the totals per tag", () => {
    const files = ["sweep-0.1.json", "sweep-0.3.json", "sweep-1.0.json"];
    const merged = mergeReports(files.map((file) => ({ file, report: fixture(file) })));
    const text = formatSummary({ ...merged, groups: groupByTag(merged, "experiment") });
    checkFormat(text);
    expect(text).toMatch(/^── powerprint report: 3 runs, 4 jobs, 1 failed · 2026-12-06 \d\d:\d\d:\d\d → \d\d:\d\d:\d\d UTC ──$/m);
    expect(text).toMatch(/^failed +sweep-1\.0\.json: exit 3 \(lr-1\.0, train-a\)$/m);
    expect(text).toMatch(/^job lr-1\.0 \(node -e const t…\) FAILED \(exit 3\): /m);
    expect(text).toMatch(/^group +experiment=sweep: 3 jobs, 1 failed, /m);
    golden("merged", text);
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
