// NodeJobSource on REAL cgroups: kubelet-shaped trees (systemd and cgroupfs drivers) on this
// machine's cgroup2 and v1 cpuacct hierarchies, real CPU burners moved into three "pods", pod
// metadata from a loopback kubelet replaying a real PodList with the test's UIDs. Per-pod CPU
// seconds are compared with what the burners measured themselves.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { NodeJobSource, createNodeJobSource, findKubepods, probeNodeMode, selectNodeHierarchy, type NodeHierarchy } from "../../src/agent/node-source.js";
import { readCgroupMounts } from "../../src/cgroup/mounts.js";
import { PodMetadataCache } from "../../src/k8s/cache.js";
import { fetchPods } from "../../src/k8s/client.js";
import { makeLayout, movePid, podPaths, removeTree, type Driver, type PodSpec } from "../cgroup/kube-layout.js";
import { recordingLogger, startReplayServer, type ReplayServer } from "../grid/replay-server.js";
import { waitFor } from "../helpers/wait.js";

const burnerScript = fileURLToPath(new URL("../cgroup/scripts/pod-burner.mjs", import.meta.url));
const kubeletFixture = (name: string): { items: unknown[] } =>
  JSON.parse(readFileSync(fileURLToPath(new URL(`../fixtures/kubelet/${name}`, import.meta.url)), "utf8"));

const trees: string[] = [];
const children: ChildProcess[] = [];
const tmp: string[] = [];
const servers: ReplayServer[] = [];
afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  for (const t of trees) await removeTree(t);
  for (const s of servers) await s.close();
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

/** The PID a script published in `file`, once it is there whole. */
const readPid = (file: string): number | undefined => {
  const n = existsSync(file) ? Number(readFileSync(file, "utf8")) : NaN;
  return Number.isInteger(n) && n > 0 ? n : undefined;
};

const hex = (seed: string): string => (seed.repeat(64 / seed.length + 1)).slice(0, 64);
/** Test pod UIDs carry the test's pid so parallel runs never collide. */
const uidFor = (n: number): string => `${(process.pid % 0xffffffff).toString(16).padStart(8, "0")}-0000-4000-8000-${String(n).padStart(12, "0")}`;

interface TestPod extends PodSpec {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  /** CPU seconds each container's burner burns. */
  targets: number[];
}

function testPods(tag: number): TestPod[] {
  return [
    { uid: uidFor(tag * 10 + 1), qos: "burstable", containers: [hex(`a${tag}`)], name: "trainer-0", namespace: "ml", labels: { "training.kubeflow.org/job-name": "bert" }, targets: [0.3] },
    { uid: uidFor(tag * 10 + 2), qos: "besteffort", containers: [hex(`b${tag}`), hex(`c${tag}`)], name: "trainer-1", namespace: "ml", labels: { "training.kubeflow.org/job-name": "bert" }, targets: [0.3, 0.3] },
    { uid: uidFor(tag * 10 + 3), qos: "guaranteed", containers: [hex(`d${tag}`)], name: "eval-0", namespace: "research", labels: {}, targets: [0.6] },
  ];
}

/**
 * A real kubelet PodList (containerd ids, a short-lived Succeeded pod) with the test's pods put in
 * place of its first three, and the null / empty entries of the null_pod capture in front.
 */
function podList(pods: TestPod[]): unknown {
  const real = kubeletFixture("datadog-agent__podlist_short_lived_terminated.json").items as Record<string, any>[];
  const items: unknown[] = [null, {}];
  pods.forEach((p, i) => {
    const item = structuredClone(real[i]);
    item.metadata.uid = p.uid;
    item.metadata.name = p.name;
    item.metadata.namespace = p.namespace;
    item.metadata.labels = p.labels;
    item.status.containerStatuses = p.containers.map((id, k) => ({ name: `c${k}-${p.name}`, containerID: `containerd://${id}`, state: { running: {} } }));
    items.push(item);
  });
  items.push(...real.slice(3));
  return { kind: "PodList", apiVersion: "v1", metadata: {}, items };
}

async function startBurners(top: string, driver: Driver, pods: TestPod[], work: string): Promise<Map<number, string>> {
  const pidToPod = new Map<number, string>();
  for (const p of pods) {
    const paths = podPaths(driver, p);
    for (let k = 0; k < p.containers.length; k++) {
      const name = `${p.name}-${k}`;
      const child = spawn(process.execPath, [burnerScript, work, name, String(p.targets[k])], { stdio: "ignore" });
      children.push(child);
      const pid = await waitFor(`${name} ready`, () => readPid(join(work, `${name}.ready`)));
      movePid(join(top, paths.containers[k]), pid);
      pidToPod.set(pid, p.uid);
    }
  }
  return pidToPod;
}

