import { describe, expect, it } from "vitest";
import { counterDelta, counterDeltaJoules } from "../../src/core/counter.js";

// RAPL package range from the Kepler/procfs fixtures (max_energy_range_uj 262143328850).
const PACKAGE_RANGE_J = 262143.32885;

describe("counterDelta", () => {
  const cases: Array<[string, number, number, number | undefined, number | undefined, string]> = [
    // name, previous J, current J, range J, expected J, event
    ["forward", 240422.366267, 240423.366267, PACKAGE_RANGE_J, 1, "none"],
    ["forward, µJ-exact", 206999.074695, 240422.366267, PACKAGE_RANGE_J, 33423.291572, "none"],
    ["standing still", 5.5, 5.5, undefined, 0, "none"],
    ["wrap mid-run", 262143.0, 1.0, PACKAGE_RANGE_J, 1.32885, "wrap"],
    ["wrap from the top", PACKAGE_RANGE_J, 0.000001, PACKAGE_RANGE_J, 0.000001, "wrap"],
    ["dram range wrap", 65712.0, 0.5, 65712.999613, 1.499613, "wrap"],
    ["backwards, no range: reset", 100, 3, undefined, undefined, "reset"],
    ["backwards, range 0: reset", 100, 3, 0, undefined, "reset"],
    ["previous above range: reset", 300000, 3, PACKAGE_RANGE_J, undefined, "reset"],
    ["non-µJ values use floats", 0.1234567891, 0.2234567891, undefined, 0.2234567891 - 0.1234567891, "none"],
  ];
  it.each(cases)("%s", (_name, previous, current, range, expected, event) => {
    const delta = counterDelta(previous, current, range);
    expect(delta.event).toBe(event);
    expect(delta.energyJoules).toBe(expected);
    expect(counterDeltaJoules(previous, current, range)).toBe(expected);
  });

  it("is exact where naive float subtraction is not", () => {
    // 240422.366267 - 206999.074695 in doubles is 33423.29157200002; the µJ path gives the literal.
    expect(240422.366267 - 206999.074695).not.toBe(33423.291572);
    expect(counterDeltaJoules(206999.074695, 240422.366267)).toBe(33423.291572);
  });

  it("rejects negative and non-finite counters", () => {
    expect(() => counterDelta(-1, 2)).toThrow(RangeError);
    expect(() => counterDelta(1, Number.NaN)).toThrow(RangeError);
    expect(() => counterDelta(1, 2, Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });
});
