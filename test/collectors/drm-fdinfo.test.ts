// AMD and Intel GPUs per process from DRM fdinfo: the parser on the kernel documentation's formats,
// the client scanner (a client held by several descriptors and processes counted once, counters
// that step back), and the amdgpu and i915/xe collectors on fixture hosts (test/fixtures/drm: /sys
// cards and /proc descriptors at two moments) through the real ProcessTracker, Sampler and Ledger:
// per-job GPU energy by engine time, conservation exact.
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createAmdGpuCollector } from "../../collectors/amdgpu.js";
import { DrmClients, parseDrmFdinfo } from "../../collectors/drm-fdinfo.js";
import { createIntelGpuCollector } from "../../collectors/drm-intel.js";
import type { Collector } from "../../src/core/contracts.js";
import { Ledger } from "../../src/core/ledger.js";
import { Sampler } from "../../src/core/sampler.js";
import type { LedgerSnapshot } from "../../src/core/types.js";
import { createFixedProvider } from "../../src/grid/static.js";
import { ProcessTracker } from "../../src/jobs/tracker.js";
import { recordingLogger } from "../grid/replay-server.js";
import { FakeProc } from "../procfs/fixture-tree.js";

const fixtures = fileURLToPath(new URL("../fixtures/drm/", import.meta.url));
const cleanup: (() => void)[] = [];
afterAll(() => cleanup.forEach((f) => f()));

describe("parseDrmFdinfo", () => {
  it("amdgpu: driver, client, device, engine ns, memory", () => {
    const info = parseDrmFdinfo(
      "pos:\t0\nflags:\t02100002\nmnt_id:\t24\nino:\t1031\ndrm-driver:\tamdgpu\ndrm-client-id:\t7\ndrm-pdev:\t0000:03:00.0\npasid:\t32775\ndrm-memory-vram:\t524288 KiB\ndrm-engine-gfx:\t11500000000 ns\ndrm-engine-compute:\t2500000000 ns\n",
    )!;
    expect(info).toMatchObject({ driver: "amdgpu", clientId: "7", pdev: "0000:03:00.0", holdsMemory: true });
    expect([...info.engineNanos]).toEqual([
      ["gfx", 11_500_000_000],
      ["compute", 2_500_000_000],
    ]);
  });

  it("xe (the kernel documentation's example): busy cycles and total cycles per engine class; capacity is not an engine", () => {
    const info = parseDrmFdinfo(
      "drm-driver:     xe\ndrm-client-id:  3\ndrm-pdev:       0000:03:00.0\ndrm-total-gtt:  192 KiB\ndrm-resident-vram0:     23992 KiB\ndrm-cycles-rcs: 28257900\ndrm-total-cycles-rcs:   7655183225\ndrm-cycles-vcs: 0\ndrm-total-cycles-vcs:   7655183225\ndrm-engine-capacity-vcs:        2\n",
    )!;
    expect(info.driver).toBe("xe");
    expect([...info.cycles]).toEqual([
      ["rcs", { busy: 28257900, total: 7655183225 }],
      ["vcs", { busy: 0, total: 7655183225 }],
    ]);
    expect(info.engineNanos.size).toBe(0);
    expect(info.holdsMemory).toBe(true);
  });

  it("a descriptor that is not a DRM file, and malformed values, give nothing", () => {
    expect(parseDrmFdinfo("pos:\t0\nflags:\t02\nmnt_id:\t9\nino:\t48213\n")).toBeUndefined();
    const info = parseDrmFdinfo("drm-driver:\ti915\ndrm-engine-render:\t12 parsecs\ndrm-engine-copy:\t-5 ns\ndrm-engine-video:\t7 ns\n")!;
    expect([...info.engineNanos]).toEqual([["video", 7]]);
  });
});

