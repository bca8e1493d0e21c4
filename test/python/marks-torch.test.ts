// The Python marks helper on a real PyTorch CPU loop (Debian python3-torch under /usr/bin/python3,
// DataLoader worker processes) under `powerprint run`: the job's CPU seconds match what
// /usr/bin/time measures around the same script (within 2 %); per-phase energy sums to the job and
// J per sample = phase energy / that phase's samples. The per-phase fields (jobs[].phases[]) come
// from the ledger's per-phase stats.
import { describe, expect, it, beforeAll } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../helpers/cli.js";

const PY = "/usr/bin/python3";
const TIME = "/usr/bin/time";
const hasTorch = (() => {
  try {
    execFileSync(PY, ["-c", "import torch"], { stdio: "ignore" });
    return existsSync(TIME);
  } catch {
    return false;
  }
})();

interface Phase {
  name: string;
  energyJoules: number;
  samples?: number | null;
  joulesPerSample?: number | null;
}

describe.skipIf(!hasTorch)("powerprint_marks on a real PyTorch loop (.ci/run installs python3-torch and time)", () => {
  let dir: string;
  let report: { jobs: { id: string; cpuSeconds: number; energyJoules: { total: number }; phases?: Phase[]; phaseEnergyJoules: Record<string, number> }[] };
  let timed: { wall: number; user: number; sys: number };
  let counted: { train: number; eval: number };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "pp-torch-"));
    const pythonPath = (await runCli(["python-path"])).stdout.trim();
    expect(existsSync(join(pythonPath, "powerprint_marks.py"))).toBe(true);
    const reportFile = join(dir, "r.json");
    const timeFile = join(dir, "time.csv");
    const countsFile = join(dir, "counts.json");
    const r = await runCli(
      ["run", "--interval", "100ms", "--job-id", "torch", "--report", reportFile, "-q", "--", TIME, "-f", "%e,%U,%S", "-o", timeFile, PY, join(import.meta.dirname, "train_loop.py"), countsFile],
      { env: { PYTHONPATH: pythonPath, OMP_NUM_THREADS: "1" }, timeoutMillis: 300_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    report = JSON.parse(readFileSync(reportFile, "utf8"));
    const [wall, user, sys] = readFileSync(timeFile, "utf8").trim().split("\n").pop()!.split(",").map(Number);
    timed = { wall, user, sys };
    counted = JSON.parse(readFileSync(countsFile, "utf8"));
    return () => rmSync(dir, { recursive: true, force: true });
  }, 320_000);

  it("the job's CPU seconds (main process and DataLoader workers) match /usr/bin/time within 2 %", () => {
    const job = report.jobs.find((j) => j.id === "torch")!;
    const measured = timed.user + timed.sys;
    expect(measured).toBeGreaterThan(1);
    expect(Math.abs(job.cpuSeconds - measured) / measured).toBeLessThan(0.02);
  });

  it("marks from the helper reach the report: train and eval phases used energy", () => {
    const job = report.jobs.find((j) => j.id === "torch")!;
    expect(job.phaseEnergyJoules.train, JSON.stringify(job)).toBeGreaterThan(0);
    expect(job.phaseEnergyJoules.eval).toBeGreaterThan(0);
  });

  it("per-phase energy sums to the job; J per sample = phase energy / that phase's samples", () => {
    const job = report.jobs.find((j) => j.id === "torch")!;
    expect(job.phases, "jobs[].phases[] (ledger per-phase stats)").toBeDefined();
    const phases = job.phases!;
    const sum = phases.reduce((a, p) => a + p.energyJoules, 0);
    expect(Math.abs(sum - job.energyJoules.total)).toBeLessThanOrEqual(1e-9 * Math.max(1, job.energyJoules.total));
    const train = phases.find((p) => p.name === "train")!;
    const evalPhase = phases.find((p) => p.name === "eval")!;
    expect(train.samples).toBe(counted.train);
    expect(evalPhase.samples).toBe(counted.eval);
    expect(train.joulesPerSample!).toBeCloseTo(train.energyJoules / counted.train, 12);
    expect(evalPhase.joulesPerSample!).toBeCloseTo(evalPhase.energyJoules / counted.eval, 12);
  });
});
