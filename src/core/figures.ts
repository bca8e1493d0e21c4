/**
 * The figures derived from a job's (or a phase's, or the host's) additive totals: average power,
 * emissions rate, average intensity, per-unit figures. Computed here, once, by the report model
 * (exporters/report-json.ts buildReport, and `powerprint report` after merging sums); the summary,
 * CSV, HTML and metrics read them from the report and only format them.
 *
 * Pure functions of their arguments. `null` (JSON-safe) where a figure has no meaning: a count that
 * is unknown or 0, no facility energy to average an intensity over, no time to average a power over.
 */
import { joulesToKwh } from "../units.js";

/** Energy (or power) per device kind and in total. */
export interface ByKind {
  cpu: number;
  gpu: number;
  memory: number;
  total: number;
}

/** Units of work (marks' counters, serving's requests): whole numbers, or null when never reported. */
export interface WorkCounts {
  samples: number | null;
  tokens: number | null;
  steps: number | null;
}

/** What a job's figures are derived from: its additive totals and how long it was measured. */
export interface JobFigureInputs extends WorkCounts {
  energyJoules: ByKind;
  facilityEnergyJoules: number;
  emissionsGrams: number;
  /** How long the job was measured, seconds (monotonic). */
  durationSeconds: number;
}

/** A job's derived figures (README "Report format", `jobs[]`). */
export interface JobFigures {
  /** Mean power over the job's own duration, W, per device kind (IT). */
  averagePowerWatts: ByKind;
  /** Operational emissions per second of the job, g/s (CodeCarbon's emissions_rate, in grams). */
  emissionsRateGramsPerSecond: number | null;
  /** Operational emissions over facility energy: the intensity the job's emissions reflect, gCO2e/kWh. */
  intensityAverageGramsPerKwh: number | null;
  joulesPerSample: number | null;
  joulesPerToken: number | null;
  joulesPerStep: number | null;
  /** Operational emissions per million tokens, g (SCI's functional unit for language models). */
  emissionsGramsPerMillionTokens: number | null;
}

/** Joules (or grams) per unit of work; null when the count is unknown or 0. */
export function perUnit(amount: number, count: number | null | undefined): number | null {
  return count !== null && count !== undefined && count > 0 ? amount / count : null;
}

/** Mean power, W, of `energyJoules` over `durationSeconds`; null without time. */
export function averageWatts(energyJoules: number, durationSeconds: number): number | null {
  return durationSeconds > 0 ? energyJoules / durationSeconds : null;
}

/** The average intensity behind `emissionsGrams`, gCO2e/kWh; null without facility energy. */
export function averageIntensity(emissionsGrams: number, facilityEnergyJoules: number): number | null {
  const kwh = joulesToKwh(facilityEnergyJoules);
  return kwh > 0 ? emissionsGrams / kwh : null;
}

/** Every derived figure of one job, from its totals (the one place they are computed). */
export function jobFigures(t: JobFigureInputs): JobFigures {
  const watts = (j: number) => averageWatts(j, t.durationSeconds) ?? 0;
  const rate = averageWatts(t.emissionsGrams, t.durationSeconds);
  const perToken = perUnit(t.emissionsGrams, t.tokens);
  return {
    averagePowerWatts: { cpu: watts(t.energyJoules.cpu), gpu: watts(t.energyJoules.gpu), memory: watts(t.energyJoules.memory), total: watts(t.energyJoules.total) },
    emissionsRateGramsPerSecond: rate,
    intensityAverageGramsPerKwh: averageIntensity(t.emissionsGrams, t.facilityEnergyJoules),
    joulesPerSample: perUnit(t.energyJoules.total, t.samples),
    joulesPerToken: perUnit(t.energyJoules.total, t.tokens),
    joulesPerStep: perUnit(t.energyJoules.total, t.steps),
    emissionsGramsPerMillionTokens: perToken === null ? null : perToken * 1e6,
  };
}

/** What a phase's figures are derived from. */
export interface PhaseFigureInputs extends WorkCounts {
  energyJoules: number;
  emissionsGrams: number;
  durationSeconds: number;
}

/** A phase's derived figures (README "Report format", `jobs[].phases[]`). */
export interface PhaseFigures {
  /** The phase's part of the job's IT energy, 0..1 (null when the job has none). */
  energyShare: number | null;
  /** Mean power over the phase's time, W (IT). */
  averagePowerWatts: number | null;
  joulesPerSample: number | null;
  joulesPerToken: number | null;
  joulesPerStep: number | null;
}

/** Every derived figure of one phase of a job whose IT energy is `jobEnergyJoules`. */
export function phaseFigures(p: PhaseFigureInputs, jobEnergyJoules: number): PhaseFigures {
  return {
    energyShare: jobEnergyJoules > 0 ? p.energyJoules / jobEnergyJoules : null,
    averagePowerWatts: averageWatts(p.energyJoules, p.durationSeconds),
    joulesPerSample: perUnit(p.energyJoules, p.samples),
    joulesPerToken: perUnit(p.energyJoules, p.tokens),
    joulesPerStep: perUnit(p.energyJoules, p.steps),
  };
}

/** A count summed over parts (phases, nodes): null when no part reported it. */
export function sumCounts(values: readonly (number | null | undefined)[]): number | null {
  let any = false;
  let total = 0;
  for (const v of values) {
    if (v === null || v === undefined) continue;
    any = true;
    total += v;
  }
  return any ? total : null;
}

/**
 * Length of the union of time windows, seconds: each window starts at `startMillis` (wall clock)
 * and lasts its own measured `durationSeconds` (monotonic). Windows that follow one another add
 * (the halves of a job split in time); windows that overlap count once (the nodes of one job).
 */
export function unionSeconds(windows: readonly { startMillis: number; durationSeconds: number }[]): number {
  const sorted = [...windows].sort((a, b) => a.startMillis - b.startMillis);
  let total = 0;
  let coveredUntil = Number.NEGATIVE_INFINITY;
  for (const w of sorted) {
    const end = w.startMillis + w.durationSeconds * 1000;
    if (end <= coveredUntil) continue;
    const from = Math.max(w.startMillis, coveredUntil);
    // Adjacent or disjoint: the window's own (monotonic) length, not its wall-clock difference.
    total += from === w.startMillis ? w.durationSeconds : (end - from) / 1000;
    coveredUntil = end;
  }
  return total;
}
