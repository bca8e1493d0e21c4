// MIG through the whole accounting path: the stub libnvidia-ml (test/native) through the real koffi
// NVML collector, real processes tracked by the /proc ProcessTracker as jobs, the real Sampler,
// Ledger, report builder and OTel instruments (collected by the SDK's in-memory exporter). An H100
// in MIG mode holds 3g, 2g and 2g instances with known GPM activity; an A100 beside it has MIG off.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DataPointType, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { afterAll, describe, expect, it } from "vitest";
import { createNvmlCollector } from "../../collectors/nvml.js";
import { FailureTracker, registerInstruments } from "../../exporters/otel.js";
import { csvRows } from "../../exporters/report-csv.js";
import { buildReport } from "../../exporters/report-json.js";
import { reportSchemaV1 } from "../../exporters/report-schema.js";
import type { Collector } from "../../src/core/contracts.js";
import { Ledger } from "../../src/core/ledger.js";
import { Sampler } from "../../src/core/sampler.js";
import type { LedgerSnapshot } from "../../src/core/types.js";
import { createFixedProvider } from "../../src/grid/static.js";
import { ProcessTracker } from "../../src/jobs/tracker.js";
import { recordingLogger } from "../grid/replay-server.js";
import { buildStubNvml } from "../native/build-stub.mjs";

const children: ChildProcess[] = [];
const collectors: Collector[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const c of collectors) await c.close();
  for (const c of children) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  delete process.env.STUB_NVML_SCRIPT;
});

function sleeper(): number {
  const c = spawn("sleep", ["600"], { stdio: "ignore" });
  children.push(c);
  return c.pid!;
}

/** 1 g of embodied carbon per device-millisecond held: each interval's embodied total is checkable. */
const EMBODIED = { totalGrams: 1e6, lifetimeMillis: 1e6, source: "test" };

interface Setup {
  gpm: boolean;
  /** [GI 1, GI 5, GI 6] MIG devices present. */
  instances: { gi: number; slices: number; sms: number; procs: number[] }[];
}

function stubLines(s: Setup, t: { energyMillijoules: number; a100Millijoules: number; clockMillis: number; busyMillis: number[] }, a100Pid: number): string[] {
  const lines = [
    "count 2",
    "gpu0.name NVIDIA H100 80GB HBM3",
    `gpu0.energy_mj ${t.energyMillijoules}`,
    "gpu0.power_mw 500000",
    "gpu0.mig 1",
    "gpu0.total_slices 7",
    `gpu0.gpm ${s.gpm ? 1 : 0}`,
    `gpu0.gpm_clock_ms ${t.clockMillis}`,
    "gpu1.name NVIDIA A100-SXM4-80GB",
    `gpu1.energy_mj ${t.a100Millijoules}`,
    "gpu1.mig 0",
    `gpu1.procs ${a100Pid}:1000000`,
  ];
  s.instances.forEach((i, k) => {
    lines.push(
      `gpu0.mig${k}.gi ${i.gi}`,
      `gpu0.mig${k}.ci 0`,
      `gpu0.mig${k}.gi_slices ${i.slices}`,
      `gpu0.mig${k}.ci_slices ${i.slices}`,
      `gpu0.mig${k}.sms ${i.sms}`,
      `gpu0.mig${k}.name NVIDIA H100 80GB HBM3 MIG ${i.slices}g`,
      `gpu0.mig${k}.uuid MIG-0000000${k}-0000-4000-8000-000000000000`,
      `gpu0.gi${i.gi}.sm_busy_ms ${t.busyMillis[k]}`,
    );
    if (i.procs.length > 0) lines.push(`gpu0.mig${k}.procs ${i.procs.map((p) => `${p}:1000000`).join(",")}`);
  });
  return lines;
}

