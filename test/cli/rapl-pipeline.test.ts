// RAPL through the whole CLI pipeline: the real rapl collector reads a fixture powercap tree
// (POWERPRINT_SYSFS_ROOT), the wrapped command moves its counters, and the report's device energy
// is exact, including a counter wrap.
import { describe, expect, it } from "vitest";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../helpers/cli.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";

const fixture = join(import.meta.dirname, "..", "fixtures", "powercap", "two-sockets-dram");
const job = join(import.meta.dirname, "..", "fixtures", "scripts", "rapl-job.mjs");

describe("RAPL through the whole pipeline (fixture powercap tree)", () => {
  it("reports exact joules per zone, a wrap included, labelled counter/rapl, with no memory model", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-rapl-cli-"));
    const root = join(dir, "root");
    cpSync(fixture, root, { recursive: true, verbatimSymlinks: true });
    const zone = (z: string, f: string) => join(root, "sys", "class", "powercap", z, f);
    const read = (z: string) => Number(readFileSync(zone(z, "energy_uj"), "utf8"));
    // package-1 sits 1 J below its wrap point; the job moves it past the wrap to 5 J.
    const range1 = Number(readFileSync(zone("intel-rapl:1", "max_energy_range_uj"), "utf8"));
    writeFileSync(zone("intel-rapl:1", "energy_uj"), `${range1 - 1_000_000}\n`);
    const start = { p0: read("intel-rapl:0"), d0: read("intel-rapl:0:0"), d1: read("intel-rapl:1:0") };
    const final = { p0: start.p0 + 1_234_567_890, p1: 5_000_000, d0: start.d0 + 98_765_432, d1: start.d1 + 1 };
    const report = join(dir, "r.json");
    const r = await runCli(["run", "--quiet", "--interval", "100ms", "--job-id", "cpu-job", "--report", report, "--", process.execPath, job], {
      env: {
        POWERPRINT_SYSFS_ROOT: root,
        RAPL_ROOT: root,
        RAPL_FINAL: `intel-rapl:0=${final.p0},intel-rapl:1=${final.p1},intel-rapl:0:0=${final.d0},intel-rapl:1:0=${final.d1}`,
      },
    });
    expect(r.code, r.stderr).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    const dev = (id: string) => rep.devices.find((d) => d.id === id)!;
    expect(dev("rapl:package-0")).toMatchObject({ kind: "cpu", source: "rapl", method: "counter" });
    expect(dev("rapl:package-0").energyJoules).toBeCloseTo(1234.56789, 6);
    expect(dev("rapl:package-1").energyJoules).toBeCloseTo(6, 6); // 1 J to the wrap + 5 J after it
    expect(dev("rapl:dram-0")).toMatchObject({ kind: "memory", source: "rapl", method: "counter" });
    expect(dev("rapl:dram-0").energyJoules).toBeCloseTo(98.765432, 6);
    expect(dev("rapl:dram-1").energyJoules).toBeCloseTo(0.000001, 9);
    // RAPL has dram zones: memory is measured, not modelled.
    expect(rep.devices.some((d) => d.source === "cpu-model")).toBe(false);
    expect(r.stderr).not.toMatch(/RAPL unavailable/);
    // Conservation over jobs + buckets.
    const devices = rep.devices.reduce((a, d) => a + d.energyJoules, 0);
    expect(Math.abs(rep.totals.energyJoules - devices) / devices).toBeLessThan(1e-9);
    // The job burned CPU for ~1 s on this host: it holds a share of the package energy.
    expect(rep.jobs.find((j) => j.id === "cpu-job")!.energyJoules.cpu).toBeGreaterThan(0);
    rmSync(dir, { recursive: true, force: true });
  });
});
