/**
 * Phases, units of work and the system bucket's CPU through the Monitor, in virtual time on the
 * simulator's real world/collector/process source (no mocks of our code), with figures computed by
 * hand. Also: user text equal to an Object.prototype key is an ordinary key everywhere.
 */
import { describe, expect, it } from "vitest";
import { buildReport } from "../../exporters/report-json.js";
import { singleClock } from "../../src/core/clock.js";
import { Ledger } from "../../src/core/ledger.js";
import { Monitor } from "../../src/core/monitor.js";
import { BEFORE_FIRST_MARK, JobPhases } from "../../src/core/phases.js";
import type { LedgerSnapshot } from "../../src/core/types.js";
import { createFixedProvider } from "../../src/grid/static.js";
import { validateScenario } from "../../src/sim/scenario.js";
import { simulate } from "../../src/sim/simulate.js";
import { SimCollector, SimProcessSource, SimWorld, scenarioIntensity } from "../../src/sim/world.js";
import { recordingLogger } from "../exporters/snapshots.js";

/**
 * One 4-core CPU at a constant 100 W (idle = max), the job's process on 1 core, one process outside
 * any job on 1 core, intensity 360 g/kWh: each second the job gets 50 J and 50 × 360 / 3.6e6 g.
 */
const SCENARIO = {
  name: "phases",
  durationSeconds: 10,
  intervalMillis: 1000,
  grid: { zone: "XX", intensity: [[0, 360]] },
  devices: [{ id: "cpu0", kind: "cpu", idleWatts: 100, maxWatts: 100, cores: 4 }],
  processes: [
    { pid: 10, ppid: 1, job: "j", cpu: [[0, 1]] },
    { pid: 20, ppid: 1, cpu: [[0, 1]] },
  ],
};

type Marks = Record<number, { phase: string; step?: number; samples?: number; tokens?: number }>;

/**
 * Runs a scenario tick by tick (every `intervalMillis`) through the Monitor on the simulator's
 * world; `beforeTick(ledger, seconds)` runs before each tick, as run's marks reader does.
 */
async function runTicks(scenario: unknown, beforeTick: (ledger: Ledger, seconds: number) => void): Promise<LedgerSnapshot> {
  const s = validateScenario(scenario, "inline");
  const world = new SimWorld(s);
  let now = world.epochMillis;
  const ledger = new Ledger({ pue: 1 }, now);
  for (const job of world.jobs()) ledger.registerJob(job, job, {}, now);
  const monitor = new Monitor({
    collectors: [new SimCollector(world)],
    processes: new SimProcessSource(world, () => now),
    intensity: scenarioIntensity(world)!,
    ledger,
    exporters: [],
    intervalMillis: s.intervalMillis,
    idlePolicy: "attribute",
    log: recordingLogger(),
    clock: singleClock(() => now),
    beforeTick: () => beforeTick(ledger, (now - world.epochMillis) / 1000),
  });
  for (let t = 0; t <= s.durationSeconds * 1000; t += s.intervalMillis) {
    now = world.epochMillis + t;
    await monitor.tick();
  }
  return monitor.stop({ finalTick: false });
}

/** Runs SCENARIO; `marks[t]` is set on the ledger before the tick at t seconds, without a time (it opens at that tick). */
async function runWithMarks(marks: Marks, scenario: unknown = SCENARIO): Promise<LedgerSnapshot> {
  return runTicks(scenario, (ledger, seconds) => {
    const m = marks[seconds];
    if (m) ledger.setPhase("j", m.phase, m);
  });
}

const GRAMS_PER_JOULE = 360 / 3_600_000;

