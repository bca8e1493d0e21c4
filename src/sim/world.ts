import type { Collector, DeviceReading, ProbeResult } from "../core/contracts.js";
import type { IntensityReading } from "../grid/types.js";
import type { ProcessSample, ProcessSource } from "../core/contracts.js";
import type { Scenario, ScenarioDevice, ScenarioProcess } from "./scenario.js";
import { CompiledSeries, seriesAt } from "./series.js";

/** Virtual epoch of simulations: scenario second 0 is this instant (deterministic reports). */
export const SIM_EPOCH_MILLIS = Date.UTC(2026, 0, 1, 0, 0, 0);

/** One process's series while it is alive: [start, end). */
interface Contribution {
  series: CompiledSeries;
  start: number;
  /** Infinity: never ends. */
  end: number;
}

/** The scenario's processes as parallel arrays; jobIndex −1: in no job. */
export interface ProcessTable {
  pids: number[];
  starts: Float64Array;
  /** Infinity: never ends. */
  ends: Float64Array;
  cpu: (CompiledSeries | undefined)[];
  /** ∫ of the CPU series from its first point to the process's start. */
  cpuAtStart: Float64Array;
  /** Index of the process's CPU series among the world's CPU contributions (−1: none). */
  cpuPart: Int32Array;
  /** Sorted distinct times at which a job member starts or ends: membership is constant between them. */
  memberEvents: Float64Array;
  jobIndex: Int32Array;
  /** Resident memory series, bytes (undefined: holds none). */
  rss: (CompiledSeries | undefined)[];
}

/**
 * A sum of alive processes' series, times `scale` (busy cores / all cores for CPUs and memory; the
 * sum of shares for one GPU), evaluated once per tick whatever the number of devices reading it.
 * Each query is O(processes) plus the breakpoints inside the interval, and per-process cumulative
 * integrals are carried from the previous tick, so a run costs processes × ticks.
 */
class UsageSum {
  // Two cached cumulative integrals per contribution (the tick's start and end): the process
  // source's CPU seconds, this sum's integral and a GPU's per-process shares all ask for the same
  // two in one tick. Exact-key memo: any other time is computed (same value, bit for bit).
  private readonly lastT: Float64Array;
  private readonly lastCum: Float64Array;
  private readonly prevT: Float64Array;
  private readonly prevCum: Float64Array;
  private valueCache: { t: number; value: number } | undefined;
  private clampedCache: { a: number; b: number; value: number } | undefined;

  constructor(
    private readonly parts: readonly Contribution[],
    private readonly scale: number,
  ) {
    this.lastT = new Float64Array(parts.length).fill(Number.NaN);
    this.lastCum = new Float64Array(parts.length);
    this.prevT = new Float64Array(parts.length).fill(Number.NaN);
    this.prevCum = new Float64Array(parts.length);
  }

  /** ∫ of contribution i's series from its first point to x ({@link CompiledSeries.cumulative}). */
  cumulativeOf(i: number, x: number): number {
    if (this.lastT[i] === x) return this.lastCum[i];
    if (this.prevT[i] === x) return this.prevCum[i];
    const value = this.parts[i].series.cumulative(x);
    this.prevT[i] = this.lastT[i];
    this.prevCum[i] = this.lastCum[i];
    this.lastT[i] = x;
    this.lastCum[i] = value;
    return value;
  }

  /** ∫ of contribution i over [a, b] ∩ its life. */
  partIntegral(i: number, a: number, b: number): number {
    const c = this.parts[i];
    const from = Math.max(a, c.start);
    const to = Math.min(b, c.end);
    if (to <= from) return 0;
    const cumFrom = this.cumulativeOf(i, from);
    return this.cumulativeOf(i, to) - cumFrom;
  }

  /** Value at t: the processes alive at t (start <= t < end), at the value after any step at t. */
  valueAt(t: number): number {
    if (this.valueCache?.t === t) return this.valueCache.value;
    let v = 0;
    for (const c of this.parts) if (t >= c.start && t < c.end) v += c.series.at(t);
    const value = v * this.scale;
    this.valueCache = { t, value };
    return value;
  }

