// CgroupReader on directories holding files in the kernel's formats (cpu.stat as on this
// machine's cgroup2, cpuacct.usage in ns, memory files, a cgroup.procs longer than one page).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
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
  it("rssBytes from real memory.stat files: v2 anon + file_mapped, v1 total_rss + total_mapped_file", () => {
    // Captured files (test/fixtures/PROVENANCE.md, cgroup/memory-stat): the expected sums come from
    // the files' own lines, split here independently of the reader's byte scanner.
    const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/cgroup/memory-stat/${name}`, import.meta.url));
    const fields = (name: string) =>
      Object.fromEntries(
        readFileSync(join(fixture(name), "memory.stat"), "utf8")
          .trim()
          .split("\n")
          .map((l) => l.split(" "))
          .map(([k, v]) => [k, Number(v)]),
      );
    const v2 = fields("v2");
    expect(v2.anon).toBeGreaterThan(0);
    expect(r.rssBytes(fixture("v2"), 2)).toBe(v2.anon + v2.file_mapped);
    for (const name of ["v1", "v1-hybrid-vm"]) {
      const v1 = fields(name);
      expect(v1.total_rss).toBeGreaterThan(0);
      expect(r.rssBytes(fixture(name), 1)).toBe(v1.total_rss + v1.total_mapped_file);
    }
    // A v2 file read as v1 (or a file without the keys): no figure rather than a wrong one.
    expect(r.rssBytes(fixture("v2"), 1)).toBeUndefined();
    expect(r.rssBytes(join(fixture("v2"), "gone"), 2)).toBeUndefined();
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

describe("cgroup.procs read from another PID namespace", () => {
  const v2 = readCgroupMounts().v2;
  const canUnshare = spawnSync("unshare", ["--pid", "--fork", "--mount-proc", "true"]).status === 0;
  it.skipIf(!v2 || !canUnshare || process.getuid?.() !== 0)("shows outside processes as 0: skipped and counted, never a member", async () => {
    const d = join(v2!.mountPoint, `pp-pidns-${process.pid}`);
    mkdirSync(d);
    const sleeper = spawn("sleep", ["600"], { stdio: "ignore" });
    try {
      writeFileSync(join(d, "cgroup.procs"), String(sleeper.pid));
      // The built reader (dist/, made by test/global-setup.ts) run inside a new PID namespace.
      const fsJs = join(import.meta.dirname, "..", "..", "dist", "src", "cgroup", "fs.js");
      const code = `import(${JSON.stringify(fsJs)}).then((m) => { const r = new m.CgroupReader(); const seen = []; const n = r.forEachProc(${JSON.stringify(d)}, (p) => seen.push(p)); const procs = r.procs(${JSON.stringify(d)}); console.log(JSON.stringify({ n, seen, procs, invisible: r.invisiblePids })); })`;
      const out = spawnSync("unshare", ["--pid", "--fork", "--mount-proc", process.execPath, "-e", code], { encoding: "utf8" });
      expect(out.status, out.stderr).toBe(0);
      expect(JSON.parse(out.stdout)).toEqual({ n: 0, seen: [], procs: [], invisible: 2 });
      // From this namespace the same file names the sleeper.
      expect(new CgroupReader().procs(d)).toEqual([sleeper.pid]);
    } finally {
      sleeper.kill("SIGKILL");
      await new Promise((r) => sleeper.on("exit", r));
      for (let i = 0; i < 100; i++) {
        try {
          rmdirSync(d);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
  });
});

describe("held files on a real cgroup2 directory", () => {
  const v2 = readCgroupMounts().v2;
  it.skipIf(!v2 || process.getuid?.() !== 0)("re-reads fresh content, drops a removed cgroup's file, reopens one recreated under the same name", async () => {
    const d = join(v2!.mountPoint, `pp-held-${process.pid}`);
    mkdirSync(d);
    const r = new CgroupReader(8);
    try {
      expect(r.procs(d)).toEqual([]);
      expect(r.heldFiles).toBe(1);
      const sleeper = spawn("sleep", ["600"], { stdio: "ignore" });
      writeFileSync(join(d, "cgroup.procs"), String(sleeper.pid));
      expect(r.procs(d)).toEqual([sleeper.pid]); // the held file shows the change
      sleeper.kill("SIGKILL");
      await new Promise((res) => sleeper.on("exit", res));
      for (let i = 0; i < 100 && (r.procs(d) ?? []).length > 0; i++) await new Promise((res) => setTimeout(res, 20));
      expect(r.cpuSeconds(d, 2)).toBeGreaterThanOrEqual(0);
      expect(r.heldFiles).toBe(2);
      rmdirSync(d);
      expect(r.cpuSeconds(d, 2)).toBeUndefined(); // ENODEV on the held file, and no directory to reopen
      expect(r.heldFiles).toBe(1);
      mkdirSync(d);
      expect(r.cpuSeconds(d, 2)).toBe(0); // a new cgroup under the same name: opened afresh
      expect(r.procs(d)).toEqual([]);
      expect(r.heldFiles).toBe(2);
      r.close();
      expect(r.heldFiles).toBe(0);
    } finally {
      r.close();
      try {
        rmdirSync(d);
      } catch {
        // removed above
      }
    }
  });
});
