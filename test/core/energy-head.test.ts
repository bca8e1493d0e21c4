// The head of a run (from the accounting origin, the spawn, to a device's first reading) in
// EnergyIntegrator: it is an interval of its own, returned with the first reading, so the run's
// first interval carries the devices' power. Counters read at the origin too count it exactly (a
// wrap included), power and model devices hold their first power back over it, and a counter
// read only later starts at its first read and says so.
import { describe, expect, it } from "vitest";
import { EnergyIntegrator } from "../../src/core/energy.js";
import type { DeviceReading } from "../../src/core/contracts.js";

const counter = (energyJoules: number, extra: Partial<DeviceReading> = {}): DeviceReading => ({ deviceId: "rapl:package-0", kind: "cpu", source: "rapl", method: "counter", energyJoules, ...extra });
const power = (w: number, extra: Partial<DeviceReading> = {}): DeviceReading => ({ deviceId: "gpu0", kind: "gpu", source: "nvidia-smi", method: "power", powerWatts: w, ...extra });

describe("EnergyIntegrator: the head of a run", () => {
  it("a counter also read at the origin: the first reading gives origin → first reading, then plain deltas", () => {
    const e = new EnergyIntegrator();
    // Origin at t=1000 ms (10 J), first reading at t=1300 (13 J), second at t=2300 (23 J).
    const head = e.interval(counter(13, { originEnergyJoules: 10 }), 1300, 1000)!;
    expect(head.energyJoules).toBeCloseTo(3, 12);
    expect(head.durationMillis).toBe(300);
    expect(head.powerWatts).toBeCloseTo(10, 9);
    expect(head.method).toBe("counter");
    const next = e.interval(counter(23), 2300)!;
    expect(next.energyJoules).toBeCloseTo(10, 12);
    expect(next.durationMillis).toBe(1000);
    expect(e.notes).toEqual([]);
    expect(e.headNotes).toEqual([]);
  });

  it("a wrap between the origin and the first reading is handled with the counter's range", () => {
    const e = new EnergyIntegrator();
    expect(e.interval(counter(2, { originEnergyJoules: 99, counterRangeJoules: 100 }), 500, 0)!.energyJoules).toBeCloseTo(3, 12);
    expect(e.interval(counter(4, { counterRangeJoules: 100 }), 1500)!.energyJoules).toBeCloseTo(2, 12);
  });

  it("a counter read only after the origin starts at its first read, and a head note says how late", () => {
    const e = new EnergyIntegrator();
    expect(e.interval(counter(13), 1250, 1000)).toBeUndefined();
    expect(e.headNotes).toEqual(["rapl:package-0: energy counter first read 250 ms after the spawn; the energy before it is not counted"]);
    expect(e.notes).toEqual([]);
    const first = e.interval(counter(23), 2250)!;
    expect(first.energyJoules).toBeCloseTo(10, 12);
    expect(first.durationMillis).toBe(1000);
  });

  it("a power device: its first power held back over the head, as an interval of its own", () => {
    const e = new EnergyIntegrator();
    const head = e.interval(power(100), 1500, 1000)!;
    // 0.5 s at 100 W.
    expect(head.energyJoules).toBeCloseTo(50, 9);
    expect(head.durationMillis).toBe(500);
    expect(head.method).toBe("power");
    // Then 1 s at the trapezoid 150 W.
    const next = e.interval(power(200), 2500)!;
    expect(next.energyJoules).toBeCloseTo(150, 9);
    expect(next.durationMillis).toBe(1000);
  });

  it("a model device (constant memory power): the head holds that power; its idle part as configured", () => {
    const e = new EnergyIntegrator({ byKind: { memory: 2 } });
    const mem: DeviceReading = { deviceId: "mem-model", kind: "memory", source: "cpu-model", method: "model", powerWatts: 9.5 };
    const head = e.interval(mem, 1080, 1000)!;
    expect(head.energyJoules).toBeCloseTo(9.5 * 0.08, 12);
    expect(head.idleJoules).toBeCloseTo(2 * 0.08, 12);
    expect(head.method).toBe("model");
  });

  it("no origin (the agent), or a first reading at the origin itself: the baseline only", () => {
    const e = new EnergyIntegrator();
    expect(e.interval(power(100), 1500)).toBeUndefined();
    expect(e.interval(power(100, { deviceId: "gpu1" }), 1000, 1000)).toBeUndefined();
    expect(e.headNotes).toEqual([]);
  });
});
