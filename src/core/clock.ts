/**
 * The two clocks of a measurement. Intervals (energy = power × duration, counter deltas per
 * interval) come from a monotonic clock, which never steps; timestamps (report start/end, the
 * grid intensity's time, the simulated world's time) come from the wall clock, which NTP or a VM
 * resume may step by an hour. Injected everywhere time is read, so tests and `simulate` drive them.
 */
export interface MonitorClock {
  /** Milliseconds on a clock that never goes backwards or jumps (performance.now()). */
  monotonicMillis(): number;
  /** Epoch milliseconds (Date.now()). */
  wallMillis(): number;
}

/** The process's own clocks: performance.now() for intervals, Date.now() for timestamps. */
export const systemClock: MonitorClock = {
  monotonicMillis: () => performance.now(),
  wallMillis: () => Date.now(),
};

/** One clock for both (virtual time: `simulate`, tests that never step the wall clock). */
export function singleClock(nowMillis: () => number): MonitorClock {
  return { monotonicMillis: nowMillis, wallMillis: nowMillis };
}
