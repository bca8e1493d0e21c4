// nvidia-smi collector: the pure XML parser on every captured file, and the collector against a
// fake `nvidia-smi` shell script (on PATH, and by path) that replays those files.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNvidiaSmiCollector, nvidiaSmiReadings, parseNvidiaSmiXml } from "../../collectors/nvidia-smi.js";

const fixtures = fileURLToPath(new URL("../fixtures/nvidia-smi/", import.meta.url));
const MiB = 2 ** 20;

type Expected = {
  driver?: string;
  model: string;
  uuidPrefix: string;
  /** [field, watts] or undefined when the file says N/A. */
  power?: [string, number];
  memoryMiB: [number, number];
  utilization?: number;
  processes: [number, number][];
  gpus?: number;
};

// Values read off each file (ElementTree dump, checked against shared/PROVENANCE.md); first GPU.
const expected: Record<string, Expected> = {
  "datakit__8x-tesla-v100s_drv460_processes.xml": { driver: "460.73.01", model: "Tesla V100S-PCIE-32GB", uuidPrefix: "GPU-76098dc1", power: ["power_readings/power_draw", 232.8], memoryMiB: [32510, 31689], utilization: 0.97, processes: [[37305, 31683]], gpus: 8 },
  "datakit__gtx-1050_drv515_power-na.xml": { driver: "515.65.01", model: "NVIDIA GeForce GTX 1050", uuidPrefix: "GPU-06e04616", memoryMiB: [4096, 65], utilization: 0.07, processes: [[1200, 61], [30091, 1]] },
  "datakit__tesla-v100-pcie_drv460_processes.xml": { driver: "460.39", model: "Tesla V100-PCIE-32GB", uuidPrefix: "GPU-e77ce5d8", power: ["power_readings/power_draw", 170.16], memoryMiB: [32510, 12311], utilization: 0.91, processes: [[4027538, 3214], [4027590, 3288], [4157880, 2912], [4165319, 2890]] },
  "powerprint__h200_drv580_idle.xml": { driver: "580.159.04", model: "NVIDIA H200", uuidPrefix: "GPU-00000000", power: ["gpu_power_readings/average_power_draw", 104.84], memoryMiB: [143771, 0], utilization: 0, processes: [] },
  "powerprint__h200_drv580_load_processes.xml": { driver: "580.159.04", model: "NVIDIA H200", uuidPrefix: "GPU-00000000", power: ["gpu_power_readings/average_power_draw", 691.61], memoryMiB: [143771, 2879], utilization: 0.99, processes: [[441, 1130], [442, 1734]] },
  "telegraf__a100-sxm4-80gb_drv535_mig.xml": { driver: "535.54.03", model: "NVIDIA A100-SXM4-80GB", uuidPrefix: "GPU-513536b6", power: ["gpu_power_readings/power_draw", 67.03], memoryMiB: [81920, 50], processes: [] },
  "telegraf__a10g_drv515.xml": { driver: "515.105.01", model: "NVIDIA A10G", uuidPrefix: "GPU-9a9a6c50", power: ["power_readings/power_draw", 25.58], memoryMiB: [23028, 22], utilization: 0, processes: [[725, 22]] },
  "telegraf__gtx-1070-ti_power-na.xml": { model: "GeForce GTX 1070 Ti", uuidPrefix: "GPU-f9ba66fc", memoryMiB: [4096, 42], utilization: 0, processes: [] },
  "telegraf__gtx-1660-ti_drv418.xml": { driver: "418.43", model: "Graphics Device", uuidPrefix: "GPU-304a277d", power: ["power_readings/power_draw", 8.93], memoryMiB: [5912, 0], utilization: 0, processes: [] },
  "telegraf__quadro-p2000_drv525.xml": { driver: "525.125.06", model: "Quadro P2000", uuidPrefix: "GPU-396caaed", power: ["power_readings/power_draw", 4.61], memoryMiB: [5120, 1], utilization: 0, processes: [] },
  "telegraf__quadro-p400_power-na.xml": { driver: "418.43", model: "Quadro P400", uuidPrefix: "GPU-8f750be4", memoryMiB: [1998, 0], utilization: 0, processes: [] },
  "telegraf__rtx-3060_drv570_instant.xml": { driver: "570.124.04", model: "NVIDIA GeForce RTX 3060", uuidPrefix: "GPU-d6889ff6", power: ["gpu_power_readings/average_power_draw", 11.6], memoryMiB: [12288, 116], utilization: 0, processes: [] },
  "telegraf__rtx-3080_drv536_win_processes.xml": { driver: "536.40", model: "NVIDIA GeForce RTX 3080", uuidPrefix: "GPU-19d6d965", power: ["gpu_power_readings/power_draw", 22.78], memoryMiB: [10240, 1128], utilization: 0, processes: [[835, 550], [1481, 18], [2214, 79], [4044, 541], [42416, 159]] },
  "telegraf__rtx-3080_drv595_v13.xml": { driver: "595.58.03", model: "NVIDIA GeForce RTX 3080", uuidPrefix: "GPU-19d6d965", power: ["gpu_power_readings/average_power_draw", 139.62], memoryMiB: [10240, 9184], utilization: 0.65, processes: [] },
  "telegraf__rtx-3090_drv525.xml": { driver: "525.147.05", model: "NVIDIA GeForce RTX 3090", uuidPrefix: "GPU-12345678", power: ["power_readings/power_draw", 27.23], memoryMiB: [24576, 1], utilization: 0, processes: [] },
  "telegraf__rtx-4000-sff-ada_drv595_v13_processes.xml": { driver: "595.84", model: "NVIDIA RTX 4000 SFF Ada Generation", uuidPrefix: "GPU-37037c3f", power: ["gpu_power_readings/average_power_draw", 8.81], memoryMiB: [20475, 3534], utilization: 0, processes: [[1842, 410], [3190, 451], [4937, 160], [34626, 183]] },
  "telegraf__tesla-t4_drv515_processes.xml": { driver: "515.105.01", model: "Tesla T4", uuidPrefix: "GPU-d37e67a5", power: ["power_readings/power_draw", 26.78], memoryMiB: [15360, 1032], utilization: 0, processes: [[675, 22], [5762, 1005]] },
};

