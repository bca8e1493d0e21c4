/**
 * The Monitor (src/core/monitor.ts), the measuring pipeline run/simulate/agent share, on real
 * parts: a fixture /proc tree read by the ProcessTracker, the CPU/memory model collector, the
 * Ledger. Clocks are injected (no wall-clock windows); the timer-driven tests wait for events.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createCpuModelCollector } from "../../collectors/cpu-model.js";
import type { Collector, DeviceReading, Exporter, ProcessSample, ProcessSource } from "../../src/core/contracts.js";
import type { MonitorClock } from "../../src/core/clock.js";
import { Ledger } from "../../src/core/ledger.js";
import { Monitor } from "../../src/core/monitor.js";
import { AgentSource } from "../../src/agent/lifecycle.js";
import type { LedgerSnapshot } from "../../src/core/types.js";
import { createFixedProvider } from "../../src/grid/static.js";
import { ProcessTracker } from "../../src/jobs/tracker.js";
import { FakeProc } from "../procfs/fixture-tree.js";
import { recordingLogger } from "../exporters/snapshots.js";
import { waitFor } from "../helpers/wait.js";

const fakes: FakeProc[] = [];
afterEach(() => {
  for (const f of fakes.splice(0)) f.cleanup();
});

const fixed = createFixedProvider(100);
const intensity = { at: (t: Date) => fixed.at("XX", t) };

/** A host with one job process (pid 10) under init; 25 % busy per second of fake time. */
function host(): { f: FakeProc; tracker: ProcessTracker } {
  const f = new FakeProc();
  fakes.push(f);
  f.set({ pid: 1, ppid: 0, startTicks: 1, name: "init" });
  f.set({ pid: 10, ppid: 1, startTicks: 100, name: "job", utimeTicks: 0 });
  return { f, tracker: new ProcessTracker({ root: f.root }) };
}

/** 100 W TDP, idle fraction 0.2: 20 W + 80 W × utilisation; no memory. */
const cpuModel = (): Collector => createCpuModelCollector({ cpuModel: "Test CPU", cores: 4, sockets: 1, memoryBytes: 0, tdpWatts: 100, idleFraction: 0.2 });

/** A clock the test moves: `advance(ms)` moves both; `stepWall(ms)` moves only the wall clock (NTP, VM resume). */
function testClock(wallStartMillis: number): MonitorClock & { advance(ms: number): void; stepWall(ms: number): void } {
  let mono = 5_000;
  let wall = wallStartMillis;
  return {
    monotonicMillis: () => mono,
    wallMillis: () => wall,
    advance(ms) {
      mono += ms;
      wall += ms;
    },
    stepWall(ms) {
      wall += ms;
    },
  };
}

/** Five ticks one (monotonic) second apart, the job at 1 of 4 cores; `step` runs between ticks 2 and 3. */
async function fiveTicks(step?: (clock: ReturnType<typeof testClock>) => void): Promise<{ snap: LedgerSnapshot; monitor: Monitor }> {
  const { f, tracker } = host();
  const clock = testClock(1_700_000_000_000);
  const ledger = new Ledger({ pue: 1 }, clock.wallMillis());
  ledger.registerJob("j", "j", {}, clock.wallMillis());
  const monitor = new Monitor({
    collectors: [cpuModel()],
    processes: tracker,
    intensity,
    ledger,
    exporters: [],
    intervalMillis: 1000,
    idlePolicy: "attribute",
    log: recordingLogger(),
    clock,
  });
  monitor.addJob("j", 10);
  await monitor.tick();
  for (let i = 1; i <= 4; i++) {
    if (i === 3) step?.(clock);
    clock.advance(1000);
    f.tickHost(100, 300);
    f.update(10, { utimeTicks: 100 * i });
    await monitor.tick();
  }
  return { snap: await monitor.stop({ finalTick: false }), monitor };
}