  /** Limit from below at t: the processes alive just before t (start < t <= end), value before a step. */
  private valueLeftOf(t: number): number {
    let v = 0;
    for (const c of this.parts) if (t > c.start && t <= c.end) v += c.series.atLeft(t);
    return v * this.scale;
  }

  /**
   * Exact ∫ min(1, value) dt over [a, b]. The sum is linear between breakpoints (series points,
   * starts, ends); the clamp matters only where it may exceed 1, so the breakpoints inside (a, b)
   * are visited only then.
   */
  clampedIntegral(a: number, b: number): number {
    if (b <= a) return 0;
    const cache = this.clampedCache;
    if (cache && cache.a === a && cache.b === b) return cache.value;
    let integral = 0;
    let bound = 0;
    let inner = false;
    for (let i = 0; i < this.parts.length; i++) {
      const c = this.parts[i];
      if (c.end <= a || c.start >= b) continue;
      integral += this.partIntegral(i, a, b);
      if (c.start > a || c.end < b) inner = true;
      const times = c.series.times;
      let k = c.series.indexAt(a) + 1;
      let max = Math.max(c.series.at(Math.max(a, c.start)), c.series.atLeft(Math.min(b, c.end)));
      for (; k < times.length && times[k] < b; k++) {
        if (times[k] > a) {
          inner = true;
          max = Math.max(max, c.series.values[k]);
        }
      }
      bound += max;
    }
    integral *= this.scale;
    let value: number;
    if (bound * this.scale <= 1) value = integral;
    else if (!inner) value = clampedLinear(this.valueAt(a), this.valueLeftOf(b), b - a);
    else value = this.clampedPiecewise(a, b);
    this.clampedCache = { a, b, value };
    return value;
  }

  /** The clamp may bite and breakpoints lie inside (a, b): segment by segment. */
  private clampedPiecewise(a: number, b: number): number {
    const set = new Set<number>();
    for (const c of this.parts) {
      if (c.end <= a || c.start >= b) continue;
      if (c.start > a) set.add(c.start);
      if (c.end < b) set.add(c.end);
      const times = c.series.times;
      for (let k = Math.max(0, c.series.indexAt(a)); k < times.length && times[k] < b; k++) if (times[k] > a) set.add(times[k]);
    }
    const points = [a, ...[...set].sort((x, y) => x - y), b];
    let total = 0;
    for (let j = 1; j < points.length; j++) {
      const t0 = points[j - 1];
      const t1 = points[j];
      let u0 = 0;
      for (const c of this.parts) if (t0 >= c.start && t0 < c.end) u0 += c.series.at(t0);
      total += clampedLinear(u0 * this.scale, this.valueLeftOf(t1), t1 - t0);
    }
    return total;
  }
}

/** Sorted distinct start and (finite) end times of the given processes. */
function memberEvents(ps: readonly ScenarioProcess[]): Float64Array {
  const times = new Set<number>();
  for (const p of ps) {
    times.add(p.startSeconds);
    if (p.endSeconds !== undefined) times.add(p.endSeconds);
  }
  return Float64Array.from(times).sort();
}

/** ∫ min(1, u) over a width w where u goes linearly from u0 to u1. */
function clampedLinear(u0: number, u1: number, w: number): number {
  if (u0 <= 1 && u1 <= 1) return ((u0 + u1) / 2) * w;
  if (u0 >= 1 && u1 >= 1) return w;
  const f = (1 - u0) / (u1 - u0);
  return u0 < 1 ? ((u0 + 1) / 2) * f * w + (1 - f) * w : f * w + ((1 + u1) / 2) * (1 - f) * w;
}

