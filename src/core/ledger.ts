import type { DeviceKind, Method, ProcessUsageMethod } from "./contracts.js";
import type { IntensityReading } from "./contracts.js";
import type { ConsumerId, DeviceInterval, DeviceTotals, EnergyByKind, JobTotals, LedgerSnapshot } from "./types.js";
import { IDLE, SYSTEM } from "./types.js";
import { joulesOverMillisToWatts } from "../units.js";
import { JobPhases, type WorkCounters } from "./phases.js";
import { ServingAccount, type ServingIncrement } from "./serving.js";
import { costAmount, embodiedEmissionsGrams, facilityEnergyJoules, operationalEmissionsGrams, waterLiters } from "./footprint.js";

/** Embodied emissions of a device and its lifetime (SCI "M" inputs). */
export interface EmbodiedSpec {
  totalGrams: number;
  lifetimeMillis: number;
  source: string;
}

/** A ledger's checkpoint (agent --state-file): cumulative totals, JSON-safe. */
export interface LedgerState {
  startMillis: number;
  timeMillis: number;
  jobs: JobTotals[];
  buckets: { system: JobTotals; idle: JobTotals };
  devices: DeviceTotals[];
  /** Open phase per job. */
  phases: Record<string, string>;
  /** Finished jobs: id → finish time, epoch ms. */
  finished: Record<string, number>;
}

/** Constants the ledger multiplies by. All validated at the boundary (config). */
export interface LedgerOptions {
  /** Power usage effectiveness, >= 1. */
  pue: number;
  /** On-site water usage effectiveness, litres per IT kWh. */
  wueLitersPerKwh?: number;
  /** Off-site water of electricity generation, litres per facility kWh. */
  waterIntensityLitersPerKwh?: number;
  /** Price of a facility kWh in `currency`. */
  pricePerKwh?: number;
  /** Embodied emissions per device, or undefined when unknown. */
  embodiedFor?: (device: { id: string; kind: DeviceKind; model?: string }) => EmbodiedSpec | undefined;
  /**
   * Jobs known before they are seen (a scenario's `jobs`): their name and attributes (tags), used
   * when the job is registered (given attributes win) or first recorded.
   */
  knownJobs?: ReadonlyMap<string, KnownJob>;
  /**
   * Marks known in advance (a scenario's `marks`): each is put on its job's phase timeline once
   * the ledger's time reaches it (the job existing), exactly as a mark read from a marks file at
   * that time with that `timeMillis` would be.
   */
  scheduledMarks?: readonly ScheduledMark[];
}

/** A job known before it is seen (LedgerOptions.knownJobs). */
export interface KnownJob {
  name?: string;
  attributes: Record<string, string>;
}

/** A mark known in advance (LedgerOptions.scheduledMarks): cumulative counters, wall-clock epoch ms. */
export interface ScheduledMark extends WorkCounters {
  jobId: string;
  phase: string;
  atMillis: number;
}

const zeroByKind = (): EnergyByKind => ({ cpu: 0, gpu: 0, memory: 0, total: 0 });

/**
 * What record() touches per share, found with one lookup (it runs per job per device per tick: a
 * simulation's 1,000 jobs × 4 devices). Per-device joules are summed in an array by device slot
 * and written into totals.deviceEnergyJoules (a prototype-free dictionary, slow to update) when a
 * snapshot is taken: flushDevices().
 */
interface ConsumerState {
  totals: JobTotals;
  phases: JobPhases | undefined;
  /** This consumer's entry of Ledger.tickPower. */
  tick: EnergyByKind;
  /** Joules per device slot, the whole total (starting from the dictionary's value). */
  deviceJoules: number[];
  /** Slots set in deviceJoules, in the order first recorded (the dictionary's key order). */
  deviceSlots: number[];
  /** The job's serving account (--work-from), when it has one. */
  serving: ServingAccount | undefined;
}

/**
 * A prototype-free dictionary: keys are user text (phase names, device ids, tags), and a key such
 * as `constructor` or `__proto__` must be a plain entry, never Object.prototype's.
 */
export function dict<V>(from?: Readonly<Record<string, V>>): Record<string, V> {
  const d = Object.create(null) as Record<string, V>;
  if (from) for (const k of Object.keys(from)) d[k] = from[k];
  return d;
}

