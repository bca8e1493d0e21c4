/**
 * Two pods time-slicing one GPU, each with its sidecar (the built `agent --mode pod`, each pod in a
 * real PID namespace of its own: `unshare --pid`), on the stub libnvidia-ml through the real koffi
 * NVML collector. Pod A runs one process on the GPU, pod B two (and one that does not use it); NVML
 * lists the three by their host PIDs, which neither pod can see. Each sidecar counts its pod's
 * processes holding the GPU's device node and charges its pod k/n of the GPU's energy (the
 * documented estimate): 1/3 and 2/3, so the two pods' GPU energy sums to the GPU's, never more.
 * When B's processes are gone, A is alone on the GPU and gets all of it. On the same processes a
 * node agent (NodeJobSource over the pods' real cgroups, host PIDs) splits the GPU exactly by SM
 * share (60:20:20), the idle part equally between the two pods.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createNvmlCollector } from "../../collectors/nvml.js";
import { NodeJobSource } from "../../src/agent/node-source.js";
import { readCgroupMounts } from "../../src/cgroup/mounts.js";
import type { Collector } from "../../src/core/contracts.js";
import { Ledger } from "../../src/core/ledger.js";
import { Sampler } from "../../src/core/sampler.js";
import { createFixedProvider } from "../../src/grid/static.js";
import { makeLayout, movePid, podPaths, removeTree, type PodSpec } from "../cgroup/kube-layout.js";
import { recordingLogger } from "../grid/replay-server.js";
import { CLI } from "../helpers/cli.js";
import { waitFor } from "../helpers/wait.js";
import { buildStubNvml } from "../native/build-stub.mjs";

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
const mounts = readCgroupMounts();
const hierarchy = mounts.v2 ? { dir: mounts.v2.mountPoint, version: 2 as const } : mounts.v1.has("cpuacct") ? { dir: mounts.v1.get("cpuacct")!.mountPoint, version: 1 as const } : undefined;
const GPU_UUID = "GPU-5e3a1c2b-0000-4d6e-9f00-aaaaaaaaaaaa";

interface Pod {
  name: string;
  dir: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  url?: string;
}

const pods: Pod[] = [];
const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const p of pods) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  await Promise.all(pods.map((p) => p.exited));
  for (const c of cleanup.reverse()) await c();
});

/** Host PIDs of a pod's holder processes (found by their command line: `gpu-holder.mjs <dir> <name>`). */
function holderHostPids(pod: Pod, prefix: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    const at = argv.findIndex((a) => a.endsWith("gpu-holder.mjs"));
    if (at >= 0 && argv[at + 1] === pod.dir && argv[at + 2]?.startsWith(prefix)) out.push(Number(entry));
  }
  return out.sort((a, b) => a - b);
}

type Saved = { id: string; deviceEnergyJoules: Record<string, number> };
type State = { ledger: { jobs: Saved[]; buckets: { system: Saved; idle: Saved }; devices: { id: string; energyJoules: number; shared?: boolean; processUsageMethod?: string; notes: string[] }[] } };
const state = (pod: Pod): State | undefined => {
  try {
    return JSON.parse(readFileSync(join(pod.dir, "state.json"), "utf8")) as State;
  } catch {
    return undefined; // not written yet, or being replaced
  }
};
const podGpuJoules = (pod: Pod): number => state(pod)?.ledger.jobs.find((j) => j.id === `ml/${pod.name}`)?.deviceEnergyJoules.gpu0 ?? 0;

