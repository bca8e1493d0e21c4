// MIG through the real koffi NVML collector and the stub libnvidia-ml.so.1 (test/native/stub-nvml.c):
// instances enumerated with their ids, slices, SMs, names and UUIDs; processes mapped to instances
// (their own lists, and the GPU's list by the records' instance ids); GPM SM utilisation per GPU
// instance between two reads; a MIG-capable GPU with MIG off read as a whole GPU.
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createNvmlCollector } from "../../collectors/nvml.js";
import type { Collector, DeviceReading } from "../../src/core/contracts.js";
import { buildStubNvml } from "../native/build-stub.mjs";

let libraryPath: string;
let dir: string;
let scriptPath: string;
let version = 0;
const open: Collector[] = [];

function script(lines: string[]): void {
  const temp = join(dir, `script.${version++}.tmp`);
  writeFileSync(temp, lines.join("\n") + "\n");
  renameSync(temp, scriptPath);
}

function collector(): Collector {
  const c = createNvmlCollector({ libraryPath });
  open.push(c);
  return c;
}

const byId = (readings: DeviceReading[], id: string): DeviceReading => {
  const r = readings.find((x) => x.deviceId === id);
  if (!r) throw new Error(`no reading for ${id}`);
  return r;
};

/**
 * gpu0: an H100 in MIG mode with 3g (GI 1, 60 SMs), 2g (GI 5) and 2g (GI 6) instances (32 SMs
 * each); gpu1: an A100 that could run MIG but has it off, with one process.
 */
function migGpus(o: { clockMillis: number; busyMillis: [number, number, number]; stride?: number; gpm?: boolean; extra?: string[] }): string[] {
  return [
    "count 2",
    `proc_stride ${o.stride ?? 24}`,
    "gpu0.name NVIDIA H100 80GB HBM3",
    "gpu0.uuid GPU-aaaaaaaa-0000-4000-8000-000000000000",
    "gpu0.energy_mj 5000000",
    "gpu0.power_mw 400000",
    "gpu0.minor 3",
    "gpu0.mig 1",
    "gpu0.total_slices 7",
    `gpu0.gpm ${o.gpm === false ? 0 : 1}`,
    `gpu0.gpm_clock_ms ${o.clockMillis}`,
    `gpu0.gi1.sm_busy_ms ${o.busyMillis[0]}`,
    `gpu0.gi5.sm_busy_ms ${o.busyMillis[1]}`,
    `gpu0.gi6.sm_busy_ms ${o.busyMillis[2]}`,
    "gpu0.mig0.gi 1",
    "gpu0.mig0.ci 0",
    "gpu0.mig0.gi_slices 3",
    "gpu0.mig0.ci_slices 3",
    "gpu0.mig0.sms 60",
    "gpu0.mig0.name NVIDIA H100 80GB HBM3 MIG 3g.40gb",
    "gpu0.mig0.uuid MIG-11111111-0000-4000-8000-000000000000",
    "gpu0.mig0.procs 4100:2147483648",
    "gpu0.mig1.gi 5",
    "gpu0.mig1.ci 0",
    "gpu0.mig1.gi_slices 2",
    "gpu0.mig1.ci_slices 2",
    "gpu0.mig1.sms 32",
    "gpu0.mig1.name NVIDIA H100 80GB HBM3 MIG 2g.20gb",
    "gpu0.mig1.uuid MIG-55555555-0000-4000-8000-000000000000",
    "gpu0.mig1.procs 4200:1073741824",
    "gpu0.mig1.parent_only_procs 4201:536870912",
    // MIG device index 2 is free: the next one is at 3.
    "gpu0.mig3.gi 6",
    "gpu0.mig3.ci 0",
    "gpu0.mig3.gi_slices 2",
    "gpu0.mig3.ci_slices 2",
    "gpu0.mig3.sms 32",
    "gpu0.mig3.name NVIDIA H100 80GB HBM3 MIG 2g.20gb",
    "gpu0.mig3.uuid MIG-66666666-0000-4000-8000-000000000000",
    "gpu1.name NVIDIA A100-SXM4-80GB",
    "gpu1.energy_mj 1000000",
    "gpu1.mig 0",
    "gpu1.util 50",
    "gpu1.procs 4300:1073741824",
    ...(o.extra ?? []),
  ];
}