describe("parseNvidiaSmiXml on every captured file", () => {
  const files = readdirSync(fixtures).filter((f) => f.endsWith(".xml"));

  it("has an expectation for every fixture file", () => {
    expect(files.sort()).toEqual(Object.keys(expected).sort());
  });

  for (const file of files) {
    it(file, () => {
      const want = expected[file];
      const log = parseNvidiaSmiXml(readFileSync(join(fixtures, file), "utf8"));
      expect(log.driverVersion).toBe(want.driver);
      expect(log.gpus).toHaveLength(want.gpus ?? 1);
      const gpu = log.gpus[0];
      expect(gpu.index).toBe(0);
      expect(gpu.model).toBe(want.model);
      expect(gpu.uuid?.startsWith(want.uuidPrefix)).toBe(true);
      if (want.power) {
        expect(gpu.powerField).toBe(want.power[0]);
        expect(gpu.powerWatts).toBe(want.power[1]);
      } else {
        // N/A is absent, never 0.
        expect(gpu.powerWatts).toBeUndefined();
        expect(gpu.powerField).toBeUndefined();
      }
      expect(gpu.memoryTotalBytes).toBe(want.memoryMiB[0] * MiB);
      expect(gpu.memoryUsedBytes).toBe(want.memoryMiB[1] * MiB);
      expect(gpu.utilization).toBe(want.utilization);
      expect(gpu.processes.map((p) => [p.pid, p.memoryBytes])).toEqual(want.processes.map(([pid, mib]) => [pid, mib * MiB]));

      const readings = nvidiaSmiReadings(log);
      if (want.power) {
        expect(readings[0]).toMatchObject({ deviceId: "gpu0", kind: "gpu", source: "nvidia-smi", index: 0, method: "power", powerWatts: want.power[1], processUsageMethod: "equal" });
        expect(readings[0].energyJoules).toBeUndefined();
        expect(readings[0].note).toContain(want.power[0]);
      } else {
        expect(readings).toEqual([]);
      }
    });
  }

  it("reads all eight GPUs of the 8-card host in index order", () => {
    const log = parseNvidiaSmiXml(readFileSync(join(fixtures, "datakit__8x-tesla-v100s_drv460_processes.xml"), "utf8"));
    expect(log.gpus.map((g) => [g.index, g.powerWatts])).toEqual([
      [0, 232.8], [1, 152.03], [2, 67.57], [3, 198.41], [4, 117.99], [5, 85.8], [6, 68.14], [7, 61.47],
    ]);
    expect(nvidiaSmiReadings(log).map((r) => r.deviceId)).toEqual(["gpu0", "gpu1", "gpu2", "gpu3", "gpu4", "gpu5", "gpu6", "gpu7"]);
  });

  it("treats [Not Supported] and N/A as absent and rejects a document that is not nvidia-smi's", () => {
    const xml = `<?xml version="1.0" ?><nvidia_smi_log><driver_version>999.1</driver_version><gpu id="00000000:01:00.0">
      <product_name>X</product_name><fb_memory_usage><total>[Not Supported]</total><used>N/A</used></fb_memory_usage>
      <utilization><gpu_util>[N/A]</gpu_util></utilization>
      <gpu_power_readings><average_power_draw>[Not Supported]</average_power_draw><instant_power_draw>55.50 W</instant_power_draw></gpu_power_readings>
      <processes><process_info><pid>9</pid><used_memory>[N/A]</used_memory></process_info></processes></gpu></nvidia_smi_log>`;
    const gpu = parseNvidiaSmiXml(xml).gpus[0];
    expect(gpu).toEqual({ index: 0, busId: "00000000:01:00.0", model: "X", powerWatts: 55.5, powerField: "gpu_power_readings/instant_power_draw", processes: [{ pid: 9 }] });
    expect(() => parseNvidiaSmiXml("<html></html>")).toThrow(/nvidia_smi_log/);
  });
});

