import type { Collector, DeviceReading, ReadContext } from "./contracts.js";
import type { Logger } from "./contracts.js";
import type { IntensityReading } from "./contracts.js";
import type { ProcessSample, ProcessSource } from "./contracts.js";
import { attributeDevice, cpuUsages, gpuUsages, memoryUsages, parseVisibleDevices, type MemberLookup } from "./attribution.js";
import { EnergyIntegrator, type IdleConfig } from "./energy.js";
import { devicePieces, gpuProcesses, noteDevices, shareNotes } from "./gpu-split.js";
import type { Ledger } from "./ledger.js";
import type { IdlePolicy } from "./types.js";
import { errorMessage } from "../errors.js";
import { singleClock, type MonitorClock } from "./clock.js";
import { SYSTEM } from "./types.js";

/** Anything that gives the intensity valid at a time (the grid resolver, a scenario series). */
export interface IntensityAt {
  at(time: Date): Promise<IntensityReading>;
}

export interface SamplerOptions {
  collectors: readonly Collector[];
  processes: ProcessSource;
  intensity: IntensityAt;
  ledger: Ledger;
  /**
   * Intervals from `monotonicMillis`, timestamps from `wallMillis` (a wall-clock step must not
   * change energy). Injected: virtual in `simulate`, stepped in tests.
   */
  clock?: MonitorClock;
  /** One clock for both (older callers and virtual time); `clock` wins when both are given. */
  nowMillis?: () => number;
  idlePolicy: IdlePolicy;
  idle?: IdleConfig;
  log: Logger;
  /** Whether a PID exists in this PID namespace (for the device-assignment fallback). */
  isVisiblePid?: (pid: number) => boolean;
  /**
   * How long one collector's read() may take, ms (default 5 s; the Monitor passes
   * min(intervalMillis, 5 s)). A read past it is given up for the tick (counted as
   * `collector:<id>:timeout`, its devices labelled, warned once) and not started again while it
   * is still in flight: a hung device (a wedged driver call) never holds the tick or piles up.
   */
  collectorDeadlineMillis?: number;
}

/** An energy counter's value at a checkpoint, joules, with its wrap range when it has one. */
export interface SavedCounter {
  energyJoules: number;
  counterRangeJoules?: number;
}

/** Sampler.resumePoint(): accounting's position after the last sample. */
export interface ResumePoint {
  /** When that sample was taken (wall clock, epoch ms). */
  wallMillis: number;
  hostBusyCpuSeconds: number;
  hostTotalCpuSeconds: number;
  deviceCounters: Record<string, SavedCounter>;
}

/** Failed reads in a row after which a collector counts as failing (sourceStates, /healthz). */
export const FAILING_AFTER = 3;

/** The variables of a job's root that assign it devices (noteJobDevices asks the process source for them). */
export const DEVICE_ASSIGNMENT_VARIABLES: readonly string[] = ["CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"];

/** Device-assignment reads stuck at once beyond which new jobs' are not started (each holds a pool thread). */
const MAX_STUCK_DEVICE_NOTES = 2;

/** Default per-collector read deadline, ms. */
export const DEFAULT_COLLECTOR_DEADLINE_MILLIS = 5_000;

/** What one collector's read gave this tick. */
type CollectorOutcome =
  | { status: "ok"; readings: DeviceReading[] }
  | { status: "failed"; reason: unknown }
  /** Past the deadline now, or a read from an earlier tick is still in flight. */
  | { status: "timeout"; stillInFlight: boolean };

