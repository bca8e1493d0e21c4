// The pure split of a GPU reading's interval into devices (src/core/gpu-split.ts): MIG instances by
// slices and GPM activity, the GPU's unallocated remainder, a sidecar's estimated share. Tables of
// input → joules, each computed by hand in the comment.
import { describe, expect, it } from "vitest";
import { devicePieces, noteDevices, splitMig } from "../../src/core/gpu-split.js";
import type { DeviceReading, MigInstance } from "../../src/core/contracts.js";
import type { DeviceInterval } from "../../src/core/types.js";

const instance = (gi: number, sliceCount: number, sms: number, activity?: number): MigInstance => ({
  deviceId: `gpu0/gi${gi}/ci0`,
  gpuInstanceId: gi,
  computeInstanceId: 0,
  sliceCount,
  multiprocessorCount: sms,
  ...(activity !== undefined ? { activity } : {}),
  processes: [],
});

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe("splitMig", () => {
  it("3g/2g/2g on 7 slices with GPM activity: idle by slices, active by activity × SMs", () => {
    // E 1000 J, idle 200 J. Idle: 200 × 3/7, 2/7, 2/7. Active 800 by 0.5×60 = 30, 1×32 = 32, 0×32 = 0.
    const s = splitMig(1000, 200, { totalSlices: 7, instances: [instance(1, 3, 60, 0.5), instance(5, 2, 32, 1), instance(6, 2, 32, 0)] });
    expect(s.method).toBe("activity");
    expect(s.instanceIdleJoules[0]).toBeCloseTo((200 * 3) / 7, 12);
    expect(s.instanceJoules[0]).toBeCloseTo((200 * 3) / 7 + (800 * 30) / 62, 9);
    expect(s.instanceJoules[1]).toBeCloseTo((200 * 2) / 7 + (800 * 32) / 62, 9);
    expect(s.instanceJoules[2]).toBeCloseTo((200 * 2) / 7, 9);
    expect(s.remainderJoules).toBe(0);
    expect(sum(s.instanceJoules) + s.remainderJoules).toBeCloseTo(1000, 10);
  });

  it("no activity on some instance: the active part by slices too", () => {
    const s = splitMig(1000, 200, { totalSlices: 7, instances: [instance(1, 3, 60, 0.5), instance(5, 2, 32), instance(6, 2, 32, 0)] });
    expect(s.method).toBe("slices");
    expect(s.instanceJoules.map((j) => j / 1000)).toEqual([3 / 7, 2 / 7, 2 / 7].map((x) => expect.closeTo(x, 12)));
  });

  it("every instance idle by GPM: the active part by slices (said: slices)", () => {
    const s = splitMig(700, 100, { totalSlices: 7, instances: [instance(1, 3, 60, 0), instance(5, 2, 32, 0), instance(6, 2, 32, 0)] });
    expect(s.method).toBe("slices");
    expect(s.instanceJoules).toEqual([300, 200, 200].map((x) => expect.closeTo(x, 9)));
  });

  it("unallocated slices keep their idle share on the GPU; the active part goes to the instances", () => {
    // 3g + 2g of 7: idle 200 × 3/7, 2/7, remainder 2/7; active 800 × 3/5, 2/5.
    const s = splitMig(1000, 200, { totalSlices: 7, instances: [instance(1, 3, 60), instance(5, 2, 32)] });
    expect(s.instanceJoules[0]).toBeCloseTo((200 * 3) / 7 + 480, 9);
    expect(s.instanceJoules[1]).toBeCloseTo((200 * 2) / 7 + 320, 9);
    expect(s.remainderJoules).toBeCloseTo((200 * 2) / 7, 12);
    expect(sum(s.instanceJoules) + s.remainderJoules).toBeCloseTo(1000, 10);
  });

  it("energy below the idle baseline is all idle; an unknown total counts the instances' slices", () => {
    const s = splitMig(50, 200, { instances: [instance(1, 3, 60, 1), instance(5, 2, 32, 1)] });
    expect(s.instanceJoules).toEqual([30, 20].map((x) => expect.closeTo(x, 12)));
    expect(s.remainderJoules).toBe(0);
  });
});

