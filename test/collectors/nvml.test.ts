// The real koffi NVML collector against a stub libnvidia-ml.so.1 compiled from test/native/stub-nvml.c.
// The stub answers from a control file (STUB_NVML_SCRIPT) that each test rewrites to move time on.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createNvmlCollector } from "../../collectors/nvml.js";
import { decodeProcessRecords, sharesFromSamples } from "../../collectors/gpu-nvml-abi.js";
import type { Collector, DeviceReading } from "../../src/core/contracts.js";
import { buildStubNvml } from "../native/build-stub.mjs";

let libraryPath: string;
let dir: string;
let scriptPath: string;
let version = 0;
const open: Collector[] = [];

/** Replaces the control file atomically (new inode, so the stub always notices). */
function script(lines: string[]): void {
  const temp = join(dir, `script.${version++}.tmp`);
  writeFileSync(temp, lines.join("\n") + "\n");
  renameSync(temp, scriptPath);
}

function collector(path = libraryPath): Collector {
  const c = createNvmlCollector({ libraryPath: path });
  open.push(c);
  return c;
}

const byId = (readings: DeviceReading[], id: string): DeviceReading => {
  const r = readings.find((x) => x.deviceId === id);
  if (!r) throw new Error(`no reading for ${id}: ${JSON.stringify(readings)}`);
  return r;
};

/** Two GPUs: gpu0 has the energy counter (H100), gpu1 does not (P100). */
function twoGpus(extra: string[] = [], energyMillijoules = "1000000"): string[] {
  return [
    "count 2",
    "gpu0.name NVIDIA H100 80GB HBM3",
    "gpu0.uuid GPU-5e3a1c2b-0000-4d6e-9f00-aaaaaaaaaaaa",
    `gpu0.energy_mj ${energyMillijoules}`,
    "gpu0.power_mw 250500",
    "gpu0.util 87",
    "gpu0.mem_total 85899345920",
    "gpu1.name Tesla P100-PCIE-16GB",
    "gpu1.uuid GPU-11111111-2222-3333-4444-555555555555",
    "gpu1.energy_mj unsupported",
    "gpu1.power_mw 40125",
    "gpu1.util 5",
    ...extra,
  ];
}

beforeAll(() => {
  libraryPath = buildStubNvml();
  dir = mkdtempSync(join(tmpdir(), "powerprint-nvml-"));
  scriptPath = join(dir, "script.txt");
  process.env.STUB_NVML_SCRIPT = scriptPath;
});

afterEach(async () => {
  while (open.length > 0) await open.pop()!.close();
});

afterAll(() => {
  delete process.env.STUB_NVML_SCRIPT;
  rmSync(dir, { recursive: true, force: true });
});

