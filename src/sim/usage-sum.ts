import type { CompiledSeries } from "./series.js";

/** One process's series while it is alive: [start, end). */
export interface Contribution {
  series: CompiledSeries;
  start: number;
  /** Infinity: never ends. */
  end: number;
}

// Per contribution, STRIDE numbers of one Float64Array, read in order each tick (one or two cache
// lines per process instead of a series object and its three arrays scattered on the heap):
// the series' segment around the last time evaluated, then two evaluated points.
const STRIDE = 16;
/** The segment is valid for LO <= t < HI. */
const LO = 0;
const HI = 1;
/** 0: before the first point (first value held); 1: between two points; 2: after the last; 3: empty series. */
const KIND = 2;
const T0 = 3;
const V0 = 4;
const T1 = 5;
const V1 = 6;
/** ∫ from the first point to T0. */
const P0 = 7;
/** Two points: time, value (right limit), cumulative integral, left limit. */
const POINT = 8;
const POINT_SIZE = 4;
const RIGHT = 1;
const CUM = 2;
const LEFT = 3;

/**
 * A sum of alive processes' series, times `scale` (busy cores / all cores for CPUs and memory; the
 * sum of shares for one GPU), evaluated once per tick whatever the number of devices reading it.
 *
 * Each contribution keeps its series evaluated at the two latest times asked (a tick's start and
 * end: value, left limit and cumulative integral) and the segment those fell in, in one typed
 * array. A tick then evaluates each series once, at its end, from that segment (the series' own
 * arrays are read only when a point is crossed), and the process source's CPU seconds, this sum's
 * exact integral, its values at both ends and a GPU's per-process shares all read the result.
 * The arithmetic is CompiledSeries' own, expression for expression, so every figure is bit for bit
 * what at(), atLeft() and cumulative() return. A run costs processes × ticks, plus the points
 * inside each interval.
 */
export class UsageSum {
  private readonly state: Float64Array;
  /** Which of a contribution's two points was written last. */
  private readonly newest: Uint8Array;
  readonly starts: Float64Array;
  /** Infinity: never ends. */
  readonly ends: Float64Array;
  private readonly series: CompiledSeries[];
  private valueCache: { t: number; value: number } | undefined;
  private leftCache: { t: number; value: number } | undefined;
  private clampedCache: { a: number; b: number; value: number } | undefined;

  constructor(
    parts: readonly Contribution[],
    private readonly scale: number,
  ) {
    const n = parts.length;
    this.state = new Float64Array(n * STRIDE).fill(Number.NaN);
    this.newest = new Uint8Array(n);
    this.starts = Float64Array.from(parts, (c) => c.start);
    this.ends = Float64Array.from(parts, (c) => c.end);
    this.series = parts.map((c) => c.series);
  }

  get length(): number {
    return this.series.length;
  }

  /** Offset in `state` of contribution i's point at x (evaluated now if neither point is x). */
  private pointAt(i: number, x: number): number {
    const base = i * STRIDE + POINT;
    const newest = base + this.newest[i] * POINT_SIZE;
    if (this.state[newest] === x) return newest;
    const other = base + (1 - this.newest[i]) * POINT_SIZE;
    if (this.state[other] === x) return other;
    this.evaluate(i, x, other);
    this.newest[i] = 1 - this.newest[i];
    return other;
  }

  /** Writes the point at x to state[o..o+3], as CompiledSeries.at / cumulative / atLeft compute it. */
  private evaluate(i: number, x: number, o: number): void {
    const s = this.state;
    const base = i * STRIDE;
    // NaN bounds (never evaluated) fail the test too.
    if (!(x >= s[base + LO] && x < s[base + HI])) this.seek(i, x);
    const kind = s[base + KIND];
    const t0 = s[base + T0];
    const v0 = s[base + V0];
    let v: number;
    let cum: number;
    if (kind === 1) {
      const t1 = s[base + T1];
      v = v0 + ((s[base + V1] - v0) * (x - t0)) / (t1 - t0);
      cum = s[base + P0] + ((v0 + v) / 2) * (x - t0);
    } else if (kind === 0) {
      v = v0;
      cum = v0 * (x - t0);
    } else if (kind === 2) {
      v = v0;
      cum = s[base + P0] + ((v0 + v) / 2) * (x - t0);
    } else {
      v = 0;
      cum = 0;
    }
    s[o] = x;
    s[o + RIGHT] = v;
    s[o + CUM] = cum;
    // Off a point the limit from below is the same expression on the same segment; at a point (a
    // step may sit there) it is the series' own.
    s[o + LEFT] = kind === 3 ? 0 : kind === 0 || x > t0 ? v : this.series[i].atLeft(x);
  }