describe("MIG from <mig_devices> (the A100 MIG capture)", () => {
  const xml = readFileSync(join(fixtures, "telegraf__a100-sxm4-80gb_drv535_mig.xml"), "utf8");

  it("names each MIG device as a device of its own under gpu0, weighed by its SMs", () => {
    const gpu = parseNvidiaSmiXml(xml).gpus[0];
    expect(gpu.migEnabled).toBe(true);
    expect(gpu.migDevices).toEqual([3, 4, 5, 6].map((gi, index) => ({ index, gpuInstanceId: gi, computeInstanceId: 0, multiprocessorCount: 14, memoryTotalBytes: 19968 * MiB })));
    const [reading] = nvidiaSmiReadings(parseNvidiaSmiXml(xml));
    expect(reading.mig?.instances.map((i) => [i.deviceId, i.model, i.sliceCount, i.multiprocessorCount, i.processes])).toEqual(
      [3, 4, 5, 6].map((gi) => [`gpu0/gi${gi}/ci0`, "NVIDIA A100-SXM4-80GB MIG (14 SMs)", 14, 14, []]),
    );
    expect(reading.mig?.totalSlices).toBeUndefined();
    expect(reading.note).toContain("MIG: 4 instances from <mig_devices>, weighed by their SMs");
  });

  it("places each process in its instance by its GPU/compute instance ids; one outside every instance stays on the GPU", () => {
    // The capture has no process: two are added in the DTD's <process_info> form.
    const info = (gi: string, pid: number) =>
      `<process_info><gpu_instance_id>${gi}</gpu_instance_id><compute_instance_id>${gi === "N/A" ? "N/A" : "0"}</compute_instance_id><pid>${pid}</pid><type>C</type><process_name>python</process_name><used_memory>100 MiB</used_memory></process_info>`;
    const withProcesses = xml.replace("<processes />", `<processes>${info("5", 4242)}${info("N/A", 4343)}</processes>`);
    expect(withProcesses).not.toBe(xml);
    const [reading] = nvidiaSmiReadings(parseNvidiaSmiXml(withProcesses));
    expect(reading.mig?.instances.find((i) => i.deviceId === "gpu0/gi5/ci0")?.processes).toEqual([{ pid: 4242, memoryBytes: 100 * MiB }]);
    expect(reading.processes).toEqual([{ pid: 4343, memoryBytes: 100 * MiB }]);
  });

  it("a GPU without MIG (or MIG off) has no partition", () => {
    for (const file of ["telegraf__tesla-t4_drv515_processes.xml", "powerprint__h200_drv580_load_processes.xml"]) {
      const [reading] = nvidiaSmiReadings(parseNvidiaSmiXml(readFileSync(join(fixtures, file), "utf8")));
      expect(reading.mig).toBeUndefined();
    }
  });
});