/**
 * The simulated host of a scenario: devices whose power follows the scenario's processes, and a
 * process table. Time is given in scenario seconds; `secondsAt(epochMillis)` converts sampler time.
 * Power model (DESIGN.md): P = idleWatts + (maxWatts − idleWatts) × min(1, utilisation).
 * Series are compiled once (typed arrays, prefix integrals, cursors), so queries at increasing
 * times — a simulation's ticks — cost O(processes) each.
 */
export class SimWorld {
  readonly totalCores: number;
  private readonly jobOf = new Map<number, string>();
  private readonly jobIds: string[];
  private readonly cpuSeries = new Map<number, CompiledSeries>();
  /** ∫ of each process's CPU series from its first point to its start. */
  private readonly cpuAtStart = new Map<number, number>();
  /** Index of each pid's CPU series in cpuSum. */
  private readonly cpuPartOf = new Map<number, number>();
  private readonly cpuSum: UsageSum;
  private readonly gpuSums = new Map<string, UsageSum>();
  private readonly gpuParts = new Map<string, { pid: number; part: Contribution }[]>();
  private table: ProcessTable | undefined;
  /** null: not computed yet. */
  private memoryBytesCache: number | undefined | null = null;

  constructor(
    readonly scenario: Scenario,
    /** Epoch millis of scenario second 0. */
    readonly epochMillis: number = SIM_EPOCH_MILLIS,
  ) {
    this.totalCores = scenario.devices.filter((d) => d.kind === "cpu").reduce((s, d) => s + (d.cores ?? 0), 0);
    const byPid = new Map(scenario.processes.map((p) => [p.pid, p]));
    for (const p of scenario.processes) {
      // A process with `job` starts that job; descendants join it (and stay after the parent ends).
      let cur: ScenarioProcess | undefined = p;
      const seen = new Set<number>();
      while (cur && !cur.job && !seen.has(cur.pid)) {
        seen.add(cur.pid);
        cur = byPid.get(cur.ppid);
      }
      if (cur?.job) this.jobOf.set(p.pid, cur.job);
    }
    this.jobIds = [...new Set(scenario.processes.filter((p) => p.job).map((p) => p.job!))];
    const cpuParts: Contribution[] = [];
    for (const p of scenario.processes) {
      const end = p.endSeconds ?? Infinity;
      if (p.cpu) {
        const series = new CompiledSeries(p.cpu);
        this.cpuSeries.set(p.pid, series);
        this.cpuAtStart.set(p.pid, series.cumulative(p.startSeconds));
        this.cpuPartOf.set(p.pid, cpuParts.length);
        cpuParts.push({ series, start: p.startSeconds, end });
      }
      for (const [gpu, s] of Object.entries(p.gpu ?? {})) {
        const list = this.gpuParts.get(gpu) ?? [];
        list.push({ pid: p.pid, part: { series: new CompiledSeries(s), start: p.startSeconds, end } });
        this.gpuParts.set(gpu, list);
      }
    }
    this.cpuSum = new UsageSum(cpuParts, this.totalCores > 0 ? 1 / this.totalCores : 0);
    for (const [gpu, list] of this.gpuParts) this.gpuSums.set(gpu, new UsageSum(list.map((x) => x.part), 1));
  }

  /** The processes as parallel arrays (the process source's per-tick loop), in scenario order. */
  processTable(): ProcessTable {
    if (this.table) return this.table;
    const ps = this.scenario.processes;
    const jobIndex = new Map(this.jobIds.map((j, i) => [j, i]));
    this.table = {
      pids: ps.map((p) => p.pid),
      starts: Float64Array.from(ps, (p) => p.startSeconds),
      ends: Float64Array.from(ps, (p) => p.endSeconds ?? Infinity),
      cpu: ps.map((p) => this.cpuSeries.get(p.pid)),
      cpuAtStart: Float64Array.from(ps, (p) => this.cpuAtStart.get(p.pid) ?? 0),
      cpuPart: Int32Array.from(ps, (p) => this.cpuPartOf.get(p.pid) ?? -1),
      memberEvents: memberEvents(ps.filter((p) => this.jobOf.has(p.pid))),
      jobIndex: Int32Array.from(ps, (p) => {
        const job = this.jobOf.get(p.pid);
        return job !== undefined ? jobIndex.get(job)! : -1;
      }),
      rss: ps.map((p) => (p.rssBytes ? new CompiledSeries(p.rssBytes) : undefined)),
    };
    return this.table;
  }