describe("DrmClients", () => {
  /** A host with one process holding `clients` (fd → fdinfo text). */
  function host(): { root: string; set: (pid: number, fd: number, text: string) => void } {
    const root = mkdtempSync(join(tmpdir(), "pp-drm-"));
    cleanup.push(() => rmSync(root, { recursive: true, force: true }));
    return {
      root,
      set(pid, fd, text) {
        mkdirSync(join(root, "proc", String(pid), "fd"), { recursive: true });
        mkdirSync(join(root, "proc", String(pid), "fdinfo"), { recursive: true });
        try {
          symlinkSync("/dev/dri/renderD128", join(root, "proc", String(pid), "fd", String(fd)));
        } catch {
          // already there
        }
        writeFileSync(join(root, "proc", String(pid), "fdinfo", String(fd)), text);
      },
    };
  }
  const fdinfo = (client: number, gfxNanos: number) => `drm-driver:\tamdgpu\ndrm-client-id:\t${client}\ndrm-pdev:\t0000:03:00.0\ndrm-engine-gfx:\t${gfxNanos} ns\n`;

  it("a client seen through two descriptors of two processes counts once, for the lower PID; a counter stepping back holds its larger value", () => {
    const h = host();
    const clients = new DrmClients({ procRoot: h.root, drivers: ["amdgpu"] });
    h.set(200, 4, fdinfo(1, 1e9));
    h.set(100, 4, fdinfo(1, 1e9));
    h.set(100, 5, fdinfo(1, 1e9));
    expect(clients.scan(0).get("0000:03:00.0")?.busySecondsByPid).toEqual(new Map([[100, 0]]));
    for (const [pid, fd] of [[200, 4], [100, 4], [100, 5]]) h.set(pid, fd, fdinfo(1, 3e9));
    expect(clients.scan(1).get("0000:03:00.0")?.busySecondsByPid).toEqual(new Map([[100, 2]]));
    // The driver reports less for a moment: nothing counted until it passes 3 s again.
    for (const [pid, fd] of [[200, 4], [100, 4], [100, 5]]) h.set(pid, fd, fdinfo(1, 2.5e9));
    expect(clients.scan(1).get("0000:03:00.0")?.busySecondsByPid).toEqual(new Map([[100, 0]]));
    for (const [pid, fd] of [[200, 4], [100, 4], [100, 5]]) h.set(pid, fd, fdinfo(1, 4e9));
    expect(clients.scan(1).get("0000:03:00.0")?.busySecondsByPid).toEqual(new Map([[100, 1]]));
    // A client opened since the last scan counts from zero.
    h.set(300, 4, fdinfo(2, 0.5e9));
    expect(clients.scan(1).get("0000:03:00.0")?.busySecondsByPid.get(300)).toBeCloseTo(0.5, 12);
  });

  it("other drivers' clients are not read", () => {
    const h = host();
    h.set(100, 4, fdinfo(1, 1e9).replace("amdgpu", "i915"));
    expect(new DrmClients({ procRoot: h.root, drivers: ["amdgpu"] }).scan(0).size).toBe(0);
  });
});

/** A fixture host at t0 on a FakeProc (the processes' stat files), moved to t1 by `advance()`. */
function fixtureHost(name: string, processes: { pid: number; ppid: number }[]) {
  const fake = new FakeProc();
  cleanup.push(() => fake.cleanup());
  for (const p of processes) fake.set({ ...p, startTicks: 100 + p.pid });
  cpSync(join(fixtures, name, "t0"), fake.root, { recursive: true, verbatimSymlinks: true });
  return { root: fake.root, advance: () => cpSync(join(fixtures, name, "t1"), fake.root, { recursive: true }) };
}

/** Two ticks 2 s apart through the real Sampler; jobs are process trees of the ProcessTracker on the fixture /proc. */
async function measure(collector: Collector, root: string, jobs: Record<string, number>, advance: () => void, idleWatts: number): Promise<LedgerSnapshot> {
  const tracker = new ProcessTracker({ root });
  for (const [id, pid] of Object.entries(jobs)) tracker.addJob(id, pid);
  const ledger = new Ledger({ pue: 1 }, 0);
  const fixed = createFixedProvider(100);
  let now = 0;
  const log = recordingLogger();
  const sampler = new Sampler({
    collectors: [collector],
    processes: tracker,
    intensity: { at: (t) => fixed.at("XX", t) },
    ledger,
    nowMillis: () => now,
    idlePolicy: "attribute",
    idle: { byKind: { gpu: idleWatts } },
    log,
  });
  await sampler.tick();
  advance();
  now = 2000;
  await sampler.tick();
  expect(log.lines.filter((l) => l.startsWith("warn:"))).toEqual([]);
  return ledger.snapshot();
}

const onDevice = (snap: LedgerSnapshot, id: string) => [...snap.jobs, snap.buckets.system, snap.buckets.idle].reduce((a, t) => a + (t.deviceEnergyJoules[id] ?? 0), 0);
const job = (snap: LedgerSnapshot, id: string) => snap.jobs.find((j) => j.id === id)!.deviceEnergyJoules;