describe("NVML collector on the stub library", () => {
  it("probe lists each GPU with model, UUID, method and counter support", async () => {
    script(twoGpus());
    const result = await collector().probe();
    expect(result.status).toBe("ok");
    if (result.status !== "ok") return;
    expect(result.devices).toHaveLength(2);
    const [g0, g1] = result.devices;
    expect(g0).toMatchObject({
      deviceId: "gpu0",
      kind: "gpu",
      index: 0,
      model: "NVIDIA H100 80GB HBM3",
      uuid: "GPU-5e3a1c2b-0000-4d6e-9f00-aaaaaaaaaaaa",
      method: "counter",
      energyCounter: true,
    });
    expect(g0.detail).toContain("memory 81920 MiB");
    expect(g1).toMatchObject({ deviceId: "gpu1", model: "Tesla P100-PCIE-16GB", method: "power", energyCounter: false });
    expect(g1.detail).toContain("nvmlDeviceGetTotalEnergyConsumption: NOT_SUPPORTED; integrating power");
  });

  it("reads exact joules from the counter and labels the power-only GPU `power` with a note", async () => {
    script(twoGpus());
    const c = collector();
    const first = await c.read();
    expect(first).toHaveLength(2);
    const g0 = byId(first, "gpu0");
    expect(g0).toMatchObject({ kind: "gpu", source: "nvml", index: 0, method: "counter", energyJoules: 1000, powerWatts: 250.5, utilization: 0.87, status: "ok" });
    expect(g0.note).toBeUndefined();
    const g1 = byId(first, "gpu1");
    expect(g1.method).toBe("power");
    expect(g1.energyJoules).toBeUndefined();
    expect(g1.powerWatts).toBe(40.125);
    expect(g1.utilization).toBe(0.05);
    expect(g1.note).toBe("nvmlDeviceGetTotalEnergyConsumption: NOT_SUPPORTED; integrating power");

    script(twoGpus([], "1250500"));
    expect(byId(await c.read(), "gpu0").energyJoules).toBe(1250.5);
  });

  it("passes a counter reset through raw (energy going backwards)", async () => {
    script(twoGpus([], "9000000"));
    const c = collector();
    expect(byId(await c.read(), "gpu0").energyJoules).toBe(9000);
    script(twoGpus([], "1500")); // driver reloaded: counter restarted
    const after = byId(await c.read(), "gpu0");
    expect(after.energyJoules).toBe(1.5);
    expect(after.method).toBe("counter");
  });

  it("a GPU lost mid-run keeps a `lost` reading without energy while the other goes on", async () => {
    script(twoGpus());
    const c = collector();
    expect(byId(await c.read(), "gpu1").status).toBe("ok");
    script(twoGpus(["gpu1.lost 1"], "1100000"));
    const during = await c.read();
    expect(during).toHaveLength(2);
    const lost = byId(during, "gpu1");
    expect(lost).toMatchObject({ deviceId: "gpu1", status: "lost", uuid: "GPU-11111111-2222-3333-4444-555555555555" });
    expect(lost.energyJoules).toBeUndefined();
    expect(lost.powerWatts).toBeUndefined();
    expect(lost.note).toContain("GPU_IS_LOST");
    expect(byId(during, "gpu0").energyJoules).toBe(1100);
    // Lost is final for the run, even if the driver answers again.
    script(twoGpus([], "1200000"));
    const later = await c.read();
    expect(byId(later, "gpu1").status).toBe("lost");
    expect(byId(later, "gpu0").energyJoules).toBe(1200);
    const probe = await c.probe();
    expect(probe.status === "ok" && probe.devices[1].detail).toContain("GPU_IS_LOST");
  });

  it("a GPU with neither counter nor power gives no reading (nothing to measure) but stays in probe", async () => {
    script(twoGpus(["gpu1.power_mw unsupported"]));
    const c = collector();
    const readings = await c.read();
    expect(readings.map((r) => r.deviceId)).toEqual(["gpu0"]);
    const probe = await c.probe();
    expect(probe.status === "ok" && probe.devices.map((d) => [d.deviceId, d.method, d.energyCounter])).toEqual([
      ["gpu0", "counter", true],
      ["gpu1", "power", false],
    ]);
  });

  for (const stride of [24, 32]) {
    it(`decodes compute processes written with ${stride}-byte records and shares from SM samples`, async () => {
      script(
        twoGpus([
          `proc_stride ${stride}`,
          "gpu0.procs 4242:1073741824,4343:2147483648,4444:536870912",
          "gpu0.samples 4242:60:10:1000,4343:20:5:1000,4242:30:10:2000",
        ]),
      );
      const c = collector();
      const g0 = byId(await c.read(), "gpu0");
      expect(g0.processUsageMethod).toBe("utilization");
      // Mean SM %: 4242 → (60+30)/2 = 45, 4343 → 20, 4444 → no sample; shares are 45/65 and 20/65.
      expect(g0.processes).toEqual([
        { pid: 4242, memoryBytes: 1073741824, share: 45 / 65 },
        { pid: 4343, memoryBytes: 2147483648, share: 20 / 65 },
        { pid: 4444, memoryBytes: 536870912, share: 0 },
      ]);
      // The next read asks only for samples newer than the last seen (2000 µs): none → equal split.
      const g0Next = byId(await c.read(), "gpu0");
      expect(g0Next.processUsageMethod).toBe("equal");
      expect(g0Next.processes?.map((p) => [p.pid, p.share])).toEqual([
        [4242, undefined],
        [4343, undefined],
        [4444, undefined],
      ]);
      // gpu1 has no processes: an empty list with the equal method.
      expect(byId(await c.read(), "gpu1").processes).toEqual([]);
    });
  }

  it("reports a missing library as unavailable with the reason and a fix, and read() returns nothing", async () => {
    const c = collector(join(dir, "no-such-dir", "libnvidia-ml.so.1"));
    const result = await c.probe();
    expect(result.status).toBe("unavailable");
    if (result.status !== "unavailable") return;
    expect(result.reason).toBe(`${join(dir, "no-such-dir", "libnvidia-ml.so.1")} not found (no NVIDIA driver)`);
    expect(result.fix).toContain("NVIDIA driver");
    expect(await c.read()).toEqual([]);
  });

  it("reports nvmlInit_v2 failure (driver not loaded) as unavailable", async () => {
    script(["init_error 9", "count 1"]);
    const result = await collector().probe();
    expect(result).toMatchObject({ status: "unavailable", reason: "nvmlInit_v2 failed: DRIVER_NOT_LOADED (Driver Not Loaded)" });
  });
});

describe("process record decoding", () => {
  const record = (buf: Buffer, offset: number, pid: number, memoryBytes: bigint): void => {
    buf.writeUInt32LE(pid, offset);
    buf.writeBigUInt64LE(memoryBytes, offset + 8);
    buf.writeUInt32LE(0xffffffff, offset + 16);
    buf.writeUInt32LE(0xffffffff, offset + 20);
  };

  it("one record is ambiguous and takes the preferred stride", () => {
    const buf = Buffer.alloc(64);
    record(buf, 0, 77, 1n << 30n);
    expect(decodeProcessRecords(buf, 1)).toMatchObject({ stride: 24, ambiguous: true, records: [{ pid: 77, usedGpuMemoryBytes: 2 ** 30 }] });
    expect(decodeProcessRecords(buf, 1, { preferredStride: 32 }).stride).toBe(32);
  });

  it("NVML_VALUE_NOT_AVAILABLE memory is absent, not a huge number", () => {
    const buf = Buffer.alloc(64);
    record(buf, 0, 77, 0xffffffffffffffffn);
    record(buf, 24, 78, 0xffffffffffffffffn);
    const decoded = decodeProcessRecords(buf, 2);
    expect(decoded.stride).toBe(24);
    expect(decoded.records).toEqual([{ pid: 77 }, { pid: 78 }]);
  });

  it("shares are undefined when every sampled process had 0 % SM", () => {
    expect(sharesFromSamples([{ pid: 1, timeStampMicros: 1n, smPercent: 0, memPercent: 0 }])).toBeUndefined();
  });
});
