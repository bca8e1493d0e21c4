// Budgets: the watcher against real simulated ledgers (crossing time and value found independently
// from the same snapshots), flag validation, and a real run stopped by --max-energy.
import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../helpers/cli.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";
import { BUDGET_EXIT_CODE, BudgetWatcher } from "../../src/jobs/budget.js";
import { budgetConfig } from "../../src/config/outputs.js";
import type { LedgerSnapshot } from "../../src/core/types.js";
import { UsageError } from "../../src/errors.js";
import { createStderrLogger } from "../../src/log.js";
import { validateScenario } from "../../src/sim/scenario.js";
import { simulate } from "../../src/sim/simulate.js";

const scenarioFile = join(import.meta.dirname, "..", "fixtures", "scenarios", "design-example.json");

async function snapshots(): Promise<LedgerSnapshot[]> {
  const scenario = validateScenario(JSON.parse(readFileSync(scenarioFile, "utf8")));
  const snaps: LedgerSnapshot[] = [];
  await simulate(scenario, {
    idlePolicy: "attribute",
    ledger: { pue: 1 },
    intensity: { at: async () => ({ intensityGramsPerKwh: 0, zone: "XX", source: "unused" }) },
    log: createStderrLogger({ quiet: true, write: () => {} }),
    onTick: (s) => snaps.push(s),
  });
  return snaps;
}

describe("BudgetWatcher", () => {
  it("records the first tick at or over each limit, warns once, calls stop once", async () => {
    const snaps = await snapshots();
    const job = (s: LedgerSnapshot) => s.jobs.find((j) => j.id === "train-a")!;
    const limitJ = job(snaps[snaps.length - 1]).facilityEnergyJoules / 3; // crossed a third of the way in
    const limitG = job(snaps[snaps.length - 1]).emissionsGrams * 0.9; // near the end: after the energy budget
    const firstE = snaps.find((s) => job(s).facilityEnergyJoules >= limitJ)!;
    const firstG = snaps.find((s) => job(s).emissionsGrams >= limitG)!;
    const warnings: string[] = [];
    const stops: string[] = [];
    const w = new BudgetWatcher(
      { maxFacilityEnergyJoules: limitJ, maxEmissionsGrams: limitG, onBudget: "stop" },
      { jobId: "train-a", log: createStderrLogger({ write: (l) => warnings.push(l) }), onStop: (c) => stops.push(c.budget) },
    );
    for (const s of snaps) w.update(s);
    await w.shutdown(snaps[snaps.length - 1]);
    const rep = w.report();
    expect(rep.crossed.map((c) => c.budget)).toEqual(["max-energy", "max-emissions"]);
    expect(rep.crossed[0]).toMatchObject({ limit: limitJ, value: job(firstE).facilityEnergyJoules, action: "stopped", at: new Date(firstE.timeMillis).toISOString() });
    expect(rep.crossed[0].afterSeconds).toBeCloseTo((firstE.timeMillis - firstE.startMillis) / 1000, 9);
    expect(rep.crossed[1]).toMatchObject({ value: job(firstG).emissionsGrams, action: "warned" });
    expect(stops).toEqual(["max-energy"]); // once, for the first budget crossed
    expect(warnings.filter((l) => l.includes("budget --max-energy"))).toHaveLength(1);
    expect(w.stopped).toBe(true);
  });

  it("warn: never calls stop; a budget never reached is not crossed", async () => {
    const snaps = await snapshots();
    let stopped = 0;
    const w = new BudgetWatcher({ maxFacilityEnergyJoules: 1e12, onBudget: "warn" }, { jobId: "train-a", log: createStderrLogger({ write: () => {} }), onStop: () => stopped++ });
    for (const s of snaps) w.update(s);
    expect(w.report().crossed).toEqual([]);
    const w2 = new BudgetWatcher({ maxFacilityEnergyJoules: 1, onBudget: "warn" }, { jobId: "train-a", log: createStderrLogger({ write: () => {} }), onStop: () => stopped++ });
    for (const s of snaps) w2.update(s);
    expect(w2.report().crossed[0].action).toBe("warned");
    expect(stopped).toBe(0);
    expect(w2.stopped).toBe(false);
  });
});

describe("budget flags", () => {
  it("parses units in the value", () => {
    expect(budgetConfig({ maxEnergy: "5kWh", maxEmissions: "2kg", onBudget: "stop" })).toEqual({ maxFacilityEnergyJoules: 1.8e7, maxEmissionsGrams: 2000, onBudget: "stop" });
    expect(budgetConfig({})).toBeUndefined();
  });
  it.each([
    [{ maxEnergy: "5" }, "--max-energy"],
    [{ maxEnergy: "5 kg" }, "--max-energy"],
    [{ maxEmissions: "2kWh" }, "--max-emissions"],
    [{ onBudget: "stop" }, "--on-budget"],
  ])("%j → UsageError naming %s", (flags, flag) => {
    expect(() => budgetConfig(flags)).toThrow(UsageError);
    expect(() => budgetConfig(flags)).toThrow(new RegExp(`^${flag}:`));
  });
  it("CLI: a bad value exits 2 naming the flag, nothing run", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-budget-"));
    const marker = join(dir, "ran");
    const r = await runCli(["run", "--max-energy", "lots", "--", process.execPath, "-e", `require("fs").writeFileSync(${JSON.stringify(marker)}, "")`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^powerprint: error: --max-energy: 'lots' is not an energy/m);
    expect(() => readFileSync(marker)).toThrow();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("run --max-energy --on-budget stop", () => {
  it("stops a simulated run's job, exits with the budget code, the report names the budget", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-budget-"));
    const report = join(dir, "r.json");
    // A CPU burner that would run for an hour: only the budget can end it within the test.
    const burner = "const end = Date.now() + 3600e3; while (Date.now() < end) {}";
    const r = await runCli(
      ["run", "--sim", scenarioFile, "--interval", "100ms", "--grace", "2s", "--job-id", "b1", "--max-energy", "20J", "--on-budget", "stop", "--report", report, "--", process.execPath, "-e", burner],
      { timeoutMillis: 120_000 },
    );
    expect(r.code, r.stderr).toBe(BUDGET_EXIT_CODE);
    expect(r.stderr).toMatch(/budget --max-energy 5\.56 mWh crossed: facility energy \S+ \S+ after \d+(\.\d+)? (ms|s|min); stopping the job/);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    expect(rep.budget?.crossed).toHaveLength(1);
    expect(rep.budget!.crossed[0]).toMatchObject({ budget: "max-energy", limit: 20, action: "stopped", quantity: "facilityEnergyJoules" });
    expect(rep.budget!.crossed[0].value).toBeGreaterThanOrEqual(20);
    const job = rep.jobs.find((j) => j.id === "b1")!;
    expect(job.facilityEnergyJoules).toBeGreaterThanOrEqual(20);
    expect(rep.exitCode).toBe(128 + 15); // the job itself died of the SIGTERM
    rmSync(dir, { recursive: true, force: true });
  }, 130_000);
});
