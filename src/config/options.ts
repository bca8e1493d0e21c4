import { UsageError } from "../errors.js";
import { parseDurationMillis } from "../units.js";
import type { IdlePolicy } from "../core/types.js";

/** --pue: a number >= 1 (facility energy cannot be below IT energy). */
export function parsePue(value: string, flag = "--pue"): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) throw new UsageError(flag, `must be a number >= 1.0, got '${value}' (e.g. ${flag} 1.2)`);
  if (n < 1) throw new UsageError(flag, `must be >= 1.0 (facility energy cannot be less than IT energy), got ${value}`);
  return n;
}

/**
 * The longest duration any flag or variable takes: 24 days (2,073,600,000 ms). Node's timers hold
 * at most 2^31 − 1 ms (24.8 days); a longer delay fires after 1 ms, so `--interval 25d` would
 * sample continuously. Longer values are refused, naming this limit.
 */
export const MAX_DURATION_MILLIS = 24 * 86_400_000;

/** UsageError unless `millis` is within MAX_DURATION_MILLIS (the text as given names the value). */
export function checkDurationBound(millis: number, flag: string, text: string): number {
  if (!(millis <= MAX_DURATION_MILLIS)) throw new UsageError(flag, `'${text}' is longer than the maximum of 24d (${MAX_DURATION_MILLIS} ms: Node's timers hold no longer)`);
  return millis;
}

/** A duration flag: "500ms", "2s", "5m", "6h", or seconds; at most MAX_DURATION_MILLIS. */
export function parseDurationFlag(value: string, flag: string, minMillis = 1): number {
  const ms = parseDurationMillis(value);
  if (ms === undefined) throw new UsageError(flag, `must be a duration such as 500ms, 2s, 5m or 1h, got '${value}'`);
  if (ms < minMillis) throw new UsageError(flag, `must be at least ${minMillis} ms, got '${value}'`);
  return checkDurationBound(ms, flag, value);
}

export function parseIdlePolicy(value: string): IdlePolicy {
  if (value === "attribute" || value === "separate") return value;
  throw new UsageError("--idle-policy", `must be 'attribute' or 'separate', got '${value}'`);
}

/** --idle-watts kind=W or deviceId=W (repeatable). */
export function parseIdleWatts(values: readonly string[]): { byKind: Partial<Record<"cpu" | "gpu" | "memory", number>>; byDeviceId: Record<string, number> } {
  const byKind: Partial<Record<"cpu" | "gpu" | "memory", number>> = {};
  const byDeviceId: Record<string, number> = {};
  for (const v of values) {
    const m = /^([^=]+)=(.+)$/.exec(v);
    const w = m ? Number(m[2]) : NaN;
    if (!m || !Number.isFinite(w) || w < 0) throw new UsageError("--idle-watts", `expects KIND=WATTS or DEVICE=WATTS with watts >= 0 (e.g. gpu=70), got '${v}'`);
    if (m[1] === "cpu" || m[1] === "gpu" || m[1] === "memory") byKind[m[1]] = w;
    else byDeviceId[m[1]] = w;
  }
  return { byKind, byDeviceId };
}
