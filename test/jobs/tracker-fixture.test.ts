import { symlinkSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ProcessTracker } from "../../src/jobs/tracker.js";
import type { DiscoveryMethod } from "../../src/jobs/tracker.js";
import { FakeProc } from "../procfs/fixture-tree.js";

const fakes: FakeProc[] = [];
afterEach(() => {
  for (const f of fakes.splice(0)) f.cleanup();
});
const fake = (options: ConstructorParameters<typeof FakeProc>[0] = {}) => {
  const f = new FakeProc(options);
  fakes.push(f);
  // Something outside any job: init and an unrelated busy process.
  f.set({ pid: 1, ppid: 0, startTicks: 1, name: "init" });
  f.set({ pid: 5, ppid: 1, startTicks: 2, utimeTicks: 100_000, name: "other" });
  return f;
};
const cpu = (t: ProcessTracker, job = "j") => t.sample().jobCpuSeconds.get(job)!;

const methods: { method: DiscoveryMethod; childrenFiles: boolean; loadavg: boolean }[] = [
  { method: "auto", childrenFiles: false, loadavg: true },
  { method: "auto", childrenFiles: true, loadavg: false },
  { method: "pid-range", childrenFiles: false, loadavg: true },
  { method: "children", childrenFiles: true, loadavg: false },
  { method: "scan", childrenFiles: false, loadavg: false },
];