function newTotals(id: string, name: string, attributes: Record<string, string>, timeMillis: number): JobTotals {
  return {
    id,
    name,
    attributes: dict(attributes),
    energyJoules: zeroByKind(),
    facilityEnergyJoules: 0,
    emissionsGrams: 0,
    embodiedEmissionsGrams: 0,
    waterLiters: 0,
    cost: 0,
    lastPowerWatts: zeroByKind(),
    phaseEnergyJoules: dict(),
    deviceEnergyJoules: dict(),
    firstSeenMillis: timeMillis,
    lastSeenMillis: timeMillis,
    cpuSeconds: 0,
  };
}

/**
 * Accumulates attributed energy per job and bucket, and derives facility energy (× PUE),
 * operational emissions (× the intensity valid in each interval), water, embodied emissions and cost.
 * Every interval is multiplied by its own intensity: emissions are a sum over intervals, never an
 * average intensity × total energy.
 */
export class Ledger {
  private readonly totals = new Map<ConsumerId, JobTotals>();
  private readonly devices = new Map<string, DeviceTotals>();
  /** Open training phase per job (marks protocol). */
  private readonly phases = new Map<string, string>();
  /** Phase totals per job (jobs only; not the system/idle buckets). */
  private readonly jobPhases = new Map<string, JobPhases>();
  /** Embodied spec per device, looked up once (the lookup matches model names against a table). */
  private readonly embodied = new Map<string, EmbodiedSpec | undefined>();
  /** Average power per consumer over the intervals recorded in the current tick, watts by kind. */
  private readonly tickPower = new Map<ConsumerId, EnergyByKind>();
  /** Per consumer: see ConsumerState (rebuilt from the totals when they are replaced). */
  private readonly states = new Map<ConsumerId, ConsumerState>();
  /** Device id → slot in ConsumerState.deviceJoules, and back. */
  private readonly deviceSlotOf = new Map<string, number>();
  private readonly deviceIdOfSlot: string[] = [];
  private lastIntensity?: IntensityReading;
  private nowMillis: number;
  /** Finished jobs (agent lifecycle): id → finish time, epoch ms. */
  private readonly finished = new Map<string, number>();
  /** Monotonic milliseconds from the first sample to the latest (undefined before any tick). */
  private elapsedMillis?: number;
  /** Serving accounts of the jobs measured with --work-from (src/core/serving.ts). */
  private readonly serving = new Map<string, ServingAccount>();
  /** Wall-clock time of the latest endTick: where the next tick's window starts (marks without a time open there). */
  private lastTickMillis?: number;

  /** CPU seconds of this tick for jobs not held yet (claimed when the job is created this tick). */
  private readonly pendingCpuSeconds = new Map<ConsumerId, number>();
  /** Marks known in advance, not yet on a timeline (LedgerOptions.scheduledMarks), in time order. */
  private scheduled: ScheduledMark[];
  /** The earliest time at which applyScheduledMarks has something to do. */
  private nextScheduledMillis: number;

  constructor(
    private readonly options: LedgerOptions,
    private readonly startMillis: number,
  ) {
    this.nowMillis = startMillis;
    this.scheduled = [...(options.scheduledMarks ?? [])].sort((a, b) => a.atMillis - b.atMillis);
    this.nextScheduledMillis = Number.POSITIVE_INFINITY;
    this.totals.set(SYSTEM, newTotals(SYSTEM, SYSTEM, {}, startMillis));
    this.totals.set(IDLE, newTotals(IDLE, IDLE, {}, startMillis));
  }

  /** Declares a job so it appears (with zeros) before it has used anything. */
  registerJob(id: string, name: string, attributes: Record<string, string>, timeMillis: number): void {
    if (!this.totals.has(id)) {
      const known = this.options.knownJobs?.get(id);
      const named = known?.name !== undefined && name === id ? known.name : name;
      this.totals.set(id, newTotals(id, named, known ? { ...known.attributes, ...attributes } : attributes, timeMillis));
      this.jobPhases.set(id, new JobPhases());
      this.applyScheduledMarks(timeMillis, true);
    }
  }

  hasJob(id: string): boolean {
    return this.totals.has(id);
  }

