// Per-job power gauges (JobTotals.lastPowerWatts) when the devices of one tick cover intervals of
// different lengths: a collector that missed a tick (nvidia-smi over its time, a failed read) gives
// an interval twice as long as the others.
import { describe, expect, it } from "vitest";
import type { DeviceReading } from "../../src/core/contracts.js";
import { attributeDevice, cpuUsages } from "../../src/core/attribution.js";
import { EnergyIntegrator } from "../../src/core/energy.js";
import { Ledger } from "../../src/core/ledger.js";

const intensity = { intensityGramsPerKwh: 100, zone: "XX", source: "fixed" };

describe("Ledger power gauges", () => {
  it("sums each device's average power over its own interval", () => {
    const integrator = new EnergyIntegrator();
    const ledger = new Ledger({ pue: 1 }, 0);
    ledger.registerJob("j", "job", {}, 0);
    const gpu = (energyJoules: number): DeviceReading => ({ deviceId: "gpu0", kind: "gpu", source: "t", method: "counter", energyJoules, idleWatts: 0 });
    const cpu = (energyJoules: number): DeviceReading => ({ deviceId: "cpu0", kind: "cpu", source: "t", method: "counter", energyJoules, idleWatts: 0 });
    // Baselines at t = 0 s.
    integrator.interval(gpu(0), 0);
    integrator.interval(cpu(0), 0);
    // t = 1 s: only the CPU answers (the GPU read was skipped).
    integrator.interval(cpu(100), 1000);
    // t = 2 s: the CPU covers [1, 2] s at 100 W, the GPU [0, 2] s at 300 W.
    ledger.beginTick();
    for (const interval of [integrator.interval(gpu(600), 2000)!, integrator.interval(cpu(200), 2000)!]) {
      const shares = attributeDevice(interval.energyJoules, interval.idleJoules, cpuUsages(new Map([["j", 1]]), 1), "attribute");
      ledger.record(interval, shares, intensity, 2000);
    }
    ledger.endTick(2000);
    const j = ledger.snapshot().jobs[0];
    expect(j.energyJoules.total).toBe(700);
    // Before the fix: (600 + 100) J over the longest interval (2 s) = 350 W total and 50 W CPU.
    expect(j.lastPowerWatts.gpu).toBeCloseTo(300, 9);
    expect(j.lastPowerWatts.cpu).toBeCloseTo(100, 9);
    expect(j.lastPowerWatts.total).toBeCloseTo(400, 9);
  });

  it("a tick that records nothing for a job sets its gauges to 0", () => {
    const ledger = new Ledger({ pue: 1 }, 0);
    ledger.registerJob("j", "job", {}, 0);
    ledger.beginTick();
    ledger.record(
      { deviceId: "cpu0", kind: "cpu", source: "t", method: "counter", energyJoules: 50, idleJoules: 0, idleOrigin: "config", durationMillis: 1000, powerWatts: 50 },
      new Map([["j", 50]]),
      intensity,
      1000,
    );
    ledger.endTick(1000);
    expect(ledger.snapshot().jobs[0].lastPowerWatts.cpu).toBeCloseTo(50, 9);
    ledger.beginTick();
    ledger.endTick(2000);
    expect(ledger.snapshot().jobs[0].lastPowerWatts).toEqual({ cpu: 0, gpu: 0, memory: 0, total: 0 });
  });
});
