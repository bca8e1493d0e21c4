// GPU processes resolved through ProcessSource.jobOfPid: NodeJobSource with trackMembers false
// (no cgroup.procs read per tick: ProcessSample.members is empty) on a real kubelet-shaped cgroup
// tree, real sleeping processes moved into two "pods" and one left outside, through the real
// Monitor → Sampler → Ledger. The GPU is a test double of a device that reports those PIDs.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NodeJobSource } from "../../src/agent/node-source.js";
import { readCgroupMounts } from "../../src/cgroup/mounts.js";
import type { Collector, DeviceReading, ProcessUsage } from "../../src/core/contracts.js";
import { Ledger } from "../../src/core/ledger.js";
import { Monitor } from "../../src/core/monitor.js";
import { createFixedProvider } from "../../src/grid/static.js";
import { makeLayout, movePid, podPaths, removeTree, type PodSpec } from "../cgroup/kube-layout.js";
import { recordingLogger } from "../exporters/snapshots.js";

const children: ChildProcess[] = [];
const trees: string[] = [];
afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  for (const t of trees) await removeTree(t);
});

const mounts = readCgroupMounts();
const hierarchy = mounts.v2 ? { dir: mounts.v2.mountPoint, version: 2 as const } : mounts.v1.has("cpuacct") ? { dir: mounts.v1.get("cpuacct")!.mountPoint, version: 1 as const } : undefined;

describe("Sampler: device PIDs through ProcessSource.jobOfPid (node agent, trackMembers false)", () => {
  it.skipIf(!hierarchy || process.getuid?.() !== 0)("each pod's GPU process is found without members; one outside every pod goes to system; one that exited keeps its pod for that interval", async () => {
    const top = join(hierarchy!.dir, `pp-jobofpid-${process.pid}`);
    trees.push(top);
    const tag = (process.pid % 0xffffffff).toString(16).padStart(8, "0");
    const pods: PodSpec[] = [
      { uid: `${tag}-0000-4000-8000-0000000000a1`, qos: "burstable", containers: ["a".repeat(64)] },
      { uid: `${tag}-0000-4000-8000-0000000000b2`, qos: "besteffort", containers: ["b".repeat(64)] },
    ];
    makeLayout(top, "systemd", pods);
    const sleeper = (): ChildProcess => {
      const c = spawn("sleep", ["600"], { stdio: "ignore" });
      children.push(c);
      return c;
    };
    const [pa, pb, outside] = [sleeper(), sleeper(), sleeper()];
    movePid(join(top, podPaths("systemd", pods[0]).containers[0]), pa.pid!);
    movePid(join(top, podPaths("systemd", pods[1]).containers[0]), pb.pid!);

    let procs: ProcessUsage[] = [
      { pid: pa.pid!, share: 0.5 },
      { pid: pb.pid!, share: 0.25 },
      { pid: outside.pid!, share: 0.25 },
    ];
    const gpu: Collector = {
      id: "gpu",
      probe: () => Promise.resolve({ status: "ok", devices: [] }),
      read: () => Promise.resolve<DeviceReading[]>([{ deviceId: "gpu0", kind: "gpu", source: "gpu", method: "power", powerWatts: 400, idleWatts: 0, processes: procs, processUsageMethod: "utilization" }]),
      close: () => Promise.resolve(),
    };
    const source = new NodeJobSource({ hierarchy: { dir: top, version: hierarchy!.version }, log: recordingLogger(), trackMembers: false });
    expect(source.sample().members.size).toBe(0); // nothing listed: the sampler must ask

    let mono = 0;
    const clock = { monotonicMillis: () => mono, wallMillis: () => 1_700_000_000_000 + mono };
    const ledger = new Ledger({ pue: 1 }, clock.wallMillis());
    const fixed = createFixedProvider(100);
    const log = recordingLogger();
    const monitor = new Monitor({ collectors: [gpu], processes: source, intensity: { at: (t) => fixed.at("XX", t) }, ledger, exporters: [], intervalMillis: 1000, idlePolicy: "attribute", log, clock });
    await monitor.tick(); // baseline
    mono += 1000;
    await monitor.tick(); // 400 J: 200 / 100 / 100
    const job = (uid: string) => monitor.snapshot().jobs.find((j) => j.id === uid || j.attributes["k8s.pod.uid"] === uid)!;
    expect(job(pods[0].uid).deviceEnergyJoules.gpu0).toBeCloseTo(200, 9);
    expect(job(pods[1].uid).deviceEnergyJoules.gpu0).toBeCloseTo(100, 9);
    expect(monitor.snapshot().buckets.system.deviceEnergyJoules.gpu0).toBeCloseTo(100, 9);

    // Pod a's process exits between reads; the GPU still reports it for the interval it ran in.
    const exited = new Promise((r) => pa.once("exit", r));
    pa.kill("SIGKILL");
    await exited;
    mono += 1000;
    await monitor.tick();
    expect(job(pods[0].uid).deviceEnergyJoules.gpu0).toBeCloseTo(400, 9);
    // From then on the GPU no longer lists it.
    procs = procs.slice(1).map((p) => ({ ...p, share: 0.5 }));
    mono += 1000;
    await monitor.tick();
    expect(job(pods[0].uid).deviceEnergyJoules.gpu0).toBeCloseTo(400, 9);
    expect(job(pods[1].uid).deviceEnergyJoules.gpu0).toBeCloseTo(100 + 100 + 200, 9);
    expect(monitor.stats.collectorFailures).toEqual({});
  });
});
