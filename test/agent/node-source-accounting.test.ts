// NodeJobSource's accounting rules on a fixture cgroup2 tree whose counters the test sets:
// baselines (pods present at the first sample count from then, later pods from 0), departed pods,
// pods moving between jobs when metadata arrives, monotone counters, bounded state.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NodeJobSource } from "../../src/agent/node-source.js";
import type { PodMetadata } from "../../src/k8s/pods.js";
import { recordingLogger } from "../grid/replay-server.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const UID = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;

class Tree {
  readonly top = mkdtempSync(join(tmpdir(), "pp-node-acct-"));
  constructor() {
    dirs.push(this.top);
    mkdirSync(join(this.top, "kubepods", "burstable"), { recursive: true });
  }
  podDir(n: number): string {
    return join(this.top, "kubepods", "burstable", `pod${UID(n)}`);
  }
  /** Sets a pod's counter (seconds) and its one container's PIDs. */
  pod(n: number, cpuSeconds: number, pids: number[] = []): void {
    const d = this.podDir(n);
    const c = join(d, "a".repeat(63) + String(n % 10));
    mkdirSync(c, { recursive: true });
    writeFileSync(join(d, "cpu.stat"), `usage_usec ${Math.round(cpuSeconds * 1e6)}\nuser_usec 0\nsystem_usec 0\n`);
    writeFileSync(join(c, "cgroup.procs"), pids.map((p) => `${p}\n`).join(""));
  }
  remove(n: number): void {
    rmSync(this.podDir(n), { recursive: true, force: true });
  }
}

const meta = (n: number, labels: Record<string, string> = {}): PodMetadata => ({ uid: UID(n), name: `pod-${n}`, namespace: "ns", labels, containers: [] });

describe("NodeJobSource accounting", () => {
  it("baselines, later pods from 0, departed pods leave the sample, counters never go down", () => {
    const t = new Tree();
    t.pod(1, 100, [11]);
    const s = new NodeJobSource({ hierarchy: { dir: t.top, version: 2 }, log: recordingLogger(), relistEveryTicks: 1 });
    const a = s.sample();
    expect(a.jobCpuSeconds.get(UID(1))).toBe(0); // running before the agent: counts from now
    t.pod(1, 103, [11, 12]);
    t.pod(2, 5, [21]); // created since the last tick: all of its 5 s are in this interval
    const b = s.sample();
    expect(b.jobCpuSeconds.get(UID(1))).toBeCloseTo(3, 9);
    expect(b.jobCpuSeconds.get(UID(2))).toBeCloseTo(5, 9);
    expect([...b.members]).toEqual([[11, UID(1)], [12, UID(1)], [21, UID(2)]]);
    expect(b.jobProcessCount.get(UID(1))).toBe(2);
    t.pod(1, 102); // a counter that went down (cgroup recreated under the same name): held
    const c = s.sample();
    expect(c.jobCpuSeconds.get(UID(1))).toBeCloseTo(3, 9);
    t.remove(2);
    const d = s.sample();
    expect(d.jobCpuSeconds.has(UID(2))).toBe(false);
    expect(d.jobs!.has(UID(2))).toBe(false);
    expect(d.hostTotalCpuSeconds).toBeGreaterThan(0);
  });

  it("a pod whose metadata arrives joins its label's job; the grouped job sums its pods and keeps departed pods' CPU", () => {
    const t = new Tree();
    t.pod(1, 10);
    t.pod(2, 20);
    const known = new Map<string, PodMetadata>([[UID(1), meta(1, { job: "x" })]]);
    let refreshes = 0;
    const pods = { byUid: (u: string) => known.get(u), requestRefresh: () => void refreshes++ };
    const log = recordingLogger();
    const s = new NodeJobSource({ hierarchy: { dir: t.top, version: 2 }, log, pods, groupByLabel: "job" });
    s.sample();
    expect(refreshes).toBe(1);
    expect(log.lines).toEqual([expect.stringMatching(/^warn: no pod metadata for pod 00000000-0000-4000-8000-000000000002 \(not in the kubelet's answer yet/)]);
    t.pod(1, 11);
    t.pod(2, 22);
    const b = s.sample();
    expect(b.jobCpuSeconds.get("job=x")).toBeCloseTo(1, 9);
    expect(b.jobCpuSeconds.get(UID(2))).toBeCloseTo(2, 9);
    known.set(UID(2), meta(2, { job: "x" }));
    t.pod(1, 12);
    t.pod(2, 25);
    const c = s.sample();
    // pod 2's 2 s stay with its old job (which leaves the sample); from now on it counts for x.
    expect(c.jobCpuSeconds.get("job=x")).toBeCloseTo(2 + 3, 9);
    expect(c.jobs!.has(UID(2))).toBe(false);
    t.remove(1);
    t.pod(2, 26);
    const d = s.sample();
    expect(d.jobCpuSeconds.get("job=x")).toBeCloseTo(2 + 4, 9); // pod 1's 2 s kept, pod 2's 4 s
    expect(log.lines.filter((l) => l.startsWith("warn:"))).toHaveLength(1);
  });

  it("pods running before the kubepods tree was first found count from then, not from their start", () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-node-late-"));
    dirs.push(dir);
    const log = recordingLogger();
    const s = new NodeJobSource({ hierarchy: { dir, version: 2 }, log });
    s.sample(); // no kubepods yet (kubelet not started, or the host's tree not mounted yet)
    expect(log.lines).toEqual([expect.stringMatching(/^warn: no kubepods cgroup under /)]);
    // The tree shows up with a pod that has run for two hours.
    const pod = join(dir, "kubepods", "burstable", `pod${UID(2)}`);
    mkdirSync(pod, { recursive: true });
    writeFileSync(join(pod, "cpu.stat"), "usage_usec 7200000000\n");
    expect(s.sample().jobCpuSeconds.get(UID(2))).toBe(0);
    writeFileSync(join(pod, "cpu.stat"), "usage_usec 7201000000\n");
    expect(s.sample().jobCpuSeconds.get(UID(2))).toBe(1);
  });

  it("state stays bounded with thousands of short pods", () => {
    const t = new Tree();
    const s = new NodeJobSource({ hierarchy: { dir: t.top, version: 2 }, log: recordingLogger() });
    s.sample();
    for (let i = 0; i < 2000; i++) {
      t.pod(i, 1);
      expect(s.sample().jobs!.size).toBe(1);
      t.remove(i);
    }
    const last = s.sample();
    expect(last.jobs!.size).toBe(0);
    expect(last.jobCpuSeconds.size).toBe(0);
    expect(s.stats.podsSeen).toBe(2000);
    expect(s.stateSizes()).toEqual({ pods: 0, podDirs: 0, departedJobs: 0, openFiles: 0 });
  });
});
