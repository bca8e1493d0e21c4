// `powerprint report`: two nodes' reports of one job id merge into sums over a union window;
// --group-by totals per tag value; merged CSV rows keep each run's own duration, power and exit
// code; older reports get their jobs' figures from the model; a bad file exits 2 naming it.
import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
import { runCli } from "../helpers/cli.js";
import { type ReportV1 } from "../../exporters/report-json.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";

const scenario = join(import.meta.dirname, "..", "fixtures", "scenarios", "design-example.json");
const fixtures = join(import.meta.dirname, "..", "fixtures", "reports");
const read = (f: string) => reportSchemaV1.parse(JSON.parse(readFileSync(f, "utf8")));

/** A real simulated-device run of a CPU burner as job JOB on "a node" (one run per node). */
async function nodeRun(dir: string, name: string, args: string[]): Promise<ReportV1> {
  const report = join(dir, `${name}.json`);
  const burn = "const t = Date.now(); while (Date.now() - t < 400) {}";
  const r = await runCli(["run", "--sim", scenario, "--interval", "100ms", "-q", "--report", report, ...args, "--", process.execPath, "-e", burn]);
  expect(r.code, r.stderr).toBe(0);
  return read(report);
}

describe("powerprint report", () => {
  it("merges two nodes' reports of one job id: sums, union window; --group-by totals per tag", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-report-"));
    const a = await nodeRun(dir, "node0", ["--job-id", "ddp-1", "--tag", "experiment=lr-sweep"]);
    const b = await nodeRun(dir, "node1", ["--job-id", "ddp-1", "--tag", "experiment=lr-sweep"]);
    const c = await nodeRun(dir, "other", ["--job-id", "lr-0.3", "--tag", "experiment=lr-sweep"]);
    const d = await nodeRun(dir, "base", ["--job-id", "baseline", "--tag", "experiment=baseline"]);
    const out = join(dir, "merged.json");
    const r = await runCli(["report", join(dir, "node0.json"), join(dir, "node1.json"), join(dir, "other.json"), join(dir, "base.json"), "--group-by", "experiment", "--json", out]);
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(readFileSync(out, "utf8"));
    reportSchemaV1.parse(m); // still a v1 report
    const ja = a.jobs.find((j) => j.id === "ddp-1")!;
    const jb = b.jobs.find((j) => j.id === "ddp-1")!;
    const jm = m.jobs.find((j: { id: string }) => j.id === "ddp-1");
    expect(m.jobs.filter((j: { id: string }) => j.id === "ddp-1")).toHaveLength(1);
    for (const k of ["cpu", "gpu", "memory", "total"] as const) expect(jm.energyJoules[k]).toBeCloseTo(ja.energyJoules[k] + jb.energyJoules[k], 9);
    expect(jm.facilityEnergyJoules).toBeCloseTo(ja.facilityEnergyJoules + jb.facilityEnergyJoules, 9);
    expect(jm.emissionsGrams).toBeCloseTo(ja.emissionsGrams + jb.emissionsGrams, 12);
    expect(jm.waterLiters).toBeCloseTo(ja.waterLiters + jb.waterLiters, 12);
    expect(jm.cpuSeconds).toBeCloseTo(ja.cpuSeconds + jb.cpuSeconds, 9);
    expect(Object.keys(jm.deviceEnergyJoules).sort()).toEqual(["n0:cpu0", "n0:gpu0", "n1:cpu0", "n1:gpu0"].filter((k) => k in jm.deviceEnergyJoules).sort());
    expect(m.startedAt).toBe(a.startedAt);
    expect(m.endedAt).toBe(d.endedAt);
    expect(m.durationSeconds).toBeCloseTo((Date.parse(d.endedAt) - Date.parse(a.startedAt)) / 1000, 6);
    expect(m.devices.map((x: { id: string }) => x.id)).toContain("n1:gpu0");

    const sweep = m.groups.find((g: { value: string }) => g.value === "lr-sweep");
    const jc = c.jobs.find((j) => j.id === "lr-0.3")!;
    expect(sweep.jobs.sort()).toEqual(["ddp-1", "lr-0.3"]);
    expect(sweep.facilityEnergyJoules).toBeCloseTo(ja.facilityEnergyJoules + jb.facilityEnergyJoules + jc.facilityEnergyJoules, 9);
    expect(sweep.emissionsGrams).toBeCloseTo(ja.emissionsGrams + jb.emissionsGrams + jc.emissionsGrams, 12);
    const base = m.groups.find((g: { value: string }) => g.value === "baseline");
    expect(base.facilityEnergyJoules).toBeCloseTo(d.jobs.find((j) => j.id === "baseline")!.facilityEnergyJoules, 9);
    expect(r.stdout).toMatch(/^── powerprint report: 4 runs, 4 jobs · /m);
    expect(r.stdout).toMatch(/^group +experiment=lr-sweep: 2 jobs, /m);
    // The job merged from two nodes: its window is the union of its pieces', its figures the model's.
    expect(jm.durationSeconds).toBeGreaterThanOrEqual(Math.max(ja.durationSeconds!, jb.durationSeconds!) - 1e-9);
    expect(jm.averagePowerWatts.total).toBeCloseTo(jm.energyJoules.total / jm.durationSeconds, 9);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("merged CSV rows carry each run's own duration and power, and its exit code (not the merged window's)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-report-"));
    const files = ["sweep-0.1.json", "sweep-0.3.json", "sweep-1.0.json"].map((f) => join(fixtures, f));
    const csv = join(dir, "m.csv");
    const r = await runCli(["report", ...files, "--group-by", "lr", "--csv", csv]);
    expect(r.code, r.stderr).toBe(0);
    const rows = parse(readFileSync(csv, "utf8"), { columns: true }) as Record<string, string>[];
    const merged = (Date.parse(read(files[2]).endedAt) - Date.parse(read(files[0]).startedAt)) / 1000;
    for (const [i, lr] of ["0.1", "0.3", "1.0"].entries()) {
      const run = read(files[i]);
      const job = run.jobs.find((j) => j.id === `lr-${lr}`)!;
      const row = rows.find((x) => x.run_id === `lr-${lr}`)!;
      // The command's job of a run was measured over the whole run.
      expect(Number(row.duration)).toBeCloseTo(run.durationSeconds, 9);
      expect(Number(row.duration)).not.toBeCloseTo(merged, 1);
      expect(Number(row.cpu_power)).toBeCloseTo(job.energyJoules.cpu / run.durationSeconds, 9);
      expect(Number(row.emissions_rate)).toBeCloseTo(job.emissionsGrams / 1000 / run.durationSeconds, 15);
      expect(row.exit_code).toBe(lr === "1.0" ? "3" : "0");
      expect(row.started_at).toBe(run.startedAt);
    }
    // The scenario's job ran in all three: its duration is theirs added (they do not overlap).
    const trainA = rows.find((x) => x.run_id === "train-a")!;
    const pieces = files.map((f) => read(f).jobs.find((j) => j.id === "train-a")!.durationSeconds!);
    expect(Number(trainA.duration)).toBeCloseTo(pieces.reduce((a, b) => a + b, 0), 9);
    expect(trainA.exit_code).toBe("");
    rmSync(dir, { recursive: true, force: true });
  });

  it("a report written before jobs carried their own duration: each job gets its run's window", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-report-"));
    const old = JSON.parse(readFileSync(join(fixtures, "sweep-0.3.json"), "utf8"));
    const strip = ["startedAt", "endedAt", "durationSeconds", "exitCode", "averagePowerWatts", "emissionsRateGramsPerSecond", "intensityAverageGramsPerKwh", "emissionsGramsPerMillionTokens"];
    old.jobs = old.jobs.filter((j: { id: string }) => j.id === "lr-0.3").map((j: Record<string, unknown>) => Object.fromEntries(Object.entries(j).filter(([k]) => !strip.includes(k))));
    delete old.host;
    const file = join(dir, "old.json");
    writeFileSync(file, JSON.stringify(old));
    const out = join(dir, "n.json");
    const r = await runCli(["report", file, "--json", out]);
    expect(r.code, r.stderr).toBe(0);
    const n = read(out);
    expect(n.jobs[0].durationSeconds).toBe(old.durationSeconds);
    expect(n.jobs[0].exitCode).toBe(0);
    expect(n.jobs[0].averagePowerWatts!.cpu).toBeCloseTo(old.jobs[0].energyJoules.cpu / old.durationSeconds, 12);
    rmSync(dir, { recursive: true, force: true });
  });

  it("a bad file: exit 2 naming the file, nothing written", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-report-"));
    const bad = join(dir, "bad.json");
    const notReport = join(dir, "other.json");
    writeFileSync(bad, "{ not json");
    writeFileSync(notReport, JSON.stringify({ schemaVersion: 1, hello: true }));
    const out = join(dir, "m.json");
    for (const f of [bad, notReport, join(dir, "missing.json")]) {
      const r = await runCli(["report", f, "--json", out]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`powerprint: error: ${f}: not a`);
    }
    expect(() => readFileSync(out)).toThrow();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a file that is a line of text: the parser's quote of it (with its newline) on the one line, whole", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-report-"));
    const text = join(dir, "notes.json");
    writeFileSync(text, "ab\n");
    const r = await runCli(["report", text]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^powerprint: error: .*notes\.json: not a readable JSON report: .*"ab\\n" is not valid JSON\n$/);
    rmSync(dir, { recursive: true, force: true });
  });
});
