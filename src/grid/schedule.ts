/**
 * Carbon-aware start: pick the moment to start a command from an intensity forecast, never later
 * than a limit. planStart is pure; waitForStart drives it with an injected clock and sleep,
 * re-reading the forecast while it waits (forecasts are revised).
 */
import type { Logger } from "../core/contracts.js";
import { errorMessage } from "../errors.js";
import { meanIntensity, planZone, type IntensitySlot } from "../plan/planner.js";
import { flatProfile, type JobProfile } from "../plan/profile.js";
import { formatDuration, formatGrams, formatPlain, joulesToKwh } from "../units.js";
import type { IntensityProvider, IntensityReading } from "../core/contracts.js";

/** Why a start time was chosen. */
export type StartKind = "threshold-met" | "lowest-in-window" | "no-forecast" | "limit-reached" | "forecast-failed";

/** The outcome of planStart. */
export interface StartPlan {
  startAt: Date;
  kind: StartKind;
  /** One line for the user. */
  reason: string;
  /** Forecast intensity of the chosen slot (with a profile: the job's energy-weighted mean), gCO2e/kWh (undefined without a forecast). */
  expectedGramsPerKwh?: number;
  /** With a profile: the job's expected operational gCO2e from the chosen start. */
  expectedGrams?: number;
}

const fmt = (d: Date) => d.toISOString().replace(".000Z", "Z");

/** Forecast points as planner slots: a point without an end holds until the next (the last: forever). */
function forecastSlots(forecast: readonly IntensityReading[]): IntensitySlot[] {
  const points = forecast.filter((p) => p.validFrom !== undefined).sort((a, b) => a.validFrom!.getTime() - b.validFrom!.getTime());
  const slots: IntensitySlot[] = [];
  points.forEach((p, i) => {
    const fromMillis = p.validFrom!.getTime();
    const untilMillis = p.validUntil?.getTime() ?? points[i + 1]?.validFrom?.getTime() ?? Number.POSITIVE_INFINITY;
    if (untilMillis > fromMillis && !(slots.length && fromMillis < slots[slots.length - 1].untilMillis)) slots.push({ fromMillis, untilMillis, gramsPerKwh: p.intensityGramsPerKwh });
  });
  return slots;
}

/** The job's zero-length stand-in without a profile: the intensity at the start instant decides. */
const INSTANT = flatProfile(0, 1, "flat");

/**
 * Chooses when to start. Slots considered: forecast points whose validity overlaps
 * [now, now + within); a slot starting before now counts from now. With `belowGramsPerKwh`, the
 * first slot strictly below it wins. Otherwise (or when none is below) the planner decides among
 * now and each slot's start up to the limit: with the job's measured `profile`, the lowest
 * expected gCO2e of the whole job (it may run past the limit, not past the forecast); without
 * one (flat), the lowest slot; the earliest on ties. With no usable point, start now. The result
 * is never after now + within.
 */
export function planStart(args: {
  forecast: readonly IntensityReading[];
  now: Date;
  withinMillis: number;
  belowGramsPerKwh?: number;
  profile?: JobProfile;
}): StartPlan {
  const nowMillis = args.now.getTime();
  const limitMillis = nowMillis + Math.max(0, args.withinMillis);
  const slots = args.forecast
    .filter((p) => p.validFrom !== undefined)
    .map((p) => {
      const fromMillis = p.validFrom!.getTime();
      // A point without an end is taken to hold until the next point (or forever for the last).
      const untilMillis = p.validUntil?.getTime() ?? Number.POSITIVE_INFINITY;
      return { p, startMillis: Math.max(fromMillis, nowMillis), untilMillis };
    })
    .filter((s) => s.untilMillis > nowMillis && s.startMillis <= limitMillis && s.startMillis < s.untilMillis)
    .sort((a, b) => a.startMillis - b.startMillis);
  if (slots.length === 0) {
    return { startAt: new Date(nowMillis), kind: "no-forecast", reason: "no forecast covers the window: starting now" };
  }
  if (args.belowGramsPerKwh !== undefined) {
    const hit = slots.find((s) => s.p.intensityGramsPerKwh < args.belowGramsPerKwh!);
    if (hit) {
      return {
        startAt: new Date(hit.startMillis),
        kind: "threshold-met",
        reason: `forecast ${formatPlain(hit.p.intensityGramsPerKwh)} gCO2e/kWh at ${fmt(new Date(hit.startMillis))} is below ${args.belowGramsPerKwh}`,
        expectedGramsPerKwh: hit.p.intensityGramsPerKwh,
      };
    }
  }
  const missed = args.belowGramsPerKwh !== undefined ? ` (nothing below ${args.belowGramsPerKwh} before ${fmt(new Date(limitMillis))})` : "";
  const planSlots = forecastSlots(args.forecast);
  const starts = [nowMillis, ...planSlots.map((s) => s.fromMillis).filter((t) => t > nowMillis && t <= limitMillis)];
  const plan = (profile: JobProfile) => planZone({ profile, slots: planSlots, windowStartMillis: nowMillis, windowEndMillis: Number.POSITIVE_INFINITY, starts });
  const withProfile = args.profile ? plan(args.profile) : undefined;
  if (withProfile?.best && args.profile) {
    const p = args.profile;
    const best = withProfile.best;
    const now = withProfile.now ? `; ${formatGrams(withProfile.now.expectedGrams)} if started now` : "";
    return {
      startAt: new Date(best.startMillis),
      kind: "lowest-in-window",
      reason: `lowest expected CO2e for the job's profile (${p.source}): ${formatGrams(best.expectedGrams)} starting at ${fmt(new Date(best.startMillis))}${now}${missed}`,
      expectedGramsPerKwh: p.facilityEnergyJoules > 0 ? best.expectedGrams / joulesToKwh(p.facilityEnergyJoules) : undefined,
      expectedGrams: best.expectedGrams,
    };
  }
  const best = plan(INSTANT).best;
  if (!best) return { startAt: new Date(nowMillis), kind: "no-forecast", reason: "no forecast covers the window: starting now" };
  const gramsPerKwh = meanIntensity(planSlots, best.startMillis, best.startMillis)!;
  const short = args.profile ? ` (the forecast does not cover the job's ${formatDuration(args.profile.durationSeconds)} profile from any start: lowest slot used)` : "";
  return {
    startAt: new Date(best.startMillis),
    kind: "lowest-in-window",
    reason: `lowest forecast in the window: ${formatPlain(gramsPerKwh)} gCO2e/kWh at ${fmt(new Date(best.startMillis))}${missed}${short}`,
    expectedGramsPerKwh: gramsPerKwh,
  };
}