/** Two ticks 2 s apart: gpu0 +1000 J, gpu1 +500 J; idle 100 W configured (200 J per GPU). */
async function run(setup: (pids: Record<string, number>) => Setup, busy: [number[], number[]]) {
  const lib = buildStubNvml();
  const dir = mkdtempSync(join(tmpdir(), "pp-mig-"));
  dirs.push(dir);
  const scriptPath = join(dir, "stub.txt");
  process.env.STUB_NVML_SCRIPT = scriptPath;
  let n = 0;
  const write = (lines: string[]) => {
    writeFileSync(join(dir, `s${n}`), lines.join("\n") + "\n");
    renameSync(join(dir, `s${n++}`), scriptPath);
  };
  const pids = { a: sleeper(), b: sleeper(), outside: sleeper(), c: sleeper() };
  const s = setup(pids);
  const tracker = new ProcessTracker();
  tracker.addJob("job-a", pids.a);
  tracker.addJob("job-b", pids.b);
  tracker.addJob("job-c", pids.c);
  write(stubLines(s, { energyMillijoules: 5_000_000, a100Millijoules: 1_000_000, clockMillis: 1000, busyMillis: busy[0] }, pids.c));
  const nvml = createNvmlCollector({ libraryPath: lib });
  collectors.push(nvml);
  let now = 0;
  const ledger = new Ledger({ pue: 1, embodiedFor: () => EMBODIED }, 0);
  const fixed = createFixedProvider(100);
  const log = recordingLogger();
  const sampler = new Sampler({
    collectors: [nvml],
    processes: tracker,
    intensity: { at: (t) => fixed.at("XX", t) },
    ledger,
    nowMillis: () => now,
    idlePolicy: "attribute",
    idle: { byKind: { gpu: 100 } },
    log,
  });
  await sampler.tick();
  now = 2000;
  write(stubLines(s, { energyMillijoules: 6_000_000, a100Millijoules: 1_500_000, clockMillis: 3000, busyMillis: busy[1] }, pids.c));
  await sampler.tick();
  expect(log.lines.filter((l) => l.startsWith("warn:"))).toEqual([]);
  return ledger.snapshot();
}

/** Σ over jobs and buckets of the energy on `deviceId`. */
function onDevice(snap: LedgerSnapshot, deviceId: string): number {
  return [...snap.jobs, snap.buckets.system, snap.buckets.idle].reduce((a, t) => a + (t.deviceEnergyJoules[deviceId] ?? 0), 0);
}
const job = (snap: LedgerSnapshot, id: string) => snap.jobs.find((j) => j.id === id)!;

