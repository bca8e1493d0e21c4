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
  return { dir, script, report: join(dir, "r.json") };
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
    const { dir, script, report } = setup();
    const r = await runCli(["run", "--quiet", "--interval", "200ms", "--job-id", "train", "--report", report, "--", process.execPath, job], {
      env: { POWERPRINT_NVML_LIBRARY: lib, STUB_NVML_SCRIPT: script, GPU_JOB_MILLIS: "1500" },
    });
    expect(r.code, r.stderr).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    const gpu0 = rep.devices.find((d) => d.id === "gpu0")!;
    const gpu1 = rep.devices.find((d) => d.id === "gpu1")!;
    expect(gpu0).toMatchObject({ source: "nvml", method: "counter", model: "NVIDIA H100 80GB HBM3", processUsageMethod: "utilization" });
    expect(gpu1).toMatchObject({ source: "nvml", method: "power" });
    // The job's script advances the counter at 300 W for 1.5 s (from the same start value).
    expect(gpu0.energyJoules).toBeGreaterThan(200);
    expect(gpu0.energyJoules).toBeLessThanOrEqual(300 * 1.5 + 30);
    const train = rep.jobs.find((j) => j.id === "train")!;
    expect(train.deviceEnergyJoules.gpu0).toBeCloseTo(gpu0.energyJoules, 6);
    expect(train.energyJoules.gpu).toBeCloseTo(gpu0.energyJoules, 6);
    expect(rep.buckets.idle.deviceEnergyJoules.gpu1).toBeCloseTo(gpu1.energyJoules, 6);
    rmSync(dir, { recursive: true, force: true });
  });

  it("container case: the GPU's PIDs are not visible, so the job holding CUDA_VISIBLE_DEVICES=0 gets gpu0 (device-assignment)", async () => {
    const { dir, script, report } = setup();
    const r = await runCli(["run", "--quiet", "--interval", "200ms", "--job-id", "ctr", "--report", report, "--", process.execPath, job], {
      env: { POWERPRINT_NVML_LIBRARY: lib, STUB_NVML_SCRIPT: script, GPU_JOB_PID: "4000001", CUDA_VISIBLE_DEVICES: "0" },
    });
    expect(r.code, r.stderr).toBe(0);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    const gpu0 = rep.devices.find((d) => d.id === "gpu0")!;
    expect(gpu0.processUsageMethod).toBe("device-assignment");
    expect(rep.jobs.find((j) => j.id === "ctr")!.deviceEnergyJoules.gpu0).toBeCloseTo(gpu0.energyJoules, 6);
    rmSync(dir, { recursive: true, force: true });
  });

  it("a GPU lost mid-run is marked lost, keeps the energy measured before, and the run goes on", async () => {
    const { dir, script, report } = setup();
    const r = await runCli(["run", "--interval", "100ms", "--job-id", "train", "--report", report, "--", process.execPath, job], {
      env: { POWERPRINT_NVML_LIBRARY: lib, STUB_NVML_SCRIPT: script, GPU_JOB_MILLIS: "1500", GPU_JOB_LOSE_AFTER_MS: "700" },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/gpu0 .*is lost/);
    const rep = reportSchemaV1.parse(JSON.parse(readFileSync(report, "utf8")));
    const gpu0 = rep.devices.find((d) => d.id === "gpu0")!;
    expect(gpu0.status).toBe("lost");
    // About 300 W for the ~0.7 s before the loss, nothing after it.
    expect(gpu0.energyJoules).toBeGreaterThan(60);
    expect(gpu0.energyJoules).toBeLessThan(300 * 1.2);
    expect(rep.jobs.find((j) => j.id === "train")!.deviceEnergyJoules.gpu0).toBeCloseTo(gpu0.energyJoules, 6);
    // gpu1 went on being measured after gpu0 was lost.
    expect(rep.devices.find((d) => d.id === "gpu1")!.status).toBe("ok");
    rmSync(dir, { recursive: true, force: true });
  });
});
