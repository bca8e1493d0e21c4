import type { Collector, DeviceReading } from "./contracts.js";
import type { Logger } from "./contracts.js";
import type { IntensityReading } from "../grid/types.js";
import type { ProcessSample, ProcessSource } from "./contracts.js";
import { attributeDevice, cpuUsages, gpuUsages, memoryUsages, parseVisibleDevices } from "./attribution.js";
import { EnergyIntegrator, type IdleConfig } from "./energy.js";
import type { Ledger } from "./ledger.js";
import type { IdlePolicy } from "./types.js";
import { errorMessage } from "../errors.js";

/** Anything that gives the intensity valid at a time (the grid resolver, a scenario series). */
export interface IntensityAt {
  at(time: Date): Promise<IntensityReading>;
}

export interface SamplerOptions {
  collectors: readonly Collector[];
  processes: ProcessSource;
  intensity: IntensityAt;
  ledger: Ledger;
  /** Epoch milliseconds; injected (virtual in `simulate`). */
  nowMillis: () => number;
  idlePolicy: IdlePolicy;
  idle?: IdleConfig;
  log: Logger;
  /** Whether a PID exists in this PID namespace (for the device-assignment fallback). */
  isVisiblePid?: (pid: number) => boolean;
}

/** Counters about the sampler itself, reported in the summary and report. */
export interface SamplerStats {
  ticks: number;
  skippedTicks: number;
  collectorFailures: Record<string, number>;
  notes: string[];
}

/**
 * One tick: read the process table and every collector, turn readings into device intervals,
 * attribute each device's energy to jobs / system / idle, and record it in the ledger with the
 * intensity valid at the interval's midpoint. Never throws: a failing source is counted, warned
 * about once, and the tick goes on without it. A tick that starts while the previous one is still
 * running is skipped, not stacked.
 */
export class Sampler {
  private readonly integrator: EnergyIntegrator;
  private previous?: { sample: ProcessSample; timeMillis: number };
  private busy = false;
  private readonly jobDevices = new Map<string, string[]>();
  readonly stats: SamplerStats = { ticks: 0, skippedTicks: 0, collectorFailures: {}, notes: [] };
  private readonly lostDevices = new Set<string>();
  /** Host CPU utilisation of the last interval in which /proc/stat moved. */
  private lastHostCpuUtilization?: number;

  constructor(private readonly o: SamplerOptions) {
    this.integrator = new EnergyIntegrator(o.idle);
  }

  /** Registers a job's device assignment (CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES of its root). */
  noteJobDevices(jobId: string): void {
    const env = this.o.processes.jobEnvironment(jobId, ["CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"]);
    const devices = parseVisibleDevices(env.CUDA_VISIBLE_DEVICES ?? env.NVIDIA_VISIBLE_DEVICES);
    if (devices.length > 0) this.jobDevices.set(jobId, devices);
  }

  async tick(): Promise<void> {
    if (this.busy) {
      this.stats.skippedTicks++;
      return;
    }
    this.busy = true;
    try {
      await this.tickInner();
    } catch (err) {
      // The loop never throws: a bug here must not take the wrapped job down.
      this.fail("sampler", err);
    } finally {
      this.busy = false;
    }
  }

