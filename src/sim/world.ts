import type { Collector, DeviceReading, ProbeResult } from "../core/contracts.js";
import type { IntensityReading } from "../grid/types.js";
import type { ProcessSample, ProcessSource } from "../core/contracts.js";
import type { Scenario, ScenarioDevice, ScenarioProcess } from "./scenario.js";
import { breakpointsWithin, seriesAt, seriesIntegral, type Series } from "./series.js";

/** Virtual epoch of simulations: scenario second 0 is this instant (deterministic reports). */
export const SIM_EPOCH_MILLIS = Date.UTC(2026, 0, 1, 0, 0, 0);

/**
 * The simulated host of a scenario: devices whose power follows the scenario's processes, and a
 * process table. Time is given in scenario seconds; `secondsAt(epochMillis)` converts sampler time.
 * Power model (DESIGN.md): P = idleWatts + (maxWatts − idleWatts) × min(1, utilisation).
 */
export class SimWorld {
  readonly totalCores: number;
  private readonly jobOf = new Map<number, string>();

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
  }

  secondsAt(epochMillis: number): number {
    return (epochMillis - this.epochMillis) / 1000;
  }

  /** Job ids declared by the scenario, in order of appearance. */
  jobs(): string[] {
    return [...new Set(this.scenario.processes.filter((p) => p.job).map((p) => p.job!))];
  }

  jobOfPid(pid: number): string | undefined {
    return this.jobOf.get(pid);
  }

  alive(p: ScenarioProcess, t: number): boolean {
    return t >= p.startSeconds && (p.endSeconds === undefined || t < p.endSeconds);
  }

  /** CPU seconds a process burned in [0, t]. */
  processCpuSeconds(p: ScenarioProcess, t: number): number {
    if (!p.cpu) return 0;
    const end = Math.min(t, p.endSeconds ?? Infinity);
    return seriesIntegral(p.cpu, p.startSeconds, end);
  }

  /** Busy cores of all processes at t. */
  busyCores(t: number): number {
    let b = 0;
    for (const p of this.scenario.processes) if (p.cpu && this.alive(p, t)) b += seriesAt(p.cpu, t);
    return b;
  }

  utilization(device: ScenarioDevice, t: number): number {
    if (device.kind === "gpu") {
      let u = 0;
      for (const p of this.scenario.processes) {
        const s = p.gpu?.[device.id];
        if (s && this.alive(p, t)) u += seriesAt(s, t);
      }
      return u;
    }
    return this.totalCores > 0 ? this.busyCores(t) / this.totalCores : 0;
  }

  powerWatts(device: ScenarioDevice, t: number): number {
    return device.idleWatts + (device.maxWatts - device.idleWatts) * Math.min(1, this.utilization(device, t));
  }

  /** Times in (a, b) where a device's utilisation changes slope: series breakpoints and process starts/ends. */
  private breakpoints(device: ScenarioDevice, a: number, b: number): number[] {
    const set = new Set<number>();
    for (const p of this.scenario.processes) {
      const series: Series | undefined = device.kind === "gpu" ? p.gpu?.[device.id] : p.cpu;
      if (!series) continue;
      for (const t of breakpointsWithin(series, a, b)) set.add(t);
      if (p.startSeconds > a && p.startSeconds < b) set.add(p.startSeconds);
      if (p.endSeconds !== undefined && p.endSeconds > a && p.endSeconds < b) set.add(p.endSeconds);
    }
    return [...set].sort((x, y) => x - y);
  }

  /**
   * Exact energy of a device over [a, b], joules: utilisation is linear between breakpoints,
   * so power is linear too except where utilisation crosses 1 (split there).
   */
  energyJoules(device: ScenarioDevice, a: number, b: number): number {
    if (b <= a) return 0;
    const pts = [a, ...this.breakpoints(device, a, b), b];
    let total = 0;
    const range = device.maxWatts - device.idleWatts;
    for (let i = 1; i < pts.length; i++) {
      const t0 = pts[i - 1];
      const t1 = pts[i];
      // Evaluate just inside the segment: a process starting or ending at a breakpoint jumps there.
      const eps = (t1 - t0) * 1e-9;
      const u0 = this.utilization(device, t0 + eps);
      const u1 = this.utilization(device, t1 - eps);
      const p = (u: number) => device.idleWatts + range * Math.min(1, u);
      if ((u0 - 1) * (u1 - 1) < 0) {
        const tc = t0 + ((1 - u0) / (u1 - u0)) * (t1 - t0);
        total += ((p(u0) + p(1)) / 2) * (tc - t0) + ((p(1) + p(u1)) / 2) * (t1 - tc);
      } else {
        total += ((p(u0) + p(u1)) / 2) * (t1 - t0);
      }
    }
    return total;
  }

  /** Average utilisation share of each resident process on a GPU over [a, b]. */
  gpuShares(device: ScenarioDevice, a: number, b: number): { pid: number; share: number }[] {
    const out: { pid: number; share: number }[] = [];
    const dt = b - a;
    for (const p of this.scenario.processes) {
      const s = p.gpu?.[device.id];
      if (!s) continue;
      const from = Math.max(a, p.startSeconds);
      const to = Math.min(b, p.endSeconds ?? Infinity);
      if (dt > 0 ? to <= from : !this.alive(p, b)) continue;
      const share = dt > 0 ? seriesIntegral(s, from, to) / dt : seriesAt(s, b);
      out.push({ pid: p.pid, share });
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
        const shares = this.world.gpuShares(d, from, t);
        reading.processes = shares.map((s) => ({ pid: s.pid, share: s.share }));
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

/** The scenario's process table as a ProcessSource; time comes from the sampler's clock. */
export class SimProcessSource implements ProcessSource {
  constructor(
    private readonly world: SimWorld,
    private readonly nowMillis: () => number,
  ) {}

  addJob(): void {
    // Scenario jobs are declared by the scenario itself.
  }

  sample(): ProcessSample {
    const t = this.world.secondsAt(this.nowMillis());
    const jobCpuSeconds = new Map<string, number>();
    const members = new Map<number, string>();
    const jobProcessCount = new Map<string, number>();
    let busy = 0;
    for (const job of this.world.jobs()) jobCpuSeconds.set(job, 0);
    for (const p of this.world.scenario.processes) {
      const cpu = this.world.processCpuSeconds(p, t);
      busy += cpu;
      const job = this.world.jobOfPid(p.pid);
      if (job) {
        jobCpuSeconds.set(job, (jobCpuSeconds.get(job) ?? 0) + cpu);
        if (this.world.alive(p, t)) {
          members.set(p.pid, job);
          jobProcessCount.set(job, (jobProcessCount.get(job) ?? 0) + 1);
        }
      }
    }
    return {
      jobCpuSeconds,
      hostBusyCpuSeconds: busy,
      hostTotalCpuSeconds: Math.max(1, this.world.totalCores) * Math.max(0, t),
      members,
      jobProcessCount,
    };
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