  // ---- serving (--work-from): energy per unit of an inference server's work (src/core/serving.ts) ----

  /** Starts a job's serving account (its energy from the next interval on is joined with its work). */
  enableServing(id: string, source: string): void {
    if (id === SYSTEM || id === IDLE || this.serving.has(id)) return;
    const account = new ServingAccount(source);
    this.serving.set(id, account);
    const state = this.states.get(id);
    if (state) state.serving = account;
  }

  /** The tag of a scrape of the job's endpoint started now (ServingAccount.token); undefined without an account. */
  servingToken(id: string): number | undefined {
    return this.serving.get(id)?.token();
  }

  /** The work a scrape tagged `token` counted, per model (ServingAccount.addWork). */
  recordWork(id: string, token: number, engine: string, models: ReadonlyMap<string, ServingIncrement>, event?: "none" | "restart" | "inconsistent"): void {
    this.serving.get(id)?.addWork(token, engine, models, event);
  }

  /**
   * Opens a training phase for a job (marks protocol) at `atMillis` (wall-clock epoch ms: the
   * mark's own time, else when its line was first seen). Energy and time of intervals that span
   * the mark are split between the phases by time (src/core/phases.ts). Without `atMillis` the
   * phase opens where the next interval starts (the latest tick). `counters` are the cumulative
   * step/samples/tokens the mark carries: what they moved since the previous mark was done in the
   * phase open until this mark.
   */
  setPhase(jobId: string, phase: string, counters?: WorkCounters, atMillis?: number): void {
    this.phases.set(jobId, phase);
    this.phasesOf(jobId)?.mark(phase, counters, atMillis ?? this.lastTickMillis ?? this.startMillis);
  }

  /**
   * A job's phase totals. A job present in the totals without them (restored from a checkpoint,
   * whose totals carry `phases`) gets them rebuilt from those; entries of jobs no longer held are
   * dropped (a job forgotten after its retention).
   */
  private phasesOf(id: ConsumerId): JobPhases | undefined {
    let p = this.jobPhases.get(id);
    if (p) return p;
    const t = this.totals.get(id);
    if (!t || id === SYSTEM || id === IDLE) return undefined;
    if (this.jobPhases.size >= this.totals.size) for (const k of this.jobPhases.keys()) if (!this.totals.has(k)) this.jobPhases.delete(k);
    p = JobPhases.restore(t.phases, t.work, this.phases.get(id));
    this.jobPhases.set(id, p);
    return p;
  }

  /** Starts a tick: per-tick power gauges are computed over the intervals recorded until endTick. */
  beginTick(): void {
    // Zeroed in place: one object per consumer for the ledger's life, not per tick.
    for (const p of this.tickPower.values()) {
      p.cpu = 0;
      p.gpu = 0;
      p.memory = 0;
      p.total = 0;
    }
  }

  /**
   * Records one device interval and its attribution (joules per consumer, summing to the interval
   * energy) with the grid intensity valid for it.
   */
  record(interval: DeviceInterval, shares: ReadonlyMap<ConsumerId, number>, intensity: IntensityReading, timeMillis: number): void {
    this.nowMillis = Math.max(this.nowMillis, timeMillis);
    this.applyScheduledMarks(timeMillis);
    this.lastIntensity = intensity;
    const device = this.deviceTotals(interval);
    device.energyJoules += interval.energyJoules;
    device.lastPowerWatts = interval.powerWatts;
    device.method = weakerMethod(device.method, interval.method);
    device.idleOrigin = interval.idleOrigin;
    if (interval.shared) device.shared = true;
    // A MIG instance's split is labelled by the weaker method seen (slices once any interval used them).
    if (interval.partitionMethod && device.partitionMethod !== "slices") device.partitionMethod = interval.partitionMethod;
    if (interval.processUsageMethod) {
      const counts = (device.processUsageIntervals ??= {});
      counts[interval.processUsageMethod] = (counts[interval.processUsageMethod] ?? 0) + 1;
      // The method used most often names the device's split; the counts say the rest. An estimate
      // (a sidecar's share of a shared GPU) names it whenever there was one: its figures are estimates.
      device.processUsageMethod = counts.estimate ? "estimate" : (Object.entries(counts) as [ProcessUsageMethod, number][]).reduce((a, b) => (b[1] > a[1] ? b : a))[0];
    }