describe("MIG: a GPU's energy split among its instances, each attributed to its jobs", () => {
  it("3g/2g/2g with GPM activity 50 % / 100 % / 0 %: idle by slices, active by activity × SMs; conservation exact per GPU and per instance", async () => {
    const snap = await run(
      (p) => ({
        gpm: true,
        instances: [
          { gi: 1, slices: 3, sms: 60, procs: [p.a] },
          { gi: 5, slices: 2, sms: 32, procs: [p.b, p.outside] },
          { gi: 6, slices: 2, sms: 32, procs: [] },
        ],
      }),
      [
        [100, 100, 100],
        [1100, 2100, 100],
      ],
    );
    // Idle 200 J by slices 3:2:2; active 800 J by 0.5 × 60 = 30 : 1 × 32 = 32 : 0.
    const e3g = (200 * 3) / 7 + (800 * 30) / 62;
    const e2gBusy = (200 * 2) / 7 + (800 * 32) / 62;
    const e2gIdle = (200 * 2) / 7;
    const device = (id: string) => snap.devices.find((d) => d.id === id)!;
    expect(device("gpu0")).toMatchObject({ energyJoules: 1000 });
    expect(device("gpu0").parent).toBeUndefined();
    expect(device("gpu0/gi1/ci0")).toMatchObject({ parent: "gpu0", partitionMethod: "activity", model: "NVIDIA H100 80GB HBM3 MIG 3g" });
    expect(device("gpu0/gi1/ci0").energyJoules).toBeCloseTo(e3g, 9);
    expect(device("gpu0/gi5/ci0").energyJoules).toBeCloseTo(e2gBusy, 9);
    expect(device("gpu0/gi6/ci0").energyJoules).toBeCloseTo(e2gIdle, 9);
    // Jobs: job-a alone in the 3g; job-b and a process outside every job (system) share the busy
    // 2g equally (no per-process utilisation under MIG); the idle 2g goes to idle; job-c has the A100.
    expect(job(snap, "job-a").deviceEnergyJoules["gpu0/gi1/ci0"]).toBeCloseTo(e3g, 9);
    expect(job(snap, "job-b").deviceEnergyJoules["gpu0/gi5/ci0"]).toBeCloseTo(e2gBusy / 2, 9);
    expect(snap.buckets.system.deviceEnergyJoules["gpu0/gi5/ci0"]).toBeCloseTo(e2gBusy / 2, 9);
    expect(snap.buckets.idle.deviceEnergyJoules["gpu0/gi6/ci0"]).toBeCloseTo(e2gIdle, 9);
    expect(job(snap, "job-c").deviceEnergyJoules.gpu1).toBeCloseTo(500, 9);
    expect(snap.devices.find((d) => d.id === "gpu1")!.parent).toBeUndefined();
    // Conservation: per instance, and per GPU over its instances and itself.
    for (const id of ["gpu0/gi1/ci0", "gpu0/gi5/ci0", "gpu0/gi6/ci0", "gpu1"]) expect(onDevice(snap, id)).toBeCloseTo(device(id).energyJoules, 9);
    const instances = snap.devices.filter((d) => d.parent === "gpu0");
    expect(instances).toHaveLength(3);
    expect(onDevice(snap, "gpu0") + instances.reduce((a, d) => a + onDevice(snap, d.id), 0)).toBeCloseTo(1000, 9);
    // Embodied: each GPU's interval is held once in all, its instances' parts included (2 GPUs × 2000 ms).
    const embodied = [...snap.jobs, snap.buckets.system, snap.buckets.idle].reduce((a, t) => a + t.embodiedEmissionsGrams, 0);
    expect(embodied).toBeCloseTo(2 * 2000, 6);

    // The report names each instance's GPU; the schema accepts it.
    const report = reportSchemaV1.parse(
      buildReport(snap, {
        version: "test",
        mode: "agent",
        idlePolicy: "attribute",
        pueOrigin: "default",
        intensityDescription: "fixed",
        intensityZone: "XX",
        intensitySource: "fixed",
        fallbacks: {},
        wueLitersPerKwh: 0,
        waterIntensityLitersPerKwh: 0,
        waterOrigin: "none",
        pricePerKwh: 0,
        currency: "USD",
        warnings: [],
        sampler: { ticks: 2, skippedTicks: 0, failures: {}, intervalMillis: 2000 },
        exportFailures: {},
      }),
    );
    // The CSV counts whole GPUs: the H100 and the A100, not the H100's instances again.
    expect(csvRows(report)[0]).toMatchObject({ gpu_count: 2 });
    expect(report.devices.filter((d) => d.parent === "gpu0").map((d) => [d.id, d.partitionMethod])).toEqual([
      ["gpu0/gi1/ci0", "activity"],
      ["gpu0/gi5/ci0", "activity"],
      ["gpu0/gi6/ci0", "activity"],
    ]);

    // Every series of an instance carries hw.parent (hw.energy, hw.power, powerprint.job.device.energy).
    const memory = new InMemoryMetricExporter(0);
    const reader = new PeriodicExportingMetricReader({ exporter: memory, exportIntervalMillis: 3_600_000 });
    const provider = new MeterProvider({ readers: [reader] });
    registerInstruments(provider.getMeter("powerprint"), () => snap, new FailureTracker());
    await reader.forceFlush();
    const seen: Record<string, unknown>[] = [];
    for (const rm of memory.getMetrics())
      for (const sm of rm.scopeMetrics)
        for (const m of sm.metrics) {
          if (!["hw.energy", "hw.power", "powerprint.job.device.energy"].includes(m.descriptor.name)) continue;
          if (m.dataPointType !== DataPointType.SUM && m.dataPointType !== DataPointType.GAUGE) continue;
          for (const p of m.dataPoints) seen.push({ metric: m.descriptor.name, ...p.attributes });
        }
    await provider.shutdown();
    const ofInstances = seen.filter((a) => String(a["hw.id"]).startsWith("gpu0/"));
    expect(ofInstances.length).toBeGreaterThanOrEqual(3 * 2 + 2);
    for (const a of ofInstances) expect(a["hw.parent"]).toBe("gpu0");
    expect(seen.filter((a) => a["hw.id"] === "gpu0" || a["hw.id"] === "gpu1").every((a) => a["hw.parent"] === undefined)).toBe(true);
  });

  it("no GPM (A100-like) and two unallocated slices: active by slices, the unallocated slices' idle share to idle on the GPU", async () => {
    const snap = await run(
      (p) => ({
        gpm: false,
        instances: [
          { gi: 1, slices: 3, sms: 42, procs: [p.a] },
          { gi: 5, slices: 2, sms: 28, procs: [p.b] },
        ],
      }),
      [
        [0, 0],
        [0, 0],
      ],
    );
    const device = (id: string) => snap.devices.find((d) => d.id === id)!;
    expect(device("gpu0/gi1/ci0").partitionMethod).toBe("slices");
    expect(job(snap, "job-a").deviceEnergyJoules["gpu0/gi1/ci0"]).toBeCloseTo((200 * 3) / 7 + (800 * 3) / 5, 9);
    expect(job(snap, "job-b").deviceEnergyJoules["gpu0/gi5/ci0"]).toBeCloseTo((200 * 2) / 7 + (800 * 2) / 5, 9);
    expect(snap.buckets.idle.deviceEnergyJoules.gpu0).toBeCloseTo((200 * 2) / 7, 9);
    expect(onDevice(snap, "gpu0") + onDevice(snap, "gpu0/gi1/ci0") + onDevice(snap, "gpu0/gi5/ci0")).toBeCloseTo(device("gpu0").energyJoules, 9);
    expect(device("gpu0").notes.join("; ")).toContain("no GPM on this GPU");
  });
});
