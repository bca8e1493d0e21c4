/**
 * Pod mode's view of shared GPUs (src/agent/gpu-filter.ts) on real processes and the stub NVML
 * through the real collector: the pod's processes holding a GPU's device node are counted from
 * their /proc/PID/fd; more processes in NVML's list than that make the GPU shared (k/n, from then
 * on); a pod given MIG devices keeps only those instances; descriptors the sidecar may not read
 * leave the GPU the pod's, said once.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createNvmlCollector } from "../../collectors/nvml.js";
import { PodGpuFilter, SHARED_GPU_NOTE, countGpuHolders } from "../../src/agent/gpu-filter.js";
import type { Collector } from "../../src/core/contracts.js";
import { recordingLogger } from "../exporters/snapshots.js";
import { buildStubNvml } from "../native/build-stub.mjs";
import { waitFor } from "../helpers/wait.js";

const HOLDER = join(import.meta.dirname, "scripts", "gpu-holder.mjs");
const root = mkdtempSync(join(tmpdir(), "pp-gpu-filter-"));
chmodSync(root, 0o755);
mkdirSync(join(root, "dev"));
for (const n of ["nvidia0", "nvidia1"]) writeFileSync(join(root, "dev", n), "");
const children: ChildProcess[] = [];
const collectors: Collector[] = [];
afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  for (const c of collectors) await c.close();
  delete process.env.STUB_NVML_SCRIPT;
  rmSync(root, { recursive: true, force: true });
});

/** A real process holding `node` (or nothing) open, ready once it says so. */
async function holder(name: string, node?: string): Promise<number> {
  const child = spawn(process.execPath, [HOLDER, root, name, node ? "gpu" : "cpu"], { stdio: "ignore", env: { ...process.env, GPU_DEVICE_NODE: node ?? "" } });
  children.push(child);
  await waitFor(`${name} ready`, () => existsSync(join(root, `holder-${name}.ready`)));
  return child.pid!;
}

let version = 0;
function script(lines: string[]): void {
  const t = join(root, `stub.${version++}`);
  writeFileSync(t, lines.join("\n") + "\n");
  renameSync(t, join(root, "stub.txt"));
}

function nvml(): Collector {
  process.env.STUB_NVML_SCRIPT = join(root, "stub.txt");
  const c = createNvmlCollector({ libraryPath: buildStubNvml() });
  collectors.push(c);
  return c;
}

