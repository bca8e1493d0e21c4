// Issue 18 ("errors" row): messages never mention an output that was not asked for. The summary's
// cut lists (more jobs, phases, failed runs, tag groups) and its "modelled" note point at the file
// the user asked for (the JSON report, else the HTML page) and at nothing without one. Through the
// CLI: `run` on this machine's modelled CPU and memory, `simulate` with more jobs and phases than
// the summary lists, `report` merging a sweep.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "pp-summary-pointers-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const reports = (name: string) => join(import.meta.dirname, "..", "fixtures", "reports", name);

/** Five jobs (the summary lists three) and seven phases of one job (it lists five), in 8 virtual seconds. */
function crowdedScenario(): string {
  const jobs = ["a", "b", "c", "d", "e"];
  const scenario = {
    name: "crowded",
    durationSeconds: 8,
    intervalMillis: 1000,
    grid: { zone: "DE", intensity: [[0, 300]] },
    devices: [{ id: "cpu0", kind: "cpu", model: "AMD EPYC 9654", idleWatts: 90, maxWatts: 360, cores: 8, counter: true }],
    processes: jobs.map((j, i) => ({ pid: 100 + i, ppid: 1, name: `p-${j}`, job: `job-${j}`, cpu: [[0, 1]] })),
    marks: [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5].map((atSeconds, i) => ({ job: "job-a", atSeconds, phase: `phase-${i}` })),
  };
  const file = join(dir, "crowded.json");
  writeFileSync(file, JSON.stringify(scenario));
  return file;
}

describe("the summary names only the outputs asked for", () => {
  it("run without --report: the modelled note points at --verbose, nothing says 'report'", async () => {
    const r = await runCli(["run", "--", "true"]);
    expect(r.code, r.stderr).toBe(0);
    // This machine has no RAPL: CPU and memory are modelled, so the note is there to check.
    expect(r.stderr).toMatch(/^note +modelled, not measured \(how: --verbose\): cpu-model/m);
    expect(r.stderr).not.toMatch(/\breports?\b/i);
  });

  it("run --report FILE: the note names the file; --verbose: the device lines below", async () => {
    const file = join(dir, "run.json");
    const r = await runCli(["run", "--report", file, "--", "true"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`^note +modelled, not measured \\(how: --verbose or ${file.replace(/[.]/g, "\\.")}\\): `, "m"));
    const v = await runCli(["run", "--verbose", "--", "true"]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stderr).toMatch(/^note +modelled, not measured \(how: the device lines below\): cpu-model/m);
    expect(v.stderr).toMatch(/^device cpu-model:0 /m);
    expect(v.stderr).not.toMatch(/\breports?\b/i);
  });

  it("simulate: the jobs and phases left out are counted; ': see FILE' only with --report or --html", async () => {
    const scenario = crowdedScenario();
    const bare = await runCli(["simulate", scenario, "-q"]);
    expect(bare.code, bare.stderr).toBe(0);
    expect(bare.stderr).toMatch(/^ +… 2 more job\(s\)$/m);
    expect(bare.stderr).toMatch(/^ +… 3 more phase\(s\)$/m);
    expect(bare.stderr).not.toMatch(/\breports?\b|see /i);

    const json = join(dir, "sim.json");
    const withReport = await runCli(["simulate", scenario, "-q", "--report", json]);
    expect(withReport.code, withReport.stderr).toBe(0);
    expect(withReport.stderr).toContain(`… 2 more job(s): see ${json}`);
    expect(withReport.stderr).toContain(`… 3 more phase(s): see ${json}`);

    const html = join(dir, "sim.html");
    const withHtml = await runCli(["simulate", scenario, "-q", "--html", html]);
    expect(withHtml.code, withHtml.stderr).toBe(0);
    expect(withHtml.stderr).toContain(`… 2 more job(s): see ${html}`);
  });

  it("report merging a sweep: the job left out is counted; ': see FILE' only with --json", async () => {
    const files = ["sweep-0.1.json", "sweep-0.3.json", "sweep-1.0.json"].map(reports);
    const bare = await runCli(["report", ...files]);
    expect(bare.code, bare.stderr).toBe(0);
    expect(bare.stdout).toMatch(/^ +… 1 more job\(s\)$/m);
    expect(bare.stdout).not.toMatch(/see the report/);
    const out = join(dir, "merged.json");
    const withJson = await runCli(["report", ...files, "--json", out]);
    expect(withJson.code, withJson.stderr).toBe(0);
    expect(withJson.stdout).toContain(`… 1 more job(s): see ${out}`);
  });
});
