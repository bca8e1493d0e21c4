/**
 * Pod mode's GPU view: of the GPUs a sidecar sees, only those named in the training process's
 * NVIDIA_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES (read from its real /proc/PID/environ) are the
 * pod's. Devices are the simulated collector's (three GPUs with indices and UUIDs, one CPU).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { PodGpuFilter, VISIBLE_DEVICE_VARIABLES, visibleGpus } from "../../src/agent/gpu-filter.js";
import { readEnviron } from "../../src/procfs/reader.js";
import { validateScenario } from "../../src/sim/scenario.js";
import { SimCollector, SimWorld } from "../../src/sim/world.js";
import { recordingLogger } from "../exporters/snapshots.js";

const scenario = validateScenario({
  durationSeconds: 60,
  devices: [
    { id: "gpu0", kind: "gpu", idleWatts: 50, maxWatts: 400, index: 0, uuid: "GPU-aaaa" },
    { id: "gpu1", kind: "gpu", idleWatts: 50, maxWatts: 400, index: 1, uuid: "GPU-bbbb" },
    { id: "gpu2", kind: "gpu", idleWatts: 50, maxWatts: 400, index: 2, uuid: "GPU-cccc" },
    { id: "cpu0", kind: "cpu", idleWatts: 10, maxWatts: 100, cores: 4 },
  ],
});

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
});

/** A real "training" process with `env`; its environ is read back from /proc like pod mode does. */
async function trainingEnv(env: Record<string, string>): Promise<() => Record<string, string>> {
  const child = spawn("sleep", ["60"], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: "ignore" });
  children.push(child);
  await new Promise((r) => child.once("spawn", r));
  const pid = child.pid!;
  // environ is there once exec is done: wait for it (an event, not a sleep).
  for (let i = 0; i < 200 && Object.keys(readEnviron("/", pid, ["PATH"])).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  return () => readEnviron("/", pid, VISIBLE_DEVICE_VARIABLES);
}

const deviceIds = async (c: PodGpuFilter) => (await c.read({ timeMillis: 1000 })).map((r) => r.deviceId).sort();

describe("PodGpuFilter", () => {
  it("keeps the GPUs named by UUID in NVIDIA_VISIBLE_DEVICES (and every CPU reading)", async () => {
    const log = recordingLogger();
    const f = new PodGpuFilter(new SimCollector(new SimWorld(scenario, 0)), await trainingEnv({ NVIDIA_VISIBLE_DEVICES: "GPU-bbbb,GPU-cccc" }), log);
    expect(await deviceIds(f)).toEqual(["cpu0", "gpu1", "gpu2"]);
  });

  it("falls back to CUDA_VISIBLE_DEVICES indices; NVIDIA_VISIBLE_DEVICES wins when both are set", async () => {
    const log = recordingLogger();
    const cuda = new PodGpuFilter(new SimCollector(new SimWorld(scenario, 0)), await trainingEnv({ CUDA_VISIBLE_DEVICES: "0" }), log);
    expect(await deviceIds(cuda)).toEqual(["cpu0", "gpu0"]);
    const both = new PodGpuFilter(new SimCollector(new SimWorld(scenario, 0)), await trainingEnv({ NVIDIA_VISIBLE_DEVICES: "2", CUDA_VISIBLE_DEVICES: "0" }), log);
    expect(await deviceIds(both)).toEqual(["cpu0", "gpu2"]);
  });

  it("none: no GPU is the pod's; all or unset: every GPU, unset said once", async () => {
    const log = recordingLogger();
    const none = new PodGpuFilter(new SimCollector(new SimWorld(scenario, 0)), await trainingEnv({ NVIDIA_VISIBLE_DEVICES: "none" }), log);
    expect(await deviceIds(none)).toEqual(["cpu0"]);
    const all = new PodGpuFilter(new SimCollector(new SimWorld(scenario, 0)), await trainingEnv({ NVIDIA_VISIBLE_DEVICES: "all" }), log);
    expect(await deviceIds(all)).toEqual(["cpu0", "gpu0", "gpu1", "gpu2"]);
    const unset = new PodGpuFilter(new SimCollector(new SimWorld(scenario, 0)), await trainingEnv({}), log);
    expect(await deviceIds(unset)).toEqual(["cpu0", "gpu0", "gpu1", "gpu2"]);
    await unset.read({ timeMillis: 2000 });
    expect(log.lines.filter((l) => l.message.includes("every GPU this sidecar sees"))).toHaveLength(1);
    expect(visibleGpus({})).toBeUndefined();
    // No training process yet: no GPU is the pod's.
    const waiting = new PodGpuFilter(new SimCollector(new SimWorld(scenario, 0)), () => undefined, log);
    expect(await deviceIds(waiting)).toEqual(["cpu0"]);
  });
});