    const embodied = interval.energyJoules > 0 ? this.embodiedSpec(interval) : undefined;
    const pue = this.options.pue;
    const kind = interval.kind;
    const deviceId = interval.deviceId;
    const intensityGramsPerKwh = intensity.intensityGramsPerKwh;
    const wueLitersPerKwh = this.options.wueLitersPerKwh ?? 0;
    const waterIntensityLitersPerKwh = this.options.waterIntensityLitersPerKwh ?? 0;
    const pricePerKwh = this.options.pricePerKwh ?? 0;
    // Water and cost with zero constants add exactly 0: skipped (this loop runs per job per device per tick).
    const withWater = wueLitersPerKwh !== 0 || waterIntensityLitersPerKwh !== 0;
    const slot = this.deviceSlot(deviceId);
    // The interval on the wall clock, measured back from its end by its (monotonic) length: what
    // phase marks are placed against.
    const startMillis = timeMillis - interval.durationMillis;
    for (const [consumer, energyJoules] of shares) {
      const state = this.states.get(consumer) ?? this.newState(consumer, timeMillis);
      const t = state.totals;
      t.energyJoules[kind] += energyJoules;
      t.energyJoules.total += energyJoules;
      const facilityJoules = facilityEnergyJoules(energyJoules, pue);
      const emissionsGrams = operationalEmissionsGrams(facilityJoules, intensityGramsPerKwh);
      t.facilityEnergyJoules += facilityJoules;
      t.emissionsGrams += emissionsGrams;
      if (withWater) t.waterLiters += waterLiters(energyJoules, facilityJoules, wueLitersPerKwh, waterIntensityLitersPerKwh);
      if (pricePerKwh !== 0) t.cost += costAmount(facilityJoules, pricePerKwh);
      if (embodied) {
        t.embodiedEmissionsGrams += embodiedEmissionsGrams({
          totalEmbodiedGrams: embodied.totalGrams,
          lifetimeMillis: embodied.lifetimeMillis,
          heldMillis: interval.durationMillis,
          // A part of a device (MIG instance, a pod's share of a shared GPU) holds that fraction of it.
          share: (energyJoules / interval.energyJoules) * (interval.deviceFraction ?? 1),
        });
      }
      let deviceJoules = state.deviceJoules[slot];
      if (deviceJoules === undefined) {
        deviceJoules = t.deviceEnergyJoules[deviceId] ?? 0;
        state.deviceSlots.push(slot);
      }
      state.deviceJoules[slot] = deviceJoules + energyJoules;
      state.serving?.addEnergy(energyJoules, emissionsGrams);
      state.phases?.addEnergyOver(energyJoules, emissionsGrams, startMillis, timeMillis);
      t.lastSeenMillis = timeMillis;
      // Each device's share over that device's own interval: devices read at different times (a
      // collector that missed a tick spans two) each contribute their average power, not their
      // energy over the longest interval.
      const powerWatts = joulesOverMillisToWatts(energyJoules, interval.durationMillis);
      const tick = state.tick;
      tick[kind] += powerWatts;
      tick.total += powerWatts;
    }
  }

  /**
   * Ends a tick: sets each consumer's last-interval power (W): the sum over the devices recorded in
   * this tick of its share of each device's energy divided by that device's interval.
   * `elapsedMillis`: monotonic time since the first sample (the report's duration; a wall-clock
   * step moves timestamps, not it).
   */
  endTick(timeMillis: number, elapsedMillis?: number): void {
    this.nowMillis = Math.max(this.nowMillis, timeMillis);
    this.pendingCpuSeconds.clear();
    this.applyScheduledMarks(timeMillis);
    const windowStartMillis = this.lastTickMillis ?? timeMillis;
    this.lastTickMillis = timeMillis;
    if (elapsedMillis !== undefined) {
      const stepMillis = elapsedMillis - (this.elapsedMillis ?? 0);
      if (stepMillis > 0) this.addJobTime(stepMillis, windowStartMillis, timeMillis);
      this.elapsedMillis = Math.max(this.elapsedMillis ?? 0, elapsedMillis);
    }
    for (const account of this.serving.values()) account.closeInterval();
    for (const [id, t] of this.totals) {
      // Written in place: the totals' objects are the ledger's own (snapshots and restores copy).
      const p = this.tickPower.get(id);
      const last = t.lastPowerWatts;
      last.cpu = p ? p.cpu : 0;
      last.gpu = p ? p.gpu : 0;
      last.memory = p ? p.memory : 0;
      last.total = p ? p.total : 0;
    }
  }