describe("Monitor: intervals on the monotonic clock, timestamps on the wall clock", () => {
  it("a +1 h wall-clock step mid-run leaves every joule and the duration unchanged; timestamps move", async () => {
    const calm = (await fiveTicks()).snap;
    const stepped = (await fiveTicks((c) => c.stepWall(3_600_000))).snap;
    // Trapezoids of 1 s: the baseline reading has no utilisation yet (the model assumes 50 %: 60 W),
    // then 20 W + 80 W × 0.25 = 40 W: (60 + 40) / 2 + 3 × 40 = 170 J. Before the clock split, the
    // stepped interval counted 3601 s of power.
    expect(calm.devices.find((d) => d.id === "cpu-model:0")?.energyJoules).toBeCloseTo(170, 9);
    expect(stepped.devices.find((d) => d.id === "cpu-model:0")?.energyJoules).toBeCloseTo(170, 9);
    expect(stepped.jobs[0].energyJoules.total).toBeCloseTo(calm.jobs[0].energyJoules.total, 9);
    expect(stepped.buckets.system.energyJoules.total).toBeCloseTo(calm.buckets.system.energyJoules.total, 9);
    expect(stepped.jobs[0].cpuSeconds).toBeCloseTo(4, 9);
    expect(stepped.elapsedMillis).toBe(4000);
    expect(calm.elapsedMillis).toBe(4000);
    // The timestamps follow the wall clock (the report's endedAt says when, by the wall).
    expect(stepped.timeMillis - calm.timeMillis).toBe(3_600_000);
  });

  it("a backward wall step (−1 h) does not lose energy either", async () => {
    const stepped = (await fiveTicks((c) => c.stepWall(-3_600_000))).snap;
    expect(stepped.devices.find((d) => d.id === "cpu-model:0")?.energyJoules).toBeCloseTo(170, 9);
    expect(stepped.elapsedMillis).toBe(4000);
  });
});

describe("Monitor: snapshots, readiness, discovered jobs", () => {
  it("publishes a frozen snapshot after each tick to listeners and exporters; ready after the first interval", async () => {
    const { f, tracker } = host();
    const clock = testClock(0);
    const ledger = new Ledger({ pue: 1 }, 0);
    ledger.registerJob("j", "j", {}, 0);
    const updates: LedgerSnapshot[] = [];
    const exporter: Exporter = { id: "rec", update: (s) => updates.push(s), shutdown: async () => undefined };
    const monitor = new Monitor({ collectors: [cpuModel()], processes: tracker, intensity, ledger, exporters: [exporter], intervalMillis: 1000, idlePolicy: "attribute", log: recordingLogger(), clock });
    monitor.addJob("j", 10);
    const seen: LedgerSnapshot[] = [];
    const off = monitor.onSnapshot((s) => seen.push(s));
    await monitor.tick();
    expect(monitor.ready).toBe(false);
    clock.advance(1000);
    f.tickHost(100, 300);
    await monitor.tick();
    expect(monitor.ready).toBe(true);
    expect(seen).toHaveLength(2);
    expect(updates).toEqual(seen);
    expect(monitor.snapshot()).toBe(seen[1]);
    expect(Object.isFrozen(seen[1])).toBe(true);
    expect(Object.isFrozen(seen[1].jobs[0].energyJoules)).toBe(true);
    // (60 W assumed at the baseline + 40 W measured) / 2 over 1 s.
    expect(seen[1].devices.find((d) => d.id === "cpu-model:0")?.energyJoules).toBeCloseTo(50, 9);
    off();
    clock.advance(1000);
    await monitor.tick();
    expect(seen).toHaveLength(2);
    expect(updates).toHaveLength(3);
  });

  it("a discovering source's jobs are registered once, with their attributes, by the agent's AgentSource (the one registrar)", async () => {
    const { f, tracker } = host();
    f.set({ pid: 20, ppid: 1, startTicks: 200, name: "pod-b", utimeTicks: 0 });
    // A discovering source as the agent's modes are: it adds its own jobs and names them in the sample.
    const jobs = new Map([["pod-b", { id: "pod-b", name: "trainer", attributes: { "k8s.pod.name": "trainer-0", constructor: "x" } }]]);
    let added = false;
    const discovering: ProcessSource = {
      addJob: (id, pid) => tracker.addJob(id, pid),
      jobEnvironment: (id, names) => tracker.jobEnvironment(id, names),
      sample(): ProcessSample {
        if (!added) {
          tracker.addJob("pod-b", 20);
          added = true;
        }
        return { ...tracker.sample(), jobs };
      },
    };
    const clock = testClock(0);
    const ledger = new Ledger({ pue: 1 }, 0);
    const agentSource = new AgentSource({ real: discovering, ledger, retentionMillis: 60_000, nowMillis: () => clock.wallMillis(), log: recordingLogger() });
    const monitor = new Monitor({ collectors: [cpuModel()], processes: agentSource, intensity, ledger, exporters: [], intervalMillis: 1000, idlePolicy: "attribute", log: recordingLogger(), clock });
    await monitor.tick();
    clock.advance(1000);
    f.tickHost(100, 300);
    f.update(20, { utimeTicks: 100 });
    await monitor.tick();
    const snap = await monitor.stop({ finalTick: false });
    expect(snap.jobs.map((j) => [j.id, j.name, j.attributes])).toEqual([["pod-b", "trainer", { "k8s.pod.name": "trainer-0", constructor: "x" }]]);
    // Its CPU second is the host's whole busy second: the interval's energy (idle share included,
    // idle policy "attribute") is all the job's: (60 + 40) / 2 W over 1 s.
    expect(snap.jobs[0].cpuSeconds).toBeCloseTo(1, 9);
    expect(snap.jobs[0].energyJoules.total).toBeCloseTo(50, 9);
  });

  it("a throwing process source is counted, never rejects, and the next tick goes on", async () => {
    const log = recordingLogger();
    let fail = true;
    const { tracker } = host();
    const source: ProcessSource = {
      addJob: (id, pid) => tracker.addJob(id, pid),
      jobEnvironment: () => ({}),
      sample: () => {
        if (fail) throw new Error("proc gone");
        return tracker.sample();
      },
    };
    const monitor = new Monitor({ collectors: [], processes: source, intensity, ledger: new Ledger({ pue: 1 }, 0), exporters: [], intervalMillis: 1000, idlePolicy: "attribute", log, clock: testClock(0) });
    await expect(monitor.tick()).resolves.toBeUndefined();
    expect(monitor.stats.collectorFailures.procfs).toBe(1);
    fail = false;
    await monitor.tick();
    expect(monitor.stats.ticks).toBe(1);
    expect(log.lines.filter((l) => l.message.includes("proc gone"))).toHaveLength(1);
  });
});

