import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { simulate } from "../../src/sim/simulate.js";
import { loadScenario } from "../../src/sim/scenario.js";
import { createStderrLogger } from "../../src/log.js";
import { runCli } from "../helpers/cli.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";

const scenarios = join(import.meta.dirname, "..", "fixtures", "scenarios");
const log = createStderrLogger({ write: () => {} });

describe("time-resolved carbon", () => {
  it("a 2-hour run whose intensity steps from 400 to 100 g/kWh halfway: emissions are the interval-by-interval sum", async () => {
    const scenario = loadScenario(join(scenarios, "two-hour-intensity-step.json"));
    const r = await simulate(scenario, {
      idlePolicy: "attribute",
      ledger: { pue: 1.3 },
      pueFromFlag: true,
      intensity: { at: async () => ({ intensityGramsPerKwh: 0, zone: "x", source: "fixed" }) },
      log,
    });
    // Independent: power is constant within each hour, so each hour's energy is power × 3600 s.
    const gpu1 = 60 + 340 * 0.95;
    const gpu2 = 60 + 340 * 0.2;
    const cpu1 = 40 + 160 * (12 / 16);
    const cpu2 = 40 + 160 * (2 / 16);
    const firstKwh = ((gpu1 + cpu1) * 3600 * 1.3) / 3.6e6;
    const secondKwh = ((gpu2 + cpu2) * 3600 * 1.3) / 3.6e6;
    const expected = firstKwh * 400 + secondKwh * 100;
    const job = r.snapshot.jobs.find((j) => j.id === "train")!;
    const all = job.emissionsGrams + r.snapshot.buckets.system.emissionsGrams + r.snapshot.buckets.idle.emissionsGrams;
    expect(Math.abs(all - expected) / expected).toBeLessThan(0.001);
    // Not the average intensity × total energy (which would be 250 × total here).
    const averageTimesEnergy = (firstKwh + secondKwh) * 250;
    expect(Math.abs(all - averageTimesEnergy) / averageTimesEnergy).toBeGreaterThan(0.1);
  });
});

describe("a wrapped command on a simulated shared GPU", () => {
  it("splits the GPU between two jobs as DESIGN.md says (within 0.5 %), and conserves energy", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-gpu-"));
    const report = join(dir, "r.json");
    const res = await runCli(["run", "--quiet", "--sim", join(scenarios, "constant-shared-gpu.json"), "--interval", "200ms", "--report", report, "--", "sleep", "2"]);
    expect(res.code, res.stderr).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    const gpu = rep.devices.find((d) => d.id === "gpu0")!;
    expect(gpu.method).toBe("counter");
    expect(gpu.processUsageMethod).toBe("utilization");
    const P = 70 + 630 * 0.9;
    const a = rep.jobs.find((j) => j.id === "job-a")!.energyJoules.gpu;
    const b = rep.jobs.find((j) => j.id === "job-b")!.energyJoules.gpu;
    const expectA = (((P - 70) * (0.6 / 0.9) + 70 / 2) / P) * gpu.energyJoules;
    const expectB = (((P - 70) * (0.3 / 0.9) + 70 / 2) / P) * gpu.energyJoules;
    expect(gpu.energyJoules).toBeGreaterThan(P * 1.5);
    expect(Math.abs(a - expectA) / expectA).toBeLessThan(0.005);
    expect(Math.abs(b - expectB) / expectB).toBeLessThan(0.005);
    const attributed = [...rep.jobs, rep.buckets.system, rep.buckets.idle].reduce((s, t) => s + t.energyJoules.gpu, 0);
    expect(Math.abs(attributed - gpu.energyJoules) / gpu.energyJoules).toBeLessThan(1e-9);
    rmSync(dir, { recursive: true, force: true });
  });
});
