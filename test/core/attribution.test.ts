import { describe, expect, it } from "vitest";
import { attributeDevice, cpuUsages, gpuUsages, parseVisibleDevices } from "../../src/core/attribution.js";

const obj = (m: Map<string, number>) => Object.fromEntries([...m].map(([k, v]) => [k, Math.round(v * 1e9) / 1e9]));

describe("attributeDevice (DESIGN.md rules)", () => {
  it.each([
    // E, I, usages, policy, expected
    [100, 40, [{ consumer: "a", activeWeight: 3, idleWeight: 3 }, { consumer: "b", activeWeight: 1, idleWeight: 1 }], "attribute", { a: 75, b: 25 }],
    [100, 40, [{ consumer: "a", activeWeight: 3, idleWeight: 3 }, { consumer: "b", activeWeight: 1, idleWeight: 1 }], "separate", { a: 45, b: 15, idle: 40 }],
    // GPU: active by share, idle equally among resident jobs.
    [100, 40, [{ consumer: "a", activeWeight: 0.5, idleWeight: 1 }, { consumer: "b", activeWeight: 0.1, idleWeight: 1 }], "attribute", { a: 70, b: 30 }],
    // No using process: everything to idle.
    [100, 40, [], "attribute", { idle: 100 }],
    // Energy below the idle baseline: all of it is idle part.
    [30, 40, [{ consumer: "a", activeWeight: 1, idleWeight: 1 }], "separate", { idle: 30 }],
    // Residents with zero shares: the active part is split by idle weights (equal).
    [100, 20, [{ consumer: "a", activeWeight: 0, idleWeight: 1 }, { consumer: "b", activeWeight: 0, idleWeight: 1 }], "attribute", { a: 50, b: 50 }],
  ] as const)("E=%d I=%d %j %s", (e, i, usages, policy, expected) => {
    expect(obj(attributeDevice(e, i, usages as any, policy))).toEqual(expected);
  });

  it("conserves energy exactly over awkward shares", () => {
    for (let k = 0; k < 1000; k++) {
      const e = Math.random() * 1000;
      const usages = Array.from({ length: 7 }, (_, j) => ({ consumer: `c${j}`, activeWeight: Math.random() / 3, idleWeight: Math.random() }));
      const out = attributeDevice(e, Math.random() * e, usages, k % 2 ? "attribute" : "separate");
      const sum = [...out.values()].reduce((a, b) => a + b, 0);
      expect(Math.abs(sum - e)).toBeLessThanOrEqual(e * 1e-12);
    }
  });
});

describe("cpuUsages", () => {
  it("gives the rest of the host's busy CPU to system, never negative", () => {
    expect(cpuUsages(new Map([["j", 1.5]]), 2)).toEqual([
      { consumer: "j", activeWeight: 1.5, idleWeight: 1.5 },
      { consumer: "system", activeWeight: 0.5, idleWeight: 0.5 },
    ]);
    expect(cpuUsages(new Map([["j", 1.5]]), 1.4)).toEqual([{ consumer: "j", activeWeight: 1.5, idleWeight: 1.5 }]);
  });
});

describe("gpuUsages", () => {
  const members = new Map([[100, "a"], [101, "a"], [200, "b"]]);
  it("uses per-process utilisation shares, aggregated per job; unknown PIDs go to system", () => {
    const r = gpuUsages({ processUsageMethod: "utilization", processes: [{ pid: 100, share: 0.3 }, { pid: 101, share: 0.2 }, { pid: 200, share: 0.1 }, { pid: 999, share: 0.1 }] }, members);
    expect(r.method).toBe("utilization");
    expect(r.usages).toEqual([
      { consumer: "a", activeWeight: 0.5, idleWeight: 1 },
      { consumer: "b", activeWeight: 0.1, idleWeight: 1 },
      { consumer: "system", activeWeight: 0.1, idleWeight: 1 },
    ]);
  });
  it("splits equally per resident process when the device gives no shares", () => {
    const r = gpuUsages({ processUsageMethod: "equal", processes: [{ pid: 100 }, { pid: 101 }, { pid: 200 }] }, members);
    expect(r.method).toBe("equal");
    expect(r.usages).toEqual([
      { consumer: "a", activeWeight: 2, idleWeight: 1 },
      { consumer: "b", activeWeight: 1, idleWeight: 1 },
    ]);
  });
  it("falls back to device assignment when the GPU's PIDs are not visible (container), by index or UUID", () => {
    const jobDevices = new Map([["a", ["GPU-abc"]], ["b", ["1"]]]);
    const byUuid = gpuUsages({ index: 0, uuid: "GPU-abc", processes: [{ pid: 4242 }] }, members, { isVisiblePid: () => false, jobDevices });
    expect(byUuid).toEqual({ method: "device-assignment", usages: [{ consumer: "a", activeWeight: 1, idleWeight: 1 }] });
    const byIndex = gpuUsages({ index: 1, uuid: "GPU-def", processes: [], utilization: 0.7 }, members, { jobDevices });
    expect(byIndex.method).toBe("device-assignment");
    expect(byIndex.usages.map((u) => u.consumer)).toEqual(["b"]);
    // A visible but foreign PID is not a reason to assign the device.
    const visible = gpuUsages({ index: 0, uuid: "GPU-abc", processes: [{ pid: 4242 }] }, members, { isVisiblePid: () => true, jobDevices });
    expect(visible.usages.map((u) => u.consumer)).toEqual(["system"]);
  });
  it("parses *_VISIBLE_DEVICES", () => {
    expect(parseVisibleDevices("0,2")).toEqual(["0", "2"]);
    expect(parseVisibleDevices(" GPU-1 , GPU-2 ")).toEqual(["GPU-1", "GPU-2"]);
    expect(parseVisibleDevices("none")).toEqual([]);
    expect(parseVisibleDevices(undefined)).toEqual([]);
  });
});
