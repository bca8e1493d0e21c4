/**
 * Builds LedgerSnapshot values for exporter tests: plain data of the contract type
 * (src/core/types.ts), consistent with its rules (facility = IT × PUE, totals = sum of kinds).
 */
import type { DeviceKind } from "../../src/core/contracts.js";
import type { DeviceTotals, EnergyByKind, JobTotals, LedgerSnapshot } from "../../src/core/types.js";
import type { ServingTotals } from "../../src/core/serving.js";

function byKind(cpu: number, gpu: number, memory: number): EnergyByKind {
  return { cpu, gpu, memory, total: cpu + gpu + memory };
}

/** What a test says about one job. */
export interface JobSpec {
  id: string;
  name?: string;
  attributes?: Record<string, string>;
  cpuJoules?: number;
  gpuJoules?: number;
  memoryJoules?: number;
  /** Last-interval power by kind, watts. */
  cpuWatts?: number;
  gpuWatts?: number;
  phases?: Record<string, number>;
  intensityGramsPerKwh?: number;
  /** CPU seconds of the job's processes. */
  cpuSeconds?: number;
  /** Cumulative work counters as last marked. */
  work?: { step?: number; samples?: number; tokens?: number };
  /** Serving figures (--work-from), as a ServingAccount gives them. */
  serving?: ServingTotals;
}

/** One job's totals: emissions = facility kWh × intensity; water 1.8 L/kWh of IT energy; embodied 0.01 g/J. */
export function jobTotals(spec: JobSpec, pue: number, timeMillis: number): JobTotals {
  const energy = byKind(spec.cpuJoules ?? 0, spec.gpuJoules ?? 0, spec.memoryJoules ?? 0);
  const facility = energy.total * pue;
  return {
    id: spec.id,
    name: spec.name ?? spec.id,
    attributes: spec.attributes ?? {},
    energyJoules: energy,
    facilityEnergyJoules: facility,
    emissionsGrams: (facility / 3_600_000) * (spec.intensityGramsPerKwh ?? 380),
    embodiedEmissionsGrams: energy.total * 0.01,
    waterLiters: (energy.total / 3_600_000) * 1.8,
    cost: (facility / 3_600_000) * 0.3,
    lastPowerWatts: byKind(spec.cpuWatts ?? 0, spec.gpuWatts ?? 0, 0),
    phaseEnergyJoules: spec.phases ?? {},
    deviceEnergyJoules: { gpu0: energy.gpu, cpu0: energy.cpu },
    firstSeenMillis: 0,
    lastSeenMillis: timeMillis,
    ...(spec.cpuSeconds !== undefined ? { cpuSeconds: spec.cpuSeconds } : {}),
    ...(spec.work ? { work: { ...spec.work } } : {}),
    ...(spec.serving ? { serving: spec.serving } : {}),
  };
}

/** What a test says about the snapshot. */
export interface SnapshotSpec {
  timeMillis?: number;
  jobs: JobSpec[];
  /** Device kinds present (default gpu0 + cpu0). */
  devices?: { id: string; kind: DeviceKind; model?: string; energyJoules: number; lastPowerWatts?: number }[];
  systemCpuJoules?: number;
  idleGpuJoules?: number;
  pue?: number;
  grid?: { zone: string; source: string; intensityGramsPerKwh: number; fallback?: "stale" | "static-table" | "world-average" };
}

export function snapshot(spec: SnapshotSpec): LedgerSnapshot {
  const pue = spec.pue ?? 1.2;
  const timeMillis = spec.timeMillis ?? 10_000;
  const devices: DeviceTotals[] = (
    spec.devices ?? [
      { id: "gpu0", kind: "gpu", model: "NVIDIA H100 80GB HBM3", energyJoules: 5000, lastPowerWatts: 400 },
      { id: "cpu0", kind: "cpu", model: "AMD EPYC 9654", energyJoules: 2000, lastPowerWatts: 150 },
    ]
  ).map((d) => ({
    id: d.id,
    kind: d.kind,
    model: d.model,
    source: "sim",
    method: "counter",
    energyJoules: d.energyJoules,
    lastPowerWatts: d.lastPowerWatts ?? 0,
    idleOrigin: "scenario",
    status: "ok",
    notes: [],
  }));
  return {
    timeMillis,
    startMillis: 0,
    jobs: spec.jobs.map((j) => jobTotals(j, pue, timeMillis)),
    buckets: {
      system: jobTotals({ id: "system", cpuJoules: spec.systemCpuJoules ?? 0 }, pue, timeMillis),
      idle: jobTotals({ id: "idle", gpuJoules: spec.idleGpuJoules ?? 0 }, pue, timeMillis),
    },
    devices,
    grid: spec.grid ? { ...spec.grid } : undefined,
    pue,
  };
}

/** A Logger that records what it was told (warnOnce honours its key). */
export function recordingLogger() {
  const lines: { level: string; message: string }[] = [];
  const seen = new Set<string>();
  return {
    lines,
    info: (message: string) => lines.push({ level: "info", message }),
    warn: (message: string) => lines.push({ level: "warn", message }),
    warnOnce: (key: string, message: string) => {
      if (seen.has(key)) return;
      seen.add(key);
      lines.push({ level: "warn", message });
    },
    debug: (message: string) => lines.push({ level: "debug", message }),
  };
}
