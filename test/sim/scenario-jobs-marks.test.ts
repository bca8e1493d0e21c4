// Scenario `jobs` (names, tags) and `marks` (phases at scenario times), `startTime`: validated with
// one line naming the field; simulate applies them through the ledger (the same way run --sim and
// agent --sim give them to theirs: src/sim/scenario.ts scenarioLedgerOptions).
import { describe, expect, it } from "vitest";
import { buildReport } from "../../exporters/report-json.js";
import { validateScenario } from "../../src/sim/scenario.js";
import { simulate } from "../../src/sim/simulate.js";
import { recordingLogger } from "../exporters/snapshots.js";

const BASE = {
  name: "jobs-marks",
  durationSeconds: 4,
  intervalMillis: 1000,
  grid: { intensity: [[0, 100]] },
  devices: [{ id: "cpu0", kind: "cpu", idleWatts: 40, maxWatts: 40, cores: 2 }],
  processes: [{ pid: 10, job: "j", cpu: [[0, 1]] }],
};

describe("scenario jobs and marks", () => {
  it("refuses what a run could not have: an unknown job, a reserved or bad tag key, a fractional count, a bad start time", () => {
    const bad: [unknown, RegExp][] = [
      [{ ...BASE, marks: [{ job: "nope", atSeconds: 1, phase: "p" }] }, /marks\[0\]\.job: no process starts job 'nope'/],
      [{ ...BASE, jobs: [{ id: "j", tags: { "powerprint.job.id": "x" } }] }, /jobs\[0\]\.tags: key 'powerprint\.job\.id' is set by powerprint itself/],
      [{ ...BASE, jobs: [{ id: "j", tags: { "9x": "y" } }] }, /jobs\[0\]\.tags: key '9x' must start with a letter/],
      [{ ...BASE, marks: [{ job: "j", atSeconds: 1, phase: "p", samples: 1.5 }] }, /marks\[0\]\.samples/],
      [{ ...BASE, startTime: "yesterday" }, /startTime: must be an ISO 8601 date-time/],
    ];
    for (const [scenario, message] of bad) expect(() => validateScenario(scenario, "s.json"), String(message)).toThrow(message);
  });

  it("simulate: the job's name and tags, its phases from the marks' times (one inside an interval), its start time", async () => {
    const s = validateScenario({
      ...BASE,
      startTime: "2027-03-01T12:00:00Z",
      jobs: [{ id: "j", name: "the job", tags: { team: "vision", constructor: "ok" } }],
      marks: [
        { job: "j", atSeconds: 0.5, phase: "train", samples: 0 },
        { job: "j", atSeconds: 1.25, phase: "eval", samples: 100 },
        { job: "j", atSeconds: 1.75, phase: "train" },
      ],
    });
    const r = await simulate(s, { idlePolicy: "attribute", ledger: { pue: 1 }, intensity: { at: async () => ({ intensityGramsPerKwh: 0, zone: "XX", source: "unused" }) }, log: recordingLogger() });
    const job = r.snapshot.jobs.find((j) => j.id === "j")!;
    expect(job.name).toBe("the job");
    expect({ ...job.attributes }).toEqual({ team: "vision", constructor: "ok" });
    const phases = Object.fromEntries(job.phases!.map((p) => [p.name, p]));
    // 40 W, all to the job: 40 J per second of each phase.
    expect(phases.eval.durationSeconds).toBeCloseTo(0.5, 9);
    expect(phases.eval.energyJoules).toBeCloseTo(20, 9);
    expect(phases.train.durationSeconds).toBeCloseTo(0.75 + 2.25, 9);
    expect(phases.train.samples).toBe(100);
    expect(r.snapshot.startMillis).toBe(Date.parse("2027-03-01T12:00:00Z"));
    const report = buildReport(r.snapshot, {
      version: "t", mode: "simulate", idlePolicy: "attribute", pueOrigin: "default", intensityDescription: "s", intensityZone: "XX", intensitySource: "scenario",
      fallbacks: {}, wueLitersPerKwh: 0, waterIntensityLitersPerKwh: 0, waterOrigin: "none", pricePerKwh: 0, currency: "USD", warnings: [],
      sampler: { ticks: 0, skippedTicks: 0, failures: {}, intervalMillis: 1000 }, exportFailures: {},
    });
    expect(report.startedAt).toBe("2027-03-01T12:00:00.000Z");
    expect(report.jobs[0].samples).toBe(100);
  });
});