beforeAll(() => {
  libraryPath = buildStubNvml();
  dir = mkdtempSync(join(tmpdir(), "powerprint-nvml-mig-"));
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

describe("NVML collector: MIG", () => {
  for (const stride of [24, 32]) {
    it(`lists the instances of a MIG GPU with ids, slices, SMs, names, UUIDs and processes (${stride}-byte records)`, async () => {
      script(migGpus({ clockMillis: 1000, busyMillis: [0, 0, 0], stride }));
      const c = collector();
      const [gpu0, gpu1] = await c.read();
      expect(gpu0).toMatchObject({ deviceId: "gpu0", minorNumber: 3, energyJoules: 5000, processes: [], processUsageMethod: "equal" });
      expect(gpu0.utilization).toBeUndefined(); // NVML: not supported on a MIG GPU
      expect(gpu0.mig?.totalSlices).toBe(7);
      expect(gpu0.mig?.instances).toEqual([
        {
          deviceId: "gpu0/gi1/ci0",
          gpuInstanceId: 1,
          computeInstanceId: 0,
          sliceCount: 3,
          multiprocessorCount: 60,
          model: "NVIDIA H100 80GB HBM3 MIG 3g.40gb",
          uuid: "MIG-11111111-0000-4000-8000-000000000000",
          processes: [{ pid: 4100, memoryBytes: 2147483648 }],
        },
        {
          deviceId: "gpu0/gi5/ci0",
          gpuInstanceId: 5,
          computeInstanceId: 0,
          sliceCount: 2,
          multiprocessorCount: 32,
          model: "NVIDIA H100 80GB HBM3 MIG 2g.20gb",
          uuid: "MIG-55555555-0000-4000-8000-000000000000",
          // 4201 only in the GPU's list, placed by its record's GPU/compute instance ids.
          processes: [
            { pid: 4200, memoryBytes: 1073741824 },
            { pid: 4201, memoryBytes: 536870912 },
          ],
        },
        {
          deviceId: "gpu0/gi6/ci0",
          gpuInstanceId: 6,
          computeInstanceId: 0,
          sliceCount: 2,
          multiprocessorCount: 32,
          model: "NVIDIA H100 80GB HBM3 MIG 2g.20gb",
          uuid: "MIG-66666666-0000-4000-8000-000000000000",
          processes: [],
        },
      ]);
      const probe = await c.probe();
      expect(probe.status === "ok" && probe.devices.map((d) => d.detail)).toEqual([
        expect.stringContaining("MIG on: each instance is a device of its own (the GPU's energy split by slices and GPM SM activity, 7 slices)"),
        expect.not.stringContaining("MIG"),
      ]);
      // The MIG-off A100 is a whole GPU: no partition, its process on it.
      expect(gpu1.mig).toBeUndefined();
      expect(gpu1).toMatchObject({ deviceId: "gpu1", utilization: 0.5, processes: [{ pid: 4300, memoryBytes: 1073741824 }] });
    });
  }

  it("GPM: each GPU instance's SM utilisation between two reads; none on the first read", async () => {
    script(migGpus({ clockMillis: 1000, busyMillis: [100, 100, 100] }));
    const c = collector();
    const first = byId(await c.read(), "gpu0");
    expect(first.mig?.instances.map((i) => i.activity)).toEqual([undefined, undefined, undefined]);
    // 2000 ms later: GI 1 busy 1000 ms (50 %), GI 5 2000 ms (100 %), GI 6 idle.
    script(migGpus({ clockMillis: 3000, busyMillis: [1100, 2100, 100] }));
    const second = byId(await c.read(), "gpu0");
    expect(second.mig?.instances.map((i) => [i.deviceId, i.activity])).toEqual([
      ["gpu0/gi1/ci0", 0.5],
      ["gpu0/gi5/ci0", 1],
      ["gpu0/gi6/ci0", 0],
    ]);
    expect(second.note).toBeUndefined();
  });

  it("without GPM (A100) no activity, said once in the note", async () => {
    script(migGpus({ clockMillis: 1000, busyMillis: [0, 0, 0], gpm: false }));
    const c = collector();
    await c.read();
    script(migGpus({ clockMillis: 3000, busyMillis: [500, 500, 500], gpm: false }));
    const gpu0 = byId(await c.read(), "gpu0");
    expect(gpu0.mig?.instances.every((i) => i.activity === undefined)).toBe(true);
    expect(gpu0.note).toContain("no GPM on this GPU");
  });

  it("the H200 MIG capture's layout (nvidia-smi -L and -q): compute instances of one GPU instance share its slices; processes land in theirs", async () => {
    const capture = readFileSync(fileURLToPath(new URL("../fixtures/nvidia-smi-text/gpuexporter__h200-mig__590.48.01__list-and-load-query.txt", import.meta.url)), "utf8");
    const layout = h200Layout(capture);
    expect(layout.devices).toHaveLength(5);
    const lines = ["count 1", "gpu0.name NVIDIA H200", "gpu0.energy_mj 1000", "gpu0.mig 1", "gpu0.total_slices 7", "gpu0.procs 4999:1048576"];
    layout.devices.forEach((d, j) => {
      const procs = layout.processes.filter((p) => p.gi === d.gi && p.ci === d.ci).map((p) => `${p.pid}:${p.mib * 2 ** 20}`);
      lines.push(
        `gpu0.mig${j}.gi ${d.gi}`,
        `gpu0.mig${j}.ci ${d.ci}`,
        `gpu0.mig${j}.gi_slices ${d.giSlices}`,
        `gpu0.mig${j}.ci_slices ${d.ciSlices}`,
        `gpu0.mig${j}.sms ${d.sms}`,
        `gpu0.mig${j}.name NVIDIA H200 MIG ${d.profile}`,
        ...(procs.length > 0 ? [`gpu0.mig${j}.procs ${procs.join(",")}`] : []),
      );
    });
    script(lines);
    const [gpu0] = await collector().read();
    // GI 2 (3g) holds a 1c and a 2c compute instance: 1 and 2 of its 3 slices; GI 3 2g; GI 9, 10 1g: 7 in all.
    expect(gpu0.mig?.instances.map((i) => [i.deviceId, i.sliceCount, i.multiprocessorCount, i.model])).toEqual([
      ["gpu0/gi2/ci0", 1, 16, "NVIDIA H200 MIG 1c.3g.71gb"],
      ["gpu0/gi2/ci1", 2, 32, "NVIDIA H200 MIG 2c.3g.71gb"],
      ["gpu0/gi3/ci0", 2, 32, "NVIDIA H200 MIG 2g.35gb"],
      ["gpu0/gi9/ci0", 1, 16, "NVIDIA H200 MIG 1g.18gb"],
      ["gpu0/gi10/ci0", 1, 16, "NVIDIA H200 MIG 1g.18gb"],
    ]);
    expect(gpu0.mig?.instances.reduce((a, i) => a + i.sliceCount, 0)).toBe(7);
    expect(gpu0.mig?.instances[1].processes.map((p) => p.pid)).toEqual([12249, 12250, 12267]);
    expect(gpu0.mig?.instances.filter((i) => i.processes.length > 0).map((i) => i.deviceId)).toEqual(["gpu0/gi2/ci1"]);
    // A process NVML lists on the GPU outside every instance stays on the GPU.
    expect(gpu0.processes).toEqual([{ pid: 4999, memoryBytes: 1048576 }]);
  });
});

/**
 * The MIG layout of the captured H200: profiles from `nvidia-smi -L` ("MIG 2c.3g.71gb Device 1"),
 * GPU/compute instance ids and SMs from the `-q` "MIG Device" blocks (same order), processes from
 * its "Processes" block.
 */
function h200Layout(text: string) {
  const profiles = [...text.matchAll(/^\s+MIG (\S+)\s+Device\s+(\d+):/gm)].map((m) => m[1]);
  const blocks = text.split(/^\s+MIG Device$/m).slice(1);
  const field = (block: string, name: string) => Number(new RegExp(`${name}\\s+:\\s+(\\d+)`).exec(block)![1]);
  const devices = blocks.map((block, j) => {
    // "2c.3g.71gb": 2 of the 3 slices of a 3g GPU instance; "2g.35gb": a whole 2g.
    const m = /^(?:(\d+)c\.)?(\d+)g\./.exec(profiles[j])!;
    return { profile: profiles[j], gi: field(block, "GPU Instance ID"), ci: field(block, "Compute Instance ID"), sms: field(block, "Multiprocessor count"), giSlices: Number(m[2]), ciSlices: Number(m[1] ?? m[2]) };
  });
  const processes = [...text.matchAll(/GPU instance ID\s+:\s+(\d+)\s+Compute instance ID\s+:\s+(\d+)\s+Process ID\s+:\s+(\d+)[\s\S]*?Used GPU Memory\s+:\s+(\d+) MiB/g)].map((m) => ({
    gi: Number(m[1]),
    ci: Number(m[2]),
    pid: Number(m[3]),
    mib: Number(m[4]),
  }));
  return { devices, processes };
}
