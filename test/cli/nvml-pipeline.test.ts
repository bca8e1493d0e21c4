// The whole pipeline on NVIDIA hardware as NVML shows it: the real koffi collector loads a stub
// libnvidia-ml.so.1 built from C (test/native/stub-nvml.c), the real CLI measures a wrapped
// command that drives the stub, and the report is checked for exact per-job GPU energy.
import { beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildStubNvml } from "../native/build-stub.mjs";
import { runCli } from "../helpers/cli.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";

const job = join(import.meta.dirname, "..", "fixtures", "scripts", "gpu-job.mjs");
let lib: string;
beforeAll(() => {
  lib = buildStubNvml();
});

function setup() {
  const dir = mkdtempSync(join(tmpdir(), "pp-nvml-cli-"));
  const script = join(dir, "stub.txt");
  // The names the job script writes too (NVML names do not change during a run).
  writeFileSync(script, "count 2\ngpu0.name NVIDIA H100 80GB HBM3\ngpu0.energy_mj 5000000\ngpu1.name Tesla P100-PCIE-16GB\ngpu1.energy_mj unsupported\n");
  // The stub logs each counter read here; the job's climb starts after the collector's first reads.
  const readLog = join(dir, "reads.log");
  return { dir, script, readLog, report: join(dir, "r.json") };
}

/** gpu0's counter climb the collector read, J: its last value read over the 5,000,000 mJ it started from (stub's log). */
function climbRead(readLog: string): number {
  const values = readFileSync(readLog, "utf8").split("\n").filter((l) => l.startsWith("energy gpu0 ")).map((l) => Number(l.split(" ")[2]));
  return (Math.max(...values) - 5_000_000) / 1000;
}

describe("NVML through the whole pipeline (stub library)", () => {
  it("probe lists each GPU with model, UUID, source and whether the energy counter is supported", async () => {
    const { dir, script } = setup();
    writeFileSync(script, "count 2\ngpu0.name NVIDIA H100 80GB HBM3\ngpu0.uuid GPU-aaaa\ngpu1.name Tesla P100-PCIE-16GB\ngpu1.uuid GPU-bbbb\ngpu1.energy_mj unsupported\n");
    const r = await runCli(["probe"], { env: { POWERPRINT_NVML_LIBRARY: lib, STUB_NVML_SCRIPT: script } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^nvml\s+USED/m);
    expect(r.stdout).toMatch(/gpu0 gpu NVIDIA H100 80GB HBM3 GPU-aaaa — method counter, energy counter supported/);
    expect(r.stdout).toMatch(/gpu1 gpu Tesla P100-PCIE-16GB GPU-bbbb — method power, energy counter not supported/);
    expect(r.stdout).toMatch(/^nvidia-smi\s+unavailable/m);
    rmSync(dir, { recursive: true, force: true });
  });

  it("a wrapped job resident on gpu0 gets all of gpu0's counter energy; the idle gpu1 goes to idle by power", async () => {
    const { dir, script, readLog, report } = setup();
    const r = await runCli(["run", "--quiet", "--interval", "200ms", "--job-id", "train", "--report", report, "--", process.execPath, job], {
      env: { POWERPRINT_NVML_LIBRARY: lib, STUB_NVML_SCRIPT: script, STUB_NVML_READ_LOG: readLog, GPU_JOB_MILLIS: "1500" },
    });
    expect(r.code, r.stderr).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    const gpu0 = rep.devices.find((d) => d.id === "gpu0")!;
    const gpu1 = rep.devices.find((d) => d.id === "gpu1")!;
    expect(gpu0).toMatchObject({ source: "nvml", method: "counter", model: "NVIDIA H100 80GB HBM3", processUsageMethod: "utilization" });
    expect(gpu1).toMatchObject({ source: "nvml", method: "power" });
    // The job's script advances the counter by 300 W × 1.5 s, after the collector's baseline read:
    // all of it is measured, whatever the machine's load.
    expect(gpu0.energyJoules).toBeCloseTo(300 * 1.5, 6);
    expect(climbRead(readLog)).toBeCloseTo(300 * 1.5, 6);
    const train = rep.jobs.find((j) => j.id === "train")!;
    expect(train.deviceEnergyJoules.gpu0).toBeCloseTo(gpu0.energyJoules, 6);
    expect(train.energyJoules.gpu).toBeCloseTo(gpu0.energyJoules, 6);
    expect(rep.buckets.idle.deviceEnergyJoules.gpu1).toBeCloseTo(gpu1.energyJoules, 6);
    rmSync(dir, { recursive: true, force: true });
  });

  it("container case: the GPU's PIDs are not visible, so the job holding CUDA_VISIBLE_DEVICES=0 gets gpu0 (device-assignment)", async () => {
    const { dir, script, readLog, report } = setup();
    const r = await runCli(["run", "--quiet", "--interval", "200ms", "--job-id", "ctr", "--report", report, "--", process.execPath, job], {
      env: { POWERPRINT_NVML_LIBRARY: lib, STUB_NVML_SCRIPT: script, STUB_NVML_READ_LOG: readLog, GPU_JOB_PID: "4000001", CUDA_VISIBLE_DEVICES: "0" },
    });
    expect(r.code, r.stderr).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    const gpu0 = rep.devices.find((d) => d.id === "gpu0")!;
    expect(gpu0.processUsageMethod).toBe("device-assignment");
    expect(rep.jobs.find((j) => j.id === "ctr")!.deviceEnergyJoules.gpu0).toBeCloseTo(gpu0.energyJoules, 6);
    rmSync(dir, { recursive: true, force: true });
  });

  it("a GPU lost mid-run is marked lost, keeps the energy measured before, and the run goes on", async () => {
    const { dir, script, readLog, report } = setup();
    const r = await runCli(["run", "--interval", "100ms", "--job-id", "train", "--report", report, "--", process.execPath, job], {
      env: { POWERPRINT_NVML_LIBRARY: lib, STUB_NVML_SCRIPT: script, STUB_NVML_READ_LOG: readLog, GPU_JOB_MILLIS: "1500", GPU_JOB_LOSE_AFTER_MS: "700" },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/gpu0 .*is lost/);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    const gpu0 = rep.devices.find((d) => d.id === "gpu0")!;
    expect(gpu0.status).toBe("lost");
    // Exactly the climb read before the loss (the job loses gpu0 only once some was read), nothing after it.
    expect(climbRead(readLog)).toBeGreaterThan(0);
    expect(climbRead(readLog)).toBeLessThan(300 * 1.5);
    expect(gpu0.energyJoules).toBeCloseTo(climbRead(readLog), 6);
    expect(rep.jobs.find((j) => j.id === "train")!.deviceEnergyJoules.gpu0).toBeCloseTo(gpu0.energyJoules, 6);
    // gpu1 went on being measured after gpu0 was lost.
    expect(rep.devices.find((d) => d.id === "gpu1")!.status).toBe("ok");
    rmSync(dir, { recursive: true, force: true });
  });
});
