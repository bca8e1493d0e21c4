// Memory attribution (DESIGN.md rule 2, issue 11 item 7): the static part of memory energy by
// resident memory, the active part by CPU seconds, free memory to `idle`. Pure function tables,
// the simulator end to end against a hand calculation, and a real CPU burner under `run`.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { attributeDevice, cpuUsages, memoryUsages } from "../../src/core/attribution.js";
import { validateScenario } from "../../src/sim/scenario.js";
import { simulate } from "../../src/sim/simulate.js";
import { createStderrLogger } from "../../src/log.js";
import { runCli } from "../helpers/cli.js";

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;
const obj = (m: Map<string, number>) => Object.fromEntries([...m].map(([k, v]) => [k, Math.round(v * 1e9) / 1e9]));
const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

describe("memoryUsages + attributeDevice", () => {
  // 100 J in the interval, 80 J of it static (idle baseline). CPU: job a 0.9 s, the rest 0.1 s.
  // Memory: a holds 1 GiB of 10 GiB, the host 2 GiB in all → system 1 GiB, idle 8 GiB.
  const cpu = cpuUsages(new Map([["a", 0.9]]), 1.0);
  const held = { jobRssBytes: new Map([["a", 1 * GIB]]), hostUsedMemoryBytes: 2 * GIB, hostTotalMemoryBytes: 10 * GIB };

  it("static part by bytes held (free memory to idle), active part by CPU seconds", () => {
    const out = attributeDevice(100, 80, memoryUsages(cpu, held), "attribute");
    // a: 80 × 1/10 + 20 × 0.9 = 26; system: 80 × 1/10 + 20 × 0.1 = 10; idle: 80 × 8/10 = 64.
    expect(obj(out)).toEqual({ a: 26, system: 10, idle: 64 });
    expect(total(out)).toBe(100);
  });

  it("--idle-policy separate: the whole static part to idle, the active part by CPU seconds", () => {
    expect(obj(attributeDevice(100, 80, memoryUsages(cpu, held), "separate"))).toEqual({ a: 18, system: 2, idle: 80 });
  });

  it("a job holding memory without CPU in the interval still pays its static share", () => {
    const usages = memoryUsages(cpuUsages(new Map([["busy", 1], ["sleeper", 0]]), 1), {
      jobRssBytes: new Map([["busy", 0.1 * GIB], ["sleeper", 4.9 * GIB]]),
      hostUsedMemoryBytes: 5 * GIB,
      hostTotalMemoryBytes: 10 * GIB,
    });
    // Static 50 J: busy 0.5, sleeper 24.5, idle 25; active 10 J: all busy.
    expect(obj(attributeDevice(60, 50, usages, "attribute"))).toEqual({ busy: 10.5, sleeper: 24.5, idle: 25 });
  });

  it("RSS summing above the host's used memory (shared pages) leaves nothing to system; above the total, nothing to idle", () => {
    const over = memoryUsages([], { jobRssBytes: new Map([["a", 3 * GIB], ["b", 1 * GIB]]), hostUsedMemoryBytes: 2 * GIB, hostTotalMemoryBytes: 8 * GIB });
    expect(obj(attributeDevice(80, 80, over, "attribute"))).toEqual({ a: 30, b: 10, idle: 40 });
    const beyond = memoryUsages([], { jobRssBytes: new Map([["a", 9 * GIB], ["b", 3 * GIB]]), hostUsedMemoryBytes: 8 * GIB, hostTotalMemoryBytes: 8 * GIB });
    expect(obj(attributeDevice(80, 80, beyond, "attribute"))).toEqual({ a: 60, b: 20 });
  });

  it("conserves energy exactly over random holdings", () => {
    for (let k = 0; k < 500; k++) {
      const jobs = new Map(Array.from({ length: 5 }, (_, j) => [`j${j}`, Math.random()] as [string, number]));
      const rss = new Map([...jobs.keys()].map((j) => [j, Math.random() * 4 * GIB] as [string, number]));
      const usages = memoryUsages(cpuUsages(jobs, 3 * Math.random() + 2.5), { jobRssBytes: rss, hostUsedMemoryBytes: Math.random() * 24 * GIB, hostTotalMemoryBytes: 24 * GIB });
      const e = Math.random() * 50;
      const out = attributeDevice(e, Math.random() * e, usages, k % 2 ? "attribute" : "separate");
      expect(Math.abs(total(out) - e)).toBeLessThanOrEqual(e * 1e-12);
    }
  });
});