describe("countGpuHolders", () => {
  it("counts each process once per /dev/nvidia<minor> it holds; processes gone are skipped", async () => {
    const a = await holder("a", join(root, "dev", "nvidia0"));
    const b = await holder("b", join(root, "dev", "nvidia1"));
    const c = await holder("c");
    const counts = countGpuHolders("/", root, [a, b, c, 4_000_000]);
    expect([...counts.byMinor.entries()].sort()).toEqual([
      [0, 1],
      [1, 1],
    ]);
    expect(counts.unreadable).toBe(0);
    // Another root for dev/: nothing matches.
    expect(countGpuHolders("/", join(root, "elsewhere"), [a, b]).byMinor.size).toBe(0);
  });

  it("descriptors of another UID's process are unreadable to a non-root sidecar (counted as such)", async () => {
    const a = await holder("root-held", join(root, "dev", "nvidia0"));
    const dist = join(import.meta.dirname, "..", "..", "dist", "src", "agent", "gpu-filter.js");
    const out = spawnSync(process.execPath, ["--input-type=module", "-e", `const m = await import(${JSON.stringify(dist)}); const r = m.countGpuHolders("/", ${JSON.stringify(root)}, [${a}]); console.log(JSON.stringify({ n: r.byMinor.size, unreadable: r.unreadable }));`], {
      uid: 65534,
      gid: 65534,
      encoding: "utf8",
    });
    expect(out.status, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({ n: 0, unreadable: 1 });
  });
});

describe("PodGpuFilter on shared GPUs (stub NVML)", () => {
  const gpu = (energyMillijoules: number, procs: number[]) => [
    "count 1",
    "gpu0.name NVIDIA H100 80GB HBM3",
    "gpu0.uuid GPU-aaaa",
    `gpu0.energy_mj ${energyMillijoules}`,
    ...(procs.length > 0 ? [`gpu0.procs ${procs.map((p) => `${p}:1000`).join(",")}`] : []),
  ];

  it("k of n: the pod's holders against NVML's list; shared from then on, labelled once", async () => {
    const mine = [await holder("m1", join(root, "dev", "nvidia0")), await holder("m2", join(root, "dev", "nvidia0")), await holder("m3")];
    const log = recordingLogger();
    const f = new PodGpuFilter(nvml(), () => ({ NVIDIA_VISIBLE_DEVICES: "GPU-aaaa" }), log, { procRoot: "/", devRoot: root, podPids: () => mine });
    // Alone: NVML lists the pod's two processes (by host PIDs it cannot tell apart): not shared.
    script(gpu(1000, [101, 102]));
    expect((await f.read())[0].estimatedShare).toBeUndefined();
    // A third process, not the pod's: 2 of 3.
    script(gpu(2000, [101, 102, 103]));
    expect((await f.read())[0].estimatedShare).toEqual({ fraction: 2 / 3, note: SHARED_GPU_NOTE });
    // The other pod's process ends: still shared (for the sidecar's life), the pod's share 2 of 2.
    script(gpu(3000, [101, 102]));
    expect((await f.read())[0].estimatedShare?.fraction).toBe(1);
    // Nothing on the GPU: no pod's share of it.
    script(gpu(4000, []));
    expect((await f.read())[0].estimatedShare?.fraction).toBe(0);
    const warnings = log.lines.filter((l) => l.level === "warn").map((l) => l.message);
    expect(warnings).toEqual([expect.stringContaining("gpu0 is shared with other pods (NVML lists 3 processes on it, 2 of them this pod's")]);
    expect(warnings[0]).toContain("node mode (a DaemonSet agent) splits shared GPUs exactly");
  });

  it("a pod given a MIG device keeps only that instance (partial), with its own share when the instance is shared", async () => {
    const mine = [await holder("mig1", join(root, "dev", "nvidia0"))];
    const log = recordingLogger();
    const f = new PodGpuFilter(nvml(), () => ({ NVIDIA_VISIBLE_DEVICES: "MIG-5555" }), log, { procRoot: "/", devRoot: root, podPids: () => mine });
    const lines = (procs5: number[]) => [
      "count 1",
      "gpu0.name NVIDIA H100 80GB HBM3",
      "gpu0.uuid GPU-aaaa",
      "gpu0.energy_mj 1000",
      "gpu0.mig 1",
      ...["1:3", "5:2", "6:2"].flatMap((spec, j) => {
        const [gi, slices] = spec.split(":");
        return [`gpu0.mig${j}.gi ${gi}`, `gpu0.mig${j}.gi_slices ${slices}`, `gpu0.mig${j}.ci_slices ${slices}`, `gpu0.mig${j}.uuid MIG-${gi.repeat(4)}`];
      }),
      "gpu0.mig0.procs 201:1000",
      ...(procs5.length > 0 ? [`gpu0.mig1.procs ${procs5.map((p) => `${p}:1000`).join(",")}`] : []),
    ];
    script(lines([301]));
    const [alone] = await f.read();
    expect(alone.mig?.partial).toBe(true);
    expect(alone.mig?.instances.map((i) => [i.deviceId, i.estimatedShare])).toEqual([["gpu0/gi5/ci0", undefined]]);
    script(lines([301, 302]));
    const [shared] = await f.read();
    expect(shared.mig?.instances.map((i) => [i.deviceId, i.estimatedShare?.fraction])).toEqual([["gpu0/gi5/ci0", 0.5]]);
  });
});
