/**
 * The planner: for a job's energy profile and an intensity series (forecast slots), the expected
 * operational gCO2e of every candidate start time in a window, and the best one. Pure.
 *
 *   expected(start) = Σ over the profile's segments of facility kWh × intensity over the segment's
 *                     shifted time [start + offset, start + offset + duration)
 *
 * A segment that straddles slots takes each slot's intensity for the part of it inside that slot
 * (power constant within a segment). Candidate starts follow the Carbon Aware SDK's rolling window
 * (EmissionsDataExtensions.RollingAverage): from the window's start, one step (the first slot's
 * length: the forecast's resolution) at a time, while the whole job fits in the window and inside
 * the data. A flat profile therefore picks the SDK's optimal window for the same data.
 */
import { joulesToKwh } from "../units.js";
import type { JobProfile } from "./profile.js";

/** One intensity value valid over [fromMillis, untilMillis), gCO2e/kWh. Sorted, non-overlapping. */
export interface IntensitySlot {
  fromMillis: number;
  untilMillis: number;
  gramsPerKwh: number;
}

/** The expected emissions of one start time. */
export interface Candidate {
  startMillis: number;
  expectedGrams: number;
}

/** The planner's answer for one intensity series. */
export interface ZonePlan {
  /** Every start time evaluated, in time order. */
  candidates: Candidate[];
  /** The lowest (earliest on ties); undefined when no start fits the window and the data. */
  best?: Candidate;
  /** Starting at the window's start, when that start fits the data. */
  now?: Candidate;
  /** The step between candidates, ms (the data's resolution). */
  stepMillis: number;
  /** Last moment the data covers, epoch ms. */
  dataUntilMillis: number;
}

/** Relative tolerance under which two expected figures are a tie (float rounding of the sums). */
const TIE = 1e-12;

/** Index of the first slot ending after `t` (binary search). */
function firstSlotAfter(slots: readonly IntensitySlot[], t: number): number {
  let lo = 0;
  let hi = slots.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (slots[mid].untilMillis > t) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * Mean intensity over [fromMillis, untilMillis) (the slot at `fromMillis` for an empty interval),
 * or undefined when the slots do not cover all of it (a gap, or past the data).
 */
export function meanIntensity(slots: readonly IntensitySlot[], fromMillis: number, untilMillis: number): number | undefined {
  let i = firstSlotAfter(slots, fromMillis);
  if (i >= slots.length || slots[i].fromMillis > fromMillis) return undefined;
  if (untilMillis <= fromMillis) return slots[i].gramsPerKwh;
  let covered = fromMillis;
  let weighted = 0;
  for (; i < slots.length && covered < untilMillis; i++) {
    const s = slots[i];
    if (s.fromMillis > covered) return undefined; // a gap in the data
    const end = Math.min(s.untilMillis, untilMillis);
    weighted += s.gramsPerKwh * (end - covered);
    covered = end;
  }
  return covered >= untilMillis ? weighted / (untilMillis - fromMillis) : undefined;
}

/** Expected operational gCO2e of `profile` started at `startMillis`; undefined when the data does not cover it. */
export function expectedEmissionsGrams(profile: JobProfile, slots: readonly IntensitySlot[], startMillis: number): number | undefined {
  let grams = 0;
  for (const seg of profile.segments) {
    const from = startMillis + seg.offsetSeconds * 1000;
    const g = meanIntensity(slots, from, from + seg.durationSeconds * 1000);
    if (g === undefined) return undefined;
    grams += joulesToKwh(seg.facilityEnergyJoules) * g;
  }
  return grams;
}

/**
 * Plans one intensity series: candidates from `windowStartMillis` every `stepMillis` (default: the
 * first slot's length) while start + the job's duration ≤ `windowEndMillis` and the data covers the
 * job. The window is clamped to the data's start, as the Carbon Aware SDK does.
 */
export function planZone(args: {
  profile: JobProfile;
  slots: readonly IntensitySlot[];
  windowStartMillis: number;
  windowEndMillis: number;
  stepMillis?: number;
  /** Explicit start times instead of the rolling grid (run --start-within: now and each slot's start). */
  starts?: readonly number[];
}): ZonePlan {
  const { profile, slots } = args;
  const dataUntilMillis = slots.length ? slots[slots.length - 1].untilMillis : args.windowStartMillis;
  const stepMillis = args.stepMillis ?? (slots.length ? slots[0].untilMillis - slots[0].fromMillis : 0);
  const candidates: Candidate[] = [];
  if (slots.length === 0 || (!args.starts && !(stepMillis > 0))) return { candidates, stepMillis, dataUntilMillis };
  const jobMillis = profile.durationSeconds * 1000;
  const lastStart = Math.min(args.windowEndMillis, dataUntilMillis) - jobMillis;
  const consider = (start: number) => {
    const expectedGrams = start <= lastStart ? expectedEmissionsGrams(profile, slots, start) : undefined;
    if (expectedGrams !== undefined) candidates.push({ startMillis: start, expectedGrams });
  };
  if (args.starts) for (const start of args.starts) consider(start);
  else for (let start = Math.max(args.windowStartMillis, slots[0].fromMillis); start <= lastStart; start += stepMillis) consider(start);
  let best: Candidate | undefined;
  for (const c of candidates) if (!best || c.expectedGrams < best.expectedGrams * (1 - TIE)) best = c;
  const now = candidates[0]?.startMillis === args.windowStartMillis ? candidates[0] : undefined;
  return { candidates, best, now, stepMillis, dataUntilMillis };
}

/** One constant value over a window: what a zone without a forecast (latest value, static table) gives. */
export function constantSlots(gramsPerKwh: number, fromMillis: number, untilMillis: number): IntensitySlot[] {
  return [{ fromMillis, untilMillis, gramsPerKwh }];
}
