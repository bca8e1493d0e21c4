/**
 * Agent lifecycle through the real pipeline (Agent → Monitor → Sampler → Ledger) on a simulated
 * scenario in virtual time: jobs appear, finish, are retained, dropped, come back; memory bounded
 * with 10,000 short jobs (entries counted, not RSS).
 */
import { describe, expect, it } from "vitest";
import { Agent } from "../../src/agent/agent.js";
import { TerminatedJobs } from "../../src/agent/lifecycle.js";
import { SimJobSource } from "../../src/agent/sim-source.js";
import { singleClock } from "../../src/core/clock.js";
import type { Logger } from "../../src/core/contracts.js";
import { validateScenario, type Scenario } from "../../src/sim/scenario.js";
import { SimCollector, SimWorld } from "../../src/sim/world.js";

const T0 = Date.UTC(2026, 0, 1);

function recordingLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`info: ${m}`),
    warn: (m) => lines.push(`warn: ${m}`),
    warnOnce: (() => {
      const seen = new Set<string>();
      return (k: string, m: string) => {
        if (!seen.has(k)) {
          seen.add(k);
          lines.push(`warn: ${m}`);
        }
      };
    })(),
    debug: () => undefined,
  };
}

/** An agent on `scenario` in virtual time; `advance(ms)` moves the clock and ticks once. */
function virtualAgent(scenario: Scenario, o: { retentionMillis: number; maxTerminated?: number; intervalMillis?: number }) {
  let now = T0;
  const clock = singleClock(() => now);
  const world = new SimWorld(scenario, T0);
  const log = recordingLog();
  const agent = new Agent({
    mode: "sim",
    collectors: [new SimCollector(world)],
    sim: new SimJobSource(world, () => now),
    intensity: { at: async () => ({ intensityGramsPerKwh: 100, zone: "test", source: "static" }) },
    ledgerOptions: { pue: 1 },
    exporters: [],
    intervalMillis: o.intervalMillis ?? 1000,
    idlePolicy: "attribute",
    log,
    clock,
    host: "test",
    checkpointIntervalMillis: 1000,
    retentionMillis: o.retentionMillis,
    maxTerminated: o.maxTerminated,
    finalExportDeadlineMillis: 1000,
  });
  return {
    agent,
    log,
    async advance(ms: number) {
      now += ms;
      await agent.monitor.tick();
    },
    get now() {
      return now;
    },
  };
}

const cpuHost = [{ id: "cpu0", kind: "cpu", idleWatts: 10, maxWatts: 110, cores: 4 }];

describe("TerminatedJobs", () => {
  it("expires in finishing order and evicts the oldest beyond capacity", () => {
    const t = new TerminatedJobs(1000, 2);
    expect(t.add("a", 0)).toEqual([]);
    expect(t.add("b", 10)).toEqual([]);
    expect(t.add("c", 20)).toEqual(["a"]);
    expect(t.expired(1009)).toEqual([]);
    expect(t.expired(1010)).toEqual(["b"]);
    expect(t.remove("c")).toBe(true);
    expect(t.size).toBe(0);
  });
});

