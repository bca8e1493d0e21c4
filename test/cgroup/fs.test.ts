// CgroupReader on directories holding files in the kernel's formats (cpu.stat as on this
// machine's cgroup2, cpuacct.usage in ns, memory files, a cgroup.procs longer than one page).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CgroupReader, parseCpuStat } from "../../src/cgroup/fs.js";
import { readCgroupMounts } from "../../src/cgroup/mounts.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const dir = (files: Record<string, string>): string => {
  const d = mkdtempSync(join(tmpdir(), "pp-cgfs-"));
  dirs.push(d);
  for (const [k, v] of Object.entries(files)) writeFileSync(join(d, k), v);
  return d;
};

describe("CgroupReader", () => {
  const r = new CgroupReader();
  it("v2 cpu.stat usage_usec → seconds; v1 cpuacct.usage ns → seconds", () => {
    const v2 = dir({ "cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnice_usec 0\n" });
    expect(r.cpuSeconds(v2, 2)).toBe(2.5);
    const v1 = dir({ "cpuacct.usage": "170887909659\n" });
    expect(r.cpuSeconds(v1, 1)).toBeCloseTo(170.887909659, 9);
    // usage_usec not on the first line (kernels order the keys; the reader must not assume).
    const later = dir({ "cpu.stat": "nr_periods 0\nusage_usec 42\n" });
    expect(r.cpuSeconds(later, 2)).toBe(0.000042);
    expect(r.cpuSeconds(dir({ "cpu.stat": "user_usec 1\n" }), 2)).toBeUndefined();
    expect(r.cpuSeconds(join(v2, "gone"), 2)).toBeUndefined();
  });
  it("cgroup.procs of more than a page, and memory of both versions", () => {
    const pids = Array.from({ length: 1500 }, (_, i) => 100000 + i);
    const d = dir({ "cgroup.procs": pids.join("\n") + "\n", "memory.current": "123456789\n", "memory.usage_in_bytes": "987654321\n" });
    expect(r.procs(d)).toEqual(pids);
    const seen: number[] = [];
    expect(r.forEachProc(d, (p) => seen.push(p))).toBe(1500);
    expect(seen).toEqual(pids);
    expect(r.memoryBytes(d, 2)).toBe(123456789);
    expect(r.memoryBytes(d, 1)).toBe(987654321);
    expect(r.procs(join(d, "gone"))).toBeUndefined();
    expect(r.forEachProc(join(d, "gone"), () => {})).toBe(-1);
  });
  it("parseCpuStat", () => {
    expect(parseCpuStat("usage_usec 5\nuser_usec 3\nsystem_usec 2\n")).toEqual({ usage_usec: 5, user_usec: 3, system_usec: 2 });
  });
});

describe("this machine's cgroup mounts (readCgroupMounts on /proc/self/mountinfo)", () => {
  it("every hierarchy found is a cgroup directory", () => {
    const m = readCgroupMounts();
    expect(m.v2 !== undefined || m.v1.size > 0).toBe(true);
    if (m.v2) expect(existsSync(join(m.v2.mountPoint, "cgroup.controllers"))).toBe(true);
    const cpuacct = m.v1.get("cpuacct");
    if (cpuacct) expect(existsSync(join(cpuacct.mountPoint, "cpuacct.usage"))).toBe(true);
    for (const v of m.v1.values()) expect(existsSync(join(v.mountPoint, "cgroup.procs"))).toBe(true);
  });
});