/** Counters about the sampler itself, reported in the summary and report. */
/** Process figures read at the accounting origin (Sampler.prime), overriding those read later. */
export interface OriginFigures {
  hostBusyCpuSeconds?: number;
  hostTotalCpuSeconds?: number;
  /** Each job's CPU seconds at the origin, in the source's own terms (run: 0, its figures count from the spawn). */
  jobCpuSeconds?: ReadonlyMap<string, number>;
  /** Every job of the sample at 0 at the origin (a resumed downtime: the source counts from the saved counters). */
  jobsFromZero?: boolean;
}

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
  private previous?: { sample: ProcessSample; monotonicMillis: number; wallMillis: number };
  private readonly clock: MonitorClock;
  /** Monotonic time of the first sample: the ledger's elapsed time is measured from it. */
  private firstMonotonicMillis?: number;
  /** Set by prime(): the devices' first interval reaches back to it. */
  private originMillis?: number;
  private devicesBaselined = false;
  private intervalsRecorded = false;
  private busy = false;
  private readonly jobDevices = new Map<string, string[]>();
  readonly stats: SamplerStats = { ticks: 0, skippedTicks: 0, collectorFailures: Object.create(null) as Record<string, number>, notes: [] };
  private readonly lostDevices = new Set<string>();
  /** Host CPU utilisation of the last interval in which /proc/stat moved. */
  private lastHostCpuUtilization?: number;

  /** The hardware sources read each tick (more may be added once probed: addCollectors). */
  private readonly collectors: Collector[];
  /** Reads that passed their deadline and have not settled yet, by collector (never restarted meanwhile). */
  private readonly hungReads = new Set<Collector>();
  /** Device-assignment reads started since the last tick's wait (noteJobDevices). */
  private freshDeviceNotes: Promise<void>[] = [];
  /** Device-assignment reads past their wait that have not returned (each holds a pool thread). */
  private readonly stuckDeviceNotes = new Set<Promise<void>>();
  /** The process source's prepare() in flight, if any (a stuck one is not started again until it settles). */
  private preparing: Promise<void> | undefined;
  /** Each counter device's last reading, and the resume point of the last tick recorded (resumePoint()). */
  private readonly lastCounters = new Map<string, SavedCounter>();
  private point: ResumePoint | undefined;
  /** A resumed downtime (resume()): the saved counters its first readings start from. */
  private gap: { counters: Map<string, SavedCounter>; maxWatts: number } | undefined;
  /** When each hung read started (monotonic ms), and each collector's run of failed reads. */
  private readonly hungSince = new Map<Collector, number>();
  private readonly failing = new Map<Collector, { count: number; reason: string }>();
  /** Devices each collector reported, to label them when its read times out. */
  private readonly devicesOf = new Map<Collector, Map<string, DeviceReading["kind"]>>();
  /** Device PIDs resolved through ProcessSource.jobOfPid last tick (kept one interval after they exit). */
  private resolvedPids = new Map<number, string>();

  constructor(private readonly o: SamplerOptions) {
    this.integrator = new EnergyIntegrator(o.idle);
    this.collectors = [...o.collectors];
    const clock = o.clock ?? (o.nowMillis ? singleClock(o.nowMillis) : undefined);
    if (!clock) throw new Error("Sampler: give a clock (or nowMillis)");
    this.clock = clock;
  }

  /** Collectors whose read is past its deadline and has not settled (not read again until it does). */
  get hungSources(): string[] {
    return [...this.hungReads].map((c) => c.id);
  }

  /**
   * Where accounting stands after the last sample, for a checkpoint: its wall time, the host's CPU
   * counters and each energy counter's last value (the agent counts its downtime from these after a
   * restart: resume()). undefined before the first sample.
   */
  resumePoint(): ResumePoint | undefined {
    return this.point;
  }

  /**
   * Accounting resumes at a checkpoint's resume point (the agent's downtime): the first interval
   * reaches back to `originMonotonicMillis` (when the point was taken), with the process figures
   * of `atOrigin` (prime()); counter devices whose counter was saved (`deviceCounters`) get the
   * downtime's energy from their own counter, unless it may have wrapped (more than `maxWatts`
   * over the gap could exceed its range) or went back (a reset); power and model devices count
   * from their first reading (their energy over the downtime is unknown). Call before the first tick.
   */
  resume(o: { originMonotonicMillis: number; atOrigin: OriginFigures; deviceCounters: Readonly<Record<string, SavedCounter>>; maxWatts: number }): void {
    this.prime(o.originMonotonicMillis, o.atOrigin);
    this.gap = { counters: new Map(Object.entries(o.deviceCounters)), maxWatts: o.maxWatts };
  }

  /** The origin of a device's first reading, and the reading to integrate (the saved counter of a resumed gap as its origin value). */
  private firstReading(r: DeviceReading, originMillis: number | undefined, monotonicMillis: number): { reading: DeviceReading; originMillis: number | undefined } {
    const gap = this.gap;
    if (!gap || originMillis === undefined) return { reading: r, originMillis };
    const saved = gap.counters.get(r.deviceId);
    if (r.energyJoules === undefined || saved === undefined) return { reading: r, originMillis: undefined };
    const gapSeconds = (monotonicMillis - originMillis) / 1000;
    const range = r.counterRangeJoules ?? saved.counterRangeJoules;
    const why =
      range !== undefined && gapSeconds * gap.maxWatts >= range
        ? `the agent was down ${Math.round(gapSeconds)} s: its counter may have wrapped (range ${Math.round(range)} J), the energy over the downtime is not counted`
        : range === undefined && r.energyJoules < saved.energyJoules
          ? `its counter went back while the agent was down (a reset): the energy over the downtime is not counted`
          : undefined;
    if (why) {
      this.o.ledger.markDevice(r.deviceId, r.kind, r.source, "ok", `${r.deviceId}: ${why}`, r.model, r.method);
      return { reading: r, originMillis: undefined };
    }
    return { reading: { ...r, originEnergyJoules: saved.energyJoules }, originMillis };
  }

  /** Whether at least one interval (two samples) has been recorded. */
  get hasInterval(): boolean {
    return this.intervalsRecorded;
  }

  /**
   * Takes the process-table baseline now (the command's spawn), before the devices are known:
   * accounting starts here. The first tick is then the first interval, reaching back to this
   * moment: its CPU seconds from this sample, each device's energy from its head interval
   * (EnergyIntegrator's origin), so both cover the same span and the run's first interval holds
   * the devices' power. Call once, before the first tick.
   * `originMonotonicMillis`: when accounting starts, if earlier than now (read just before the
   * spawn, so the window holds the whole life of the command). `atOrigin`: figures read at the
   * origin when the baseline is taken later (run sets its measurement up after the spawn): they
   * replace the host CPU counters and the named jobs' CPU seconds of the sample taken now.
   */
  prime(originMonotonicMillis?: number, atOrigin?: OriginFigures): void {
    if (this.previous) return;
    try {
      const sample = this.o.processes.sample();
      if (atOrigin?.hostBusyCpuSeconds !== undefined && atOrigin.hostTotalCpuSeconds !== undefined) {
        sample.hostBusyCpuSeconds = atOrigin.hostBusyCpuSeconds;
        sample.hostTotalCpuSeconds = atOrigin.hostTotalCpuSeconds;
      }
      if (atOrigin?.jobsFromZero) for (const job of sample.jobCpuSeconds.keys()) sample.jobCpuSeconds.set(job, 0);
      for (const [job, seconds] of atOrigin?.jobCpuSeconds ?? []) sample.jobCpuSeconds.set(job, seconds);
      const monotonicMillis = Math.min(originMonotonicMillis ?? Number.POSITIVE_INFINITY, this.clock.monotonicMillis());
      this.previous = { sample, monotonicMillis, wallMillis: this.clock.wallMillis() };
      this.originMillis = monotonicMillis;
      this.firstMonotonicMillis = monotonicMillis;
    } catch (err) {
      this.fail("procfs", err);
    }
  }

  /**
   * Adds hardware sources probed after the start (run probes while the command starts). Call
   * before the first tick: a device's first reading is its baseline.
   */
  addCollectors(collectors: readonly Collector[]): void {
    this.collectors.push(...collectors);
  }

  /** The hardware sources read each tick. */
  get activeCollectors(): readonly Collector[] {
    return this.collectors;
  }

  /**
   * Registers a job's device assignment (CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES of its
   * root). Where the source reads environments off the loop (jobEnvironmentAsync), the read is
   * started here and awaited, bounded, before the tick's attribution; one past that is left to
   * finish (its job gets its assignment then); with MAX_STUCK_DEVICE_NOTES of those, new jobs'
   * are not read (said).
   */
  noteJobDevices(jobId: string): void {
    const apply = (env: Record<string, string>): void => {
      const devices = parseVisibleDevices(env.CUDA_VISIBLE_DEVICES ?? env.NVIDIA_VISIBLE_DEVICES);
      if (devices.length > 0) this.jobDevices.set(jobId, devices);
    };
    const source = this.o.processes;
    if (!source.jobEnvironmentAsync) return apply(source.jobEnvironment(jobId, DEVICE_ASSIGNMENT_VARIABLES));
    if (this.stuckDeviceNotes.size >= MAX_STUCK_DEVICE_NOTES) {
      this.o.log.warnOnce(
        "sampler:device-notes",
        `${this.stuckDeviceNotes.size} reads of jobs' environments (CUDA_VISIBLE_DEVICES) have not returned (processes stuck in the kernel): new jobs get no device assignment until one does`,
      );
      return;
    }
    const note: Promise<void> = source
      .jobEnvironmentAsync(jobId, DEVICE_ASSIGNMENT_VARIABLES)
      .then(apply, (err: unknown) => this.fail("jobs:environment", err))
      .finally(() => this.stuckDeviceNotes.delete(note));
    this.freshDeviceNotes.push(note);
  }

  /** The device-assignment reads started since the last wait, bounded by the read deadline; those still out count as stuck. */
  private async settleDeviceNotes(): Promise<void> {
    if (this.freshDeviceNotes.length === 0) return;
    const fresh = this.freshDeviceNotes.splice(0);
    const settled = new Set<Promise<void>>();
    for (const n of fresh) void n.then(() => settled.add(n));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(fresh),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, this.o.collectorDeadlineMillis ?? DEFAULT_COLLECTOR_DEADLINE_MILLIS))),
    ]);
    clearTimeout(timer);
    for (const n of fresh) if (!settled.has(n)) this.stuckDeviceNotes.add(n);
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
    // Before the tick's clock is read: the sample then matches its time.
    await this.prepareProcesses();
    const monotonicMillis = this.clock.monotonicMillis();
    // Timestamps only: the ledger's times, the intensity's time and the simulated world's clock.
    const timeMillis = this.clock.wallMillis();
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

    const readings = await this.readCollectors({ timeMillis, hostCpuUtilization });

    this.stats.ticks++;
    // The devices' first readings. Primed (prime(): accounting starts at the spawn), this tick is
    // the run's first interval, spawn → now: each device's head interval (EnergyIntegrator.head())
    // against the spawn's process sample, so that interval carries the devices' power. Not
    // primed (the agent): their baselines only.
    const originMillis = this.devicesBaselined ? undefined : this.originMillis;
    if (!this.devicesBaselined) {
      this.devicesBaselined = true;
      this.firstMonotonicMillis ??= monotonicMillis;
      if (!prev) {
        for (const r of readings) this.integrator.interval(r, monotonicMillis);
        this.previous = { sample, monotonicMillis, wallMillis: timeMillis };
        this.o.ledger.endTick(timeMillis, monotonicMillis - this.firstMonotonicMillis);
        this.noteResumePoint(sample, timeMillis, readings);
        return;
      }
    }
    if (!prev) return;
    this.previous = { sample, monotonicMillis, wallMillis: timeMillis };
    // The device assignments of jobs that went live in this sample, before they are attributed.
    await this.settleDeviceNotes();

    const jobCpuDelta = new Map<string, number>();
    for (const [job, seconds] of sample.jobCpuSeconds) {
      jobCpuDelta.set(job, seconds - (prev.sample.jobCpuSeconds.get(job) ?? 0));
    }
    const cpu = cpuUsages(jobCpuDelta, hostBusyDelta);
    // A GPU reports the processes that used it during the interval: one that exited since the
    // previous tick is no longer in the table but still belongs to its job.
    // A lookup over both samples instead of a merged copy: copying every member each tick was a
    // sixth of a 10,000-process simulation's time, and only the GPUs' few PIDs are ever looked up.
    const members = new IntervalMembers(sample.members, prev.sample.members);
    members.resolved = this.resolveDevicePids(readings, members);
    // The interval's wall-clock midpoint, measured back from now on the monotonic clock: a wall
    // step between the two samples moves the timestamp, never the interval's length.
    const midpoint = new Date(timeMillis - (monotonicMillis - prev.monotonicMillis) / 2);
    let intensity: IntensityReading;
    try {
      intensity = await this.o.intensity.at(midpoint);
    } catch (err) {
      this.fail("intensity", err);
      intensity = { intensityGramsPerKwh: 0, zone: "unknown", source: "none" };
    }

    this.o.ledger.beginTick();
    // The system bucket's CPU: host busy CPU outside every job (never below 0: the final CPU
    // correction can raise a job above what /proc/stat showed in the same interval).
    let jobsCpu = 0;
    for (const v of jobCpuDelta.values()) if (v > 0) jobsCpu += v;
    this.o.ledger.recordCpuSeconds(jobCpuDelta, Math.max(0, hostBusyDelta - jobsCpu));
    for (const reading of readings) {
      if (reading.status === "lost") {
        if (!this.lostDevices.has(reading.deviceId)) {
          this.lostDevices.add(reading.deviceId);
          this.o.log.warn(`${reading.deviceId} (${reading.model ?? reading.kind}) is lost: ${reading.note ?? "no longer answering"}; the run goes on without it`);
        }
        this.o.ledger.markDevice(reading.deviceId, reading.kind, reading.source, "lost", reading.note ?? "device lost", reading.model, reading.method);
        this.integrator.interval(reading, monotonicMillis);
        continue;
      }
      const notesBefore = this.integrator.notes.length;
      const first = this.firstReading(reading, originMillis, monotonicMillis);
      const interval = this.integrator.interval(first.reading, monotonicMillis, first.originMillis);
      // A counter reset is said on the device itself too (the report's device notes), once.
      for (const note of this.integrator.notes.slice(notesBefore)) this.o.ledger.markDevice(reading.deviceId, reading.kind, reading.source, "ok", note);
      // What the head of the run lacks (a counter first read after the spawn): on the device in
      // the report, and in --verbose; not a warning (nothing is wrong, the span is known).
      for (const note of this.integrator.headNotes.splice(0)) {
        this.o.ledger.markDevice(reading.deviceId, reading.kind, reading.source, "ok", note, reading.model, reading.method);
        this.o.log.debug(note);
      }
      if (!interval) continue;
      // A GPU may stand for several devices (MIG instances) or for a share of one (pod mode on a
      // shared GPU): src/core/gpu-split.ts. Anything else is one piece.
      for (const piece of devicePieces(reading, interval)) {
        let usages;
        if (reading.kind === "gpu") {
          const g = gpuUsages(piece.usage, members, { isVisiblePid: this.o.isVisiblePid, jobDevices: this.jobDevices });
          usages = g.usages;
          if (g.method !== "none" && piece.interval.processUsageMethod !== "estimate") piece.interval.processUsageMethod = g.method;
        } else if (reading.kind === "memory" && sample.jobRssBytes && sample.hostTotalMemoryBytes !== undefined) {
          // Memory: the static part by resident memory, the active part by CPU seconds.
          usages = memoryUsages(cpu, { jobRssBytes: sample.jobRssBytes, hostUsedMemoryBytes: sample.hostUsedMemoryBytes, hostTotalMemoryBytes: sample.hostTotalMemoryBytes });
        } else {
          usages = cpu;
        }
        const shares = attributeDevice(piece.attributeJoules, piece.attributeIdleJoules, usages, this.o.idlePolicy);
        this.o.ledger.record(piece.interval, shares, intensity, timeMillis);
      }
      if (reading.note) for (const id of noteDevices(reading)) this.o.ledger.markDevice(id, reading.kind, reading.source, "ok", reading.note);
      for (const note of shareNotes(reading)) this.o.ledger.markDevice(note.deviceId, reading.kind, reading.source, "ok", note.text);
    }
    for (const note of this.integrator.notes.splice(0)) {
      this.o.log.warnOnce(`energy:${note}`, note);
      if (!this.stats.notes.includes(note)) this.stats.notes.push(note);
    }
    this.o.ledger.endTick(timeMillis, monotonicMillis - (this.firstMonotonicMillis ?? prev.monotonicMillis));
    this.intervalsRecorded = true;
    this.noteResumePoint(sample, timeMillis, readings);
  }

  /** The resume point of a tick whose figures are all in the ledger now (so a checkpoint and it agree). */
  private noteResumePoint(sample: ProcessSample, wallMillis: number, readings: readonly DeviceReading[]): void {
    for (const r of readings) {
      if (r.energyJoules !== undefined && r.status !== "lost") this.lastCounters.set(r.deviceId, { energyJoules: r.energyJoules, ...(r.counterRangeJoules !== undefined && { counterRangeJoules: r.counterRangeJoules }) });
    }
    this.point = { wallMillis, hostBusyCpuSeconds: sample.hostBusyCpuSeconds, hostTotalCpuSeconds: sample.hostTotalCpuSeconds, deviceCounters: Object.fromEntries(this.lastCounters) };
  }

  /**
   * Reads every collector in parallel, each bounded by the deadline; a failing or hung one gives
   * nothing this tick (counted, labelled, warned once) and the others' readings go on. Energy is
   * not lost by a skipped read: the device's next reading spans the gap (a counter exactly).
   */
  /**
   * The job of each device process `members` lacks, asked of the source (ProcessSource.jobOfPid:
   * a members-free source such as the node agent). A PID resolved last tick that is gone now
   * (exited between reads) keeps that job for this interval, as a listed member would.
   */
  private resolveDevicePids(readings: readonly DeviceReading[], members: MemberLookup): ReadonlyMap<number, string> | undefined {
    const jobOfPid = this.o.processes.jobOfPid?.bind(this.o.processes);
    if (!jobOfPid) return undefined;
    const resolved = new Map<number, string>();
    for (const r of readings) {
      for (const p of gpuProcesses(r)) {
        if (members.has(p.pid) || resolved.has(p.pid)) continue;
        let job: string | undefined;
        try {
          job = jobOfPid(p.pid) ?? this.resolvedPids.get(p.pid);
        } catch (err) {
          this.fail("jobs:jobOfPid", err);
          job = this.resolvedPids.get(p.pid);
        }
        if (job !== undefined) resolved.set(p.pid, job);
      }
    }
    this.resolvedPids = resolved;
    return resolved;
  }

  private async readCollectors(context: ReadContext): Promise<DeviceReading[]> {
    const collectors = this.collectors;
    const outcomes = await Promise.all(collectors.map((c) => this.readOne(c, context)));
    const readings: DeviceReading[] = [];
    outcomes.forEach((r, i) => {
      const c = collectors[i];
      this.noteOutcome(c, r);
      if (r.status === "ok") {
        let known = this.devicesOf.get(c);
        if (!known) this.devicesOf.set(c, (known = new Map()));
        for (const d of r.readings) known.set(d.deviceId, d.kind);
        readings.push(...r.readings);
      } else if (r.status === "failed") {
        this.fail(`collector:${c.id}`, r.reason);
      } else {
        this.timedOut(c, r.stillInFlight);
      }
    });
    return readings;
  }

  /** Keeps each collector's run of failed reads (and the last reason) for sourceStates(). */
  private noteOutcome(c: Collector, r: CollectorOutcome): void {
    if (r.status === "ok") this.failing.delete(c);
    else if (r.status === "failed") {
      const f = this.failing.get(c);
      this.failing.set(c, { count: (f?.count ?? 0) + 1, reason: errorMessage(r.reason) });
    }
  }

  /**
   * Each collector's state: "hung" while a read is past its deadline and unanswered (since when,
   * on the monotonic clock), "failing" after FAILING_AFTER failed reads in a row (with the last
   * reason), else "ok". What the agent's /healthz answers from.
   */
  sourceStates(): { id: string; state: "ok" | "failing" | "hung"; detail?: string; sinceMonotonicMillis?: number }[] {
    return this.collectors.map((c) => {
      const hungSince = this.hungSince.get(c);
      if (this.hungReads.has(c) && hungSince !== undefined) return { id: c.id, state: "hung" as const, sinceMonotonicMillis: hungSince };
      const f = this.failing.get(c);
      if (f && f.count >= FAILING_AFTER) return { id: c.id, state: "failing" as const, detail: `${f.count} reads in a row failed, the last: ${f.reason}` };
      return { id: c.id, state: "ok" as const };
    });
  }

  private async readOne(c: Collector, context: ReadContext): Promise<CollectorOutcome> {
    if (this.hungReads.has(c)) return { status: "timeout", stillInFlight: true };
    const started = this.clock.monotonicMillis();
    // A read() that throws synchronously is a failure like a rejection, not the tick's end.
    const read = new Promise<DeviceReading[]>((resolve) => resolve(c.read(context)));
    const outcome = await settleWithin(read, this.o.collectorDeadlineMillis ?? DEFAULT_COLLECTOR_DEADLINE_MILLIS);
    if (outcome.status === "timeout") {
      this.hungReads.add(c);
      this.hungSince.set(c, started);
      // Whatever it answers late belongs to no tick: dropped; the collector is read again next tick.
      const settled = () => {
        this.hungReads.delete(c);
        this.hungSince.delete(c);
      };
      void read.then(settled, settled);
    }
    return outcome;
  }

  /**
   * The process source's off-loop reads for this tick's sample (ProcessSource.prepare), bounded by
   * the read deadline: past it the sample goes on with what was read (counted as
   * `collector:procfs:timeout`, said once); a prepare still in flight is not started again.
   */
  private async prepareProcesses(): Promise<void> {
    const source = this.o.processes;
    if (!source.prepare || this.preparing) return;
    const p = new Promise<void>((resolve) => resolve(source.prepare!()));
    this.preparing = p;
    const settled = (): void => {
      if (this.preparing === p) this.preparing = undefined;
    };
    p.then(settled, (err: unknown) => {
      settled();
      this.fail("procfs:prepare", err);
    });
    const millis = this.o.collectorDeadlineMillis ?? DEFAULT_COLLECTOR_DEADLINE_MILLIS;
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      p.then(
        () => false,
        () => false,
      ),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), millis))),
    ]);
    clearTimeout(timer);
    if (!late) return;
    // Counted as the procfs source's timeout (powerprint.agent.source.failures{procfs, timeout}).
    const kind = "collector:procfs:timeout";
    this.stats.collectorFailures[kind] = (this.stats.collectorFailures[kind] ?? 0) + 1;
    this.o.log.warnOnce(`sampler:${kind}`, `process reads (command lines, environments) did not finish within ${millis / 1000} s: this sample goes on with what was read (counted)`);
  }

  private timedOut(c: Collector, stillInFlight: boolean): void {
    const kind = `collector:${c.id}:timeout`;
    const deadlineSeconds = (this.o.collectorDeadlineMillis ?? DEFAULT_COLLECTOR_DEADLINE_MILLIS) / 1000;
    this.stats.collectorFailures[kind] = (this.stats.collectorFailures[kind] ?? 0) + 1;
    this.o.log.warnOnce(
      `sampler:${kind}`,
      `${c.id}: read did not answer within ${deadlineSeconds} s; its devices are read again once it answers, the other sources go on (counted)`,
    );
    // Two fixed texts per collector at most (the ledger keeps each distinct note once).
    const note = `${c.id} read timed out (deadline ${deadlineSeconds} s; ${stillInFlight ? "still hung" : "given up"}): intervals span the gap, see sampler failures`;
    for (const [deviceId, kind] of this.devicesOf.get(c) ?? []) this.o.ledger.markDevice(deviceId, kind, c.id, "ok", note);
  }

  private fail(kind: string, err: unknown): void {
    this.stats.collectorFailures[kind] = (this.stats.collectorFailures[kind] ?? 0) + 1;
    this.o.log.warnOnce(`sampler:${kind}`, `${kind} failed: ${errorMessage(err)} (counted; sampling goes on)`);
  }
}