describe("phases through the Monitor (hand-computed)", () => {
  it("time before the first mark is its own phase; phases sum to the job; per-unit figures are phase energy / work done in it", async () => {
    const snap = await runWithMarks({
      3: { phase: "train", samples: 0, step: 0 },
      7: { phase: "eval", samples: 400, step: 40 },
      10: { phase: "eval", samples: 500 },
    });
    const job = snap.jobs.find((j) => j.id === "j")!;
    expect(job.energyJoules.total).toBeCloseTo(500, 9);
    const phases = Object.fromEntries(job.phases!.map((p) => [p.name, p]));
    expect(job.phases!.map((p) => p.name)).toEqual([BEFORE_FIRST_MARK, "train", "eval"]);
    // Intervals (0,1] and (1,2]: before the first mark; the mark read at t=3 opens train for (2,3].
    expect(phases[BEFORE_FIRST_MARK]).toMatchObject({ durationSeconds: 2, samples: 0, steps: 0 });
    expect(phases[BEFORE_FIRST_MARK].energyJoules).toBeCloseTo(100, 9);
    expect(phases.train).toMatchObject({ durationSeconds: 4, samples: 400, steps: 40 });
    expect(phases.train.energyJoules).toBeCloseTo(200, 9);
    expect(phases.train.emissionsGrams).toBeCloseTo(200 * GRAMS_PER_JOULE, 12);
    expect(phases.eval).toMatchObject({ durationSeconds: 4, samples: 100, steps: 0 });
    expect(phases.eval.energyJoules).toBeCloseTo(200, 9);
    const sum = job.phases!.reduce((a, p) => a + p.energyJoules, 0);
    expect(sum).toBeCloseTo(job.energyJoules.total, 9);
    expect(job.phases!.reduce((a, p) => a + p.emissionsGrams, 0)).toBeCloseTo(job.emissionsGrams, 12);
    expect(job.work).toEqual({ samples: 500, step: 40 });

    const report = buildReport(snap, reportContext());
    const rj = report.jobs.find((j) => j.id === "j")!;
    const rt = rj.phases!.find((p) => p.name === "train")!;
    expect(rt).toMatchObject({ samples: 400, steps: 40, tokens: null, joulesPerToken: null });
    expect(rt.joulesPerSample).toBeCloseTo(200 / 400, 12);
    expect(rt.joulesPerStep).toBeCloseTo(200 / 40, 12);
    expect(rj.phases!.find((p) => p.name === "eval")!.joulesPerSample).toBeCloseTo(200 / 100, 12);
    expect(rj.phases!.find((p) => p.name === BEFORE_FIRST_MARK)!.joulesPerSample).toBeNull();
    expect(rj.joulesPerSample).toBeCloseTo(500 / 500, 12);
    expect(rj.samples).toBe(500);
  });

  it("no mark: no phases at all (no table of one phase)", async () => {
    const snap = await runWithMarks({});
    const job = snap.jobs.find((j) => j.id === "j")!;
    expect(job.phases).toBeUndefined();
    expect(Object.keys(job.phaseEnergyJoules)).toEqual([]);
  });

  it("the system bucket reports its CPU seconds: host busy CPU minus the jobs'", async () => {
    const snap = await runWithMarks({});
    expect(snap.jobs.find((j) => j.id === "j")!.cpuSeconds).toBeCloseTo(10, 9);
    expect(snap.buckets.system.cpuSeconds).toBeCloseTo(10, 9);
    expect(buildReport(snap, reportContext()).buckets.system.cpuSeconds).toBeCloseTo(10, 9);
  });
});