  /**
   * A tick's monotonic step is the time of every job live in it (registered, not finished): its
   * duration, split among its phases by the marks' times within the tick's wall-clock window.
   */
  private addJobTime(stepMillis: number, windowStartMillis: number, windowEndMillis: number): void {
    for (const [id, t] of this.totals) {
      if (id === SYSTEM || id === IDLE || this.finished.has(id)) continue;
      t.durationMillis = (t.durationMillis ?? 0) + stepMillis;
      this.jobPhases.get(id)?.addTimeOver(stepMillis, windowStartMillis, windowEndMillis);
    }
  }

  /**
   * Adds CPU seconds used in the last interval, per job id (and `system`: host busy CPU outside
   * every job). `systemSeconds`, when given, is the system bucket's (it wins over a `system` entry
   * of `deltas`): the sampler passes its jobs' map as it is, without a copy to add the bucket to.
   */
  recordCpuSeconds(deltas: ReadonlyMap<string, number>, systemSeconds?: number): void {
    for (const [job, seconds] of deltas) {
      if (systemSeconds !== undefined && job === SYSTEM) continue;
      this.addCpuSeconds(job, seconds);
    }
    if (systemSeconds !== undefined) this.addCpuSeconds(SYSTEM, systemSeconds);
  }

  private addCpuSeconds(id: ConsumerId, seconds: number): void {
    if (!(seconds > 0)) return;
    const t = this.totals.get(id);
    if (t) t.cpuSeconds = (t.cpuSeconds ?? 0) + seconds;
    // A job first seen in this interval (a scenario's job under run --sim) is created by the
    // interval's energy, recorded after its CPU: its seconds wait for it until the tick ends.
    else this.pendingCpuSeconds.set(id, (this.pendingCpuSeconds.get(id) ?? 0) + seconds);
  }

  /** Marks a device lost (GPU fell off the bus); its totals so far stay. */
  markDevice(deviceId: string, kind: DeviceKind, source: string, status: "ok" | "lost", note?: string, model?: string, method: Method = "power"): void {
    let d = this.devices.get(deviceId);
    if (!d) {
      d = { id: deviceId, kind, model, source, method, energyJoules: 0, lastPowerWatts: 0, idleOrigin: "none", status, notes: [] };
      this.devices.set(deviceId, d);
    }
    d.status = status;
    if (status === "lost") d.lastPowerWatts = 0;
    if (note && !d.notes.includes(note)) d.notes.push(note);
  }

  snapshot(): LedgerSnapshot {
    this.flushDevices();
    const clone = (t: JobTotals): JobTotals => {
      const p = this.jobPhases.get(t.id);
      const phases = p?.marked ? p.totals() : undefined;
      const work = p?.marked ? p.counters() : undefined;
      const serving = this.serving.get(t.id);
      return {
        ...t,
        attributes: dict(t.attributes),
        energyJoules: { ...t.energyJoules },
        lastPowerWatts: { ...t.lastPowerWatts },
        phaseEnergyJoules: phases ? dict(Object.fromEntries(phases.map((x) => [x.name, x.energyJoules]))) : dict(),
        deviceEnergyJoules: dict(t.deviceEnergyJoules),
        ...(this.finished.has(t.id) ? { finishedMillis: this.finished.get(t.id) } : {}),
        ...(phases ? { phases } : {}),
        ...(work && Object.keys(work).length > 0 ? { work } : {}),
        ...(serving ? { serving: serving.totals() } : {}),
      };
    };
    const jobs: JobTotals[] = [];
    for (const [id, t] of this.totals) if (id !== SYSTEM && id !== IDLE) jobs.push(clone(t));
    return {
      timeMillis: this.nowMillis,
      startMillis: this.startMillis,
      ...(this.elapsedMillis !== undefined ? { elapsedMillis: this.elapsedMillis } : {}),
      jobs,
      buckets: { system: clone(this.totals.get(SYSTEM)!), idle: clone(this.totals.get(IDLE)!) },
      devices: [...this.devices.values()].map((d) => ({ ...d, notes: [...d.notes], ...(d.processUsageIntervals ? { processUsageIntervals: { ...d.processUsageIntervals } } : {}) })),
      grid: this.lastIntensity ? { ...this.lastIntensity } : undefined,
      pue: this.options.pue,
    };
  }

