/**
 * Deltas of cumulative hardware energy counters (RAPL `energy_uj`, NVML total energy), with
 * wrap-around handling. Pure functions: the energy integrator (src/core/energy.ts) calls them.
 */

import { MICROJOULES_PER_JOULE } from "../units.js";

/** What happened to the counter between two readings. */
export type CounterEvent =
  | "none" // counter went forward (or stood still)
  | "wrap" // counter went backwards and a wrap range is known: wrapped once
  | "reset"; // counter went backwards and no usable wrap range: reset (driver reload) or unknown wrap

/** Result of {@link counterDelta}. */
export interface CounterDelta {
  /**
   * Energy between the two readings, joules (>= 0). For a "reset" it is undefined: the energy
   * spent between the previous reading and the reset is unknown, and the caller must say how it
   * filled the gap (power integration, or 0 J with a note).
   */
  energyJoules: number | undefined;
  event: CounterEvent;
}

// Counters up to 2^53 µJ (~9 GJ) are exact in a double; RAPL ranges are ~2.6e11 µJ.
// A joule value that came from an integer of µJ divided by 1e6 is within a few 1e-5 µJ of that
// integer after multiplying back; anything further away did not come from a µJ counter.
function asMicrojoules(energyJoules: number): number | undefined {
  const microjoules = energyJoules * MICROJOULES_PER_JOULE;
  const rounded = Math.round(microjoules);
  const toleranceMicrojoules = Math.max(1e-6, Math.abs(microjoules) * 1e-14);
  if (!Number.isSafeInteger(rounded)) return undefined;
  return Math.abs(microjoules - rounded) <= toleranceMicrojoules ? rounded : undefined;
}

function checkCounter(name: string, energyJoules: number): void {
  if (!Number.isFinite(energyJoules) || energyJoules < 0) {
    throw new RangeError(`${name} must be a finite, non-negative number of joules (got ${energyJoules})`);
  }
}

/**
 * Energy between two readings of a cumulative counter, joules, and whether it wrapped.
 *
 * - current >= previous: current − previous.
 * - current < previous and `rangeJoules` > 0 with previous <= range: one wrap, range − previous +
 *   current. RAPL's `max_energy_range_uj` is (2^32 − 1) energy units, so a wrap is counted one
 *   energy unit (~15–61 µJ) short; more than one wrap per interval cannot be seen (a RAPL package
 *   counter at 250 W wraps every ~17 minutes, so intervals must stay well below that).
 * - current < previous otherwise: "reset", energy undefined (see {@link CounterDelta}).
 *
 * Exactness: when all inputs are whole microjoules (RAPL, NVML mJ), the arithmetic is done on
 * integers of µJ and the result is one correctly rounded division, so a delta of 1 328 850 µJ is
 * exactly `1.32885`. Other inputs use plain floating point.
 *
 * @param previousJoules earlier counter value, joules (>= 0)
 * @param currentJoules later counter value, joules (>= 0)
 * @param rangeJoules the value after which the counter wraps to 0, joules (absent: no wrap expected)
 * @throws RangeError for negative or non-finite inputs (a programming error, not a device state)
 */
export function counterDelta(previousJoules: number, currentJoules: number, rangeJoules?: number): CounterDelta {
  checkCounter("previousJoules", previousJoules);
  checkCounter("currentJoules", currentJoules);
  if (rangeJoules !== undefined) checkCounter("rangeJoules", rangeJoules);
  const usableRange = rangeJoules !== undefined && rangeJoules > 0 && previousJoules <= rangeJoules;

  const previousMicro = asMicrojoules(previousJoules);
  const currentMicro = asMicrojoules(currentJoules);
  const rangeMicro = rangeJoules === undefined ? 0 : asMicrojoules(rangeJoules);
  if (previousMicro !== undefined && currentMicro !== undefined && rangeMicro !== undefined) {
    if (currentMicro >= previousMicro) {
      return { energyJoules: (currentMicro - previousMicro) / MICROJOULES_PER_JOULE, event: "none" };
    }
    if (usableRange) {
      return { energyJoules: (rangeMicro - previousMicro + currentMicro) / MICROJOULES_PER_JOULE, event: "wrap" };
    }
    return { energyJoules: undefined, event: "reset" };
  }
  if (currentJoules >= previousJoules) return { energyJoules: currentJoules - previousJoules, event: "none" };
  if (usableRange) return { energyJoules: (rangeJoules as number) - previousJoules + currentJoules, event: "wrap" };
  return { energyJoules: undefined, event: "reset" };
}

/**
 * Energy between two readings of a cumulative counter, joules; undefined when the counter went
 * backwards with no usable wrap range (a reset: the caller falls back loudly). See
 * {@link counterDelta} for the rules and the exactness guarantee.
 */
export function counterDeltaJoules(previousJoules: number, currentJoules: number, rangeJoules?: number): number | undefined {
  return counterDelta(previousJoules, currentJoules, rangeJoules).energyJoules;
}
