import type { ConsumerId, ConsumerUsage, IdlePolicy } from "./types.js";
import { IDLE, SYSTEM } from "./types.js";
import type { DeviceReading } from "./contracts.js";

/**
 * Splits one device's interval energy between consumers (jobs, `system`, `idle`), per DESIGN.md:
 *  1. active part A = max(0, E − I), idle part E − A (I = idle baseline, joules);
 *  2. the active part is split by activeWeight (CPU seconds, GPU utilisation share); when every
 *     active weight is 0 it is split by idleWeight instead;
 *  3. the idle part is split by idleWeight (CPU seconds; 1 per job resident on a GPU), or goes
 *     to `idle` with policy "separate";
 *  4. no consumer with any weight: all of E goes to `idle`.
 * Conservation is exact up to one floating-point rounding: the last share is E minus the others.
 * Pure: energies in joules in, joules out.
 */
export function attributeDevice(
  energyJoules: number,
  idleJoules: number,
  usages: readonly ConsumerUsage[],
  policy: IdlePolicy,
): Map<ConsumerId, number> {
  const out = new Map<ConsumerId, number>();
  // Usually every usage has a weight (cpuUsages, gpuUsages): then no filtered copy.
  const used = usages.every(hasWeight) ? usages : usages.filter(hasWeight);
  if (energyJoules <= 0) return out;
  if (used.length === 0) {
    out.set(IDLE, energyJoules);
    return out;
  }
  const idlePart = Math.min(Math.max(0, idleJoules), energyJoules);
  const activePart = energyJoules - idlePart;

  const totalActive = neumaier(used, activeWeightOf);
  const totalIdle = neumaier(used, idleWeightOf);
  const activeWeight = totalActive > 0 ? activeWeightOf : idleWeightOf;
  const activeTotal = totalActive > 0 ? totalActive : totalIdle;

  splitInto(out, activePart, used, activeWeight, activeTotal);
  if (policy === "separate" || totalIdle <= 0) {
    addShare(out, IDLE, idlePart);
  } else {
    splitInto(out, idlePart, used, idleWeightOf, totalIdle);
  }
  // Exact conservation: fold the rounding residue into the largest share.
  const residue = energyJoules - neumaier(out.values(), identity);
  if (residue !== 0) {
    let largest: ConsumerId | undefined;
    let largestJoules = 0;
    for (const [id, v] of out) {
      if (largest === undefined || v > largestJoules) {
        largest = id;
        largestJoules = v;
      }
    }
    if (largest !== undefined) out.set(largest, largestJoules + residue);
  }
  return out;
}

const hasWeight = (u: ConsumerUsage): boolean => u.activeWeight > 0 || u.idleWeight > 0;
const activeWeightOf = (u: ConsumerUsage): number => u.activeWeight;
const idleWeightOf = (u: ConsumerUsage): number => u.idleWeight;
const identity = (x: number): number => x;

function addShare(out: Map<ConsumerId, number>, id: ConsumerId, joules: number): void {
  if (joules !== 0) out.set(id, (out.get(id) ?? 0) + joules);
}

// Runs per device per tick over every job (a simulation's 1,000 jobs): no arrays or closures made here.
function splitInto(
  out: Map<ConsumerId, number>,
  joules: number,
  usages: readonly ConsumerUsage[],
  weightOf: (u: ConsumerUsage) => number,
  totalWeight: number,
): void {
  if (joules === 0 || totalWeight <= 0) return;
  for (let i = 0; i < usages.length; i++) {
    const w = weightOf(usages[i]);
    if (w > 0) addShare(out, usages[i].consumer, (joules * w) / totalWeight);
  }
}

/** Neumaier summation of f(x) over xs: conservation is checked to 1e-9 relative over thousands of intervals. */
function neumaier<T>(xs: Iterable<T>, f: (x: T) => number): number {
  let s = 0;
  let c = 0;
  for (const item of xs) {
    const x = f(item);
    const t = s + x;
    c += Math.abs(s) >= Math.abs(x) ? s - t + x : x - t + s;
    s = t;
  }
  return s + c;
}

/**
 * CPU (and memory) usage: each job's CPU seconds in the interval, and `system` for the rest of the
 * host's busy CPU seconds (processes outside any job). Weights are CPU seconds for both parts.
 */
export function cpuUsages(jobCpuSecondsDelta: ReadonlyMap<string, number>, hostBusySecondsDelta: number): ConsumerUsage[] {
  const usages: ConsumerUsage[] = [];
  let jobsTotal = 0;
  for (const [job, seconds] of jobCpuSecondsDelta) {
    const s = Math.max(0, seconds);
    jobsTotal += s;
    if (s > 0) usages.push({ consumer: job, activeWeight: s, idleWeight: s });
  }
  // The host counter and the per-process counters are read a few µs apart: never negative.
  const systemSeconds = Math.max(0, hostBusySecondsDelta - jobsTotal);
  if (systemSeconds > 0) usages.push({ consumer: SYSTEM, activeWeight: systemSeconds, idleWeight: systemSeconds });
  return usages;
}

/** Resident memory at the interval's end, bytes, as a ProcessSample carries it. */
export interface MemoryHolding {
  /** Σ RSS of each job's live processes. */
  jobRssBytes: ReadonlyMap<string, number>;
  /** Memory held on the host (MemTotal − MemAvailable); undefined: taken as Σ of the jobs'. */
  hostUsedMemoryBytes?: number;
  /** Installed memory (MemTotal). */
  hostTotalMemoryBytes: number;
}

