import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../helpers/cli.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";

const root = join(import.meta.dirname, "..", "..");
const base = JSON.parse(readFileSync(join(import.meta.dirname, "..", "fixtures", "scenarios", "shared-gpu-two-jobs.json"), "utf8"));
/** FR's annual intensity from the shipped table, read here independently of the code. */
const frIntensity = Number(readFileSync(join(root, "data", "grid_intensity.csv"), "utf8").split("\n").find((l) => l.startsWith("FR,"))!.split(",")[4]);

function scenarioFile(body: unknown) {
  const dir = mkdtempSync(join(tmpdir(), "pp-sim-cli-"));
  const file = join(dir, "s.json");
  writeFileSync(file, JSON.stringify(body));
  return { dir, file, report: join(dir, "r.json") };
}

describe("powerprint simulate", () => {
  it("writes a v1 report; a scenario with grid.zone and no series uses that zone's annual intensity", async () => {
    const { dir, file, report } = scenarioFile({ ...base, grid: { zone: "FR" } });
    const r = await runCli(["simulate", file, "--report", report]);
    expect(r.code, r.stderr).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    expect(rep.mode).toBe("simulate");
    expect(rep.intensity).toMatchObject({ zone: "FR", source: "static-table" });
    expect(rep.intensity.lastGramsPerKwh).toBeCloseTo(frIntensity, 6);
    expect(rep.totals.emissionsGrams).toBeCloseTo((rep.totals.facilityEnergyJoules / 3.6e6) * frIntensity, 6);
    expect(r.stderr).toContain("powerprint summary (simulate: shared-gpu-two-jobs)");
    rmSync(dir, { recursive: true, force: true });
  });

  it("--zone on the command line wins over the scenario's zone", async () => {
    const { dir, file, report } = scenarioFile({ ...base, grid: { zone: "FR" } });
    const r = await runCli(["simulate", file, "--zone", "DE", "--report", report, "--quiet"]);
    expect(r.code, r.stderr).toBe(0);
    expect(reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8"))).intensity.zone).toBe("DE");
    rmSync(dir, { recursive: true, force: true });
  });

  it("an unknown scenario zone without a series exits 2 naming grid.zone", async () => {
    const { dir, file, report } = scenarioFile({ ...base, grid: { zone: "Atlantis" } });
    const r = await runCli(["simulate", file, "--report", report]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/grid\.zone: unknown zone 'Atlantis'/);
    rmSync(dir, { recursive: true, force: true });
  });
});
