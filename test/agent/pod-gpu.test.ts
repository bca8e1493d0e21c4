/**
 * GPU per pod in pod mode: the sidecar (the built agent in a real PID namespace) sees two GPUs
 * through the stub libnvidia-ml and the real koffi NVML collector; the training container was given
 * one of them (NVIDIA_VISIBLE_DEVICES=its UUID). NVML names host PIDs the pod's namespace cannot
 * see, so the GPU's energy goes to the pod by device assignment; the other GPU is not the pod's at
 * all (never read into its ledger). The training process holds the GPU's device node, and NVML lists
 * one process on it: the pod is alone on its GPU (not shared), so all of it is the pod's.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CLI } from "../helpers/cli.js";
import { buildStubNvml } from "../native/build-stub.mjs";
import { waitFor } from "../cli/agent-helpers.js";

const SCRIPTS = join(import.meta.dirname, "scripts");
const canUnshare = spawnSync("unshare", ["--pid", "--fork", "--mount-proc", "true"]).status === 0;
/**
 * The pod's PID 1 runs the test's script with /bin/sh under the name a pod sandbox's PID 1 has
 * (`pause`): pod mode refuses a namespace whose PID 1 is not one (src/agent/pod-sandbox.ts).
 */
function pauseStandIn(folder: string): string {
  const path = join(folder, "pause");
  if (!existsSync(path)) symlinkSync("/bin/sh", path);
  return path;
}
/** A host PID no small test namespace holds (pid_max is 4,194,304 at most). */
const HOST_PID = 4_000_001;

/** Whether any process of the host holds `path` open (its /proc/PID/fd links). */
function holdsNode(path: string): boolean {
  for (const pid of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      if (readdirSync(`/proc/${pid}/fd`).some((fd) => readlinkSafe(`/proc/${pid}/fd/${fd}`) === path)) return true;
    } catch {
      // gone
    }
  }
  return false;
}
const readlinkSafe = (p: string): string | undefined => {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
};

describe.skipIf(!canUnshare)("agent --mode pod: the pod's GPU from NVIDIA_VISIBLE_DEVICES (stub NVML)", () => {
  let dir: string;
  let pod: ChildProcess | undefined;
  afterAll(() => {
    pod?.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("only the assigned GPU is measured, and all of its energy is the pod's", async () => {
    const lib = buildStubNvml();
    dir = mkdtempSync(join(tmpdir(), "pp-pod-gpu-"));
    mkdirSync(join(dir, "podinfo"));
    writeFileSync(join(dir, "podinfo", "name"), "llm-0");
    writeFileSync(join(dir, "podinfo", "namespace"), "inference");
    spawnSync("mkfifo", [join(dir, "go"), join(dir, "stop")]);
    // gpu1's device node as the training process opens it (<POWERPRINT_DEV_ROOT>/dev/nvidia1).
    mkdirSync(join(dir, "dev"));
    writeFileSync(join(dir, "dev", "nvidia1"), "");
    const stub = join(dir, "stub.txt");
    let version = 0;
    const script = (energyMillijoules: [number, number], listed = true) => {
      const t = join(dir, `stub.${version++}`);
      writeFileSync(
        t,
        [
          "count 2",
          "gpu0.name NVIDIA H100 80GB HBM3",
          "gpu0.uuid GPU-aaaaaaaa-0000-4000-8000-000000000000",
          `gpu0.energy_mj ${energyMillijoules[0]}`,
          "gpu0.power_mw 300000",
          "gpu0.util 90",
          "gpu1.name NVIDIA H100 80GB HBM3",
          "gpu1.uuid GPU-bbbbbbbb-0000-4000-8000-000000000000",
          `gpu1.energy_mj ${energyMillijoules[1]}`,
          "gpu1.power_mw 400000",
          "gpu1.util 80",
          // NVML lists the training process (by a host PID) once it holds the GPU (its CUDA context).
          ...(listed ? [`gpu1.procs ${HOST_PID}:1000000`] : []),
        ].join("\n") + "\n",
      );
      renameSync(t, stub);
    };
    script([1_000_000, 1_000_000], false);
    pod = spawn(
      "unshare",
      ["--pid", "--fork", "--mount-proc", "--kill-child", pauseStandIn(dir), join(SCRIPTS, "pod.sh"), dir, process.execPath, CLI, SCRIPTS],
      {
        stdio: "ignore",
        // The pod's environment: the training container's assignment (the agent and PID 1 have it
        // too, but they are not the job).
        env: {
          ...process.env,
          POWERPRINT_NVML_LIBRARY: lib,
          STUB_NVML_SCRIPT: stub,
          NVIDIA_VISIBLE_DEVICES: "GPU-bbbbbbbb-0000-4000-8000-000000000000",
          POWERPRINT_DEV_ROOT: dir,
          GPU_DEVICE_NODE: join(dir, "dev", "nvidia1"),
        },
      },
    );
    const exited = new Promise<number | null>((resolve) => pod!.on("exit", (code) => resolve(code)));
    const url = await waitFor("health URL", () => {
      const err = existsSync(join(dir, "agent.err")) ? readFileSync(join(dir, "agent.err"), "utf8") : "";
      return /health: (http:\/\/127\.0\.0\.1:\d+)\/healthz/.exec(err)?.[1];
    });
    await waitFor("/readyz", async () => ((await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined));
    await writeFile(join(dir, "go"), "go\n");
    await waitFor("training live", async () => {
      const v = (await (await fetch(`${url}/jobs`)).json()) as { jobs: { pids: number[] }[] };
      return v.jobs[0]?.pids.length > 0 ? true : undefined;
    });
    await waitFor("the training process holds gpu1", () => holdsNode(join(dir, "dev", "nvidia1")));
    script([1_000_000, 1_000_000]);
    // The counters move: gpu0 +2000 J (not the pod's), gpu1 +500 J.
    script([3_000_000, 1_500_000]);
    await waitFor("gpu1 energy recorded", async () => {
      const v = (await (await fetch(`${url}/jobs`)).json()) as { jobs: { energyJoules: number }[] };
      return v.jobs[0]?.energyJoules >= 500 ? true : undefined;
    });
    await writeFile(join(dir, "stop"), "stop\n");
    expect(await exited).toBe(0);

    type Saved = { id: string; deviceEnergyJoules: Record<string, number> };
    const state = JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as {
      ledger: { jobs: Saved[]; devices: { id: string; kind: string; energyJoules: number; shared?: boolean; processUsageMethod?: string }[] };
    };
    const gpus = state.ledger.devices.filter((d) => d.kind === "gpu");
    expect(gpus.map((d) => d.id)).toEqual(["gpu1"]);
    expect(gpus[0].energyJoules).toBeCloseTo(500, 6);
    expect(gpus[0].shared).toBeUndefined();
    expect(gpus[0].processUsageMethod).toBe("device-assignment");
    const job = state.ledger.jobs.find((j) => j.id === "inference/llm-0")!;
    expect(job.deviceEnergyJoules.gpu1).toBeCloseTo(500, 6);
    expect(job.deviceEnergyJoules.gpu0).toBeUndefined();
    expect(readFileSync(join(dir, "agent.err"), "utf8")).toMatch(/pod mode: GPUs of the pod: GPU-bbbbbbbb/);
  }, 120_000);
});
