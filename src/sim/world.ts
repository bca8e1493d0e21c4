import type { Collector, DeviceReading, ProbeResult } from "../core/contracts.js";
import type { IntensityReading } from "../core/contracts.js";
import type { ProcessSample, ProcessSource } from "../core/contracts.js";
import type { Scenario, ScenarioDevice, ScenarioProcess } from "./scenario.js";
import { CompiledSeries, seriesAt } from "./series.js";
import { UsageSum, type Contribution } from "./usage-sum.js";

/** Virtual epoch of simulations: scenario second 0 is this instant (deterministic reports). */
export const SIM_EPOCH_MILLIS = Date.UTC(2026, 0, 1, 0, 0, 0);

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
  jobIndex: Int32Array;
  /** Resident memory series, bytes (undefined: holds none). */
  rss: (CompiledSeries | undefined)[];
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
  /** The PIDs of gpuParts, in order (read each tick). */
  private readonly gpuPids = new Map<string, Int32Array>();
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
    for (const [gpu, list] of this.gpuParts) {
      this.gpuSums.set(gpu, new UsageSum(list.map((x) => x.part), 1));
      this.gpuPids.set(gpu, Int32Array.from(list, (x) => x.pid));
    }
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
    const pids = this.gpuPids.get(device.id);
    const sum = this.gpuSums.get(device.id);
    if (!pids || !sum) return out;
    const { starts, ends } = sum;
    for (let k = 0; k < pids.length; k++) {
      const start = starts[k];
      const end = ends[k];
      if (dt > 0 ? Math.min(b, end) <= Math.max(a, start) : !(b >= start && b < end)) continue;
      // The same cumulative integrals the device's energy integral just used (cached in its sum).
      const share = dt > 0 ? sum.partIntegral(k, a, b) / dt : this.gpuParts.get(device.id)![k].part.series.at(b);
      out.push({ pid: pids[k], share });
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
   * Samples list no members; the sampler asks {@link SimProcessSource.jobOfPid} for the few PIDs a
   * GPU reports instead (a 10,000-process table is not copied into a Map every tick). The answer
   * is exactly what complete members would give: the job of a process alive at this sample or the
   * previous one. Only for a caller whose samples no one else reads (simulate): `run --sim` and the
   * agent merge the sample's members with real processes, so they keep complete members (the
   * default), and a scenario PID must never claim a real process there.
   */
  membersByLookup?: boolean;
}

/** The scenario's process table as a ProcessSource; time comes from the sampler's clock. */
export class SimProcessSource implements ProcessSource {
  /** Scenario seconds of the latest sample and the one before (membersByLookup). */
  private sampledAt: number | undefined;
  private sampledBefore: number | undefined;
  private rowOfPid: Map<number, number> | undefined;
  /** The job of a PID alive at this sample or the previous one (only with membersByLookup). */
  readonly jobOfPid?: (pid: number) => string | undefined;

  constructor(
    private readonly world: SimWorld,
    private readonly nowMillis: () => number,
    options: SimProcessSourceOptions = {},
  ) {
    if (options.membersByLookup) this.jobOfPid = (pid) => this.jobOfSampledPid(pid);
  }

  addJob(): void {
    // Scenario jobs are declared by the scenario itself.
  }

  sample(): ProcessSample {
    const t = this.world.secondsAt(this.nowMillis());
    const table = this.world.processTable();
    const jobs = this.world.jobs();
    const jobCpu = new Float64Array(jobs.length);
    const jobCount = new Uint32Array(jobs.length);
    const listMembers = this.jobOfPid === undefined;
    const members = new Map<number, string>();
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
        if (t >= start && t < table.ends[i]) {
          if (listMembers) members.set(table.pids[i], jobs[j]);
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
    const jobProcessCount = new Map<string, number>();
    for (let j = 0; j < jobs.length; j++) {
      jobCpuSeconds.set(jobs[j], jobCpu[j]);
      if (jobCount[j] > 0) jobProcessCount.set(jobs[j], jobCount[j]);
    }
    this.sampledBefore = this.sampledAt;
    this.sampledAt = t;
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

  private jobOfSampledPid(pid: number): string | undefined {
    const table = this.world.processTable();
    this.rowOfPid ??= new Map(table.pids.map((p, i) => [p, i]));
    const i = this.rowOfPid.get(pid);
    if (i === undefined || table.jobIndex[i] < 0) return undefined;
    const start = table.starts[i];
    const end = table.ends[i];
    const now = this.sampledAt;
    const before = this.sampledBefore;
    const alive = (now !== undefined && now >= start && now < end) || (before !== undefined && before >= start && before < end);
    return alive ? this.world.jobs()[table.jobIndex[i]] : undefined;
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