for (const { method, childrenFiles, loadavg } of methods) {
  describe(`ProcessTracker on fixture trees (${method}, children files ${childrenFiles}, loadavg ${loadavg})`, () => {
    const opts = { childrenFiles, loadavg };

    it("counts a reaped child once: its total moves from the live sum into the parent's cutime", () => {
      const f = fake(opts);
      f.set({ pid: 10, ppid: 1, startTicks: 100, utimeTicks: 5 });
      const t = new ProcessTracker({ root: f.root, discovery: method });
      t.addJob("j", 10);
      expect(cpu(t)).toBe(0); // baseline: what the root had burned when added
      f.set({ pid: 11, ppid: 10, startTicks: 110, utimeTicks: 20 });
      expect(cpu(t)).toBeCloseTo(0.2, 10);
      // 11 exits; the parent waits for it: cutime += its final total (22 ≥ 20 last seen).
      f.remove(11);
      f.update(10, { cutimeTicks: 22 });
      expect(cpu(t)).toBeCloseTo(0.22, 10);
      // A short-lived child never seen by any sample still counts, through the parent's cutime.
      f.update(10, { cutimeTicks: 52, utimeTicks: 8 });
      expect(cpu(t)).toBeCloseTo(0.55, 10);
    });

    it("a reused PID with another start time does not inherit, and joins only if its parent is a member", () => {
      const f = fake(opts);
      f.set({ pid: 10, ppid: 1, startTicks: 100 });
      const t = new ProcessTracker({ root: f.root, discovery: method });
      t.addJob("j", 10);
      f.set({ pid: 11, ppid: 10, startTicks: 110, utimeTicks: 30 });
      expect(cpu(t)).toBeCloseTo(0.3, 10);
      f.remove(11);
      f.update(10, { cutimeTicks: 30 });
      // PID 11 reused by an unrelated process with lots of CPU.
      f.set({ pid: 11, ppid: 1, startTicks: 500, utimeTicks: 9000 });
      let s = t.sample();
      expect(s.jobCpuSeconds.get("j")).toBeCloseTo(0.3, 10);
      expect(s.members.has(11)).toBe(false);
      f.remove(11);
      t.sample();
      // Reused again, this time by a child of the job: a new member counted from its own total.
      f.set({ pid: 11, ppid: 10, startTicks: 600, utimeTicks: 4 });
      s = t.sample();
      expect(s.members.get(11)).toBe("j");
      expect(s.jobCpuSeconds.get("j")).toBeCloseTo(0.34, 10);
    });

    it("keeps a re-parented descendant in the job and its last total after it exits", () => {
      const f = fake(opts);
      f.set({ pid: 10, ppid: 1, startTicks: 100 });
      const t = new ProcessTracker({ root: f.root, discovery: method });
      t.addJob("j", 10);
      f.set({ pid: 11, ppid: 10, startTicks: 110, utimeTicks: 3 });
      f.set({ pid: 12, ppid: 11, startTicks: 111, utimeTicks: 1 });
      expect(cpu(t)).toBeCloseTo(0.04, 10);
      // 11 exits (reaped by 10); 12 is re-parented to init.
      f.remove(11);
      f.update(10, { cutimeTicks: 3 });
      f.update(12, { ppid: 1, utimeTicks: 50 });
      let s = t.sample();
      expect(s.members.get(12)).toBe("j");
      expect(s.jobCpuSeconds.get("j")).toBeCloseTo(0.53, 10);
      // 12 exits, reaped by init: its last-seen total stays with the job.
      f.update(12, { utimeTicks: 70 });
      t.sample();
      f.remove(12);
      s = t.sample();
      expect(s.members.has(12)).toBe(false);
      expect(s.jobCpuSeconds.get("j")).toBeCloseTo(0.73, 10);
      expect(s.jobProcessCount.get("j")).toBe(1);
    });

    it("keeps the whole last-seen tree when the root and its children vanish in the same tick", () => {
      const f = fake(opts);
      f.set({ pid: 10, ppid: 1, startTicks: 100 });
      const t = new ProcessTracker({ root: f.root, discovery: method });
      t.addJob("j", 10);
      f.set({ pid: 11, ppid: 10, startTicks: 110, utimeTicks: 40 });
      f.set({ pid: 12, ppid: 11, startTicks: 111, utimeTicks: 60 });
      f.update(10, { utimeTicks: 10, cutimeTicks: 5 });
      expect(cpu(t)).toBeCloseTo(1.15, 10);
      f.remove(12);
      f.remove(11);
      f.remove(10);
      const s = t.sample();
      expect(s.jobCpuSeconds.get("j")).toBeCloseTo(1.15, 10);
      expect(s.jobProcessCount.get("j")).toBe(0);
    });

    it("counts children auto-reaped without reaching the parent's cutime (SIGCHLD ignored), with a note", () => {
      const f = fake(opts);
      f.set({ pid: 10, ppid: 1, startTicks: 100 });
      const t = new ProcessTracker({ root: f.root, discovery: method });
      t.addJob("j", 10);
      f.set({ pid: 11, ppid: 10, startTicks: 110, utimeTicks: 25 });
      expect(cpu(t)).toBeCloseTo(0.25, 10);
      f.remove(11); // cutime of 10 unchanged
      expect(cpu(t)).toBeCloseTo(0.25, 10);
      expect(t.stats.autoReapCorrections).toBe(1);
      expect(t.notes.join()).toMatch(/SIGCHLD/);
    });

    it("never throws for PIDs that vanish or have no stat file, and stays monotone", () => {
      const f = fake(opts);
      f.set({ pid: 10, ppid: 1, startTicks: 100, utimeTicks: 10 });
      const t = new ProcessTracker({ root: f.root, discovery: method });
      t.addJob("j", 10);
      t.addJob("gone", 4242);
      f.set({ pid: 13, ppid: 10, startTicks: 120, utimeTicks: 10 });
      f.set({ pid: 14, ppid: 1, startTicks: 121 });
      f.remove(14); // listed by nobody now; a stale dir without stat below
      f.set({ pid: 15, ppid: 10, startTicks: 122 });
      f.remove(15);
      const before = cpu(t);
      // The member's stat disappears and comes back smaller (a kernel race would look like this).
      f.update(13, { utimeTicks: 2 });
      const after = t.sample();
      expect(after.jobCpuSeconds.get("j")!).toBeGreaterThanOrEqual(before);
      expect(after.jobCpuSeconds.get("gone")).toBe(0);
      expect(t.notes.join()).toMatch(/4242/);
    });

    it("selects environment variables of the job's root", () => {
      const f = fake(opts);
      f.set({ pid: 10, ppid: 1, startTicks: 100 });
      f.environ(10, { CUDA_VISIBLE_DEVICES: "2", HOME: "/root" });
      const t = new ProcessTracker({ root: f.root, discovery: method });
      t.addJob("j", 10);
      expect(t.jobEnvironment("j", ["CUDA_VISIBLE_DEVICES"])).toEqual({ CUDA_VISIBLE_DEVICES: "2" });
      expect(t.jobEnvironment("nope", ["CUDA_VISIBLE_DEVICES"])).toEqual({});
    });
  });
}