  // ---- lifecycle and state (agent): jobs that finish, are dropped, and survive restarts ----

  /** Marks a job finished at `timeMillis` (its totals stay until dropJob). No-op for unknown jobs and buckets. */
  finishJob(id: string, timeMillis: number): void {
    if (id === SYSTEM || id === IDLE || !this.totals.has(id)) return;
    if (!this.finished.has(id)) this.finished.set(id, timeMillis);
  }

  /**
   * Updates a job's name and adds attributes (a discovering source learnt more, e.g. pod metadata
   * arrived after the pod was first seen). Existing attributes not named stay.
   */
  updateJobIdentity(id: string, name: string, attributes: Record<string, string>): void {
    const t = this.totals.get(id);
    if (!t || id === SYSTEM || id === IDLE) return;
    t.name = name;
    t.attributes = { ...t.attributes, ...attributes };
  }

  /** A finished job that came back under the same identity: it is live again and its counters go on. */
  reviveJob(id: string): void {
    this.finished.delete(id);
  }

  /** When the job finished (epoch ms), or undefined while it is live. */
  finishedAt(id: string): number | undefined {
    return this.finished.get(id);
  }

  /** Forgets a job entirely (after its retention): its series end; the buckets cannot be dropped. */
  dropJob(id: string): boolean {
    if (id === SYSTEM || id === IDLE) return false;
    this.finished.delete(id);
    this.phases.delete(id);
    this.tickPower.delete(id);
    this.states.delete(id);
    this.serving.delete(id);
    return this.totals.delete(id);
  }

  /** Number of jobs held (live and finished, buckets excluded): bounded by the agent's retention. */
  get jobCount(): number {
    return this.totals.size - 2;
  }

  /** Everything needed to continue counting after a restart (JSON-safe copies). */
  serialize(): LedgerState {
    const snap = this.snapshot();
    return {
      startMillis: this.startMillis,
      timeMillis: snap.timeMillis,
      jobs: snap.jobs,
      buckets: snap.buckets,
      devices: snap.devices,
      phases: Object.fromEntries(this.phases),
      finished: Object.fromEntries(this.finished),
    };
  }

  /**
   * Continues from a checkpoint: every job, bucket and device total of `state` replaces this
   * ledger's (a restored ledger is fresh, so nothing is counted twice). Restored jobs get
   * `restoredAttributes` (e.g. powerprint.restored=true: what happened since the checkpoint was lost).
   */
  restore(state: LedgerState, restoredAttributes: Record<string, string> = {}): void {
    // Totals kept (jobs the checkpoint lacks) get their per-device sums; all states are rebuilt.
    this.flushDevices();
    this.states.clear();
    const copy = (t: JobTotals): JobTotals => structuredClone(t);
    for (const job of state.jobs) {
      if (job.serving) this.serving.set(job.id, ServingAccount.restore(job.serving));
      const t = copy(job);
      t.attributes = { ...t.attributes, ...restoredAttributes };
      // A checkpoint written before jobs carried their duration: the wall-clock span seen.
      t.durationMillis ??= Math.max(0, t.lastSeenMillis - t.firstSeenMillis);
      delete t.finishedMillis;
      this.totals.set(t.id, t);
    }
    this.totals.set(SYSTEM, copy(state.buckets.system));
    this.totals.set(IDLE, copy(state.buckets.idle));
    for (const d of state.devices) this.devices.set(d.id, structuredClone(d));
    for (const [job, phase] of Object.entries(state.phases)) this.phases.set(job, phase);
    for (const [job, at] of Object.entries(state.finished)) if (this.totals.has(job)) this.finished.set(job, at);
    // Phase totals rebuilt now, so a restored job that records nothing more still shows them.
    for (const job of state.jobs) if (job.phases) this.phasesOf(job.id);
  }

