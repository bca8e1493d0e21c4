import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../helpers/cli.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";
import { MarksReader } from "../../src/jobs/marks.js";
import { writeFileSync, appendFileSync } from "node:fs";

const script = `
const fs = require("fs");
const mark = (o) => fs.appendFileSync(process.env.POWERPRINT_MARKS, (typeof o === "string" ? o : JSON.stringify(o)) + "\\n");
// CPU time the script measures itself, not wall time: on a loaded machine a phase stays long
// enough for powerprint (100 ms ticks) to sample it whatever the load.
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const burn = (ms) => { const t = cpu(); while (cpu() - t < ms) {} };
mark({ phase: "warmup", step: 0 }); burn(700);
mark({ phase: "train", step: 1, samples: 64 }); burn(700);
mark("not json"); mark({ step: 3 });
`;

describe("training-loop marks (POWERPRINT_MARKS)", () => {
  it("splits the job's energy by phase; malformed lines are counted and skipped", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-marks-"));
    const report = join(dir, "r.json");
    const r = await runCli(["run", "--interval", "100ms", "--job-id", "m", "--report", report, "--", process.execPath, "-e", script]);
    expect(r.code, r.stderr).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    const job = rep.jobs.find((j) => j.id === "m")!;
    expect(job.phaseEnergyJoules.warmup).toBeGreaterThan(0);
    expect(job.phaseEnergyJoules.train).toBeGreaterThan(0);
    const phases = Object.values(job.phaseEnergyJoules).reduce((a, b) => a + b, 0);
    expect(phases).toBeLessThanOrEqual(job.energyJoules.total + 1e-9);
    expect(r.stderr).toMatch(/skipped 2 malformed/);
    rmSync(dir, { recursive: true, force: true });
  });

  it("MarksReader waits for a line's newline and skips oversized lines", () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-marks-"));
    const f = join(dir, "m.jsonl");
    writeFileSync(f, "");
    const m = new MarksReader(f);
    appendFileSync(f, '{"phase":"a"}\n{"phase":"b"');
    expect(m.poll().map((x) => x.phase)).toEqual(["a"]);
    appendFileSync(f, `, "step": 2}\n${JSON.stringify({ phase: "x".repeat(10), pad: "y".repeat(5000) })}\n`);
    expect(m.poll(1_700_000_000_000)).toEqual([{ phase: "b", step: 2, timeMillis: 1_700_000_000_000, timeOrigin: "seen" }]);
    expect(m.oversized).toBe(1);
    rmSync(dir, { recursive: true, force: true });
  });
});