const reportedCpu = (work: string, p: TestPod): number =>
  p.targets.reduce((s, _t, k) => s + Number(readFileSync(join(work, `${p.name}-${k}.cpu`), "utf8")), 0);

const mounts = readCgroupMounts();
const hierarchies: { label: string; h: NodeHierarchy | undefined }[] = [
  { label: "cgroup2", h: mounts.v2 ? { dir: mounts.v2.mountPoint, version: 2 } : undefined },
  { label: "v1 cpuacct", h: mounts.v1.has("cpuacct") ? { dir: mounts.v1.get("cpuacct")!.mountPoint, version: 1 } : undefined },
];
const root = process.getuid?.() === 0;
const layouts = hierarchies.flatMap((x, i) => (["systemd", "cgroupfs"] as const).map((driver, j) => ({ ...x, driver, tag: i * 2 + j + 1 })));

describe.each(layouts)("node mode on $label, $driver driver", ({ h, driver, tag }) => {
  it.skipIf(!h || !root)("per-pod CPU within 5 % of the burners' own figures, names from the kubelet, members right", async () => {
    const hierarchy = h!;
    const top = join(hierarchy.dir, `pp-node-${process.pid}-${tag}`);
    trees.push(top);
    const pods = testPods(tag);
    makeLayout(top, driver, pods);
    const work = mkdtempSync(join(tmpdir(), "pp-node-"));
    tmp.push(work);
    const kubelet = await startReplayServer((req) => (req.path === "/pods" ? { body: podList(pods) } : { status: 404, body: "no" }));
    servers.push(kubelet);
    const log = recordingLogger();
    const cache = new PodMetadataCache({ fetch: () => fetchPods({ url: `${kubelet.url}/pods` }), log, intervalMillis: 3_600_000 });
    expect((await cache.start()).status).toBe("ok");
    cache.stop();

    expect(findKubepods(top, 4)).toEqual([join(top, driver === "systemd" ? "kubepods.slice" : "kubepods")]);
    const pidToPod = await startBurners(top, driver, pods, work);
    const source = new NodeJobSource({ hierarchy: { dir: top, version: hierarchy.version }, log, pods: cache });
    const before = source.sample();
    writeFileSync(join(work, "go"), "1");
    for (const p of pods) for (let k = 0; k < p.containers.length; k++) await waitFor(`${p.name}-${k} done`, () => (existsSync(join(work, `${p.name}-${k}.cpu`)) ? true : undefined));
    const after = source.sample();

    for (const p of pods) {
      const measured = after.jobCpuSeconds.get(p.uid)! - before.jobCpuSeconds.get(p.uid)!;
      const reported = reportedCpu(work, p);
      expect(Math.abs(measured - reported) / reported, `${p.name}: cgroup ${measured} s, burners ${reported} s`).toBeLessThanOrEqual(0.05);
      const job = after.jobs!.get(p.uid)!;
      expect(job.name).toBe(p.name);
      expect(job.attributes["k8s.pod.name"]).toBe(p.name);
      expect(job.attributes["k8s.namespace.name"]).toBe(p.namespace);
      expect(job.attributes["k8s.pod.uid"]).toBe(p.uid);
      if (p.containers.length === 1) expect(job.attributes["k8s.container.name"]).toBe(`c0-${p.name}`);
      else expect(job.attributes["k8s.container.name"]).toBeUndefined();
      expect(after.jobProcessCount.get(p.uid)).toBe(p.containers.length);
    }
    for (const [pid, uid] of pidToPod) {
      expect(after.members.get(pid)).toBe(uid);
      expect(source.jobOfPid(pid)).toBe(uid); // from /proc/PID/cgroup, as the host shows it
    }
    expect(source.jobOfPid(process.pid)).toBeUndefined();
    expect(after.members.size).toBe(pidToPod.size);
    expect(after.members.has(process.pid)).toBe(false);
    expect(after.jobs!.size).toBe(3);
    // The host counted at least what the pods did (the rest is `system`).
    const podsDelta = pods.reduce((s, p) => s + after.jobCpuSeconds.get(p.uid)! - before.jobCpuSeconds.get(p.uid)!, 0);
    expect(after.hostBusyCpuSeconds - before.hostBusyCpuSeconds).toBeGreaterThanOrEqual(podsDelta * 0.95);
    expect(log.lines.filter((l) => l.startsWith("warn:"))).toEqual([]);

    // A pod deleted by the kubelet: its cgroup goes, the job leaves the sample.
    const gone = pods[2];
    for (const [pid, uid] of pidToPod) if (uid === gone.uid) process.kill(pid, "SIGKILL");
    await removeTree(join(top, podPaths(driver, gone).pod));
    const later = source.sample();
    expect(later.jobs!.has(gone.uid)).toBe(false);
    expect(later.jobCpuSeconds.has(gone.uid)).toBe(false);
  });
});