describe("simulator: a memory-light CPU burner on a host with much memory", () => {
  it("gets its memory share by RSS, not by CPU seconds; conservation exact", async () => {
    // 512 GiB of DRAM modelled at a constant 200 W (all static, like the CPU model's memory).
    // burner: 8 busy cores, 64 MiB resident; holder: 0.5 core, 256 GiB resident.
    const scenario = validateScenario({
      name: "memory-light-burner",
      durationSeconds: 60,
      devices: [
        { id: "cpu0", kind: "cpu", idleWatts: 50, maxWatts: 250, cores: 16 },
        { id: "mem0", kind: "memory", idleWatts: 200, maxWatts: 200, memoryBytes: 512 * GIB },
      ],
      processes: [
        { pid: 10, job: "burner", cpu: [[0, 8]], rssBytes: [[0, 64 * MIB]] },
        { pid: 20, job: "holder", cpu: [[0, 0.5]], rssBytes: [[0, 256 * GIB]] },
        { pid: 30, name: "daemon", cpu: [[0, 0.1]], rssBytes: [[0, 16 * GIB]] },
      ],
    });
    const r = await simulate(scenario, {
      idlePolicy: "attribute",
      ledger: { pue: 1 },
      intensity: { at: async () => ({ intensityGramsPerKwh: 100, zone: "XX", source: "fixed" }) },
      log: createStderrLogger({ quiet: true }),
    });
    const memory = 200 * 60;
    const job = (id: string) => r.snapshot.jobs.find((j) => j.id === id)!.energyJoules.memory;
    expect(job("burner")).toBeCloseTo((memory * 64 * MIB) / (512 * GIB), 9); // ≈ 1.46 J
    expect(job("holder")).toBeCloseTo(memory / 2, 6);
    expect(r.snapshot.buckets.system.energyJoules.memory).toBeCloseTo((memory * 16) / 512, 6);
    expect(r.snapshot.buckets.idle.energyJoules.memory).toBeCloseTo((memory * (512 - 256 - 16 - 1 / 16)) / 512, 6);
    // By CPU seconds the burner would have taken 8 / 8.6 of it.
    expect(job("burner")).toBeLessThan(memory * 0.001);
    const sum = job("burner") + job("holder") + r.snapshot.buckets.system.energyJoules.memory + r.snapshot.buckets.idle.energyJoules.memory;
    expect(Math.abs(sum - memory)).toBeLessThanOrEqual(memory * 1e-12);
  });
});

describe("run: a real CPU burner on this host (modelled memory, all static)", () => {
  it("is charged memory energy in proportion to its RSS over the host's memory, not its CPU share", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pp-membrn-"));
    try {
      const report = join(dir, "r.json");
      // Burns ~1.5 s of CPU measured by itself (process.cpuUsage), small heap.
      const burn = "const s=process.cpuUsage();let x=0;while((process.cpuUsage(s).user+process.cpuUsage(s).system)<1.5e6)x+=Math.sqrt(x+1);";
      const r = await runCli(["run", "-q", "--interval", "250ms", "--report", report, "--", process.execPath, "-e", burn], { env: { POWERPRINT_DEV_ROOT: dir } });
      expect(r.code, r.stderr).toBe(0);
      const rep = JSON.parse(readFileSync(report, "utf8"));
      const mem = rep.devices.find((d: { kind: string }) => d.kind === "memory");
      expect(mem, "the CPU model's memory device").toBeDefined();
      const jobMem = rep.jobs[0].energyJoules.memory as number;
      const jobCpu = rep.jobs[0].energyJoules.cpu as number;
      const totalBytes = Number(/^MemTotal:\s+(\d+)/m.exec(readFileSync("/proc/meminfo", "utf8"))![1]) * 1024;
      // A node process holds well under 200 MiB: its static share is below 200 MiB / MemTotal.
      const memShare = jobMem / mem.energyJoules;
      expect(memShare).toBeLessThan((200 * MIB) / totalBytes);
      expect(jobMem).toBeGreaterThan(0);
      // Its CPU share (what the old rule copied to memory) is many times that, however busy the
      // machine's other processes keep the CPUs.
      const cpuShare = jobCpu / rep.devices.find((d: { kind: string }) => d.kind === "cpu").energyJoules;
      expect(cpuShare).toBeGreaterThan(5 * memShare);
      const attributed = rep.jobs[0].energyJoules.memory + rep.buckets.system.energyJoules.memory + rep.buckets.idle.energyJoules.memory;
      expect(Math.abs(attributed - mem.energyJoules)).toBeLessThanOrEqual(mem.energyJoules * 1e-9);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