  private async tickInner(): Promise<void> {
    const timeMillis = this.o.nowMillis();
    let sample: ProcessSample;
    try {
      sample = this.o.processes.sample();
    } catch (err) {
      this.fail("procfs", err);
      return;
    }
    const prev = this.previous;
    const hostBusyDelta = prev ? sample.hostBusyCpuSeconds - prev.sample.hostBusyCpuSeconds : 0;
    const hostTotalDelta = prev ? sample.hostTotalCpuSeconds - prev.sample.hostTotalCpuSeconds : 0;
    // /proc/stat counts in clock ticks (10 ms): two samples closer than that (a short --interval, the
    // final sample right after a periodic one) see no change. The host was not idle then: keep the
    // last utilisation measured rather than leaving the CPU model to assume one.
    if (hostTotalDelta > 0) this.lastHostCpuUtilization = Math.min(1, Math.max(0, hostBusyDelta / hostTotalDelta));
    const hostCpuUtilization = this.lastHostCpuUtilization;

    const settled = await Promise.allSettled(this.o.collectors.map((c) => c.read({ timeMillis, hostCpuUtilization })));
    const readings: DeviceReading[] = [];
    settled.forEach((r, i) => {
      if (r.status === "fulfilled") readings.push(...r.value);
      else this.fail(`collector:${this.o.collectors[i].id}`, r.reason);
    });

    this.stats.ticks++;
    this.previous = { sample, timeMillis };
    if (!prev) {
      // First tick: baselines only.
      for (const r of readings) this.integrator.interval(r, timeMillis);
      return;
    }

    const jobCpuDelta = new Map<string, number>();
    for (const [job, seconds] of sample.jobCpuSeconds) {
      jobCpuDelta.set(job, seconds - (prev.sample.jobCpuSeconds.get(job) ?? 0));
    }
    const cpu = cpuUsages(jobCpuDelta, hostBusyDelta);
    // A GPU reports the processes that used it during the interval: one that exited since the
    // previous tick is no longer in the table but still belongs to its job.
    const members = new Map(prev.sample.members);
    for (const [pid, job] of sample.members) members.set(pid, job);
    const midpoint = new Date((prev.timeMillis + timeMillis) / 2);
    let intensity: IntensityReading;
    try {
      intensity = await this.o.intensity.at(midpoint);
    } catch (err) {
      this.fail("intensity", err);
      intensity = { intensityGramsPerKwh: 0, zone: "unknown", source: "none" };
    }

    this.o.ledger.beginTick();
    this.o.ledger.recordCpuSeconds(jobCpuDelta);
    for (const reading of readings) {
      if (reading.status === "lost") {
        if (!this.lostDevices.has(reading.deviceId)) {
          this.lostDevices.add(reading.deviceId);
          this.o.log.warn(`${reading.deviceId} (${reading.model ?? reading.kind}) is lost: ${reading.note ?? "no longer answering"}; the run goes on without it`);
        }
        this.o.ledger.markDevice(reading.deviceId, reading.kind, reading.source, "lost", reading.note ?? "device lost", reading.model, reading.method);
        this.integrator.interval(reading, timeMillis);
        continue;
      }
      const interval = this.integrator.interval(reading, timeMillis);
      if (!interval) continue;
      let usages;
      if (reading.kind === "gpu") {
        const g = gpuUsages(reading, members, { isVisiblePid: this.o.isVisiblePid, jobDevices: this.jobDevices });
        usages = g.usages;
        if (g.method !== "none") interval.processUsageMethod = g.method;
      } else if (reading.kind === "memory" && sample.jobRssBytes && sample.hostTotalMemoryBytes !== undefined) {
        // Memory: the static part by resident memory, the active part by CPU seconds.
        usages = memoryUsages(cpu, { jobRssBytes: sample.jobRssBytes, hostUsedMemoryBytes: sample.hostUsedMemoryBytes, hostTotalMemoryBytes: sample.hostTotalMemoryBytes });
      } else {
        usages = cpu;
      }
      const shares = attributeDevice(interval.energyJoules, interval.idleJoules, usages, this.o.idlePolicy);
      this.o.ledger.record(interval, shares, intensity, timeMillis);
      if (reading.note) this.o.ledger.markDevice(reading.deviceId, reading.kind, reading.source, "ok", reading.note);
    }
    for (const note of this.integrator.notes.splice(0)) {
      this.o.log.warnOnce(`energy:${note}`, note);
      if (!this.stats.notes.includes(note)) this.stats.notes.push(note);
    }
    this.o.ledger.endTick(timeMillis);
  }

  private fail(kind: string, err: unknown): void {
    this.stats.collectorFailures[kind] = (this.stats.collectorFailures[kind] ?? 0) + 1;
    this.o.log.warnOnce(`sampler:${kind}`, `${kind} failed: ${errorMessage(err)} (counted; sampling goes on)`);
  }
}
