import type { CompiledSeries } from "./series.js";

/** One process's series while it is alive: [start, end). */
export interface Contribution {
  series: CompiledSeries;
  start: number;
  /** Infinity: never ends. */
  end: number;
}

/** Figures per cached point: time, value (right limit), cumulative integral, left limit. */
const FIELDS = 4;
const T = 0;
const RIGHT = 1;
const CUM = 2;
const LEFT = 3;

/**
 * A sum of alive processes' series, times `scale` (busy cores / all cores for CPUs and memory; the
 * sum of shares for one GPU), evaluated once per tick whatever the number of devices reading it.
 *
 * Each contribution keeps its series evaluated at the two latest times asked (a tick's start and
 * end): value, left limit and cumulative integral, in one typed array. A tick then evaluates each
 * series once, at its end, and the process source's CPU seconds, this sum's exact integral, its
 * values at both ends and a GPU's per-process shares all read those. Exact-key memo: a time not
 * cached is computed, so every figure is bit for bit what the series' own methods return.
 * A run costs processes × ticks, plus the breakpoints inside each interval.
 */
export class UsageSum {
  /** Two slots per contribution, FIELDS numbers each; NaN time: empty. */
  private readonly points: Float64Array;
  /** Which of a contribution's two slots was written last. */
  private readonly newest: Uint8Array;
  private valueCache: { t: number; value: number } | undefined;
  private leftCache: { t: number; value: number } | undefined;
  private clampedCache: { a: number; b: number; value: number } | undefined;

  constructor(
    private readonly parts: readonly Contribution[],
    private readonly scale: number,
  ) {
    this.points = new Float64Array(parts.length * 2 * FIELDS);
    for (let k = 0; k < this.points.length; k += FIELDS) this.points[k + T] = Number.NaN;
    this.newest = new Uint8Array(parts.length);
  }

  /** Offset in `points` of contribution i evaluated at x (evaluated now if neither slot holds x). */
  private pointAt(i: number, x: number): number {
    const newest = (2 * i + this.newest[i]) * FIELDS;
    if (this.points[newest + T] === x) return newest;
    const other = (2 * i + 1 - this.newest[i]) * FIELDS;
    if (this.points[other + T] === x) return other;
    this.parts[i].series.evaluateInto(x, this.points, other + RIGHT);
    this.points[other + T] = x;
    this.newest[i] = 1 - this.newest[i];
    return other;
  }

  /** ∫ of contribution i's series from its first point to x ({@link CompiledSeries.cumulative}). */
  cumulativeOf(i: number, x: number): number {
    return this.points[this.pointAt(i, x) + CUM];
  }

  /** ∫ of contribution i over [a, b] ∩ its life. */
  partIntegral(i: number, a: number, b: number): number {
    const c = this.parts[i];
    const from = Math.max(a, c.start);
    const to = Math.min(b, c.end);
    if (to <= from) return 0;
    const cumFrom = this.cumulativeOf(i, from);
    return this.cumulativeOf(i, to) - cumFrom;
  }

  /** Value at t: the processes alive at t (start <= t < end), at the value after any step at t. */
  valueAt(t: number): number {
    if (this.valueCache?.t === t) return this.valueCache.value;
    let v = 0;
    for (let i = 0; i < this.parts.length; i++) {
      const c = this.parts[i];
      if (t >= c.start && t < c.end) v += this.points[this.pointAt(i, t) + RIGHT];
    }
    const value = v * this.scale;
    this.valueCache = { t, value };
    return value;
  }

  /** Limit from below at t: the processes alive just before t (start < t <= end), value before a step. */
  private valueLeftOf(t: number): number {
    if (this.leftCache?.t === t) return this.leftCache.value;
    let v = 0;
    for (const c of this.parts) if (t > c.start && t <= c.end) v += c.series.atLeft(t);
    return v * this.scale;
  }

  /**
   * Exact ∫ min(1, value) dt over [a, b]. The sum is linear between breakpoints (series points,
   * starts, ends); the clamp matters only where it may exceed 1, so the breakpoints inside (a, b)
   * are visited only then. The same pass sums the values at b from both sides (the next
   * utilisation reading and this clamp's end), in the order valueAt and valueLeftOf would.
   */
  clampedIntegral(a: number, b: number): number {
    if (b <= a) return 0;
    const cache = this.clampedCache;
    if (cache && cache.a === a && cache.b === b) return cache.value;
    const points = this.points;
    let integral = 0;
    let bound = 0;
    let inner = false;
    let rightAtB = 0;
    let leftAtB = 0;
    for (let i = 0; i < this.parts.length; i++) {
      const c = this.parts[i];
      if (c.end <= a || c.start >= b) {
        // Alive at b only if it starts there.
        if (c.start === b && b < c.end) rightAtB += points[this.pointAt(i, b) + RIGHT];
        continue;
      }
      const from = Math.max(a, c.start);
      const to = Math.min(b, c.end);
      const atFrom = this.pointAt(i, from);
      const atTo = this.pointAt(i, to);
      integral += points[atTo + CUM] - points[atFrom + CUM];
      if (c.start > a || c.end < b) inner = true;
      const left = points[atTo + LEFT];
      let max = Math.max(points[atFrom + RIGHT], left);
      const times = c.series.times;
      for (let k = c.series.indexAt(a) + 1; k < times.length && times[k] < b; k++) {
        if (times[k] > a) {
          inner = true;
          max = Math.max(max, c.series.values[k]);
        }
      }
      bound += max;
      if (b <= c.end) leftAtB += left;
      if (b < c.end) rightAtB += points[atTo + RIGHT];
    }
    integral *= this.scale;
    let value: number;
    if (bound * this.scale <= 1) value = integral;
    else {
      this.leftCache = { t: b, value: leftAtB * this.scale };
      value = inner ? this.clampedPiecewise(a, b) : clampedLinear(this.valueAt(a), this.valueLeftOf(b), b - a);
    }
    this.clampedCache = { a, b, value };
    this.valueCache = { t: b, value: rightAtB * this.scale };
    return value;
  }

  /** The clamp may bite and breakpoints lie inside (a, b): segment by segment. */
  private clampedPiecewise(a: number, b: number): number {
    const set = new Set<number>();
    for (const c of this.parts) {
      if (c.end <= a || c.start >= b) continue;
      if (c.start > a) set.add(c.start);
      if (c.end < b) set.add(c.end);
      const times = c.series.times;
      for (let k = Math.max(0, c.series.indexAt(a)); k < times.length && times[k] < b; k++) if (times[k] > a) set.add(times[k]);
    }
    const points = [a, ...[...set].sort((x, y) => x - y), b];
    let total = 0;
    for (let j = 1; j < points.length; j++) {
      const t0 = points[j - 1];
      const t1 = points[j];
      let u0 = 0;
      for (const c of this.parts) if (t0 >= c.start && t0 < c.end) u0 += c.series.at(t0);
      total += clampedLinear(u0 * this.scale, this.valueLeftOf(t1), t1 - t0);
    }
    return total;
  }
}

/** ∫ min(1, u) over a width w where u goes linearly from u0 to u1. */
function clampedLinear(u0: number, u1: number, w: number): number {
  if (u0 <= 1 && u1 <= 1) return ((u0 + u1) / 2) * w;
  if (u0 >= 1 && u1 >= 1) return w;
  const f = (1 - u0) / (u1 - u0);
  return u0 < 1 ? ((u0 + 1) / 2) * f * w + (1 - f) * w : f * w + ((1 + u1) / 2) * (1 - f) * w;
}