  private newState(consumer: ConsumerId, timeMillis: number): ConsumerState {
    const totals = this.totals.get(consumer) ?? this.createImplicit(consumer, timeMillis);
    let tick = this.tickPower.get(consumer);
    if (!tick) this.tickPower.set(consumer, (tick = zeroByKind()));
    const state: ConsumerState = { totals, phases: this.phasesOf(consumer), tick, deviceJoules: [], deviceSlots: [], serving: this.serving.get(consumer) };
    this.states.set(consumer, state);
    return state;
  }

  private deviceSlot(deviceId: string): number {
    let slot = this.deviceSlotOf.get(deviceId);
    if (slot === undefined) {
      slot = this.deviceIdOfSlot.length;
      this.deviceSlotOf.set(deviceId, slot);
      this.deviceIdOfSlot.push(deviceId);
    }
    return slot;
  }

  /** Writes the per-device sums into each consumer's deviceEnergyJoules (keys in first-recorded order). */
  private flushDevices(): void {
    for (const state of this.states.values()) {
      const d = state.totals.deviceEnergyJoules;
      for (const slot of state.deviceSlots) d[this.deviceIdOfSlot[slot]] = state.deviceJoules[slot];
    }
  }

  private embodiedSpec(interval: DeviceInterval): EmbodiedSpec | undefined {
    if (!this.embodied.has(interval.deviceId)) {
      this.embodied.set(interval.deviceId, this.options.embodiedFor?.({ id: interval.deviceId, kind: interval.kind, model: interval.model }));
    }
    return this.embodied.get(interval.deviceId);
  }

  private createImplicit(consumer: ConsumerId, timeMillis: number): JobTotals {
    const known = this.options.knownJobs?.get(consumer);
    const t = newTotals(consumer, known?.name ?? consumer, known?.attributes ?? {}, timeMillis);
    const cpu = this.pendingCpuSeconds.get(consumer);
    if (cpu !== undefined) {
      t.cpuSeconds = cpu;
      this.pendingCpuSeconds.delete(consumer);
    }
    this.totals.set(consumer, t);
    this.jobPhases.set(consumer, new JobPhases());
    // Its marks already due go on its timeline before its first interval is recorded.
    this.applyScheduledMarks(timeMillis, true);
    return t;
  }

  /**
   * Puts the scheduled marks due by `timeMillis` (those of jobs the ledger holds) on their jobs'
   * timelines, in time order; a job not held yet keeps its marks until it is.
   */
  private applyScheduledMarks(timeMillis: number, jobAppeared = false): void {
    if (this.scheduled.length === 0 || (!jobAppeared && this.nextScheduledMillis > timeMillis)) return;
    // The next due time counts held jobs' marks only: a job's marks are looked at again when it appears.
    let next = Number.POSITIVE_INFINITY;
    const kept: ScheduledMark[] = [];
    for (const m of this.scheduled) {
      const held = this.totals.has(m.jobId);
      if (held && m.atMillis <= timeMillis) this.setPhase(m.jobId, m.phase, m, m.atMillis);
      else {
        kept.push(m);
        if (held) next = Math.min(next, m.atMillis);
      }
    }
    this.scheduled = kept;
    this.nextScheduledMillis = next;
  }

  private deviceTotals(interval: DeviceInterval): DeviceTotals {
    let d = this.devices.get(interval.deviceId);
    if (!d) {
      d = {
        id: interval.deviceId,
        kind: interval.kind,
        model: interval.model,
        source: interval.source,
        method: interval.method,
        energyJoules: 0,
        lastPowerWatts: 0,
        idleOrigin: interval.idleOrigin,
        status: "ok",
        notes: [],
        ...(interval.parentId !== undefined ? { parent: interval.parentId } : {}),
      };
      this.devices.set(interval.deviceId, d);
    }
    return d;
  }
}

const METHOD_RANK: Record<Method, number> = { counter: 0, power: 1, model: 2 };
/** A device that was read by counter most of the time but by power once is reported as the weaker method. */
function weakerMethod(a: Method, b: Method): Method {
  return METHOD_RANK[a] >= METHOD_RANK[b] ? a : b;
}
