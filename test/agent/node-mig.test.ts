// Node mode on a MIG GPU: pods as real cgroups walked by NodeJobSource (members not listed: every
// GPU process resolved by its /proc/PID/cgroup, as the sampler asks the source for the PIDs of each
// device, MIG instances' included), the stub libnvidia-ml through the real koffi NVML collector.
// Every PID on every instance reaches its pod; one in no pod goes to `system`; conservation exact.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
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
import { buildStubNvml } from "../native/build-stub.mjs";

const children: ChildProcess[] = [];
const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  for (const f of cleanup.reverse()) await f();
});

const mounts = readCgroupMounts();
const hierarchy = mounts.v2 ? { dir: mounts.v2.mountPoint, version: 2 as const } : mounts.v1.has("cpuacct") ? { dir: mounts.v1.get("cpuacct")!.mountPoint, version: 1 as const } : undefined;

describe("node mode: pods on MIG instances (stub NVML, real cgroups)", () => {
  it.skipIf(!hierarchy || process.getuid?.() !== 0)("each instance's energy reaches the pods of its processes, the rest system; conservation per instance and GPU", async () => {
    const lib = buildStubNvml();
    const work = mkdtempSync(join(tmpdir(), "pp-node-mig-"));
    cleanup.push(() => rmSync(work, { recursive: true, force: true }));
    const scriptPath = join(work, "stub.txt");
    process.env.STUB_NVML_SCRIPT = scriptPath;
    cleanup.push(() => void delete process.env.STUB_NVML_SCRIPT);
    let version = 0;
    const top = join(hierarchy!.dir, `pp-node-mig-${process.pid}`);
    cleanup.push(() => removeTree(top));
    const tag = (process.pid % 0xffffffff).toString(16).padStart(8, "0");
    const pods: PodSpec[] = [
      { uid: `${tag}-0000-4000-8000-0000000000c1`, qos: "burstable", containers: ["c".repeat(64)] },
      { uid: `${tag}-0000-4000-8000-0000000000d2`, qos: "besteffort", containers: ["d".repeat(64)] },
    ];
    makeLayout(top, "cgroupfs", pods);
    const sleeper = () => {
      const c = spawn("sleep", ["600"], { stdio: "ignore" });
      children.push(c);
      return c.pid!;
    };
    const [a, b1, b2, outside] = [sleeper(), sleeper(), sleeper(), sleeper()];
    movePid(join(top, podPaths("cgroupfs", pods[0]).containers[0]), a);
    for (const p of [b1, b2]) movePid(join(top, podPaths("cgroupfs", pods[1]).containers[0]), p);

    // A100-like (no GPM): 4g (GI 1) holds pod A's process; 3g (GI 2) pod B's two and one in no pod.
    const script = (energyMillijoules: number) => {
      const t = join(work, `s.${version++}`);
      writeFileSync(
        t,
        [
          "count 1",
          "gpu0.name NVIDIA A100-SXM4-80GB",
          `gpu0.energy_mj ${energyMillijoules}`,
          "gpu0.mig 1",
          "gpu0.total_slices 7",
          "gpu0.mig0.gi 1",
          "gpu0.mig0.gi_slices 4",
          "gpu0.mig0.ci_slices 4",
          "gpu0.mig0.sms 56",
          `gpu0.mig0.procs ${a}:1000000`,
          "gpu0.mig1.gi 2",
          "gpu0.mig1.gi_slices 3",
          "gpu0.mig1.ci_slices 3",
          "gpu0.mig1.sms 42",
          `gpu0.mig1.procs ${b1}:1000000,${b2}:1000000,${outside}:1000000`,
        ].join("\n") + "\n",
      );
      renameSync(t, scriptPath);
    };
    script(1_000_000);
    const nvml: Collector = createNvmlCollector({ libraryPath: lib });
    cleanup.push(() => nvml.close());
    const log = recordingLogger();
    const ledger = new Ledger({ pue: 1 }, 0);
    const fixed = createFixedProvider(100);
    let now = 0;
    const sampler = new Sampler({
      collectors: [nvml],
      processes: new NodeJobSource({ hierarchy: { dir: top, version: hierarchy!.version }, log, trackMembers: false }),
      intensity: { at: (t) => fixed.at("XX", t) },
      ledger,
      nowMillis: () => now,
      idlePolicy: "attribute",
      idle: { byKind: { gpu: 70 } },
      log,
    });
    await sampler.tick();
    now = 2000;
    script(1_700_000); // +700 J; idle 70 W × 2 s = 140 J
    await sampler.tick();
    const snap = ledger.snapshot();
    // 4g: idle 140 × 4/7 = 80, active 560 × 4/7 = 320 → pod A. 3g: 60 + 240 = 300 → active equally
    // among three processes (B, B, system: 2/3 to B), idle equally between the holders B and system.
    const podA = snap.jobs.find((j) => j.id === pods[0].uid)!.deviceEnergyJoules;
    const podB = snap.jobs.find((j) => j.id === pods[1].uid)!.deviceEnergyJoules;
    expect(podA["gpu0/gi1/ci0"]).toBeCloseTo(400, 9);
    expect(podB["gpu0/gi2/ci0"]).toBeCloseTo((240 * 2) / 3 + 60 / 2, 9);
    expect(snap.buckets.system.deviceEnergyJoules["gpu0/gi2/ci0"]).toBeCloseTo(240 / 3 + 60 / 2, 9);
    const on = (id: string) => [...snap.jobs, snap.buckets.system, snap.buckets.idle].reduce((s, t) => s + (t.deviceEnergyJoules[id] ?? 0), 0);
    for (const id of ["gpu0/gi1/ci0", "gpu0/gi2/ci0"]) expect(on(id)).toBeCloseTo(snap.devices.find((d) => d.id === id)!.energyJoules, 9);
    expect(on("gpu0") + on("gpu0/gi1/ci0") + on("gpu0/gi2/ci0")).toBeCloseTo(700, 9);
    expect(snap.devices.filter((d) => d.parent === "gpu0").map((d) => d.id)).toEqual(["gpu0/gi1/ci0", "gpu0/gi2/ci0"]);
    // Pods are named by their UID here (no kubelet): said once; nothing else is wrong.
    expect(log.lines.filter((l) => l.startsWith("warn:") && !l.includes("no pod metadata"))).toEqual([]);
  });
});