describe("node mode grouping and missing metadata (cgroup2, systemd)", () => {
  const h = hierarchies[0].h ?? hierarchies[1].h;
  it.skipIf(!h || !root)("--group-by-label makes one job of all pods with the same value; no metadata: the UID, said once", async () => {
    const top = join(h!.dir, `pp-node-${process.pid}-group`);
    trees.push(top);
    const pods = testPods(9);
    makeLayout(top, "systemd", pods);
    const work = mkdtempSync(join(tmpdir(), "pp-node-"));
    tmp.push(work);
    const kubelet = await startReplayServer(() => ({ body: podList(pods) }));
    servers.push(kubelet);
    const log = recordingLogger();
    const cache = new PodMetadataCache({ fetch: () => fetchPods({ url: `${kubelet.url}/pods` }), log });
    await cache.refresh();
    await startBurners(top, "systemd", pods, work);
    const key = "training.kubeflow.org/job-name";
    const grouped = new NodeJobSource({ hierarchy: { dir: top, version: h!.version }, log, pods: cache, groupByLabel: key });
    const bare = new NodeJobSource({ hierarchy: { dir: top, version: h!.version }, log: recordingLogger(), groupByLabel: key });
    const g0 = grouped.sample();
    const b0 = bare.sample();
    writeFileSync(join(work, "go"), "1");
    for (const p of pods) for (let k = 0; k < p.containers.length; k++) await waitFor("done", () => (existsSync(join(work, `${p.name}-${k}.cpu`)) ? true : undefined));
    const g1 = grouped.sample();
    const b1 = bare.sample();

    const jobId = `${key}=bert`;
    expect([...g1.jobs!.keys()].sort()).toEqual([jobId, pods[2].uid].sort());
    expect(g1.jobs!.get(jobId)).toEqual({ id: jobId, name: "bert", attributes: { "k8s.namespace.name": "ml", [`k8s.pod.label.${key}`]: "bert" } });
    const bert = g1.jobCpuSeconds.get(jobId)! - g0.jobCpuSeconds.get(jobId)!;
    const bertReported = reportedCpu(work, pods[0]) + reportedCpu(work, pods[1]);
    expect(Math.abs(bert - bertReported) / bertReported).toBeLessThanOrEqual(0.05);
    expect(g1.jobProcessCount.get(jobId)).toBe(3);

    // Without metadata: one job per pod, named by UID, warned once.
    expect([...b1.jobs!.keys()].sort()).toEqual(pods.map((p) => p.uid).sort());
    for (const p of pods) expect(b1.jobs!.get(p.uid)).toEqual({ id: p.uid, name: p.uid, attributes: { "k8s.pod.uid": p.uid } });
    expect(b1.jobCpuSeconds.get(pods[0].uid)! - b0.jobCpuSeconds.get(pods[0].uid)!).toBeGreaterThan(0.25);
  });

  it.skipIf(!h || !root)("finds a container added to a running pod within relistEveryTicks, and a removed one at once", async () => {
    const top = join(h!.dir, `pp-node-${process.pid}-relist`);
    trees.push(top);
    const [pod] = testPods(8);
    makeLayout(top, "cgroupfs", [pod]);
    const source = new NodeJobSource({ hierarchy: { dir: top, version: h!.version }, log: recordingLogger(), relistEveryTicks: 3 });
    const first = spawn("sleep", ["600"], { stdio: "ignore" });
    children.push(first);
    movePid(join(top, podPaths("cgroupfs", pod).containers[0]), first.pid!);
    expect(source.sample().members.get(first.pid!)).toBe(pod.uid);
    // A second container appears in the running pod.
    const extra = join(top, podPaths("cgroupfs", pod).pod, hex("9"));
    mkdirSync(extra);
    const second = spawn("sleep", ["600"], { stdio: "ignore" });
    children.push(second);
    movePid(extra, second.pid!);
    const found: boolean[] = [];
    for (let i = 0; i < 3; i++) found.push(source.sample().members.has(second.pid!));
    expect(found.at(-1)).toBe(true);
    expect(source.stats.containerListings).toBe(2); // at first sight and once 3 ticks on, not every tick
    // The first container goes away: listed again in the same tick, the pod keeps its other member.
    first.kill("SIGKILL");
    await waitFor("first gone", () => (readFileSync(join(top, podPaths("cgroupfs", pod).containers[0], "cgroup.procs"), "utf8").trim() === "" ? true : undefined));
    rmdirSync(join(top, podPaths("cgroupfs", pod).containers[0]));
    const s = source.sample();
    expect([...s.members.entries()]).toEqual([[second.pid!, pod.uid]]);
    expect(s.jobProcessCount.get(pod.uid)).toBe(1);
  });

  it.skipIf(!h || !root)("createNodeJobSource finds the host's hierarchy from the host init's mountinfo, rebased on --sys-root", async () => {
    const top = join(h!.dir, `pp-node-${process.pid}-setup`);
    trees.push(top);
    const [pod] = testPods(7);
    makeLayout(top, "cgroupfs", [pod]);
    // A DaemonSet's view: the host's /proc at <fake>/proc (its PID 1 mounts cgroup2 on /sys/fs/cgroup)
    // and the host's /sys at <fake>/sys (here a link to the test's real cgroup tree).
    const fake = mkdtempSync(join(tmpdir(), "pp-host-"));
    tmp.push(fake);
    mkdirSync(join(fake, "proc", "1"), { recursive: true });
    mkdirSync(join(fake, "sys", "fs"), { recursive: true });
    symlinkSync(top, join(fake, "sys", "fs", "cgroup"));
    const fs = h!.version === 2 ? "cgroup2 cgroup2 rw" : "cgroup cgroup rw,cpuacct";
    writeFileSync(join(fake, "proc", "1", "mountinfo"), `30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - ${fs}\n`);
    writeFileSync(join(fake, "proc", "stat"), readFileSync("/proc/stat"));
    const log = recordingLogger();
    const r = createNodeJobSource({ procRoot: fake, sysRoot: join(fake, "sys"), log });
    if (r.status !== "ok") throw new Error(r.reason);
    expect(r.hierarchy).toEqual({ dir: join(fake, "sys", "fs", "cgroup"), version: h!.version });
    expect(r.driver).toBe("cgroupfs");
    expect(r.kubepods).toEqual([join(fake, "sys", "fs", "cgroup", "kubepods")]);
    const s = r.source.sample();
    expect([...s.jobs!.keys()]).toEqual([pod.uid]);
    expect(s.hostTotalCpuSeconds).toBeGreaterThan(0);

    // probe: hierarchy, driver, pods found, and how many of them the kubelet names.
    const kubelet = await startReplayServer(() => ({ body: podList([pod]) }));
    servers.push(kubelet);
    const probe = await probeNodeMode({ procRoot: fake, sysRoot: join(fake, "sys"), log, fetchPods: () => fetchPods({ url: `${kubelet.url}/pods` }) });
    expect(probe).toEqual({
      cgroup: { status: "ok", version: h!.version, dir: join(fake, "sys", "fs", "cgroup"), driver: "cgroupfs", kubepods: [join(fake, "sys", "fs", "cgroup", "kubepods")], pods: 1 },
      podMetadata: { status: "ok", pods: 3, matched: 1 }, // the test pod and the two real pods after it
    });
    const down = await probeNodeMode({ procRoot: fake, sysRoot: join(fake, "sys"), log, fetchPods: () => fetchPods({ url: "http://127.0.0.1:1/pods", timeoutMillis: 2000 }) });
    expect(down.podMetadata).toEqual({ status: "error", reason: expect.stringMatching(/^GET 127\.0\.0\.1:1\/pods: .*ECONNREFUSED/) });

    writeFileSync(join(fake, "proc", "1", "mountinfo"), "");
    expect(createNodeJobSource({ procRoot: fake, log })).toEqual({ status: "unavailable", reason: `no cgroup2 or v1 cpuacct mount in ${join(fake, "proc", "1", "mountinfo")}` });
    writeFileSync(join(fake, "proc", "1", "mountinfo"), `30 23 0:26 / ${fake} rw - cgroup2 cgroup2 rw\n`);
    const none = createNodeJobSource({ procRoot: fake, log });
    expect(none.status).toBe("unavailable");
    if (none.status === "unavailable") expect(none.reason).toMatch(/^no kubepods cgroup under .*: not a Kubernetes node/);
  });

  it("says once when there is no kubepods cgroup", () => {
    const empty = mkdtempSync(join(tmpdir(), "pp-nokube-"));
    tmp.push(empty);
    const log = recordingLogger();
    const s = new NodeJobSource({ hierarchy: { dir: empty, version: 2 }, log });
    s.sample();
    s.sample();
    expect(log.lines).toEqual([expect.stringMatching(/^warn: no kubepods cgroup under .*pp-nokube-.* \(cgroup v2\)/)]);
    expect(selectNodeHierarchy({ v1: new Map(), v2: { mountPoint: empty, root: "/" } })).toBeUndefined();
  });
});