describe("nvidia-smi collector with a fake nvidia-smi", () => {
  let dir: string;
  let bin: string;
  let fake: string;
  let log: string;
  const savedPath = process.env.PATH;

  /** The fake replays $FAKE_SMI_XML after sleeping $FAKE_SMI_DELAY seconds, logging start/end lines. */
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "powerprint-smi-"));
    bin = join(dir, "bin");
    log = join(dir, "calls.log");
    fake = join(bin, "nvidia-smi");
    rmSync(bin, { recursive: true, force: true });
    mkdirSync(bin);
    writeFileSync(
      fake,
      `#!/bin/sh\n[ "$1 $2" = "-q -x" ] || { echo "unexpected args: $*" >&2; exit 2; }\necho "start $$" >> "${log}"\nsleep "\${FAKE_SMI_DELAY:-0}"\ncat "$FAKE_SMI_XML"\necho "end $$" >> "${log}"\n`,
    );
    chmodSync(fake, 0o755);
    process.env.PATH = `${bin}${delimiter}${savedPath}`;
  });

  afterAll(() => {
    process.env.PATH = savedPath;
    delete process.env.FAKE_SMI_XML;
    delete process.env.FAKE_SMI_DELAY;
    rmSync(dir, { recursive: true, force: true });
  });

  const replay = (file: string, delaySeconds = 0) => {
    process.env.FAKE_SMI_XML = join(fixtures, file);
    process.env.FAKE_SMI_DELAY = String(delaySeconds);
    writeFileSync(log, "");
  };

  it("default command: node-nvidia-smi finds the fake on PATH; probe and read replay the file", async () => {
    replay("powerprint__h200_drv580_load_processes.xml");
    const c = createNvidiaSmiCollector();
    const probe = await c.probe();
    expect(probe).toMatchObject({ status: "ok", devices: [{ deviceId: "gpu0", model: "NVIDIA H200", method: "power", energyCounter: false }] });
    expect(probe.status === "ok" && probe.note).toContain("580.159.04");
    const readings = await c.read();
    expect(readings).toEqual([
      {
        deviceId: "gpu0",
        kind: "gpu",
        source: "nvidia-smi",
        index: 0,
        model: "NVIDIA H200",
        uuid: "GPU-00000000-0000-0000-0000-000000000200",
        powerWatts: 691.61,
        utilization: 0.99,
        method: "power",
        processes: [
          { pid: 441, memoryBytes: 1130 * MiB },
          { pid: 442, memoryBytes: 1734 * MiB },
        ],
        processUsageMethod: "equal",
        status: "ok",
        note: "nvidia-smi has no energy counter: integrating power (gpu_power_readings/average_power_draw)",
      },
    ]);
  });

  it("command by path (execFile), and a power-N/A board is listed by probe but gives no reading", async () => {
    replay("telegraf__quadro-p400_power-na.xml");
    const c = createNvidiaSmiCollector({ command: fake });
    const probe = await c.probe();
    expect(probe.status === "ok" && probe.devices[0].detail).toContain("power draw N/A");
    expect(await c.read()).toEqual([]);
  });

  it("a missing nvidia-smi is unavailable with a fix", async () => {
    const c = createNvidiaSmiCollector({ command: join(dir, "absent", "nvidia-smi") });
    const probe = await c.probe();
    expect(probe).toMatchObject({ status: "unavailable", reason: `${join(dir, "absent", "nvidia-smi")} not found` });
    expect(await c.read()).toEqual([]);
  });

  /** Reads until a read returns readings (skipped reads return none), 50 ms apart, at most 30 s. */
  async function readUntilSome(c: { read(): Promise<{ powerWatts?: number }[]> }) {
    for (let i = 0; i < 600; i++) {
      const r = await c.read();
      if (r.length > 0) return r;
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error("no reading within 30 s");
  }

  for (const [label, command] of [["default (node-nvidia-smi)", undefined], ["by path", "fake"]] as const) {
    it(`${label}: a call that outlasts the tick is skipped, never stacked`, async () => {
      replay("telegraf__tesla-t4_drv515_processes.xml", 1.2);
      const c = createNvidiaSmiCollector({ command: command ? fake : undefined, timeoutMillis: 300 });
      expect(await c.read()).toEqual([]); // timed out after 300 ms; the call runs on
      expect(await c.read()).toEqual([]); // still running: skipped, nothing spawned
      expect(c.skippedReads).toBe(1);
      if (command === undefined) {
        // node-nvidia-smi cannot be killed: reads are skipped until the fake finishes, then the next
        // read spawns again (polled, not a fixed sleep: a loaded machine runs the fake late).
        process.env.FAKE_SMI_DELAY = "0";
        const readings = await readUntilSome(c);
        expect(readings.map((r) => r.powerWatts)).toEqual([26.78]);
        const lines = readFileSync(log, "utf8").trim().split("\n");
        // Strictly alternating start/end: never two at once.
        expect(lines.map((l) => l.split(" ")[0])).toEqual(["start", "end", "start", "end"]);
      } else {
        // execFile kills the call at twice the timeout (600 ms); reads until then are skipped, after
        // that the next read spawns again.
        process.env.FAKE_SMI_DELAY = "0";
        expect((await readUntilSome(c)).map((r) => r.powerWatts)).toEqual([26.78]);
        const starts = readFileSync(log, "utf8").trim().split("\n").filter((l) => l.startsWith("start"));
        expect(starts).toHaveLength(2);
      }
    });
  }
});