describe("Monitor: the timer and the end", () => {
  it("start() ticks at once and on the timer; a slow tick is skipped and counted, never stacked", async () => {
    const { tracker } = host();
    let reads = 0;
    let release: (() => void) | undefined;
    // A collector that hangs on its second read until the test releases it (a hung driver call).
    const hanging: Collector = {
      id: "hanging",
      probe: async () => ({ status: "ok", devices: [] }),
      read: async (): Promise<DeviceReading[]> => {
        reads++;
        if (reads === 2) await new Promise<void>((resolve) => (release = resolve));
        return [{ deviceId: "dev", kind: "cpu", source: "hanging", method: "power", powerWatts: 10 }];
      },
      close: async () => undefined,
    };
    const ledger = new Ledger({ pue: 1 }, Date.now());
    const monitor = new Monitor({ collectors: [hanging], processes: tracker, intensity, ledger, exporters: [], intervalMillis: 10, idlePolicy: "attribute", log: recordingLogger() });
    await monitor.start();
    expect(monitor.stats.ticks).toBe(1);
    await waitFor("3 skipped ticks", () => monitor.stats.skippedTicks >= 3, 60_000, 5);
    expect(reads).toBe(2);
    release?.();
    await waitFor("3 ticks", () => monitor.stats.ticks >= 3, 60_000, 5);
    const final = await monitor.stop();
    expect(final.devices.find((d) => d.id === "dev")?.energyJoules).toBeGreaterThan(0);
    const ticks = monitor.stats.ticks;
    await monitor.stop();
    expect(monitor.stats.ticks).toBe(ticks);
  });

  it("shutdownExporters: a silent exporter is cut off at the deadline and counted; a throwing one too; the rest flush", async () => {
    const log = recordingLogger();
    const flushed: LedgerSnapshot[] = [];
    const exporters: Exporter[] = [
      { id: "silent", shutdown: () => new Promise<void>(() => undefined) },
      { id: "broken", shutdown: async () => Promise.reject(new Error("socket hang up")), failures: () => ({ "broken:ECONNRESET": 2 }) },
      { id: "good", shutdown: async (s) => void flushed.push(s) },
    ];
    const { tracker } = host();
    const monitor = new Monitor({ collectors: [], processes: tracker, intensity, ledger: new Ledger({ pue: 1 }, 0), exporters, intervalMillis: 1000, idlePolicy: "attribute", log, clock: testClock(0) });
    await monitor.tick();
    const final = await monitor.stop();
    const failures = await monitor.shutdownExporters(final, 50);
    expect(failures).toEqual({ "silent:timeout": 1, "broken:shutdown": 1, "broken:ECONNRESET": 2 });
    expect(flushed).toEqual([final]);
    expect(log.lines.some((l) => l.level === "warn" && /silent: final export did not finish within 0.05 s/.test(l.message))).toBe(true);
  });
});

