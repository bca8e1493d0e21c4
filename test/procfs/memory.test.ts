// Resident memory from /proc: stat field 24 (pages) on captured lines, /proc/meminfo, the page
// size probe, and a real process holding a known amount of memory, tracked by ProcessTracker.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { pageSizeBytes, parseMeminfo, parseStatBuffer, readHostMemory } from "../../src/procfs/reader.js";
import { ProcessTracker } from "../../src/jobs/tracker.js";

const captured = (name: string) => readFileSync(new URL(`../fixtures/procfs/captured/${name}`, import.meta.url), "utf8");
const field24 = (line: string) => Number(line.slice(line.lastIndexOf(")") + 2).split(" ")[21]);

describe("RSS and host memory parsers", () => {
  it.each(["stat-process-leader.txt", "stat-comm-with-paren-space.txt", "stat-kthread.txt", "stat-zombie.txt", "stat-thread-tid.txt"])(
    "%s: rssPages is field 24",
    (name) => {
      const line = captured(name);
      const buf = Buffer.from(line);
      expect(parseStatBuffer(buf, buf.length)!.rssPages).toBe(field24(line));
    },
  );

  it("the leader's RSS is 13105 pages; a kernel thread and a zombie hold none", () => {
    const rss = (name: string) => {
      const b = Buffer.from(captured(name));
      return parseStatBuffer(b, b.length)!.rssPages;
    };
    expect(rss("stat-process-leader.txt")).toBe(13105);
    expect(rss("stat-kthread.txt")).toBe(0);
    expect(rss("stat-zombie.txt")).toBe(0);
  });

  it("meminfo: total and used (MemTotal − MemAvailable) in bytes; MemFree+Buffers+Cached without MemAvailable", () => {
    const text = captured("meminfo.txt");
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text)![1]) * 1024;
    expect(parseMeminfo(text)).toEqual({ totalBytes: kb("MemTotal"), usedBytes: kb("MemTotal") - kb("MemAvailable") });
    const old = "MemTotal: 1000 kB\nMemFree: 200 kB\nBuffers: 50 kB\nCached: 250 kB\n";
    expect(parseMeminfo(old)).toEqual({ totalBytes: 1000 * 1024, usedBytes: 500 * 1024 });
    expect(parseMeminfo("MemFree: 1 kB\n")).toBeUndefined();
  });

  it("page size from /proc/self is a power of two that getconf agrees with; 4096 for a root without it", async () => {
    const { execFileSync } = await import("node:child_process");
    expect(pageSizeBytes("/")).toBe(Number(execFileSync("getconf", ["PAGESIZE"], { encoding: "utf8" }).trim()));
    expect(pageSizeBytes(join(tmpdir(), "no-such-root"))).toBe(4096);
    expect(readHostMemory(join(tmpdir(), "no-such-root"))).toBeUndefined();
  });
});

describe("ProcessTracker: a job's resident memory", () => {
  it("equals the VmRSS its process reports for itself, and the host totals come from /proc/meminfo", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-rss-"));
    const ready = join(dir, "ready");
    // Holds 96 MiB touched, reports its own VmRSS (written whole: tmp file then rename), then
    // waits until killed; the buffer stays referenced by the timer.
    const script = `
      const fs = require("fs");
      const b = Buffer.alloc(96 * 1024 * 1024, 1);
      const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(fs.readFileSync("/proc/self/status", "utf8"))[1]) * 1024;
      fs.writeFileSync(${JSON.stringify(ready)} + ".tmp", String(rss()));
      fs.renameSync(${JSON.stringify(ready)} + ".tmp", ${JSON.stringify(ready)});
      setInterval(() => b[0]++, 1000);`;
    const child = spawn(process.execPath, ["-e", script], { stdio: "ignore" });
    try {
      while (!existsSync(ready)) await new Promise((r) => setTimeout(r, 20));
      const before = Number(readFileSync(ready, "utf8"));
      const tracker = new ProcessTracker();
      tracker.addJob("holder", child.pid!);
      const sample = tracker.sample();
      const got = sample.jobRssBytes!.get("holder")!;
      expect(got).toBeGreaterThan(96 * 1024 * 1024);
      // The process's own VmRSS a moment before; it does not allocate meanwhile.
      expect(Math.abs(got - before) / before).toBeLessThan(0.05);
      const meminfo = parseMeminfo(readFileSync("/proc/meminfo", "utf8"))!;
      expect(sample.hostTotalMemoryBytes).toBe(meminfo.totalBytes);
      expect(sample.hostUsedMemoryBytes).toBeGreaterThan(got);
    } finally {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