/**
 * Memory usage (DESIGN.md rule 2): the active part by CPU seconds (the `cpu` usages, as for the
 * CPU), the idle (static) part by memory held — each job its RSS, `system` the rest of the host's
 * used memory, the `idle` bucket the memory no process holds (total − used). DRAM's static power
 * (refresh, background) is drawn for every installed byte whether or not a process touches it, so
 * a job is charged for the share it keeps resident, not for how busy its CPUs are. A job holding
 * memory without using a CPU in the interval still pays its static share.
 * Pure: weights in CPU seconds (active) and bytes (idle); attributeDevice normalises each.
 */
export function memoryUsages(cpu: readonly ConsumerUsage[], held: MemoryHolding): ConsumerUsage[] {
  const active = new Map<ConsumerId, number>();
  for (const u of cpu) active.set(u.consumer, (active.get(u.consumer) ?? 0) + u.activeWeight);
  const bytes = new Map<ConsumerId, number>();
  let jobsBytes = 0;
  for (const [job, b] of held.jobRssBytes) {
    const v = Math.max(0, b);
    jobsBytes += v;
    if (v > 0) bytes.set(job, v);
  }
  const total = Math.max(0, held.hostTotalMemoryBytes);
  // RSS counts shared pages once per process, so the jobs' sum can exceed what the host reports as
  // used (even the total): used is then taken as the jobs' sum, capped at the total, and nothing is
  // left for `system` (nor `idle` at the cap). attributeDevice normalises the weights.
  const used = Math.min(total, Math.max(jobsBytes, held.hostUsedMemoryBytes ?? jobsBytes));
  if (used - jobsBytes > 0) bytes.set(SYSTEM, used - jobsBytes);
  if (total - used > 0) bytes.set(IDLE, total - used);
  const consumers = new Set<ConsumerId>([...active.keys(), ...bytes.keys()]);
  return [...consumers].map((consumer) => ({ consumer, activeWeight: active.get(consumer) ?? 0, idleWeight: bytes.get(consumer) ?? 0 }));
}

/** pid → job id of the processes a GPU's process list is matched against (a Map, or a view over several). */
export interface MemberLookup {
  get(pid: number): string | undefined;
  has(pid: number): boolean;
}

/** Result of matching a GPU's processes to jobs. */
export interface GpuUsageResult {
  usages: ConsumerUsage[];
  /** How the active part was split; "none": no using process (all to idle). */
  method: "utilization" | "engine-time" | "equal" | "device-assignment" | "none";
}

/**
 * GPU usage: the active part by per-process utilisation share (equal per resident process when the
 * device gives none); the idle part equally among the jobs (and `system`) holding a resident process.
 * Processes whose PID is not a job member go to `system`. When none of the device's processes can be
 * matched to a live process (inside a container NVML reports host PIDs), jobs whose
 * CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES name this GPU (index or UUID) take it: method
 * "device-assignment".
 */
export function gpuUsages(
  reading: Pick<DeviceReading, "processes" | "processUsageMethod" | "index" | "uuid" | "utilization">,
  members: MemberLookup,
  opts: { isVisiblePid?: (pid: number) => boolean; jobDevices?: ReadonlyMap<string, readonly string[]> } = {},
): GpuUsageResult {
  const processes = reading.processes ?? [];
  // Per-process shares: NVML's SM samples ("utilization") or DRM engine time ("engine-time").
  const sharesMethod = reading.processUsageMethod === "utilization" || reading.processUsageMethod === "engine-time";
  const haveShares = sharesMethod && processes.some((p) => p.share !== undefined);
  // The resident consumers, in first-seen order, are this map's keys.
  const active = new Map<string, number>();
  let matchedAny = false;
  for (const p of processes) {
    const job = members.get(p.pid);
    if (job !== undefined) matchedAny = true;
    const consumer = job ?? SYSTEM;
    const w = haveShares ? (p.share ?? 0) : 1;
    active.set(consumer, (active.get(consumer) ?? 0) + w);
  }
  const visible = opts.isVisiblePid;
  const unmatchable = processes.length > 0 && !matchedAny && visible !== undefined && processes.every((p) => !visible(p.pid));
  const busyWithoutProcesses = processes.length === 0 && (reading.utilization ?? 0) > 0;
  if ((unmatchable || busyWithoutProcesses) && opts.jobDevices) {
    const holders: string[] = [];
    for (const [job, devices] of opts.jobDevices) {
      if (devices.some((d) => d === "all" || d === String(reading.index) || (reading.uuid !== undefined && d === reading.uuid))) holders.push(job);
    }
    if (holders.length > 0) {
      return {
        usages: holders.map((job) => ({ consumer: job, activeWeight: 1, idleWeight: 1 })),
        method: "device-assignment",
      };
    }
  }
  if (processes.length === 0) return { usages: [], method: "none" };
  const usages: ConsumerUsage[] = [];
  for (const [consumer, activeWeight] of active) usages.push({ consumer, activeWeight, idleWeight: 1 });
  return { usages, method: haveShares ? (reading.processUsageMethod === "engine-time" ? "engine-time" : "utilization") : "equal" };
}

/**
 * Parses CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES into device names (indices or UUIDs).
 * "all" → ["all"]; "none"/"void"/"" → [].
 */
export function parseVisibleDevices(value: string | undefined): string[] {
  if (value === undefined) return [];
  const v = value.trim();
  if (v === "" || v === "none" || v === "void" || v === "NoDevFiles") return [];
  return v.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}
