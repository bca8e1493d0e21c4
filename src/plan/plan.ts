/**
 * A plan across zones: each zone's candidates and best start (planZone), the saving against
 * starting now in the first zone ("here"), and a guard against ranking marginal against average
 * intensities. Pure: the zones' series are fetched by the caller (zones.ts).
 */
import { formatKind, type IntensityKind } from "./kind.js";
import { planZone, type Candidate, type ZonePlan } from "./planner.js";
import type { JobProfile } from "./profile.js";
import type { ZoneSeries } from "./zones.js";

/** One zone's outcome. */
export interface ZoneOutcome extends ZonePlan {
  series: ZoneSeries;
  /** Same kind as "here": its figures may be ranked against here's. */
  comparable: boolean;
  /** Here-now expected grams minus this zone's best (positive: a saving); undefined when not comparable or unplanned. */
  savingGrams?: number;
  /** savingGrams / here-now expected grams. */
  savingFraction?: number;
}

/** The whole plan. */
export interface Plan {
  profile: JobProfile;
  windowStartMillis: number;
  windowEndMillis: number;
  /** The first zone: where the job would run now. */
  here: string;
  /** Starting now in the first zone (undefined when its data does not cover the window's start). */
  nowHere?: Candidate;
  zones: ZoneOutcome[];
  /** Best start over the zones comparable with here. */
  best?: { zone: string; startMillis: number; expectedGrams: number };
  /** The zones mix intensity kinds (only comparable ones are ranked together). */
  mixedKinds: boolean;
}

/** Kinds of the zones, "GB: average, CAISO_NORTH: marginal (MOER)". */
export function describeKinds(series: readonly ZoneSeries[]): string {
  return series.map((s) => `${s.zone}: ${formatKind(s.kind)}`).join(", ");
}

/** True when the zones do not all have the same kind. */
export function kindsMixed(series: readonly ZoneSeries[]): boolean {
  return new Set<IntensityKind>(series.map((s) => s.kind.kind)).size > 1;
}

/** Plans every zone and compares them with starting now in the first. */
export function buildPlan(args: { profile: JobProfile; series: readonly ZoneSeries[]; windowStartMillis: number; windowEndMillis: number }): Plan {
  const { profile, series } = args;
  const hereKind = series[0].kind.kind;
  const zones: ZoneOutcome[] = series.map((s) => ({
    ...planZone({ profile, slots: s.slots, windowStartMillis: args.windowStartMillis, windowEndMillis: args.windowEndMillis }),
    series: s,
    comparable: s.kind.kind === hereKind,
  }));
  const nowHere = zones[0].now;
  for (const z of zones) {
    if (!z.comparable || !z.best || !nowHere) continue;
    z.savingGrams = nowHere.expectedGrams - z.best.expectedGrams;
    z.savingFraction = nowHere.expectedGrams > 0 ? z.savingGrams / nowHere.expectedGrams : undefined;
  }
  let best: Plan["best"];
  for (const z of zones) {
    if (!z.comparable || !z.best) continue;
    if (!best || z.best.expectedGrams < best.expectedGrams) best = { zone: z.series.zone, ...z.best };
  }
  return {
    profile,
    windowStartMillis: args.windowStartMillis,
    windowEndMillis: args.windowEndMillis,
    here: series[0].zone,
    nowHere,
    zones,
    best,
    mixedKinds: kindsMixed(series),
  };
}
