import { describe, expect, it } from "vitest";
import { simulate } from "../../src/sim/simulate.js";
import { validateScenario, type Scenario } from "../../src/sim/scenario.js";
import { SIM_EPOCH_MILLIS } from "../../src/sim/world.js";
import { Monitor } from "../../src/core/monitor.js";
import { Ledger } from "../../src/core/ledger.js";
import { singleClock } from "../../src/core/clock.js";
import { createStderrLogger } from "../../src/log.js";
import type { Collector, DeviceReading, ProcessSample, ProcessSource, ProbeResult } from "../../src/core/contracts.js";
import type { JobTotals } from "../../src/core/types.js";
import { rng } from "../helpers/rng.js";

// simulate() evaluates each series once per tick from per-process segment state, shares those
// evaluations between the CPU seconds, the devices' energy and the GPU shares, and looks GPU PIDs
// up instead of listing every member. This test runs the same 1,000-process scenario through the
// same Monitor (Sampler, attribution, Ledger) fed instead by a straightforward reference world
// written here: plain [t, v] arrays scanned each time, every breakpoint of every process visited
// in every interval, complete member lists. Per-job energies must agree.

type Points = [number, number][];

const DURATION_SECONDS = 600;

/** A load swing shared by every process, so the summed utilisation crosses 1 back and forth. */
const swing = (t: number) => 1 + 0.4 * Math.sin((2 * Math.PI * t) / 150);

/**
 * 1,000 processes in 100 jobs of 10 (a root and 9 children by ppid). CPU points every 30 s, some
 * off the tick grid (x.25 s) and some steps (two points at one time); starts and ends on ticks
 * and between them; every 4th process on a GPU. Sized so the CPU's and gpu0's utilisation cross
 * 1 back and forth (the clamp bites in some intervals only).
 */
function scenario(): { scenario: Scenario; jobOfPid: Map<number, string> } {
  const r = rng(20261201);
  const processes: any[] = [];
  const jobOfPid = new Map<number, string>();
  for (let i = 0; i < 1000; i++) {
    const pid = 1000 + i;
    const root = i % 10 === 0;
    const job = `job-${Math.floor(i / 10)}`;
    jobOfPid.set(pid, job);
    const start = i % 3 === 0 ? 0 : i % 3 === 1 ? Math.floor(r() * 120) : Math.floor(r() * 120) + 0.5;
    const end = i % 5 === 0 ? start + 100 + Math.floor(r() * 400) + (i % 2 === 0 ? 0.25 : 0) : undefined;
    const cpu: Points = [];
    for (let t = 0; t <= DURATION_SECONDS; t += 30) {
      const at = i % 7 === 0 && t > 0 ? t + 0.25 : t;
      cpu.push([at, Math.round(r() * 130 * swing(at)) / 1000]);
      if (i % 11 === 0 && t % 90 === 0) cpu.push([at, Math.round(r() * 130 * swing(at)) / 1000]);
    }
    // At 300 s half the processes step from 0.3× to 1.7× their value: the CPU's load jumps across
    // 1 at a tick (the value just before it and at it differ).
    const k300 = cpu.findIndex(([t]) => t === 300);
    if (i % 2 === 0 && k300 >= 0) {
      const v = cpu[k300][1];
      cpu.splice(k300, 1, [300, v * 0.3], [300, v * 1.7]);
    }
    const p: any = { pid, ppid: root ? 1 : 1000 + i - (i % 10), name: `p${i}`, startSeconds: start, cpu };
    if (end !== undefined) p.endSeconds = end;
    if (root) p.job = job;
    if (i % 4 === 0) {
      const g: Points = [];
      for (let t = 0; t <= DURATION_SECONDS; t += 60) g.push([t, Math.round(r() * 160 * swing(t)) / 10000]);
      p.gpu = { [i % 8 === 0 ? "gpu0" : "gpu1"]: g };
    }
    processes.push(p);
  }
  // Short GPU processes of job-0: living less than a tick from a tick (member at its start only),
  // and inside one tick (never sampled: the GPU's share goes to system, as with complete members).
  // 150 processes start together at 465 s (a tick), taking the CPU's load across 1 at once.
  for (let k = 0; k < 150; k++) {
    const pid = 4000 + k;
    jobOfPid.set(pid, `job-${k % 100}`);
    processes.push({ pid, ppid: 1000 + 10 * (k % 100), name: `burst${k}`, startSeconds: 465, endSeconds: 475.5, cpu: [[0, 0.3]] });
  }
  for (let k = 0; k < 20; k++) {
    const pid = 3000 + k;
    const start = 37 + 13 * k + (k % 2 === 0 ? 0 : 0.25);
    jobOfPid.set(pid, "job-0");
    processes.push({ pid, ppid: 1000, name: `short${k}`, startSeconds: start, endSeconds: start + 0.5, cpu: [[0, 0.5]], gpu: { gpu0: [[0, 0.3]] } });
  }
  const s = validateScenario({
    name: "scale-equality",
    durationSeconds: DURATION_SECONDS,
    intervalMillis: 1000,
    devices: [
      { id: "gpu0", kind: "gpu", model: "NVIDIA H100 80GB HBM3", idleWatts: 70, maxWatts: 700, counter: true },
      { id: "gpu1", kind: "gpu", model: "NVIDIA H100 80GB HBM3", idleWatts: 70, maxWatts: 700, counter: false },
      { id: "cpu0", kind: "cpu", model: "AMD EPYC 9654", idleWatts: 90, maxWatts: 360, cores: 64, counter: true },
      { id: "mem0", kind: "memory", idleWatts: 20, maxWatts: 40, counter: true },
    ],
    processes,
  });
  return { scenario: s, jobOfPid };
}

