// The head of a run (from the accounting origin, the spawn, to a device's first reading) in
// EnergyIntegrator: counters read at the origin too count it exactly (a wrap included), power and
// model devices hold their first power back over it, and a counter read only later starts at its
// first read and says so.
import { describe, expect, it } from "vitest";
import { EnergyIntegrator } from "../../src/core/energy.js";
import type { DeviceReading } from "../../src/core/contracts.js";

const counter = (energyJoules: number, extra: Partial<DeviceReading> = {}): DeviceReading => ({ deviceId: "rapl:package-0", kind: "cpu", source: "rapl", method: "counter", energyJoules, ...extra });

describe("EnergyIntegrator: the head of a run", () => {
  it("a counter also read at the origin: the first interval holds origin → second reading, and spans it", () => {
    const e = new EnergyIntegrator();
    // Origin at t=1000 ms (10 J), first reading at t=1300 (13 J), second at t=2300 (23 J).
    expect(e.interval(counter(13, { originEnergyJoules: 10 }), 1300, 1000)).toBeUndefined();
    const first = e.interval(counter(23), 2300)!;
    expect(first.energyJoules).toBeCloseTo(13, 12);
    expect(first.durationMillis).toBe(1300);
    expect(first.method).toBe("counter");
    // Later intervals are plain deltas.
    expect(e.interval(counter(30), 3300)!.energyJoules).toBeCloseTo(7, 12);
    expect(e.notes).toEqual([]);
  });

  it("a wrap between the origin and the first reading is handled with the counter's range", () => {
    const e = new EnergyIntegrator();
    e.interval(counter(2, { originEnergyJoules: 99, counterRangeJoules: 100 }), 500, 0);
    expect(e.interval(counter(4, { counterRangeJoules: 100 }), 1500)!.energyJoules).toBeCloseTo(5, 12);
  });

  it("a counter read only after the origin starts at its first read, and a note says how late", () => {
    const e = new EnergyIntegrator();
    e.interval(counter(13), 1250, 1000);
    expect(e.notes).toEqual(["rapl:package-0: energy counter first read 250 ms after the spawn; the energy before it is not counted"]);
    const first = e.interval(counter(23), 2250)!;
    expect(first.energyJoules).toBeCloseTo(10, 12);
    expect(first.durationMillis).toBe(1000);
  });

  it("a power device holds its first power back over the head (unchanged)", () => {
    const e = new EnergyIntegrator();
    const power = (w: number): DeviceReading => ({ deviceId: "gpu0", kind: "gpu", source: "nvidia-smi", method: "power", powerWatts: w });
    e.interval(power(100), 1500, 1000);
    const first = e.interval(power(200), 2500)!;
    // 0.5 s at 100 W + 1 s at the trapezoid 150 W.
    expect(first.energyJoules).toBeCloseTo(200, 9);
    expect(first.durationMillis).toBe(1500);
  });
});