describe("marks with times: an interval that spans marks is split between their phases (time-weighted)", () => {
  /** Each mark carries its time (seconds into the scenario) and is read at the first tick at or after it, as a marks reader would. */
  async function runWithTimedMarks(marks: { at: number; phase: string; samples?: number }[], intervalMillis = 1000): Promise<LedgerSnapshot> {
    const pending = [...marks];
    const epochMillis = new SimWorld(validateScenario(SCENARIO, "inline")).epochMillis;
    return runTicks({ ...SCENARIO, intervalMillis }, (ledger, seconds) => {
      while (pending.length && pending[0].at <= seconds) {
        const m = pending.shift()!;
        ledger.setPhase("j", m.phase, m, epochMillis + m.at * 1000);
      }
    });
  }

  it("train 1.2 s, eval 0.6 s, done, at 1 s ticks: every phase gets its time and its energy (50 W)", async () => {
    const snap = await runWithTimedMarks([
      { at: 0.2, phase: "train", samples: 0 },
      { at: 1.4, phase: "eval", samples: 4096 },
      { at: 2.0, phase: "done" },
    ]);
    const job = snap.jobs.find((j) => j.id === "j")!;
    const p = Object.fromEntries(job.phases!.map((x) => [x.name, x]));
    // The job draws 50 W throughout: each phase's energy is 50 J per second it was open.
    for (const [name, seconds] of [[BEFORE_FIRST_MARK, 0.2], ["train", 1.2], ["eval", 0.6], ["done", 8]] as const) {
      expect(p[name].durationSeconds, name).toBeCloseTo(seconds, 9);
      expect(p[name].energyJoules, name).toBeCloseTo(50 * seconds, 9);
      expect(p[name].emissionsGrams, name).toBeCloseTo(50 * seconds * GRAMS_PER_JOULE, 12);
    }
    expect(p.train.samples).toBe(4096);
    expect(job.phases!.reduce((a, x) => a + x.energyJoules, 0)).toBeCloseTo(job.energyJoules.total, 9);
    expect(job.phases!.reduce((a, x) => a + x.durationSeconds, 0)).toBeCloseTo(job.durationMillis! / 1000, 9);
    expect(job.durationMillis).toBe(10_000);
  });

  it("a phase opened and closed within one interval gets its part; marks on tick times behave as before", async () => {
    const snap = await runWithTimedMarks([
      { at: 3.25, phase: "blip" },
      { at: 3.5, phase: "train" },
      { at: 6, phase: "eval" },
    ]);
    const p = Object.fromEntries(snap.jobs.find((j) => j.id === "j")!.phases!.map((x) => [x.name, x]));
    expect(p.blip.durationSeconds).toBeCloseTo(0.25, 9);
    expect(p.blip.energyJoules).toBeCloseTo(12.5, 9);
    expect(p.train.durationSeconds).toBeCloseTo(2.5, 9);
    expect(p.eval.energyJoules).toBeCloseTo(200, 9);
  });

  it("a finished job stops counting time (its phases with it)", () => {
    const ledger = new Ledger({ pue: 1 }, 0);
    ledger.registerJob("j", "j", {}, 0);
    ledger.setPhase("j", "train", {}, 0);
    ledger.endTick(0, 0);
    ledger.endTick(1000, 1000);
    ledger.finishJob("j", 1000);
    ledger.endTick(2000, 2000);
    const job = ledger.snapshot().jobs[0];
    expect(job.durationMillis).toBe(1000);
    expect(job.finishedMillis).toBe(1000);
    expect(job.phases!.find((x) => x.name === "train")!.durationSeconds).toBe(1);
  });
});

describe("phases continued from saved totals (a restart from a checkpoint)", () => {
  it("JobPhases.restore goes on counting in the open phase, counters continuing from the saved totals", () => {
    const saved = new JobPhases();
    saved.addEnergy(10, 0.001);
    saved.mark("train", { samples: 0 });
    saved.addEnergy(20, 0.002);
    saved.addTime(2000);
    const p = JobPhases.restore(saved.totals(), saved.counters(), "train");
    p.addEnergy(5, 0.0005);
    p.mark("eval", { samples: 100 });
    const totals = Object.fromEntries(p.totals().map((t) => [t.name, t]));
    expect(totals.train).toMatchObject({ energyJoules: 25, durationSeconds: 2, samples: 100 });
    expect(totals[BEFORE_FIRST_MARK].energyJoules).toBe(10);
    expect(totals.eval).toMatchObject({ energyJoules: 0, samples: 0 });
  });
});