// ---- The reference: DESIGN.md's series semantics on plain arrays ----

/** Value at t (held outside the points; at a step, the value after it). */
function at(s: readonly (readonly [number, number])[], t: number): number {
  if (t < s[0][0]) return s[0][1];
  let i = s.length - 1;
  while (s[i][0] > t) i--;
  if (i === s.length - 1) return s[i][1];
  const [t0, v0] = s[i];
  const [t1, v1] = s[i + 1];
  return v0 + ((v1 - v0) * (t - t0)) / (t1 - t0);
}

/** Limit from below at t (at a step, the value before it). */
function atLeft(s: readonly (readonly [number, number])[], t: number): number {
  if (t <= s[0][0]) return s[0][1];
  let i = s.length - 1;
  while (s[i][0] >= t) i--;
  if (i === s.length - 1) return s[i][1];
  const [t0, v0] = s[i];
  const [t1, v1] = s[i + 1];
  return v0 + ((v1 - v0) * (t - t0)) / (t1 - t0);
}

/** Exact ∫ over [a, b]: midpoint × width of each linear piece between the points. */
function integral(s: readonly (readonly [number, number])[], a: number, b: number): number {
  if (b <= a) return 0;
  const cuts = [a, ...s.map(([t]) => t).filter((t) => t > a && t < b), b];
  let total = 0;
  for (let k = 1; k < cuts.length; k++) total += at(s, (cuts[k - 1] + cuts[k]) / 2) * (cuts[k] - cuts[k - 1]);
  return total;
}

interface Part {
  pid: number;
  series: readonly (readonly [number, number])[];
  start: number;
  end: number;
}

/** ∫ min(1, scale × Σ alive parts) over [a, b], splitting at every point, start and end inside. */
function clampedEnergyIntegral(parts: readonly Part[], scale: number, a: number, b: number): number {
  const cuts = new Set<number>([a, b]);
  for (const p of parts) {
    for (const t of [p.start, p.end, ...p.series.map(([x]) => x)]) if (t > a && t < b) cuts.add(t);
  }
  const sorted = [...cuts].sort((x, y) => x - y);
  let total = 0;
  for (let k = 1; k < sorted.length; k++) {
    const t0 = sorted[k - 1];
    const t1 = sorted[k];
    let u0 = 0;
    let u1 = 0;
    for (const p of parts) {
      if (t0 >= p.start && t0 < p.end) u0 += at(p.series, t0);
      if (t1 > p.start && t1 <= p.end) u1 += atLeft(p.series, t1);
    }
    u0 *= scale;
    u1 *= scale;
    const w = t1 - t0;
    if (u0 <= 1 && u1 <= 1) total += ((u0 + u1) / 2) * w;
    else if (u0 >= 1 && u1 >= 1) total += w;
    else {
      const f = (1 - u0) / (u1 - u0);
      total += u0 < 1 ? ((u0 + 1) / 2) * f * w + (1 - f) * w : f * w + ((1 + u1) / 2) * (1 - f) * w;
    }
  }
  return total;
}

function utilization(parts: readonly Part[], scale: number, t: number): number {
  let u = 0;
  for (const p of parts) if (t >= p.start && t < p.end) u += at(p.series, t);
  return u * scale;
}

