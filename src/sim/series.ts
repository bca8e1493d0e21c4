/**
 * Piecewise-linear time series of `[seconds, value]` points: linear between points, held before
 * the first and after the last (DESIGN.md scenario format). Integrals are exact.
 */
export type Series = ReadonlyArray<readonly [number, number]>;

/** Value at time `t` seconds. */
export function seriesAt(series: Series, t: number): number {
  if (series.length === 0) return 0;
  // Strictly before: at the first point itself a step there gives the value after it, as anywhere else.
  if (t < series[0][0]) return series[0][1];
  const last = series[series.length - 1];
  if (t >= last[0]) return last[1];
  let lo = 0;
  let hi = series.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (series[mid][0] <= t) lo = mid;
    else hi = mid;
  }
  const [t0, v0] = series[lo];
  const [t1, v1] = series[hi];
  return t1 === t0 ? v1 : v0 + ((v1 - v0) * (t - t0)) / (t1 - t0);
}

/** Breakpoint times of a series that fall strictly inside (a, b). */
export function breakpointsWithin(series: Series, a: number, b: number): number[] {
  const out: number[] = [];
  for (const [t] of series) if (t > a && t < b) out.push(t);
  return out;
}

/**
 * Exact integral of the series over [a, b] (value × seconds). Between consecutive breakpoints the
 * series is linear, so each piece is its midpoint value × its width. (Not the mean of its end
 * values: at a step — two points at the same time — the value AT the step is the one after it,
 * which would wrongly stand for the piece before.)
 */
export function seriesIntegral(series: Series, a: number, b: number): number {
  if (b <= a || series.length === 0) return 0;
  const points = [a, ...breakpointsWithin(series, a, b), b];
  let total = 0;
  for (let i = 1; i < points.length; i++) {
    const t0 = points[i - 1];
    const t1 = points[i];
    if (t1 > t0) total += seriesAt(series, (t0 + t1) / 2) * (t1 - t0);
  }
  return total;
}

/**
 * A series prepared for many queries at increasing times (the simulator's ticks): times and values
 * in typed arrays, the exact integral from the first point up to each point precomputed, and a
 * cursor remembering the last segment so a query just after the previous one costs O(1); any
 * other query falls back to a binary search. Same semantics as {@link seriesAt} and
 * {@link seriesIntegral} (held before the first and after the last point; at a step, the value
 * after it).
 */
export class CompiledSeries {
  readonly times: Float64Array;
  readonly values: Float64Array;
  /** prefix[i] = ∫ from times[0] to times[i], value × seconds. */
  readonly prefix: Float64Array;
  private cursor = 0;

  constructor(series: Series) {
    const n = series.length;
    this.times = new Float64Array(n);
    this.values = new Float64Array(n);
    this.prefix = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      this.times[i] = series[i][0];
      this.values[i] = series[i][1];
      if (i > 0) this.prefix[i] = this.prefix[i - 1] + ((this.values[i - 1] + this.values[i]) / 2) * (this.times[i] - this.times[i - 1]);
    }
  }

  get length(): number {
    return this.times.length;
  }

  /** Index of the last point at or before t (−1 before the first point). */
  indexAt(t: number): number {
    const times = this.times;
    const n = times.length;
    if (n === 0 || t < times[0]) return -1;
    let i = this.cursor;
    // The common case: t in the cursor's segment or the next one.
    if (times[i] <= t && (i + 1 >= n || t < times[i + 1])) return i;
    if (i + 1 < n && times[i + 1] <= t && (i + 2 >= n || t < times[i + 2])) {
      this.cursor = i + 1;
      return i + 1;
    }
    let lo = 0;
    let hi = n - 1;
    if (times[hi] <= t) lo = hi;
    else {
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (times[mid] <= t) lo = mid;
        else hi = mid;
      }
    }
    this.cursor = lo;
    return lo;
  }

  /** Value at t (as {@link seriesAt}). */
  at(t: number): number {
    const n = this.times.length;
    if (n === 0) return 0;
    const i = this.indexAt(t);
    if (i < 0) return this.values[0];
    if (i >= n - 1) return this.values[n - 1];
    const t0 = this.times[i];
    const t1 = this.times[i + 1];
    const v0 = this.values[i];
    return t1 === t0 ? this.values[i + 1] : v0 + ((this.values[i + 1] - v0) * (t - t0)) / (t1 - t0);
  }

  /** Limit of the value as time approaches t from below (at a step at t: the value before it). */
  atLeft(t: number): number {
    const times = this.times;
    const n = times.length;
    if (n === 0) return 0;
    if (t <= times[0]) return this.values[0];
    // Last point strictly before t.
    let i = this.indexAt(t);
    while (i >= 0 && times[i] >= t) i--;
    if (i >= n - 1) return this.values[n - 1];
    const t0 = times[i];
    const t1 = times[i + 1];
    const v0 = this.values[i];
    return v0 + ((this.values[i + 1] - v0) * (t - t0)) / (t1 - t0);
  }

  /** Slope at t from the right (value per second), 0 outside the points. */
  slopeAt(t: number): number {
    const i = this.indexAt(t);
    if (i < 0 || i >= this.times.length - 1) return 0;
    const dt = this.times[i + 1] - this.times[i];
    return dt > 0 ? (this.values[i + 1] - this.values[i]) / dt : 0;
  }

  /** ∫ from times[0] to t (negative before the first point, where the first value is held). */
  cumulative(t: number): number {
    const n = this.times.length;
    if (n === 0) return 0;
    const i = this.indexAt(t);
    if (i < 0) return this.values[0] * (t - this.times[0]);
    const v = this.at(t);
    return this.prefix[i] + ((this.values[i] + v) / 2) * (t - this.times[i]);
  }

  /** Exact integral over [a, b] (as {@link seriesIntegral}); 0 when b <= a. */
  integral(a: number, b: number): number {
    if (b <= a || this.times.length === 0) return 0;
    return this.cumulative(b) - this.cumulative(a);
  }
}
