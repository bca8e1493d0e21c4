import type { DeviceKind, Method, ProcessUsageMethod } from "./contracts.js";
import type { IntensityReading } from "./contracts.js";
import type { PhaseTotals, WorkCounters } from "./phases.js";
import type { ServingTotals } from "./serving.js";

/** Energy of one device over one interval, after counter wrap handling or power integration. */
export interface DeviceInterval {
  deviceId: string;
  kind: DeviceKind;
  source: string;
  model?: string;
  method: Method;
  /** Energy in the interval, joules (>= 0). */
  energyJoules: number;
  /** Idle baseline for the interval, joules: idleWatts × dt. */
  idleJoules: number;
  /** Where idleWatts came from: "scenario", "config", "model-default", "lowest-observed", "reported". */
  idleOrigin: string;
  durationMillis: number;
  /** Average power over the interval, watts. */
  powerWatts: number;
  processUsageMethod?: ProcessUsageMethod;
  /** The device this one is part of (a MIG instance's GPU): OTel hw.parent. */
  parentId?: string;
  /**
   * Fraction of the physical device this interval stands for (a MIG instance's share of its GPU's
   * energy, a sidecar's estimated share of a shared GPU); embodied emissions are scaled by it. Absent: 1.
   */
  deviceFraction?: number;
  /** Only an estimated share of a GPU shared with other pods (pod mode). */
  shared?: boolean;
  /** How a MIG instance's share of its GPU was found: by GPM activity, or by slices. */
  partitionMethod?: PartitionMethod;
}

/** How a MIG GPU's active energy is split among its instances: GPM per-instance SM activity, or slices. */
export type PartitionMethod = "activity" | "slices";

/** A party energy is attributed to: a job, or the `system` / `idle` buckets. */
export type ConsumerId = string;
export const SYSTEM = "system";
export const IDLE = "idle";

/** Per-consumer weights for one device in one interval. */
export interface ConsumerUsage {
  consumer: ConsumerId;
  /** Weight for the active part (CPU seconds, GPU utilisation share). */
  activeWeight: number;
  /** Weight for the idle part (CPU seconds, or 1 per resident job on a GPU). */
  idleWeight: number;
}

export type IdlePolicy = "attribute" | "separate";

/** Energy per kind, joules. */
export interface EnergyByKind {
  cpu: number;
  gpu: number;
  memory: number;
  total: number;
}

/** Cumulative totals of one job, as exporters and reports see them. */
export interface JobTotals {
  id: string;
  name: string;
  attributes: Record<string, string>;
  energyJoules: EnergyByKind;
  facilityEnergyJoules: number;
  emissionsGrams: number;
  embodiedEmissionsGrams: number;
  waterLiters: number;
  cost: number;
  /** Average power over the last interval, watts, by kind. */
  lastPowerWatts: EnergyByKind;
  /** Energy per training phase (marks), joules; prototype-free (keys are user text). */
  phaseEnergyJoules: Record<string, number>;
  /** Per-phase totals, once the job wrote a mark (the time before it is BEFORE_FIRST_MARK); they sum to the job. */
  phases?: PhaseTotals[];
  /** The job's cumulative work counters as last marked. */
  work?: WorkCounters;
  /** Energy per token and per request of an inference server (--work-from), per model. */
  serving?: ServingTotals;
  /** Per device, joules. */
  deviceEnergyJoules: Record<string, number>;
  /** When the job was registered (run: the spawn; agent: discovery), wall-clock epoch ms. */
  firstSeenMillis: number;
  lastSeenMillis: number;
  /**
   * How long the job was measured, monotonic ms: the ticks it was live in (registered, not
   * finished). Its phases' durations sum to it. Jobs only.
   */
  durationMillis?: number;
  /** When the job finished (agent lifecycle), wall-clock epoch ms; absent while it is live. */
  finishedMillis?: number;
  /** CPU seconds the job's processes used (jobs only; from /proc or the scenario). */
  cpuSeconds?: number;
}

/** Cumulative totals of one device. */
export interface DeviceTotals {
  id: string;
  kind: DeviceKind;
  model?: string;
  source: string;
  method: Method;
  energyJoules: number;
  lastPowerWatts: number;
  idleOrigin: string;
  /** How this GPU's energy was split between processes in most intervals. */
  processUsageMethod?: ProcessUsageMethod;
  /** Intervals per split method (a GPU can move between methods, e.g. no samples once its processes exit). */
  processUsageIntervals?: Partial<Record<ProcessUsageMethod, number>>;
  status: "ok" | "lost";
  notes: string[];
  /** The GPU a MIG instance belongs to (OTel hw.parent). */
  parent?: string;
  /** Pod mode: only the pod's estimated share of a GPU shared with other pods is counted (powerprint.gpu.shared). */
  shared?: boolean;
  /** MIG instance: how its share of the GPU was split ("slices" once any interval fell back to slices). */
  partitionMethod?: PartitionMethod;
}

/** Read-only view of the ledger at one time: what exporters and reports consume. */
export interface LedgerSnapshot {
  /** Wall-clock epoch ms of the latest sample. */
  timeMillis: number;
  /** Wall-clock epoch ms when the ledger was created. */
  startMillis: number;
  /** Monotonic ms from the first sample to the latest: the measured window (immune to wall-clock steps). */
  elapsedMillis?: number;
  jobs: JobTotals[];
  buckets: { system: JobTotals; idle: JobTotals };
  devices: DeviceTotals[];
  /** The intensity used for the most recent interval. */
  grid?: IntensityReading;
  pue: number;
}
