import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  hasChildrenFile,
  listPids,
  parseHostStat,
  parseLastPid,
  parseStat,
  parseStatBuffer,
  readChildren,
  readEnviron,
  readHostCpu,
  readProcessInfo,
} from "../../src/procfs/reader.js";
import { FakeProc, capturedDir } from "./fixture-tree.js";

const captured = (name: string) => readFileSync(join(capturedDir, name), "utf8");
const fakes: FakeProc[] = [];
afterEach(() => {
  for (const f of fakes.splice(0)) f.cleanup();
});

describe("parseStat on captured /proc/PID/stat lines", () => {
  it("parses comm with spaces and ')' from the last ')'", () => {
    const p = parseStat(captured("stat-comm-with-paren-space.txt"))!;
    expect(p.name).toBe("a b) (c");
    expect(p.pid).toBe(15086);
    expect(p.ppid).toBe(15085);
    expect(p.startTicks).toBe(78652);
    expect(p.cpuSeconds).toBe(0);
  });

  it("converts utime+stime and cutime+cstime with the injected clock tick", () => {
    const line = captured("stat-parent-after-reap.txt"); // utime 5 stime 0 cutime 34 cstime 2
    expect(parseStat(line, 100)).toMatchObject({ pid: 15441, ppid: 15438, cpuSeconds: 0.05, childCpuSeconds: 0.36, startTicks: 79823 });
    expect(parseStat(line, 250)!.childCpuSeconds).toBeCloseTo(36 / 250, 12);
  });

  it("reads a zombie's final CPU time, and the reaping parent's cutime is at least that", () => {
    const zombie = parseStat(captured("stat-zombie.txt"))!;
    const parent = parseStat(captured("stat-parent-after-reap.txt"))!;
    expect(zombie.ppid).toBe(parent.pid);
    expect(zombie.cpuSeconds).toBe(0.31);
    expect(parent.childCpuSeconds).toBeGreaterThanOrEqual(zombie.cpuSeconds);
  });

  it("tells a thread's TID from a process by exit_signal (-1)", () => {
    const leader = Buffer.from(captured("stat-process-leader.txt"));
    const thread = Buffer.from(captured("stat-thread-tid.txt"));
    expect(parseStatBuffer(leader, leader.length)!.exitSignal).toBe(17);
    const t = parseStatBuffer(thread, thread.length)!;
    expect(t.exitSignal).toBe(-1);
    expect(t.numThreads).toBe(8);
  });

  it("parses a kernel thread and rejects malformed lines", () => {
    expect(parseStat(captured("stat-kthread.txt"))).toMatchObject({ pid: 2, ppid: 0, name: "kthreadd", startTicks: 11 });
    expect(parseStat("")).toBeUndefined();
    expect(parseStat("12 (x")).toBeUndefined();
    expect(parseStat("12 (x) S 1 2 3")).toBeUndefined();
    expect(parseStat("garbage) S")).toBeUndefined();
  });
});

describe("host files", () => {
  it("parses /proc/stat: busy excludes idle and iowait, guest is not added again", () => {
    const t = parseHostStat(captured("proc-stat.txt"))!;
    // cpu  40676 0 3662 112537 227 0 129 63 0 0
    expect(t.busyTicks).toBe(40676 + 0 + 3662 + 0 + 129 + 63);
    expect(t.totalTicks).toBe(t.busyTicks + 112537 + 227);
    expect(t.forkCount).toBe(15163);
    expect(parseHostStat("intr 1 2\n")).toBeUndefined();
  });

  it("parses the last PID of /proc/loadavg", () => {
    expect(parseLastPid(captured("loadavg.txt"))).toBe(15163);
    expect(parseLastPid("0.1 0.2")).toBeUndefined();
  });

  it("reads the real host's /proc/stat", () => {
    const host = readHostCpu("/")!;
    expect(host.totalCpuSeconds).toBeGreaterThan(host.busyCpuSeconds);
    expect(host.forkCount).toBeGreaterThan(0);
  });
});

describe("readers on a fixture tree", () => {
  it("lists PIDs, reads environ selectively, reads children over threads", () => {
    const f = new FakeProc({ childrenFiles: true });
    fakes.push(f);
    f.set({ pid: 10, ppid: 1, startTicks: 100, utimeTicks: 7, stimeTicks: 3, name: "py thon (x)" });
    f.set({ pid: 11, ppid: 10, startTicks: 101 });
    f.set({ pid: 12, ppid: 10, startTicks: 101 });
    f.environ(10, { CUDA_VISIBLE_DEVICES: "0,1", OTHER: "a=b", PATH: "/bin" });
    expect(listPids(f.root).sort()).toEqual([10, 11, 12]);
    expect(readProcessInfo(f.root, 10)).toMatchObject({ pid: 10, cpuSeconds: 0.1, name: "py thon (x)" });
    expect(readEnviron(f.root, 10, ["CUDA_VISIBLE_DEVICES", "OTHER", "MISSING"])).toEqual({ CUDA_VISIBLE_DEVICES: "0,1", OTHER: "a=b" });
    expect(readEnviron(f.root, 99, ["PATH"])).toEqual({});
    expect(hasChildrenFile(f.root, 10)).toBe(true);
    expect(readChildren(f.root, 10)!.sort()).toEqual([11, 12]);
    expect(readChildren(f.root, 11)).toEqual([]);
  });

  it("returns undefined, never throws, for a vanished PID or missing children files", () => {
    const f = new FakeProc({ childrenFiles: false });
    fakes.push(f);
    f.set({ pid: 10, ppid: 1, startTicks: 100 });
    expect(readProcessInfo(f.root, 4242)).toBeUndefined();
    expect(readChildren(f.root, 10)).toBeUndefined();
    expect(hasChildrenFile(f.root, 10)).toBe(false);
    expect(listPids(join(f.root, "nowhere"))).toEqual([]);
    expect(readHostCpu(join(f.root, "nowhere"))).toBeUndefined();
  });

  it("reads children of the real test process through the kernel when it has them", async () => {
    const { spawn } = await import("node:child_process");
    if (!hasChildrenFile("/", process.pid)) return; // kernel without CONFIG_PROC_CHILDREN
    const child = spawn("sleep", ["5"]);
    try {
      await new Promise((r) => child.once("spawn", r));
      expect(readChildren("/", process.pid)).toContain(child.pid);
      expect(readProcessInfo("/", child.pid!)).toMatchObject({ pid: child.pid, ppid: process.pid });
    } finally {
      child.kill();
    }
  });
});