/**
 * The interval's members as GPUs match them: this sample's, then the previous sample's (a process
 * that exited since still belongs to its job), then the PIDs resolved through jobOfPid. Reads
 * both samples' maps without copying them (a sample's maps are never modified by the sampler).
 */
class IntervalMembers implements MemberLookup {
  resolved: ReadonlyMap<number, string> | undefined;

  constructor(
    private readonly now: ReadonlyMap<number, string>,
    private readonly before: ReadonlyMap<number, string>,
  ) {}

  get(pid: number): string | undefined {
    // A members-free source (jobOfPid) gives empty maps: skipped without hashing.
    return (this.now.size > 0 ? this.now.get(pid) : undefined) ?? (this.before.size > 0 ? this.before.get(pid) : undefined) ?? this.resolved?.get(pid);
  }

  has(pid: number): boolean {
    return this.get(pid) !== undefined;
  }
}

/** `p`'s outcome, or a timeout once `millis` pass (the timer is cleared as soon as `p` settles). */
async function settleWithin(p: Promise<DeviceReading[]>, millis: number): Promise<CollectorOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<CollectorOutcome>((resolve) => {
    timer = setTimeout(() => resolve({ status: "timeout", stillInFlight: false }), Math.max(0, millis));
  });
  try {
    return await Promise.race([
      p.then(
        (readings): CollectorOutcome => ({ status: "ok", readings }),
        (reason: unknown): CollectorOutcome => ({ status: "failed", reason }),
      ),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
