// GPU per pod: two pods' processes and one process outside every pod on one GPU (the stub
// libnvidia-ml through the real koffi NVML collector), pods as real cgroups walked by
// NodeJobSource, through the real Sampler, attribution and Ledger: each pod's GPU share follows SM
// utilisation, the idle part is split among the holders, energy is conserved exactly.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createNvmlCollector } from "../../collectors/nvml.js";
import { NodeJobSource } from "../../src/agent/node-source.js";
import { readCgroupMounts } from "../../src/cgroup/mounts.js";
import type { Collector, ProcessSample, ProcessSource } from "../../src/core/contracts.js";
import { Ledger } from "../../src/core/ledger.js";
import { Sampler } from "../../src/core/sampler.js";
import { createFixedProvider } from "../../src/grid/static.js";
import { PodMetadataCache } from "../../src/k8s/cache.js";
import { fetchPods } from "../../src/k8s/client.js";
import { buildStubNvml } from "../native/build-stub.mjs";
import { makeLayout, movePid, podPaths, removeTree, type PodSpec } from "../cgroup/kube-layout.js";
import { recordingLogger, startReplayServer, type ReplayServer } from "../grid/replay-server.js";

const children: ChildProcess[] = [];
const trees: string[] = [];
const tmp: string[] = [];
const servers: ReplayServer[] = [];
const collectors: Collector[] = [];
afterAll(async () => {
  for (const c of collectors) await c.close();
  for (const c of children) c.kill("SIGKILL");
  for (const t of trees) await removeTree(t);
  for (const s of servers) await s.close();
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

const mounts = readCgroupMounts();
const hierarchy = mounts.v2 ? { dir: mounts.v2.mountPoint, version: 2 as const } : mounts.v1.has("cpuacct") ? { dir: mounts.v1.get("cpuacct")!.mountPoint, version: 1 as const } : undefined;

/** What the agent's Monitor does with discovered jobs: registers each new one in the ledger. */
class RegisteringSource implements ProcessSource {
  constructor(private readonly inner: ProcessSource, private readonly ledger: Ledger, private readonly now: () => number) {}
  addJob(jobId: string, rootPid: number): void {
    this.inner.addJob(jobId, rootPid);
  }
  sample(): ProcessSample {
    const s = this.inner.sample();
    for (const j of s.jobs?.values() ?? []) this.ledger.registerJob(j.id, j.name, j.attributes, this.now());
    return s;
  }
  jobEnvironment(jobId: string, names: readonly string[]): Record<string, string> {
    return this.inner.jobEnvironment(jobId, names);
  }
}

describe("GPU per pod (stub NVML, real cgroups)", () => {
  it.skipIf(!hierarchy || process.getuid?.() !== 0)("splits one GPU between two pods by SM utilisation; conservation exact", async () => {
    const lib = buildStubNvml();
    const work = mkdtempSync(join(tmpdir(), "pp-node-gpu-"));
    tmp.push(work);
    const scriptPath = join(work, "stub.txt");
    process.env.STUB_NVML_SCRIPT = scriptPath;
    let version = 0;
    const script = (lines: string[]): void => {
      const t = join(work, `s.${version++}`);
      writeFileSync(t, lines.join("\n") + "\n");
      renameSync(t, scriptPath);
    };

    const top = join(hierarchy!.dir, `pp-node-gpu-${process.pid}`);
    trees.push(top);
    const tag = (process.pid % 0xffffffff).toString(16).padStart(8, "0");
    const pods: (PodSpec & { name: string })[] = [
      { uid: `${tag}-0000-4000-8000-00000000000a`, qos: "burstable", containers: ["e".repeat(64)], name: "llm-a" },
      { uid: `${tag}-0000-4000-8000-00000000000b`, qos: "guaranteed", containers: ["f".repeat(64)], name: "llm-b" },
    ];
    makeLayout(top, "systemd", pods);
    // One sleeping process per pod (the GPU's users) and one outside every pod.
    const sleeper = (): ChildProcess => {
      const c = spawn("sleep", ["600"], { stdio: "ignore" });
      children.push(c);
      return c;
    };
    const [pa, pb, outside] = [sleeper(), sleeper(), sleeper()];
    movePid(join(top, podPaths("systemd", pods[0]).containers[0]), pa.pid!);
    movePid(join(top, podPaths("systemd", pods[1]).containers[0]), pb.pid!);

    const real = (JSON.parse(readFileSync(fileURLToPath(new URL("../fixtures/kubelet/datadog-agent__podlist_container_ready.json", import.meta.url)), "utf8")) as { items: any[] }).items;
    const items = pods.map((p, i) => {
      const item = structuredClone(real[i]);
      Object.assign(item.metadata, { uid: p.uid, name: p.name, namespace: "inference", labels: { app: p.name } });
      item.status.containerStatuses = [{ name: "server", containerID: `containerd://${p.containers[0]}`, state: { running: {} } }];
      return item;
    });
    const kubelet = await startReplayServer(() => ({ body: { kind: "PodList", items } }));
    servers.push(kubelet);
    const log = recordingLogger();
    const cache = new PodMetadataCache({ fetch: () => fetchPods({ url: `${kubelet.url}/pods` }), log });
    await cache.refresh();

    const gpuLines = (energyMillijoules: number, sampleMicros: number): string[] => [
      "count 1",
      "gpu0.name NVIDIA H100 80GB HBM3",
      "gpu0.uuid GPU-5e3a1c2b-0000-4d6e-9f00-aaaaaaaaaaaa",
      `gpu0.energy_mj ${energyMillijoules}`,
      "gpu0.power_mw 500000",
      "gpu0.util 100",
      `gpu0.procs ${pa.pid}:1000000,${pb.pid}:1000000,${outside.pid}:1000000`,
      `gpu0.samples ${pa.pid}:60:10:${sampleMicros},${pb.pid}:20:10:${sampleMicros},${outside.pid}:20:10:${sampleMicros}`,
    ];
    script(gpuLines(1_000_000, 1));
    const nvml = createNvmlCollector({ libraryPath: lib });
    collectors.push(nvml);
    expect((await nvml.probe()).status).toBe("ok");

    let now = 0;
    const ledger = new Ledger({ pue: 1 }, 0);
    const source = new RegisteringSource(new NodeJobSource({ hierarchy: { dir: top, version: hierarchy!.version }, log, pods: cache }), ledger, () => now);
    const fixed = createFixedProvider(100);
    const sampler = new Sampler({
      collectors: [nvml],
      processes: source,
      intensity: { at: (t) => fixed.at("XX", t) },
      ledger,
      nowMillis: () => now,
      idlePolicy: "attribute",
      idle: { byKind: { gpu: 100 } },
      log,
    });
    await sampler.tick(); // baseline
    // 2 s later the counter moved 1000 J; idle 100 W × 2 s = 200 J, active 800 J split 60:20:20.
    now = 2000;
    script(gpuLines(2_000_000, 2_000_000));
    await sampler.tick();

    const snap = ledger.snapshot();
    const gpu = snap.devices.find((d) => d.id === "gpu0")!;
    expect(gpu.energyJoules).toBeCloseTo(1000, 9);
    const jobA = snap.jobs.find((j) => j.id === pods[0].uid)!;
    const jobB = snap.jobs.find((j) => j.id === pods[1].uid)!;
    expect(jobA.attributes).toMatchObject({ "k8s.pod.name": "llm-a", "k8s.namespace.name": "inference", "k8s.pod.uid": pods[0].uid, "k8s.container.name": "server" });
    expect(jobB.attributes).toMatchObject({ "k8s.pod.name": "llm-b", "k8s.namespace.name": "inference" });
    const idleEach = 200 / 3;
    expect(jobA.deviceEnergyJoules.gpu0).toBeCloseTo(800 * 0.6 + idleEach, 9);
    expect(jobB.deviceEnergyJoules.gpu0).toBeCloseTo(800 * 0.2 + idleEach, 9);
    const system = snap.buckets.system.deviceEnergyJoules.gpu0 ?? 0;
    const idle = snap.buckets.idle.deviceEnergyJoules.gpu0 ?? 0;
    expect(system).toBeCloseTo(800 * 0.2 + idleEach, 9);
    expect(jobA.deviceEnergyJoules.gpu0 + jobB.deviceEnergyJoules.gpu0 + system + idle).toBeCloseTo(gpu.energyJoules, 9);
    expect(log.lines.filter((l) => l.startsWith("warn:"))).toEqual([]);
  });
});