/** Waits for a condition the code under test makes true (polls on a short timer; no time window asserted). */
describe("Monitor: accounting from the spawn (prime)", () => {
  it("the process baseline at the spawn; devices probed later: the first interval is spawn → first tick, with the power device's power and the job's CPU; a counter counts from its first read", async () => {
    const { f, tracker } = host();
    const clock = testClock(0);
    const ledger = new Ledger({ pue: 1 }, 0);
    ledger.registerJob("j", "j", {}, 0);
    let counterJoules = 1000;
    // A 50 W power device and a counter device advancing 30 J per second of the test clock.
    const devices: Collector = {
      id: "devs",
      probe: async () => ({ status: "ok", devices: [] }),
      read: async (): Promise<DeviceReading[]> => [
        { deviceId: "p", kind: "gpu", source: "devs", method: "power", powerWatts: 50 },
        { deviceId: "c", kind: "cpu", source: "devs", method: "counter", energyJoules: counterJoules },
      ],
      close: async () => undefined,
    };
    const monitor = new Monitor({ collectors: [], processes: tracker, intensity, ledger, exporters: [], intervalMillis: 1000, idlePolicy: "attribute", log: recordingLogger(), clock });
    monitor.addJob("j", 10);
    monitor.prime(); // the spawn, at monotonic 5000
    clock.advance(400); // probing takes 400 ms; the job burns 0.4 s of CPU meanwhile
    counterJoules += 12;
    f.tickHost(40, 120);
    f.update(10, { utimeTicks: 40 });
    monitor.addCollectors([devices]);
    await monitor.tick(); // devices' first readings: the first interval, spawn → now
    expect(monitor.ready).toBe(true);
    const first = monitor.snapshot();
    // The first interval: 50 W × 0.4 s = 20 J on the power device, its power shown; the counter,
    // first read now, has nothing before it (said in its notes).
    expect(first.devices.find((d) => d.id === "p")).toMatchObject({ energyJoules: 20, lastPowerWatts: 50 });
    expect(first.devices.find((d) => d.id === "c")?.energyJoules ?? 0).toBe(0);
    expect(first.jobs[0].cpuSeconds).toBeCloseTo(0.4, 9);
    // No process on the GPU: its 20 J are the idle bucket's (conserved from the first interval on).
    expect(first.buckets.idle.energyJoules.total).toBeCloseTo(20, 9);
    expect(first.elapsedMillis).toBe(400);
    clock.advance(1000);
    counterJoules += 30;
    f.tickHost(100, 300);
    f.update(10, { utimeTicks: 140 });
    await monitor.tick();
    const snap = await monitor.stop({ finalTick: false });
    // Power: 50 W over the 0.4 s of probing + 1 s = 70 J; counter: only its 30 J since the first read.
    expect(snap.devices.find((d) => d.id === "p")?.energyJoules).toBeCloseTo(70, 9);
    expect(snap.devices.find((d) => d.id === "c")?.energyJoules).toBeCloseTo(30, 9);
    // The job's CPU seconds span the same window as the power device: from the spawn.
    expect(snap.jobs[0].cpuSeconds).toBeCloseTo(1.4, 9);
    expect(snap.elapsedMillis).toBe(1400);
  });
});