class ReferenceWorld implements Collector, ProcessSource {
  readonly id = "reference";
  private readonly cpuParts: Part[];
  private readonly gpuParts = new Map<string, Part[]>();
  private readonly cores: number;
  private lastSeconds = 0;
  private readonly counters = new Map<string, number>();
  /** Ticks with cpu0's / gpu0's utilisation over and under 1 ("cpu0:over"). */
  readonly ticksByLoad = new Map<string, number>();

  constructor(
    private readonly s: Scenario,
    private readonly jobs: ReadonlyMap<number, string>,
    private readonly nowSeconds: () => number,
  ) {
    const end = (p: Scenario["processes"][number]) => p.endSeconds ?? Infinity;
    this.cpuParts = s.processes.filter((p) => p.cpu).map((p) => ({ pid: p.pid, series: p.cpu!, start: p.startSeconds, end: end(p) }));
    for (const p of s.processes) {
      for (const [gpu, series] of Object.entries(p.gpu ?? {})) {
        this.gpuParts.set(gpu, [...(this.gpuParts.get(gpu) ?? []), { pid: p.pid, series, start: p.startSeconds, end: end(p) }]);
      }
    }
    this.cores = s.devices.filter((d) => d.kind === "cpu").reduce((sum, d) => sum + (d.cores ?? 0), 0);
  }

  async probe(): Promise<ProbeResult> {
    return { status: "ok", devices: [], note: "reference" };
  }

  async read(context?: { timeMillis: number }): Promise<DeviceReading[]> {
    const b = (context!.timeMillis - SIM_EPOCH_MILLIS) / 1000;
    const a = this.lastSeconds;
    this.lastSeconds = b;
    let gpuIndex = 0;
    return this.s.devices.map((d) => {
      const parts = d.kind === "gpu" ? (this.gpuParts.get(d.id) ?? []) : this.cpuParts;
      const scale = d.kind === "gpu" ? 1 : 1 / this.cores;
      const reading: DeviceReading = { deviceId: d.id, kind: d.kind, source: "sim", model: d.model, index: d.kind === "gpu" ? gpuIndex++ : undefined, idleWatts: d.idleWatts, method: d.counter ? "counter" : "power" };
      if (d.counter) {
        const joules = b > a ? d.idleWatts * (b - a) + (d.maxWatts - d.idleWatts) * clampedEnergyIntegral(parts, scale, a, b) : 0;
        this.counters.set(d.id, (this.counters.get(d.id) ?? 0) + joules);
        reading.energyJoules = this.counters.get(d.id);
      } else {
        reading.powerWatts = d.idleWatts + (d.maxWatts - d.idleWatts) * Math.min(1, utilization(parts, scale, b));
      }
      const u = utilization(parts, scale, b);
      reading.utilization = Math.min(1, u);
      if (d.id === "cpu0" || d.id === "gpu0") {
        const key = `${d.id}:${u > 1 ? "over" : "under"}`;
        this.ticksByLoad.set(key, (this.ticksByLoad.get(key) ?? 0) + 1);
      }
      if (d.kind === "gpu") {
        reading.processUsageMethod = "utilization";
        reading.processes = parts
          .filter((p) => (b > a ? Math.min(b, p.end) > Math.max(a, p.start) : b >= p.start && b < p.end))
          .map((p) => ({ pid: p.pid, share: b > a ? integral(p.series, Math.max(a, p.start), Math.min(b, p.end)) / (b - a) : at(p.series, b) }));
      }
      return reading;
    });
  }

  async close(): Promise<void> {}

  addJob(): void {}

  sample(): ProcessSample {
    const t = this.nowSeconds();
    const jobCpuSeconds = new Map<string, number>();
    const members = new Map<number, string>();
    const jobProcessCount = new Map<string, number>();
    let busy = 0;
    for (const p of this.s.processes) {
      const job = this.jobs.get(p.pid)!;
      const end = p.endSeconds ?? Infinity;
      const cpu = p.cpu ? integral(p.cpu, p.startSeconds, Math.min(t, end)) : 0;
      busy += cpu;
      jobCpuSeconds.set(job, (jobCpuSeconds.get(job) ?? 0) + cpu);
      if (t >= p.startSeconds && t < end) {
        members.set(p.pid, job);
        jobProcessCount.set(job, (jobProcessCount.get(job) ?? 0) + 1);
      }
    }
    return { jobCpuSeconds, hostBusyCpuSeconds: busy, hostTotalCpuSeconds: this.cores * Math.max(0, t), members, jobProcessCount };
  }