  /** Loads the segment of contribution i's series that holds x (CompiledSeries.indexAt). */
  private seek(i: number, x: number): void {
    const s = this.state;
    const base = i * STRIDE;
    const series = this.series[i];
    const n = series.length;
    if (n === 0) {
      s[base + LO] = Number.NEGATIVE_INFINITY;
      s[base + HI] = Number.POSITIVE_INFINITY;
      s[base + KIND] = 3;
      return;
    }
    const k = series.indexAt(x);
    const { times, values, prefix } = series;
    if (k < 0) {
      s[base + LO] = Number.NEGATIVE_INFINITY;
      s[base + HI] = times[0];
      s[base + KIND] = 0;
      s[base + T0] = times[0];
      s[base + V0] = values[0];
    } else if (k >= n - 1) {
      s[base + LO] = times[n - 1];
      s[base + HI] = Number.POSITIVE_INFINITY;
      s[base + KIND] = 2;
      s[base + T0] = times[n - 1];
      s[base + V0] = values[n - 1];
      s[base + P0] = prefix[n - 1];
    } else {
      s[base + LO] = times[k];
      s[base + HI] = times[k + 1];
      s[base + KIND] = 1;
      s[base + T0] = times[k];
      s[base + V0] = values[k];
      s[base + T1] = times[k + 1];
      s[base + V1] = values[k + 1];
      s[base + P0] = prefix[k];
    }
  }

  /** ∫ of contribution i's series from its first point to x ({@link CompiledSeries.cumulative}). */
  cumulativeOf(i: number, x: number): number {
    return this.state[this.pointAt(i, x) + CUM];
  }

  /** ∫ of contribution i over [a, b] ∩ its life. */
  partIntegral(i: number, a: number, b: number): number {
    const from = Math.max(a, this.starts[i]);
    const to = Math.min(b, this.ends[i]);
    if (to <= from) return 0;
    const cumFrom = this.cumulativeOf(i, from);
    return this.cumulativeOf(i, to) - cumFrom;
  }

  /** Value at t: the processes alive at t (start <= t < end), at the value after any step at t. */
  valueAt(t: number): number {
    if (this.valueCache?.t === t) return this.valueCache.value;
    let v = 0;
    for (let i = 0; i < this.series.length; i++) {
      if (t >= this.starts[i] && t < this.ends[i]) v += this.state[this.pointAt(i, t) + RIGHT];
    }
    const value = v * this.scale;
    this.valueCache = { t, value };
    return value;
  }

  /** Limit from below at t: the processes alive just before t (start < t <= end), value before a step. */
  private valueLeftOf(t: number): number {
    if (this.leftCache?.t === t) return this.leftCache.value;
    let v = 0;
    for (let i = 0; i < this.series.length; i++) if (t > this.starts[i] && t <= this.ends[i]) v += this.series[i].atLeft(t);
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
    const s = this.state;
    let integral = 0;
    let bound = 0;
    let inner = false;
    let rightAtB = 0;
    let leftAtB = 0;
    for (let i = 0; i < this.series.length; i++) {
      const start = this.starts[i];
      const end = this.ends[i];
      if (end <= a || start >= b) {
        // Alive at b only if it starts there.
        if (start === b && b < end) rightAtB += s[this.pointAt(i, b) + RIGHT];
        continue;
      }
      // The point at the interval's start is read before the one at its end is looked up: that
      // lookup may evaluate into the very slot the start's point was found in (a process source
      // that sampled at another time than the collector's, as run --sim and agent --sim do, left
      // the start in the older slot), and an offset kept would then read the end twice.
      const atFrom = this.pointAt(i, Math.max(a, start));
      const cumFrom = s[atFrom + CUM];
      const rightFrom = s[atFrom + RIGHT];
      const atTo = this.pointAt(i, Math.min(b, end));
      integral += s[atTo + CUM] - cumFrom;
      if (start > a || end < b) inner = true;
      const left = s[atTo + LEFT];
      let max = Math.max(rightFrom, left);
      // Points strictly inside (a, b): none when the segment held spans both ends.
      const base = i * STRIDE;
      if (!(s[base + LO] <= a && b <= s[base + HI])) {
        const series = this.series[i];
        const times = series.times;
        for (let k = series.indexAt(a) + 1; k < times.length && times[k] < b; k++) {
          if (times[k] > a) {
            inner = true;
            max = Math.max(max, series.values[k]);
          }
        }
      }
      bound += max;
      if (b <= end) leftAtB += left;
      if (b < end) rightAtB += s[atTo + RIGHT];
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
    for (let i = 0; i < this.series.length; i++) {
      const start = this.starts[i];
      const end = this.ends[i];
      if (end <= a || start >= b) continue;
      if (start > a) set.add(start);
      if (end < b) set.add(end);
      const series = this.series[i];
      const times = series.times;
      for (let k = Math.max(0, series.indexAt(a)); k < times.length && times[k] < b; k++) if (times[k] > a) set.add(times[k]);
    }
    const points = [a, ...[...set].sort((x, y) => x - y), b];
    let total = 0;
    for (let j = 1; j < points.length; j++) {
      const t0 = points[j - 1];
      const t1 = points[j];
      let u0 = 0;
      for (let i = 0; i < this.series.length; i++) if (t0 >= this.starts[i] && t0 < this.ends[i]) u0 += this.series[i].at(t0);
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