describe("agent lifecycle (virtual time, real pipeline)", () => {
  it("a finished job is exported for --retention, then dropped; energy and CPU never go down meanwhile", async () => {
    const scenario = validateScenario({
      durationSeconds: 100,
      devices: cpuHost,
      processes: [
        { pid: 10, job: "short", endSeconds: 5, cpu: [[0, 1]] },
        { pid: 20, job: "long", cpu: [[0, 1]] },
      ],
    });
    const v = virtualAgent(scenario, { retentionMillis: 10_000 });
    await v.agent.monitor.tick();
    let lastEnergy = 0;
    let finishedAt: number | undefined;
    for (let i = 0; i < 30; i++) {
      await v.advance(1000);
      const short = v.agent.monitor.snapshot().jobs.find((j) => j.id === "short");
      finishedAt ??= v.agent.ledger.finishedAt("short");
      if (finishedAt === undefined || v.now < finishedAt + 10_000) {
        expect(short, `short is exported at t=${(v.now - T0) / 1000}s`).toBeDefined();
        expect(short!.energyJoules.total).toBeGreaterThanOrEqual(lastEnergy);
        lastEnergy = short!.energyJoules.total;
      } else {
        expect(short, `short dropped at t=${(v.now - T0) / 1000}s`).toBeUndefined();
      }
    }
    // Finished at the first sample after its process ended (t = 5 s), dropped 10 s later.
    expect(finishedAt).toBe(T0 + 5000);
    expect(v.agent.source.dropped).toBe(1);
    expect(v.agent.ledger.hasJob("short")).toBe(false);
    expect(v.agent.ledger.hasJob("long")).toBe(true);
    // 5 CPU seconds over 5 s: its CPU share of the host's energy.
    expect(lastEnergy).toBeGreaterThan(0);
  });

  it("a job that comes back within its retention continues its counters; after it was dropped it starts from zero", async () => {
    const make = () =>
      validateScenario({
        durationSeconds: 100,
        devices: cpuHost,
        processes: [
          { pid: 10, job: "a", endSeconds: 5, cpu: [[0, 1]] },
          { pid: 11, job: "a", startSeconds: 10, endSeconds: 15, cpu: [[0, 1]] },
          { pid: 20, job: "other", cpu: [[0, 1]] },
        ],
      });
    const kept = virtualAgent(make(), { retentionMillis: 60_000 });
    const dropped = virtualAgent(make(), { retentionMillis: 2_000 });
    for (const v of [kept, dropped]) await v.agent.monitor.tick();
    const cpu: Record<string, number[]> = { kept: [], dropped: [] };
    for (let i = 0; i < 20; i++) {
      await kept.advance(1000);
      await dropped.advance(1000);
      cpu.kept.push(kept.agent.monitor.snapshot().jobs.find((j) => j.id === "a")?.cpuSeconds ?? -1);
      cpu.dropped.push(dropped.agent.monitor.snapshot().jobs.find((j) => j.id === "a")?.cpuSeconds ?? -1);
    }
    // Kept: 5 s + 5 s of one core, monotone throughout, live again (not finished) while back.
    for (let i = 1; i < cpu.kept.length; i++) expect(cpu.kept[i]).toBeGreaterThanOrEqual(cpu.kept[i - 1]);
    expect(cpu.kept.at(-1)).toBeCloseTo(10, 6);
    expect(kept.agent.source.dropped).toBe(0);
    // Dropped at t = 7 s (finished at 5 + 2), back at 10 s from zero: only the second 5 s (at
    // t = 15 s), then finished and dropped again.
    expect(cpu.dropped[6]).toBe(-1);
    expect(cpu.dropped[10]).toBeCloseTo(1, 6);
    expect(cpu.dropped[14]).toBeCloseTo(5, 6);
    expect(Math.max(...cpu.dropped)).toBeCloseTo(5, 6);
    expect(cpu.dropped.at(-1)).toBe(-1);
    expect(dropped.agent.source.dropped).toBe(2);
  });

  it("10,000 short jobs come and go: ledger and terminated-jobs entries stay bounded, all are dropped at the end", async () => {
    const n = 10_000;
    const processes = [];
    // Twenty jobs start every second, each lives 0.5 s: 500 s of churn.
    for (let i = 0; i < n; i++) processes.push({ pid: 100 + i, job: `j${i}`, startSeconds: Math.floor(i / 20), endSeconds: Math.floor(i / 20) + 0.5, cpu: [[0, 0.1]] });
    const scenario = validateScenario({ durationSeconds: 2000, devices: cpuHost, processes });
    const retentionMillis = 5_000;
    const v = virtualAgent(scenario, { retentionMillis });
    await v.agent.monitor.tick();
    let maxJobs = 0;
    let maxTerminated = 0;
    for (let s = 0; s < n / 20 + 10; s++) {
      await v.advance(1000);
      maxJobs = Math.max(maxJobs, v.agent.ledger.jobCount);
      maxTerminated = Math.max(maxTerminated, v.agent.source.terminated.size);
    }
    // Live (≤ 20) plus those retained for 5 s (≤ 20 per second × 6 ticks): never thousands.
    expect(maxJobs).toBeLessThanOrEqual(20 + 20 * (retentionMillis / 1000 + 1));
    expect(maxTerminated).toBeLessThanOrEqual(20 * (retentionMillis / 1000 + 1));
    expect(maxJobs).toBeGreaterThan(20);
    expect(v.agent.ledger.jobCount).toBe(0);
    expect(v.agent.source.terminated.size).toBe(0);
    expect(v.agent.source.dropped).toBe(n);
  }, 60_000);

  it("beyond --max-finished-jobs the oldest finished jobs are dropped early, said once", async () => {
    const processes = [];
    for (let i = 0; i < 50; i++) processes.push({ pid: 100 + i, job: `j${i}`, startSeconds: i, endSeconds: i + 0.5, cpu: [[0, 0.1]] });
    const v = virtualAgent(validateScenario({ durationSeconds: 100, devices: cpuHost, processes }), { retentionMillis: 3_600_000, maxTerminated: 5 });
    await v.agent.monitor.tick();
    for (let s = 0; s < 55; s++) {
      await v.advance(1000);
      expect(v.agent.source.terminated.size).toBeLessThanOrEqual(5);
    }
    expect(v.agent.ledger.jobCount).toBe(5);
    expect(v.log.lines.filter((l) => l.includes("finished jobs retained"))).toHaveLength(1);
  });
});