  jobEnvironment(): Record<string, string> {
    return {};
  }
}

/** The reference world through the same Monitor loop as simulate() (virtual clock, one tick per interval). */
async function referenceRun(s: Scenario, jobOfPid: ReadonlyMap<number, string>) {
  let nowMillis = SIM_EPOCH_MILLIS;
  const world = new ReferenceWorld(s, jobOfPid, () => (nowMillis - SIM_EPOCH_MILLIS) / 1000);
  const ledger = new Ledger({ pue: 1.2 }, nowMillis);
  for (const job of new Set(jobOfPid.values())) ledger.registerJob(job, job, {}, nowMillis);
  const monitor = new Monitor({
    collectors: [world],
    processes: world,
    intensity: { at: async () => ({ intensityGramsPerKwh: 300, zone: "x", source: "fixed" }) },
    ledger,
    exporters: [],
    intervalMillis: s.intervalMillis,
    clock: singleClock(() => nowMillis),
    idlePolicy: "attribute",
    log: createStderrLogger({ write: () => {} }),
    isVisiblePid: () => true,
  });
  const endMillis = SIM_EPOCH_MILLIS + s.durationSeconds * 1000;
  await monitor.tick();
  while (nowMillis < endMillis) {
    nowMillis = Math.min(endMillis, nowMillis + s.intervalMillis);
    await monitor.tick();
  }
  return { snapshot: await monitor.stop({ finalTick: false }), ticksByLoad: world.ticksByLoad };
}

/** Equal to 1e-9 of the larger of |expected| and `scale` (the run's whole energy, for figures near 0). */
const close = (actual: number, expected: number, scale = 1) => Math.abs(actual - expected) <= 1e-9 * Math.max(scale, Math.abs(expected));

describe("simulate at scale equals a straightforward reference", () => {
  it("1,000 processes, 100 jobs, 10 min: every job's energy by kind, CPU seconds, and the buckets", { timeout: 120_000 }, async () => {
    const { scenario: s, jobOfPid } = scenario();
    const fast = await simulate(s, {
      idlePolicy: "attribute",
      ledger: { pue: 1.2 },
      intensity: { at: async () => ({ intensityGramsPerKwh: 300, zone: "x", source: "fixed" }) },
      log: createStderrLogger({ write: () => {} }),
    });
    const { snapshot: ref, ticksByLoad } = await referenceRun(s, jobOfPid);
    // Not vacuous: the clamp bites in some intervals only, on the CPU and on gpu0.
    for (const key of ["cpu0:over", "cpu0:under", "gpu0:over", "gpu0:under"]) expect(ticksByLoad.get(key) ?? 0, key).toBeGreaterThan(60);
    expect(fast.snapshot.jobs.map((j) => j.id)).toEqual(ref.jobs.map((j) => j.id));
    expect(fast.snapshot.jobs).toHaveLength(100);
    const mismatches: string[] = [];
    // The system bucket holds only rounding residue here (host busy − Σ jobs, summed in two orders).
    const wholeJoules = ref.devices.reduce((sum, d) => sum + d.energyJoules, 0);
    const wholeCpuSeconds = ref.jobs.reduce((sum, j) => sum + (j.cpuSeconds ?? 0), 0);
    const compare = (name: string, a: JobTotals, b: JobTotals) => {
      for (const k of ["cpu", "gpu", "memory", "total"] as const) {
        if (!close(a.energyJoules[k], b.energyJoules[k], wholeJoules)) mismatches.push(`${name} ${k}: ${a.energyJoules[k]} vs ${b.energyJoules[k]}`);
      }
      if (!close(a.cpuSeconds ?? 0, b.cpuSeconds ?? 0, wholeCpuSeconds)) mismatches.push(`${name} cpuSeconds: ${a.cpuSeconds} vs ${b.cpuSeconds}`);
    };
    fast.snapshot.jobs.forEach((j, i) => compare(j.id, j, ref.jobs[i]));
    compare("system", fast.snapshot.buckets.system, ref.buckets.system);
    compare("idle", fast.snapshot.buckets.idle, ref.buckets.idle);
    expect(mismatches).toEqual([]);
    for (const j of fast.snapshot.jobs) {
      expect(j.energyJoules.cpu).toBeGreaterThan(0);
      expect(j.energyJoules.gpu).toBeGreaterThan(0);
    }
    for (const d of fast.snapshot.devices) expect(close(d.energyJoules, ref.devices.find((x) => x.id === d.id)!.energyJoules)).toBe(true);
  });
});