  /**
   * Installed memory, bytes: Σ memoryBytes of the memory devices; undefined when none sets it (then
   * memory energy is split by CPU seconds only, as before resident memory was simulated).
   */
  get memoryBytes(): number | undefined {
    if (this.memoryBytesCache === null) {
      const withSize = this.scenario.devices.filter((d) => d.kind === "memory" && d.memoryBytes !== undefined);
      this.memoryBytesCache = withSize.length > 0 ? withSize.reduce((s, d) => s + d.memoryBytes!, 0) : undefined;
    }
    return this.memoryBytesCache;
  }

  /**
   * ∫ of CPU series `part` (ProcessTable.cpuPart) from its first point to x, core-seconds: shared
   * with the CPU's energy integral, so a tick evaluates each series once at its end.
   */
  cpuCumulative(part: number, x: number): number {
    return this.cpuSum.cumulativeOf(part, x);
  }

  secondsAt(epochMillis: number): number {
    return (epochMillis - this.epochMillis) / 1000;
  }

  /** Job ids declared by the scenario, in order of appearance. */
  jobs(): string[] {
    return this.jobIds;
  }

  jobOfPid(pid: number): string | undefined {
    return this.jobOf.get(pid);
  }

  alive(p: ScenarioProcess, t: number): boolean {
    return t >= p.startSeconds && (p.endSeconds === undefined || t < p.endSeconds);
  }

  /** CPU seconds a process burned in [0, t]. */
  processCpuSeconds(p: ScenarioProcess, t: number): number {
    const series = this.cpuSeries.get(p.pid);
    if (!series) return 0;
    const end = Math.min(t, p.endSeconds ?? Infinity);
    if (end <= p.startSeconds) return 0;
    return series.cumulative(end) - this.cpuAtStart.get(p.pid)!;
  }

  /** Busy cores of all processes at t. */
  busyCores(t: number): number {
    return this.totalCores > 0 ? this.cpuSum.valueAt(t) * this.totalCores : this.unscaledBusy(t);
  }

  private unscaledBusy(t: number): number {
    let b = 0;
    for (const p of this.scenario.processes) if (p.cpu && this.alive(p, t)) b += this.cpuSeries.get(p.pid)!.at(t);
    return b;
  }

  utilization(device: ScenarioDevice, t: number): number {
    if (device.kind === "gpu") return this.gpuSums.get(device.id)?.valueAt(t) ?? 0;
    return this.totalCores > 0 ? this.cpuSum.valueAt(t) : 0;
  }

  powerWatts(device: ScenarioDevice, t: number): number {
    return device.idleWatts + (device.maxWatts - device.idleWatts) * Math.min(1, this.utilization(device, t));
  }

  /**
   * Exact energy of a device over [a, b], joules: idle × (b − a) + (max − idle) × ∫ min(1, u) dt,
   * u linear between breakpoints (split where it crosses 1). The integral is shared by all the
   * devices reading the same utilisation (every CPU and memory device) in one tick.
   */
  energyJoules(device: ScenarioDevice, a: number, b: number): number {
    if (b <= a) return 0;
    const sum = device.kind === "gpu" ? this.gpuSums.get(device.id) : this.totalCores > 0 ? this.cpuSum : undefined;
    const clamped = sum ? sum.clampedIntegral(a, b) : 0;
    return device.idleWatts * (b - a) + (device.maxWatts - device.idleWatts) * clamped;
  }