describe("ProcessTracker discovery paths", () => {
  it("finds descendants through task/TID/children files (a tree that has them)", () => {
    const f = fake({ childrenFiles: true, loadavg: false });
    f.set({ pid: 10, ppid: 1, startTicks: 100 });
    f.set({ pid: 20, ppid: 10, startTicks: 101, utimeTicks: 1 }); // existed before addJob
    const t = new ProcessTracker({ root: f.root, discovery: "children" });
    t.addJob("j", 10);
    f.set({ pid: 30, ppid: 20, startTicks: 130, utimeTicks: 7 });
    f.set({ pid: 31, ppid: 30, startTicks: 131, utimeTicks: 2 });
    const s = t.sample();
    expect([...s.members.keys()].sort()).toEqual([10, 20, 30, 31]);
    expect(s.jobCpuSeconds.get("j")).toBeCloseTo(0.09, 10);
    expect(t.childrenFiles).toBe(true);
    expect(t.stats.fullScans).toBe(0);
    expect(t.stats.childrenWalks).toBeGreaterThan(0);
  });

  it("falls back loudly to a scan when the kernel has no children files", () => {
    const f = fake({ childrenFiles: false, loadavg: false });
    f.set({ pid: 10, ppid: 1, startTicks: 100 });
    const t = new ProcessTracker({ root: f.root, discovery: "children" });
    t.addJob("j", 10);
    f.set({ pid: 11, ppid: 10, startTicks: 101 });
    expect(t.sample().members.get(11)).toBe("j");
    expect(t.childrenFiles).toBe(false);
    expect(t.notes.join()).toMatch(/CONFIG_PROC_CHILDREN/);
    expect(t.stats.fullScans).toBeGreaterThan(0);
  });

  it("scan: steady state reads only members; new PIDs are read once", () => {
    const f = fake({ childrenFiles: false, loadavg: false });
    f.set({ pid: 10, ppid: 1, startTicks: 100 });
    for (let pid = 100; pid < 150; pid++) f.set({ pid, ppid: 1, startTicks: 50 });
    const t = new ProcessTracker({ root: f.root, discovery: "scan", fullScanIntervalTicks: 0 });
    t.addJob("j", 10);
    t.sample();
    const reads = t.stats.statReads;
    f.set({ pid: 150, ppid: 10, startTicks: 200 }); // a fork: the counter moves
    t.sample(); // 1 member + 1 new PID
    expect(t.stats.statReads - reads).toBe(2);
    const reads2 = t.stats.statReads;
    f.tickHost(10);
    t.sample(); // no fork: 2 member reads, no scan
    expect(t.stats.statReads - reads2).toBe(2);
    expect(t.stats.discoverySkipped).toBeGreaterThan(0);
  });

  it("pid-range: probes only PIDs allocated since the last tick and skips thread TIDs", () => {
    const f = fake({ childrenFiles: false, loadavg: true });
    f.set({ pid: 10, ppid: 1, startTicks: 100 });
    for (let pid = 100; pid < 150; pid++) f.set({ pid, ppid: 1, startTicks: 50 });
    const t = new ProcessTracker({ root: f.root, discovery: "auto", fullScanIntervalTicks: 0 });
    t.addJob("j", 10);
    t.sample();
    const reads = t.stats.statReads;
    f.set({ pid: 151, ppid: 10, startTicks: 200, utimeTicks: 3 });
    // A thread of the job's root shows its process's parent as ppid; it must not join.
    f.set({ pid: 152, ppid: 1, startTicks: 201, exitSignal: -1, utimeTicks: 500 });
    f.set({ pid: 153, ppid: 151, startTicks: 202, utimeTicks: 4 });
    const s = t.sample();
    expect([...s.members.keys()].sort()).toEqual([10, 151, 153]);
    expect(s.jobCpuSeconds.get("j")).toBeCloseTo(0.07, 10);
    expect(t.stats.statReads - reads).toBe(1 + 4); // root + PIDs 150 (free) to 153
    expect(t.stats.fullScans).toBe(0);
  });

  it("does not use /proc/loadavg when <root>/proc is another PID namespace", () => {
    const f = fake({ childrenFiles: false, loadavg: true });
    symlinkSync("999999", join(f.root, "proc", "self"));
    f.set({ pid: 10, ppid: 1, startTicks: 100 });
    const t = new ProcessTracker({ root: f.root, selfPid: 1234 });
    t.addJob("j", 10);
    f.set({ pid: 11, ppid: 10, startTicks: 101 });
    expect(t.sample().members.get(11)).toBe("j");
    expect(t.stats.pidRangeProbes).toBe(0);
    expect(t.notes.join()).toMatch(/PID namespace/);
  });
});
