import { describe, expect, it } from "vitest";
import { EnergyIntegrator } from "../../src/core/energy.js";
import { Ledger } from "../../src/core/ledger.js";
import type { DeviceReading } from "../../src/core/contracts.js";

const reading = (r: Partial<DeviceReading>): DeviceReading => ({ deviceId: "d", kind: "cpu", source: "test", method: "counter", ...r });

describe("EnergyIntegrator", () => {
  it("takes counter deltas, handles a wrap with the counter's range", () => {
    const e = new EnergyIntegrator();
    expect(e.interval(reading({ energyJoules: 90, counterRangeJoules: 100, idleWatts: 10 }), 0)).toBeUndefined();
    const i = e.interval(reading({ energyJoules: 20, counterRangeJoules: 100, idleWatts: 10 }), 1000)!;
    expect(i.energyJoules).toBe(30);
    expect(i.idleJoules).toBe(10);
    expect(i.method).toBe("counter");
    expect(i.idleOrigin).toBe("reported");
  });
  it("integrates power by trapezoid and labels it power", () => {
    const e = new EnergyIntegrator();
    e.interval(reading({ method: "power", powerWatts: 100 }), 0);
    const i = e.interval(reading({ method: "power", powerWatts: 200 }), 2000)!;
    expect(i.energyJoules).toBe(300);
    expect(i.powerWatts).toBe(150);
    // No idle figure anywhere: the lowest power seen so far, as Kepler does.
    expect(i.idleOrigin).toBe("lowest-observed");
  });
  it("a counter reset without a range falls back to power for that interval, and says so", () => {
    const e = new EnergyIntegrator();
    e.interval(reading({ kind: "gpu", energyJoules: 5000, powerWatts: 100 }), 0);
    const i = e.interval(reading({ kind: "gpu", energyJoules: 10, powerWatts: 120 }), 1000)!;
    expect(i.energyJoules).toBe(120);
    expect(i.method).toBe("power");
    expect(e.notes[0]).toMatch(/counter reset/);
  });
  it("configured idle watts win", () => {
    const e = new EnergyIntegrator({ byKind: { cpu: 25 } });
    e.interval(reading({ energyJoules: 0, idleWatts: 10 }), 0);
    const i = e.interval(reading({ energyJoules: 100, idleWatts: 10 }), 2000)!;
    expect(i.idleJoules).toBe(50);
    expect(i.idleOrigin).toBe("config");
  });
});

describe("Ledger accounting (hand-computed)", () => {
  it("facility, emissions, water, cost and embodied", () => {
    const ledger = new Ledger(
      {
        pue: 1.5,
        wueLitersPerKwh: 0.5,
        waterIntensityLitersPerKwh: 2,
        pricePerKwh: 0.2,
        embodiedFor: () => ({ totalGrams: 150_000, lifetimeMillis: 4 * 365.25 * 86_400_000, source: "test" }),
      },
      0,
    );
    ledger.registerJob("j", "job", {}, 0);
    ledger.beginTick();
    // 3.6 MJ = 1 kWh on a GPU over one hour, 3/4 to j.
    const interval = { deviceId: "gpu0", kind: "gpu" as const, source: "t", method: "counter" as const, energyJoules: 3.6e6, idleJoules: 0, idleOrigin: "config", durationMillis: 3_600_000, powerWatts: 1000 };
    ledger.record(interval, new Map([["j", 2.7e6], ["system", 0.9e6]]), { intensityGramsPerKwh: 400, zone: "DE", source: "fixed" }, 3_600_000);
    ledger.endTick(3_600_000);
    const j = ledger.snapshot().jobs[0];
    expect(j.energyJoules.gpu).toBe(2.7e6);
    expect(j.facilityEnergyJoules).toBeCloseTo(4.05e6, 6);
    expect(j.emissionsGrams).toBeCloseTo(0.75 * 1.5 * 400, 9); // 450 g
    expect(j.waterLiters).toBeCloseTo(0.75 * 0.5 + 0.75 * 1.5 * 2, 9); // 2.625 L
    expect(j.cost).toBeCloseTo(0.75 * 1.5 * 0.2, 9); // 0.225
    expect(j.embodiedEmissionsGrams).toBeCloseTo(150_000 * (1 / (4 * 365.25 * 24)) * 0.75, 9); // ≈ 3.208 g
    expect(j.lastPowerWatts.gpu).toBeCloseTo(750, 9);
  });
});

describe("Ledger: per-process split method of a GPU over the run", () => {
  it("names the method of most intervals and counts each (a GPU loses its samples when its processes exit)", () => {
    const ledger = new Ledger({ pue: 1 }, 0);
    const base = { deviceId: "gpu0", kind: "gpu" as const, source: "nvml", method: "counter" as const, energyJoules: 10, idleJoules: 0, idleOrigin: "lowest-observed", durationMillis: 1000, powerWatts: 10 };
    const methods = ["utilization", "utilization", "utilization", "equal"] as const;
    methods.forEach((m, i) => {
      ledger.beginTick();
      ledger.record({ ...base, processUsageMethod: m }, new Map([["system", 10]]), { intensityGramsPerKwh: 0, zone: "x", source: "fixed" }, (i + 1) * 1000);
      ledger.endTick((i + 1) * 1000);
    });
    const d = ledger.snapshot().devices[0];
    expect(d.processUsageMethod).toBe("utilization");
    expect(d.processUsageIntervals).toEqual({ utilization: 3, equal: 1 });
  });
});