  /** Average utilisation share of each resident process on a GPU over [a, b]. */
  gpuShares(device: ScenarioDevice, a: number, b: number): { pid: number; share: number }[] {
    const out: { pid: number; share: number }[] = [];
    const dt = b - a;
    const list = this.gpuParts.get(device.id);
    const sum = this.gpuSums.get(device.id);
    if (!list || !sum) return out;
    for (let k = 0; k < list.length; k++) {
      const { pid, part } = list[k];
      const from = Math.max(a, part.start);
      const to = Math.min(b, part.end);
      if (dt > 0 ? to <= from : !(b >= part.start && b < part.end)) continue;
      // The same cumulative integrals the device's energy integral just used (cached in its sum).
      const share = dt > 0 ? sum.partIntegral(k, a, b) / dt : part.series.at(b);
      out.push({ pid, share });
    }
    return out;
  }

  intensityAt(t: number): number | undefined {
    const s = this.scenario.grid?.intensity;
    return s ? seriesAt(s, t) : undefined;
  }
}

/** One collector over all simulated devices (id "sim"). Counter devices report cumulative exact energy. */
export class SimCollector implements Collector {
  readonly id = "sim";
  private lastSeconds = 0;
  private readonly counters = new Map<string, number>();

  constructor(private readonly world: SimWorld) {}

  async probe(): Promise<ProbeResult> {
    return {
      status: "ok",
      devices: this.world.scenario.devices.map((d) => ({
        deviceId: d.id,
        kind: d.kind,
        model: d.model,
        index: d.index,
        uuid: d.uuid,
        method: d.counter ? "counter" : "power",
        energyCounter: d.counter,
        detail: `simulated (scenario '${this.world.scenario.name}')`,
      })),
      note: "simulated devices",
    };
  }

  async read(context?: { timeMillis: number }): Promise<DeviceReading[]> {
    const t = context ? this.world.secondsAt(context.timeMillis) : this.lastSeconds;
    const from = this.lastSeconds;
    const readings: DeviceReading[] = [];
    let gpuIndex = 0;
    for (const d of this.world.scenario.devices) {
      const index = d.kind === "gpu" ? (d.index ?? gpuIndex++) : undefined;
      const reading: DeviceReading = {
        deviceId: d.id,
        kind: d.kind,
        source: "sim",
        model: d.model,
        uuid: d.uuid,
        index,
        idleWatts: d.idleWatts,
        method: d.counter ? "counter" : "power",
      };
      if (d.counter) {
        const e = (this.counters.get(d.id) ?? 0) + this.world.energyJoules(d, from, t);
        this.counters.set(d.id, e);
        reading.energyJoules = e;
      } else {
        reading.powerWatts = this.world.powerWatts(d, t);
      }
      if (d.kind === "gpu") {
        reading.processes = this.world.gpuShares(d, from, t);
        reading.processUsageMethod = "utilization";
        reading.utilization = Math.min(1, this.world.utilization(d, t));
      } else {
        reading.utilization = Math.min(1, this.world.utilization(d, t));
      }
      readings.push(reading);
    }
    this.lastSeconds = t;
    return readings;
  }

  async close(): Promise<void> {}
}

/** Options of {@link SimProcessSource}. */
export interface SimProcessSourceOptions {
  /**
   * Hand the previous sample's `members` and `jobProcessCount` maps again while no job member
   * started or ended since (a 10,000-process table is not rebuilt every tick). Only for a caller
   * that never modifies a sample's maps (simulate: its own Sampler reads them); `run --sim` and the
   * agent merge real processes into the sample, so they get fresh maps (the default).
   */
  reuseUnchangedMaps?: boolean;
}

/** The scenario's process table as a ProcessSource; time comes from the sampler's clock. */
export class SimProcessSource implements ProcessSource {
  private lastMembers: { t: number; members: Map<number, string>; jobProcessCount: Map<string, number> } | undefined;
  /** First member event after lastMembers.t (ProcessTable.memberEvents). */
  private eventCursor = 0;