/** Result of waitForStart. */
export interface StartResult {
  startedAt: Date;
  kind: StartKind;
  reason: string;
  expectedGramsPerKwh?: number;
  waitedMillis: number;
}

/**
 * Waits (with the injected sleep) until the planned start, re-planning every `replanMillis`
 * (default 30 min) from a fresh forecast, and returns no later than now + withinMillis. A forecast
 * failure is logged and the command starts at once (a failing provider must not hold a job back).
 */
export async function waitForStart(args: {
  provider: IntensityProvider;
  zone: string;
  withinMillis: number;
  below?: number;
  now?: () => Date;
  sleep?: (millis: number) => Promise<void>;
  log?: Logger;
  replanMillis?: number;
  /** The job's measured profile (run --profile); without it the lowest slot decides. */
  profile?: JobProfile;
}): Promise<StartResult> {
  const now = args.now ?? (() => new Date());
  const sleep = args.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref?.()));
  const replanMillis = args.replanMillis ?? 30 * 60_000;
  const startMillis = now().getTime();
  const deadlineMillis = startMillis + args.withinMillis;
  const done = (kind: StartKind, reason: string, expected?: number): StartResult => {
    const at = now();
    return { startedAt: at, kind, reason, expectedGramsPerKwh: expected, waitedMillis: at.getTime() - startMillis };
  };
  if (!args.provider.forecast) {
    args.log?.warn(`carbon-aware start: ${args.provider.id} gives no forecast; starting now`);
    return done("forecast-failed", `${args.provider.id} gives no forecast`);
  }
  let announced = "";
  for (;;) {
    const t = now().getTime();
    if (t >= deadlineMillis) return done("limit-reached", "the --start-within limit was reached");
    let forecast: IntensityReading[];
    try {
      forecast = await args.provider.forecast(args.zone, Math.ceil((deadlineMillis - t) / 3_600_000) + 1);
    } catch (err) {
      args.log?.warn(`carbon-aware start: forecast unavailable (${errorMessage(err)}); starting now`);
      return done("forecast-failed", `forecast unavailable: ${errorMessage(err)}`);
    }
    const plan = planStart({ forecast, now: new Date(t), withinMillis: deadlineMillis - t, belowGramsPerKwh: args.below, profile: args.profile });
    if (plan.startAt.getTime() <= t) return done(plan.kind, plan.reason, plan.expectedGramsPerKwh);
    const line = `carbon-aware start: waiting until ${fmt(plan.startAt)}: ${plan.reason}; limit ${fmt(new Date(deadlineMillis))}`;
    if (line !== announced) {
      args.log?.info(line);
      announced = line;
    }
    const wakeMillis = Math.min(plan.startAt.getTime(), t + replanMillis, deadlineMillis);
    await sleep(Math.max(0, wakeMillis - t));
    const after = now().getTime();
    if (after >= plan.startAt.getTime()) {
      return done(after >= deadlineMillis && plan.startAt.getTime() >= deadlineMillis ? "limit-reached" : plan.kind, plan.reason, plan.expectedGramsPerKwh);
    }
  }
}