describe.skipIf(!canUnshare || !hierarchy || process.getuid?.() !== 0)("two sidecars on one time-sliced GPU (stub NVML)", () => {
  it("each pod is charged its share by process count (1/3, 2/3: the GPU's energy, no more); a lone pod gets all; node mode splits exactly by SM share", async () => {
    const lib = buildStubNvml();
    const root = mkdtempSync(join(tmpdir(), "pp-shared-gpu-"));
    cleanup.push(() => rmSync(root, { recursive: true, force: true }));
    // The GPU's device node as the pods' processes open it: <POWERPRINT_DEV_ROOT>/dev/nvidia0.
    mkdirSync(join(root, "dev"));
    writeFileSync(join(root, "dev", "nvidia0"), "");
    const stub = join(root, "stub.txt");
    let version = 0;
    const script = (energyMillijoules: number, procs: number[], sm: number[] = []) => {
      const t = join(root, `stub.${version++}`);
      writeFileSync(
        t,
        [
          "count 1",
          "gpu0.name NVIDIA H100 80GB HBM3",
          `gpu0.uuid ${GPU_UUID}`,
          "gpu0.minor 0",
          `gpu0.energy_mj ${energyMillijoules}`,
          "gpu0.power_mw 300000",
          "gpu0.util 100",
          ...(procs.length > 0 ? [`gpu0.procs ${procs.map((p) => `${p}:1073741824`).join(",")}`] : []),
          ...(sm.length > 0 ? [`gpu0.samples ${procs.map((p, i) => `${p}:${sm[i]}:10:${1000 + version}`).join(",")}`] : []),
        ].join("\n") + "\n",
      );
      renameSync(t, stub);
    };
    script(1_000_000, []);

    const start = (name: string, gpuProcesses: number): Pod => {
      const dir = join(root, name);
      mkdirSync(join(dir, "podinfo"), { recursive: true });
      writeFileSync(join(dir, "podinfo", "name"), name);
      writeFileSync(join(dir, "podinfo", "namespace"), "ml");
      spawnSync("mkfifo", [join(dir, "go"), join(dir, "stop")]);
      const child = spawn(
        "unshare",
        ["--pid", "--fork", "--mount-proc", "--kill-child", pauseStandIn(dir), join(SCRIPTS, "gpu-pod.sh"), dir, process.execPath, CLI, SCRIPTS, String(gpuProcesses)],
        {
          stdio: "ignore",
          env: {
            ...process.env,
            POWERPRINT_NVML_LIBRARY: lib,
            STUB_NVML_SCRIPT: stub,
            POWERPRINT_DEV_ROOT: root,
            GPU_DEVICE_NODE: join(root, "dev", "nvidia0"),
            // Both pods were given the same GPU (the device plugin's time-slicing replicas).
            NVIDIA_VISIBLE_DEVICES: GPU_UUID,
          },
        },
      );
      const pod: Pod = { name, dir, child, exited: new Promise((r) => child.on("exit", (code) => r(code))) };
      pods.push(pod);
      return pod;
    };
    const a = start("pod-a", 1);
    const b = start("pod-b", 2);
    for (const pod of [a, b]) {
      pod.url = await waitFor(`${pod.name}'s health URL`, () => {
        const err = existsSync(join(pod.dir, "agent.err")) ? readFileSync(join(pod.dir, "agent.err"), "utf8") : "";
        return /health: (http:\/\/127\.0\.0\.1:\d+)\/healthz/.exec(err)?.[1];
      });
      await waitFor(`${pod.name} ready`, async () => ((await fetch(`${pod.url}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined));
      await writeFile(join(pod.dir, "go"), "go\n");
    }
    // Every holder has its device node open (it says so after opening it).
    for (const [pod, names] of [[a, ["gpu0", "cpu"]], [b, ["gpu0", "gpu1", "cpu"]]] as const) {
      await waitFor(`${pod.name}'s processes`, () => names.every((n) => existsSync(join(pod.dir, `holder-${n}.ready`))));
    }
    const [a0] = holderHostPids(a, "gpu");
    const [b0, b1] = holderHostPids(b, "gpu");
    expect([a0, b0, b1].every((p) => p > 0)).toBe(true);

    // The node agent's view of the same processes: each pod's processes in its pod cgroup.
    const top = join(hierarchy!.dir, `pp-shared-gpu-${process.pid}`);
    cleanup.push(() => removeTree(top));
    const tag = (process.pid % 0xffffffff).toString(16).padStart(8, "0");
    const specs: PodSpec[] = [
      { uid: `${tag}-0000-4000-8000-0000000000aa`, qos: "burstable", containers: ["a".repeat(64)] },
      { uid: `${tag}-0000-4000-8000-0000000000bb`, qos: "burstable", containers: ["b".repeat(64)] },
    ];
    makeLayout(top, "systemd", specs);
    movePid(join(top, podPaths("systemd", specs[0]).containers[0]), a0);
    for (const p of [b0, b1]) movePid(join(top, podPaths("systemd", specs[1]).containers[0]), p);
    const nodeLog = recordingLogger();
    const nvml: Collector = createNvmlCollector({ libraryPath: lib });
    cleanup.push(() => nvml.close());
    let now = 0;
    const nodeLedger = new Ledger({ pue: 1 }, 0);
    const fixed = createFixedProvider(100);
    process.env.STUB_NVML_SCRIPT = stub;
    cleanup.push(() => void delete process.env.STUB_NVML_SCRIPT);
    const node = new Sampler({
      collectors: [nvml],
      processes: new NodeJobSource({ hierarchy: { dir: top, version: hierarchy!.version }, log: nodeLog }),
      intensity: { at: (t) => fixed.at("XX", t) },
      ledger: nodeLedger,
      nowMillis: () => now,
      idlePolicy: "attribute",
      idle: { byKind: { gpu: 100 } },
      log: nodeLog,
    });

    // Phase 1: NVML lists the three processes (SM 60 % for A's, 20 % each for B's); then, once both
    // sidecars have seen the GPU shared, its counter moves 600 J.
    script(1_000_000, [a0, b0, b1], [60, 20, 20]);
    for (const pod of [a, b]) await waitFor(`${pod.name} sees the GPU shared`, () => /gpu0 is shared with other pods/.test(readFileSync(join(pod.dir, "agent.err"), "utf8")));
    await node.tick(); // the node agent's baseline
    script(1_600_000, [a0, b0, b1], [60, 20, 20]);
    await waitFor("both pods charged for the 600 J", () => podGpuJoules(a) >= 200 - 1e-6 && podGpuJoules(b) >= 400 - 1e-6);
    now = 2000;
    await node.tick();

    // Phase 2: B's GPU processes end; A is alone on the GPU, and its counter moves 300 J more.
    for (const p of [b0, b1]) process.kill(p, "SIGKILL");
    await waitFor("B's GPU processes gone", () => holderHostPids(b, "gpu").length === 0);
    // The process list changes first, the counter after: a tick that reads the new energy reads the
    // new list too (B's share: 0 of 1), however the sidecars' ticks fall.
    script(1_600_000, [a0], [60]);
    script(1_900_000, [a0], [60]);
    await waitFor("A charged for the 300 J", () => podGpuJoules(a) >= 500 - 1e-6);

    for (const pod of [a, b]) await writeFile(join(pod.dir, "stop"), "stop\n");
    for (const pod of [a, b]) expect(await pod.exited).toBe(0);

    const sa = state(a)!;
    const sb = state(b)!;
    // Pod mode: A 1/3 × 600 + all of 300; B 2/3 × 600. Together: the GPU's 900 J, not more.
    expect(podGpuJoules(a)).toBeCloseTo(200 + 300, 6);
    expect(podGpuJoules(b)).toBeCloseTo(400, 6);
    expect(podGpuJoules(a) + podGpuJoules(b)).toBeCloseTo(900, 6);
    for (const s of [sa, sb]) {
      const gpu = s.ledger.devices.find((d) => d.id === "gpu0")!;
      expect(gpu).toMatchObject({ shared: true, processUsageMethod: "estimate" });
      expect(gpu.notes.join("; ")).toContain("node mode splits shared GPUs exactly");
      // The sidecar's GPU is its pod's share: nothing of the other pod's lands in its buckets.
      expect(s.ledger.buckets.system.deviceEnergyJoules.gpu0 ?? 0).toBe(0);
      expect(s.ledger.buckets.idle.deviceEnergyJoules.gpu0 ?? 0).toBe(0);
    }
    expect(sa.ledger.devices.find((d) => d.id === "gpu0")!.energyJoules).toBeCloseTo(500, 6);
    expect(sb.ledger.devices.find((d) => d.id === "gpu0")!.energyJoules).toBeCloseTo(400, 6);
    for (const pod of [a, b]) expect(readFileSync(join(pod.dir, "agent.err"), "utf8").match(/node mode \(a DaemonSet agent\) splits shared GPUs exactly/g)).toHaveLength(1);

    // Node mode on phase 1: idle 100 W × 2 s = 200 J between the two pods, active 400 J by SM share.
    const snap = nodeLedger.snapshot();
    const nodeJob = (uid: string) => snap.jobs.find((j) => j.id === uid)!.deviceEnergyJoules.gpu0;
    expect(nodeJob(specs[0].uid)).toBeCloseTo(400 * 0.6 + 100, 9);
    expect(nodeJob(specs[1].uid)).toBeCloseTo(400 * 0.4 + 100, 9);
    expect(nodeJob(specs[0].uid) + nodeJob(specs[1].uid)).toBeCloseTo(600, 9);
    expect(snap.devices.find((d) => d.id === "gpu0")).toMatchObject({ energyJoules: 600, processUsageMethod: "utilization" });
    expect(snap.devices.find((d) => d.id === "gpu0")!.shared).toBeUndefined();
  }, 180_000);
});