  constructor(
    private readonly world: SimWorld,
    private readonly nowMillis: () => number,
    private readonly options: SimProcessSourceOptions = {},
  ) {}

  addJob(): void {
    // Scenario jobs are declared by the scenario itself.
  }

  sample(): ProcessSample {
    const t = this.world.secondsAt(this.nowMillis());
    const table = this.world.processTable();
    const jobs = this.world.jobs();
    const jobCpu = new Float64Array(jobs.length);
    const reused = this.options.reuseUnchangedMaps && this.membersUnchangedAt(t, table.memberEvents) ? this.lastMembers : undefined;
    const jobCount = reused ? undefined : new Uint32Array(jobs.length);
    const members = reused ? reused.members : new Map<number, string>();
    const totalMemory = this.world.memoryBytes;
    const jobRss = totalMemory !== undefined ? new Float64Array(jobs.length) : undefined;
    let usedMemory = 0;
    let busy = 0;
    for (let i = 0; i < table.pids.length; i++) {
      const part = table.cpuPart[i];
      const start = table.starts[i];
      const end = Math.min(t, table.ends[i]);
      const cpu = part >= 0 && end > start ? this.world.cpuCumulative(part, end) - table.cpuAtStart[i] : 0;
      busy += cpu;
      const j = table.jobIndex[i];
      if (j >= 0) {
        jobCpu[j] += cpu;
        if (jobCount && t >= start && t < table.ends[i]) {
          members.set(table.pids[i], jobs[j]);
          jobCount[j]++;
        }
      }
      // Resident memory at the sample instant, like the RSS the tracker reads from /proc.
      const rss = table.rss[i];
      if (jobRss && rss && t >= start && t < table.ends[i]) {
        const bytes = rss.at(t);
        usedMemory += bytes;
        if (j >= 0) jobRss[j] += bytes;
      }
    }
    const jobCpuSeconds = new Map<string, number>();
    for (let j = 0; j < jobs.length; j++) jobCpuSeconds.set(jobs[j], jobCpu[j]);
    let jobProcessCount: Map<string, number>;
    if (reused) jobProcessCount = reused.jobProcessCount;
    else {
      jobProcessCount = new Map();
      for (let j = 0; j < jobs.length; j++) if (jobCount![j] > 0) jobProcessCount.set(jobs[j], jobCount![j]);
    }
    this.lastMembers = { t, members, jobProcessCount };
    const sample: ProcessSample = {
      jobCpuSeconds,
      hostBusyCpuSeconds: busy,
      hostTotalCpuSeconds: Math.max(1, this.world.totalCores) * Math.max(0, t),
      members,
      jobProcessCount,
    };
    if (jobRss && totalMemory !== undefined) {
      sample.jobRssBytes = new Map(jobs.map((job, j) => [job, jobRss[j]]));
      sample.hostUsedMemoryBytes = Math.min(totalMemory, usedMemory);
      sample.hostTotalMemoryBytes = totalMemory;
    }
    return sample;
  }

  /** Whether no job member started or ended in (last sample's t, t]: membership is then the same. */
  private membersUnchangedAt(t: number, events: Float64Array): boolean {
    const last = this.lastMembers;
    if (!last || t < last.t) {
      this.eventCursor = 0;
      return false;
    }
    let k = this.eventCursor;
    while (k < events.length && events[k] <= last.t) k++;
    this.eventCursor = k;
    return !(k < events.length && events[k] <= t);
  }

  jobEnvironment(): Record<string, string> {
    return {};
  }
}

/** The scenario's grid series as an intensity source (source "scenario"). */
export function scenarioIntensity(world: SimWorld): { at(time: Date): Promise<IntensityReading> } | undefined {
  if (!world.scenario.grid?.intensity) return undefined;
  return {
    at: async (time: Date) => ({
      intensityGramsPerKwh: world.intensityAt(world.secondsAt(time.getTime()))!,
      zone: world.scenario.grid?.zone ?? "scenario",
      source: "scenario",
    }),
  };
}
