/**
 * `powerprint agent --mode node` wired end to end (the built CLI): a kubelet-shaped cgroup tree
 * (systemd driver) on this machine's cgroup2, real CPU burners moved into two "pods", pod metadata
 * from a loopback kubelet: /jobs shows each pod by name with its member PIDs and CPU seconds within
 * 5 % of what the burners measured themselves, and /metrics carries the pod labels.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { readCgroupMounts } from "../../src/cgroup/mounts.js";
import { makeLayout, movePid, podPaths, removeTree, type PodSpec } from "../cgroup/kube-layout.js";
import { startReplayServer } from "../grid/replay-server.js";
import { promValue, scrape, startAgent, waitFor } from "./agent-helpers.js";

const burner = fileURLToPath(new URL("../cgroup/scripts/pod-burner.mjs", import.meta.url));
const v2 = readCgroupMounts().v2;
const canRun = !!v2 && process.getuid?.() === 0;

const uid = (n: number) => `${(process.pid % 0xffffffff).toString(16).padStart(8, "0")}-0000-4000-9000-${String(n).padStart(12, "0")}`;
const pods: (PodSpec & { name: string; namespace: string; target: number })[] = [
  { uid: uid(1), qos: "burstable", containers: ["e".repeat(64)], name: "trainer-0", namespace: "ml", target: 0.4 },
  { uid: uid(2), qos: "besteffort", containers: ["f".repeat(64)], name: "eval-0", namespace: "research", target: 0.2 },
];

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe.skipIf(!canRun)("agent --mode node (CLI) on real cgroups", () => {
  it("names pods from the kubelet, holds their processes, counts their CPU from the pod cgroup", async () => {
    const top = join(v2!.mountPoint, `pp-agent-node-${process.pid}`);
    makeLayout(top, "systemd", pods);
    cleanups.push(() => removeTree(top));
    const work = mkdtempSync(join(tmpdir(), "pp-agent-node-"));
    cleanups.push(() => rmSync(work, { recursive: true, force: true }));
    const children: ChildProcess[] = [];
    cleanups.push(() => children.forEach((c) => c.kill("SIGKILL")));
    const pidOf = new Map<string, number>();
    for (const p of pods) {
      const child = spawn(process.execPath, [burner, work, p.name, String(p.target)], { stdio: "ignore" });
      children.push(child);
      const pid = Number(await waitFor(`${p.name} ready`, () => (existsSync(join(work, `${p.name}.ready`)) ? readFileSync(join(work, `${p.name}.ready`), "utf8") : undefined)));
      movePid(join(top, podPaths("systemd", p).containers[0]), pid);
      pidOf.set(p.uid, pid);
    }
    const podList = {
      kind: "PodList",
      apiVersion: "v1",
      items: [
        null,
        ...pods.map((p) => ({
          metadata: { uid: p.uid, name: p.name, namespace: p.namespace, labels: { app: p.name } },
          spec: { nodeName: "node-a" },
          status: { phase: "Running", containerStatuses: [{ name: "main", containerID: `containerd://${p.containers[0]}`, state: { running: {} } }] },
        })),
      ],
    };
    const kubelet = await startReplayServer((req) => (req.path === "/pods" ? { body: podList } : { status: 404, body: "no" }));
    cleanups.push(() => kubelet.close());

    const agent = startAgent(["--mode", "node", "--kubelet-url", `${kubelet.url}/pods`, "--listen", "127.0.0.1:0", "--prometheus", "127.0.0.1:0", "--interval", "100ms"]);
    cleanups.push(() => void agent.stop("SIGKILL"));
    const health = await agent.line(/health: (\S+)\/healthz/);
    const metrics = await agent.line(/serving metrics at (\S+)/);
    type View = { timeMillis: number; jobs: { id: string; name: string; attributes: Record<string, string>; pids: number[]; cpuSeconds: number }[] };
    const view = async () => (await (await fetch(`${health}/jobs`)).json()) as View;
    await waitFor("both pods in /jobs", async () => {
      const v = await view();
      return pods.every((p) => v.jobs.some((j) => j.id === p.uid && j.name === p.name)) ? true : undefined;
    });

    writeFileSync(join(work, "go"), "1");
    const selfCpu = new Map<string, number>();
    for (const p of pods) selfCpu.set(p.uid, Number(await waitFor(`${p.name} burnt`, () => (existsSync(join(work, `${p.name}.cpu`)) ? readFileSync(join(work, `${p.name}.cpu`), "utf8") : undefined))));
    const t0 = (await view()).timeMillis;
    let later = 0;
    const v = await waitFor("two later samples", async () => {
      const x = await view();
      if (x.timeMillis > t0 && ++later >= 2) return x;
      return undefined;
    });
    for (const p of pods) {
      const job = v.jobs.find((j) => j.id === p.uid)!;
      expect(job.attributes).toMatchObject({ "k8s.pod.name": p.name, "k8s.namespace.name": p.namespace, "k8s.pod.uid": p.uid });
      expect(job.pids).toEqual([pidOf.get(p.uid)]);
      const self = selfCpu.get(p.uid)!;
      // The burners idled before "go" and after; the cgroup counts in µs.
      expect(job.cpuSeconds).toBeGreaterThanOrEqual(self * 0.95);
      expect(job.cpuSeconds).toBeLessThanOrEqual(self * 1.05 + 0.02);
    }
    const text = await scrape(metrics);
    for (const p of pods) expect(promValue(text, "powerprint_job_energy_total", { powerprint_job_id: p.uid, k8s_pod_name: p.name, k8s_namespace_name: p.namespace })).toBeGreaterThan(0);
    expect(await agent.stop()).toBe(0);
  }, 120_000);
});
