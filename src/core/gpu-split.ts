/**
 * The devices one GPU reading stands for, each with its share of the reading's interval energy:
 *  - a plain GPU: itself;
 *  - a GPU shared with other pods, seen by a sidecar (DeviceReading.estimatedShare): only the pod's
 *    estimated fraction of it (energy, idle baseline and power scaled alike), labelled shared;
 *  - a GPU partitioned into MIG instances (DeviceReading.mig): each instance is a device of its own
 *    (hw.parent = the GPU) with its share of the GPU's energy, and the GPU keeps what no instance
 *    holds (its unallocated slices' idle part). The idle part is split by slices; the active part by
 *    each instance's GPM SM activity × its SMs where every instance has it, else by slices.
 * Conservation: the pieces' attributed energies sum to the interval's energy (the observer's share
 * of it for an estimate), exactly up to one floating-point rounding folded into the largest piece.
 * Pure: joules in, joules out.
 */
import type { DeviceReading, MigInstance, MigPartition, ProcessUsage, ShareEstimate } from "./contracts.js";
import type { DeviceInterval, PartitionMethod } from "./types.js";

/** What GPU attribution matches a piece's processes from (gpuUsages). */
export type GpuUsageView = Pick<DeviceReading, "processes" | "processUsageMethod" | "index" | "uuid" | "utilization">;

/** One device's part of a reading's interval. */
export interface DevicePiece {
  /** What the ledger records as the device's energy (a MIG GPU: its whole energy). */
  interval: DeviceInterval;
  /** Energy attributed to this device's own processes, joules (a MIG GPU: what no instance took). */
  attributeJoules: number;
  /** The idle baseline of attributeJoules, joules. */
  attributeIdleJoules: number;
  /** The processes attributeJoules is split over. */
  usage: GpuUsageView;
}

/** The pieces of one reading's interval (see the file comment). Non-GPU readings are one piece, unchanged. */
export function devicePieces(reading: DeviceReading, interval: DeviceInterval): DevicePiece[] {
  if (reading.kind === "gpu" && reading.mig && reading.mig.instances.length > 0) return migPieces(reading, interval, reading.mig);
  const whole = reading.kind === "gpu" && reading.estimatedShare ? scaleInterval(interval, reading.estimatedShare) : interval;
  return [{ interval: whole, attributeJoules: whole.energyJoules, attributeIdleJoules: whole.idleJoules, usage: reading }];
}

/** Every process a GPU reading names, its MIG instances' included (the PIDs a job source must resolve). */
export function* gpuProcesses(reading: DeviceReading): Generator<ProcessUsage> {
  if (reading.processes) yield* reading.processes;
  if (reading.mig) for (const i of reading.mig.instances) yield* i.processes;
}

/**
 * An observer's share of an interval: energy, idle baseline and power × fraction; labelled shared
 * and "estimate", its embodied emissions scaled alike (deviceFraction).
 */
export function scaleInterval(interval: DeviceInterval, share: ShareEstimate): DeviceInterval {
  const f = Math.min(1, Math.max(0, share.fraction));
  return {
    ...interval,
    energyJoules: interval.energyJoules * f,
    idleJoules: interval.idleJoules * f,
    powerWatts: interval.powerWatts * f,
    deviceFraction: (interval.deviceFraction ?? 1) * f,
    shared: true,
    processUsageMethod: "estimate",
  };
}

/** A MIG GPU's interval split among its instances (joules per instance, and the GPU's remainder). */
export interface MigSplit {
  /** Energy of each instance, joules, in the order of `mig.instances`. */
  instanceJoules: number[];
  /** The idle baseline of each instance's energy, joules. */
  instanceIdleJoules: number[];
  /** What no instance takes: the unallocated slices' share of the idle part, joules. */
  remainderJoules: number;
  method: PartitionMethod;
}

/**
 * Splits a MIG GPU's interval energy E (idle baseline I) among its instances: instance i gets
 * I × g_i / G of the idle part (g_i its slices, G the GPU's) and A × w_i / Σw of the active part
 * A = E − I, with w_i = activity_i × SMs_i when every instance has a GPM activity and one is busy
 * ("activity"), else w_i = g_i ("slices"). The GPU keeps I × (G − Σg) / G.
 */
