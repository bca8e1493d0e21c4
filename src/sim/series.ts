/**
 * Piecewise-linear time series of `[seconds, value]` points: linear between points, held before
 * the first and after the last (DESIGN.md scenario format). Integrals are exact.
 */
export type Series = ReadonlyArray<readonly [number, number]>;

/** Value at time `t` seconds. */
export function seriesAt(series: Series, t: number): number {
  if (series.length === 0) return 0;
  if (t <= series[0][0]) return series[0][1];
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