describe("user text equal to an Object.prototype key", () => {
  it("phases named constructor, __proto__ and toString are plain phases with finite totals, in the report JSON too", async () => {
    const snap = await runWithMarks({ 2: { phase: "constructor" }, 5: { phase: "__proto__" }, 8: { phase: "toString" } });
    const job = snap.jobs.find((j) => j.id === "j")!;
    const json = JSON.parse(JSON.stringify(buildReport(snap, reportContext()))) as { jobs: { id: string; phaseEnergyJoules: Record<string, unknown>; phases: { name: string; energyJoules: number }[] }[] };
    const rj = json.jobs.find((j) => j.id === "j")!;
    // Own keys, numbers: before the fix `constructor` held a function's source text and NaN totals.
    for (const [name, joules] of [[BEFORE_FIRST_MARK, 50], ["constructor", 150], ["__proto__", 150], ["toString", 150]] as const) {
      expect(Object.hasOwn(rj.phaseEnergyJoules, name), name).toBe(true);
      expect(rj.phaseEnergyJoules[name], name).toBeCloseTo(joules, 9);
    }
    expect(rj.phases.map((p) => p.name)).toEqual([BEFORE_FIRST_MARK, "constructor", "__proto__", "toString"]);
    expect(Number.isFinite(job.energyJoules.total)).toBe(true);
  });

  it("a scenario device id `constructor` (and `__proto__`) gets finite energy, per job and per device", async () => {
    const scenario = {
      ...SCENARIO,
      devices: [
        { id: "constructor", kind: "cpu", idleWatts: 100, maxWatts: 100, cores: 4 },
        { id: "__proto__", kind: "gpu", idleWatts: 10, maxWatts: 10 },
      ],
    };
    const fixed = createFixedProvider(100);
    const result = await simulate(validateScenario(scenario, "inline"), {
      idlePolicy: "attribute",
      ledger: { pue: 1 },
      intensity: { at: (t) => fixed.at("XX", t) },
      idle: { byDeviceId: {} },
      log: recordingLogger(),
    });
    type Totals = { id: string; deviceEnergyJoules: Record<string, number> };
    const report = JSON.parse(JSON.stringify(buildReport(result.snapshot, reportContext()))) as { totals: { energyJoules: number }; jobs: Totals[]; buckets: { idle: Totals }; devices: { id: string; energyJoules: number }[] };
    // 10 s × (100 W + 10 W).
    expect(report.totals.energyJoules).toBeCloseTo(1100, 6);
    const j = report.jobs.find((x) => x.id === "j")!;
    expect(j.deviceEnergyJoules.constructor).toBeCloseTo(500, 6);
    // The GPU has no process on it: its 10 W go to the idle bucket, under its own id.
    expect(Object.hasOwn(report.buckets.idle.deviceEnergyJoules, "__proto__")).toBe(true);
    expect(report.buckets.idle.deviceEnergyJoules["__proto__"]).toBeCloseTo(100, 6);
    expect(report.devices.map((d) => [d.id, Math.round(d.energyJoules)])).toEqual([["constructor", 1000], ["__proto__", 100]]);
  });
});

function reportContext(): Parameters<typeof buildReport>[1] {
  return {
    version: "test",
    mode: "simulate",
    idlePolicy: "attribute",
    pueOrigin: "default",
    intensityDescription: "scenario",
    intensityZone: "XX",
    intensitySource: "scenario",
    fallbacks: {},
    wueLitersPerKwh: 0,
    waterIntensityLitersPerKwh: 0,
    waterOrigin: "default",
    pricePerKwh: 0,
    currency: "USD",
    warnings: [],
    sampler: { ticks: 0, skippedTicks: 0, failures: {}, intervalMillis: 1000 },
    exportFailures: {},
  };
}