describe("AMD GPUs split by DRM fdinfo engine time", () => {
  const processes = [
    { pid: 1000, ppid: 1 },
    { pid: 1001, ppid: 1000 },
    { pid: 2000, ppid: 1 },
    { pid: 3000, ppid: 1 },
    { pid: 4000, ppid: 1 },
  ];

  it("the collector lists each card's working processes with engine-time shares, cards matched by PCI address", async () => {
    const h = fixtureHost("amd", processes);
    const c = createAmdGpuCollector({ root: h.root });
    const first = await c.read();
    expect(first.map((r) => [r.deviceId, r.pciBusId, r.energyJoules])).toEqual([
      ["amdgpu:card0", "0000:03:00.0", 1000],
      ["amdgpu:card1", "0000:83:00.0", 2000],
    ]);
    // First read: a baseline (no engine time yet); 4000's client never worked nor holds memory.
    expect(first[0].processes?.map((p) => p.pid)).toEqual([1000, 2000, 3000]);
    h.advance();
    const [card0, card1] = await c.read();
    expect(card0.processUsageMethod).toBe("engine-time");
    // Client 7 (held by 1000 twice and by its child 1001): 2.0 s, for 1000 once; 1001's own client 8: 0.5 s;
    // 2000: 1.0 s; 3000: 0.5 s. Of 4.0 s.
    expect(card0.processes).toEqual([
      { pid: 1000, share: 2 / 4 },
      { pid: 1001, share: 0.5 / 4 },
      { pid: 2000, share: 1 / 4 },
      { pid: 3000, share: 0.5 / 4 },
    ]);
    expect(card1.processes).toEqual([{ pid: 2000, share: 1 }]);
  });

  it("per-job GPU energy by engine time; the idle part among the holders; conservation exact; not all to idle", async () => {
    const h = fixtureHost("amd", processes);
    const snap = await measure(createAmdGpuCollector({ root: h.root }), h.root, { "job-a": 1000, "job-b": 2000 }, h.advance, 100);
    // card0: 500 J, idle 100 W × 2 s = 200 J among job-a, job-b and system (3000); active 300 J by 2.5 : 1 : 0.5.
    expect(job(snap, "job-a")["amdgpu:card0"]).toBeCloseTo((300 * 2.5) / 4 + 200 / 3, 9);
    expect(job(snap, "job-b")["amdgpu:card0"]).toBeCloseTo((300 * 1) / 4 + 200 / 3, 9);
    expect(snap.buckets.system.deviceEnergyJoules["amdgpu:card0"]).toBeCloseTo((300 * 0.5) / 4 + 200 / 3, 9);
    expect(snap.buckets.idle.deviceEnergyJoules["amdgpu:card0"] ?? 0).toBe(0);
    // card1: 100 J, below the 200 J idle baseline: all idle part, held by job-b alone.
    expect(job(snap, "job-b")["amdgpu:card1"]).toBeCloseTo(100, 9);
    for (const id of ["amdgpu:card0", "amdgpu:card1"]) expect(onDevice(snap, id)).toBeCloseTo(snap.devices.find((d) => d.id === id)!.energyJoules, 9);
    expect(snap.devices.find((d) => d.id === "amdgpu:card0")).toMatchObject({ energyJoules: 500, processUsageMethod: "engine-time" });
  });
});

describe("Intel GPUs (xe cycles, i915 engine ns) split by DRM fdinfo", () => {
  it("per-job energy of an xe card by busy cycles over total cycles and of an i915 card by engine ns; conservation exact", async () => {
    const h = fixtureHost("intel", [
      { pid: 1000, ppid: 1 },
      { pid: 2000, ppid: 1 },
      { pid: 3000, ppid: 1 },
    ]);
    const c = createIntelGpuCollector({ root: h.root });
    const probe = await c.probe();
    expect(probe.status === "ok" && probe.devices.map((d) => [d.deviceId, d.model, d.method])).toEqual([
      ["xe:card0", "Intel GPU 8086:e20b", "counter"],
      ["i915:card1", "Intel GPU 8086:56a0", "counter"],
    ]);
    const snap = await measure(c, h.root, { "job-a": 1000, "job-b": 2000 }, h.advance, 50);
    // xe card0: 300 J (energy1_input, the card's), idle 100 J; active 200 J by 9.6 M : 4.8 M busy cycles of 19.2 M.
    expect(job(snap, "job-a")["xe:card0"]).toBeCloseTo((200 * 2) / 3 + 50, 9);
    expect(job(snap, "job-b")["xe:card0"]).toBeCloseTo((200 * 1) / 3 + 50, 9);
    // i915 card1: 200 J, idle 100 J; active 100 J by 1 s render (job-a) : 1 s video (3000, system).
    expect(job(snap, "job-a")["i915:card1"]).toBeCloseTo(50 + 50, 9);
    expect(snap.buckets.system.deviceEnergyJoules["i915:card1"]).toBeCloseTo(50 + 50, 9);
    for (const id of ["xe:card0", "i915:card1"]) {
      expect(onDevice(snap, id)).toBeCloseTo(snap.devices.find((d) => d.id === id)!.energyJoules, 9);
      expect(snap.devices.find((d) => d.id === id)!.processUsageMethod).toBe("engine-time");
    }
    expect(snap.devices.find((d) => d.id === "xe:card0")!.energyJoules).toBeCloseTo(300, 9);
  });
});