describe("devicePieces", () => {
  const interval: DeviceInterval = {
    deviceId: "gpu0",
    kind: "gpu",
    source: "nvml",
    model: "NVIDIA H100 80GB HBM3",
    method: "counter",
    energyJoules: 1000,
    idleJoules: 200,
    idleOrigin: "config",
    durationMillis: 2000,
    powerWatts: 500,
  };
  const base: DeviceReading = { deviceId: "gpu0", kind: "gpu", source: "nvml", method: "counter", index: 0, processes: [{ pid: 9 }] };

  it("a MIG GPU: itself with its whole energy but only the remainder to attribute, and one device per instance", () => {
    const mig = { totalSlices: 7, instances: [instance(1, 3, 60), instance(5, 2, 32)] };
    const pieces = devicePieces({ ...base, mig }, interval);
    expect(pieces.map((p) => [p.interval.deviceId, p.interval.parentId])).toEqual([
      ["gpu0", undefined],
      ["gpu0/gi1/ci0", "gpu0"],
      ["gpu0/gi5/ci0", "gpu0"],
    ]);
    expect(pieces[0].interval.energyJoules).toBe(1000);
    expect(pieces[0].attributeJoules).toBeCloseTo(400 / 7, 12);
    expect(pieces[0].usage.processes).toEqual([{ pid: 9 }]);
    expect(pieces[1].interval).toMatchObject({ partitionMethod: "slices", model: "NVIDIA H100 80GB HBM3", durationMillis: 2000 });
    expect(pieces[1].interval.deviceFraction).toBeCloseTo(pieces[1].interval.energyJoules / 1000, 15);
    expect(pieces[1].interval.powerWatts).toBeCloseTo(pieces[1].interval.energyJoules / 2, 12);
    expect(sum(pieces.map((p) => p.attributeJoules))).toBeCloseTo(1000, 10);
  });

  it("partial (pod mode): only the instances, no remainder for the GPU", () => {
    const pieces = devicePieces({ ...base, mig: { totalSlices: 7, instances: [instance(5, 2, 32)], partial: true } }, interval);
    expect(pieces.map((p) => p.interval.deviceId)).toEqual(["gpu0/gi5/ci0"]);
  });

  it("an estimated share scales energy, idle, power and the embodied fraction, and labels the device shared", () => {
    const [piece] = devicePieces({ ...base, estimatedShare: { fraction: 0.25, note: "n" } }, interval);
    expect(piece.interval).toMatchObject({ energyJoules: 250, idleJoules: 50, powerWatts: 125, deviceFraction: 0.25, shared: true, processUsageMethod: "estimate" });
    expect(piece.attributeJoules).toBe(250);
    expect(piece.attributeIdleJoules).toBe(50);
  });

  it("a reading's note goes on the GPU, or on the instances an observer of only some of them records", () => {
    const mig = { totalSlices: 7, instances: [instance(1, 3, 60), instance(5, 2, 32)] };
    expect(noteDevices({ ...base, mig })).toEqual(["gpu0"]);
    expect(noteDevices({ ...base, mig: { ...mig, partial: true } })).toEqual(["gpu0/gi1/ci0", "gpu0/gi5/ci0"]);
  });

  it("anything else is one piece, unchanged", () => {
    const cpu: DeviceReading = { deviceId: "rapl:package-0", kind: "cpu", source: "rapl", method: "counter" };
    const [piece] = devicePieces(cpu, { ...interval, deviceId: "rapl:package-0", kind: "cpu" });
    expect(piece.attributeJoules).toBe(1000);
    expect(piece.interval.shared).toBeUndefined();
  });
});