export function splitMig(energyJoules: number, idleJoules: number, mig: Pick<MigPartition, "totalSlices" | "instances">): MigSplit {
  const instances = mig.instances;
  const slices = instances.map((i) => Math.max(0, i.sliceCount));
  const allocated = sum(slices);
  const total = Math.max(allocated, mig.totalSlices ?? 0);
  const idle = Math.min(Math.max(0, idleJoules), Math.max(0, energyJoules));
  const active = Math.max(0, energyJoules) - idle;
  const byActivity = instances.every((i) => i.activity !== undefined && Number.isFinite(i.activity));
  let weights = byActivity ? instances.map((i, k) => Math.max(0, i.activity!) * activityScale(i, slices[k])) : slices;
  let method: PartitionMethod = byActivity ? "activity" : "slices";
  if (sum(weights) <= 0) {
    weights = slices;
    method = "slices";
  }
  const weightTotal = sum(weights);
  if (total <= 0 || weightTotal <= 0) {
    // No slice counts at all: nothing can be split; the GPU keeps it.
    return { instanceJoules: instances.map(() => 0), instanceIdleJoules: instances.map(() => 0), remainderJoules: Math.max(0, energyJoules), method: "slices" };
  }
  const instanceIdleJoules = slices.map((g) => (idle * g) / total);
  const instanceJoules = weights.map((w, k) => instanceIdleJoules[k] + (active * w) / weightTotal);
  const remainderJoules = (idle * (total - allocated)) / total;
  // Exact conservation: the rounding residue goes to the largest instance.
  const residue = Math.max(0, energyJoules) - sum(instanceJoules) - remainderJoules;
  if (residue !== 0) {
    let largest = 0;
    for (let k = 1; k < instanceJoules.length; k++) if (instanceJoules[k] > instanceJoules[largest]) largest = k;
    instanceJoules[largest] += residue;
  }
  return { instanceJoules, instanceIdleJoules, remainderJoules, method };
}

/** An instance's activity weight: its SMs when known, else its slices. */
function activityScale(i: MigInstance, slices: number): number {
  return i.multiprocessorCount !== undefined && i.multiprocessorCount > 0 ? i.multiprocessorCount : slices;
}

function migPieces(reading: DeviceReading, interval: DeviceInterval, mig: MigPartition): DevicePiece[] {
  const split = splitMig(interval.energyJoules, interval.idleJoules, mig);
  const pieces: DevicePiece[] = [];
  if (!mig.partial) {
    pieces.push({
      interval,
      attributeJoules: split.remainderJoules,
      attributeIdleJoules: split.remainderJoules,
      // Processes NVML listed on the GPU but in no instance: they still reach their jobs.
      usage: { processes: reading.processes ?? [], processUsageMethod: "equal", index: reading.index, uuid: reading.uuid },
    });
  }
  mig.instances.forEach((instance, k) => {
    const energyJoules = split.instanceJoules[k];
    let own: DeviceInterval = {
      deviceId: instance.deviceId,
      kind: "gpu",
      source: interval.source,
      model: instance.model ?? interval.model,
      method: interval.method,
      energyJoules,
      idleJoules: Math.min(energyJoules, split.instanceIdleJoules[k]),
      idleOrigin: interval.idleOrigin,
      durationMillis: interval.durationMillis,
      powerWatts: interval.durationMillis > 0 ? (energyJoules * 1000) / interval.durationMillis : 0,
      parentId: reading.deviceId,
      deviceFraction: interval.energyJoules > 0 ? energyJoules / interval.energyJoules : 0,
      partitionMethod: split.method,
    };
    if (instance.estimatedShare) own = scaleInterval(own, instance.estimatedShare);
    pieces.push({
      interval: own,
      attributeJoules: own.energyJoules,
      attributeIdleJoules: own.idleJoules,
      usage: { processes: instance.processes, processUsageMethod: "equal", uuid: instance.uuid, utilization: instance.activity },
    });
  });
  return pieces;
}

function sum(xs: readonly number[]): number {
  // Neumaier: conservation is compared to 1e-9 relative.
  let s = 0;
  let c = 0;
  for (const x of xs) {
    const t = s + x;
    c += Math.abs(s) >= Math.abs(x) ? s - t + x : x - t + s;
    s = t;
  }
  return s + c;
}

/**
 * The devices a reading's own note is said on: the reading's device, or, for an observer of only
 * some MIG instances (mig.partial: the GPU itself is not recorded), those instances.
 */
export function noteDevices(reading: DeviceReading): string[] {
  return reading.mig?.partial ? reading.mig.instances.map((i) => i.deviceId) : [reading.deviceId];
}

/** The notes of the estimated shares in a reading (the GPU's, its instances'), by device: said on the device in the report. */
export function shareNotes(reading: DeviceReading): { deviceId: string; text: string }[] {
  const out: { deviceId: string; text: string }[] = [];
  if (reading.estimatedShare) out.push({ deviceId: reading.deviceId, text: reading.estimatedShare.note });
  for (const i of reading.mig?.instances ?? []) if (i.estimatedShare) out.push({ deviceId: i.deviceId, text: i.estimatedShare.note });
  return out;
}
