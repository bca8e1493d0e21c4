/**
 * Fault matrix (issue 9): the device and process faults, on the real Monitor → Sampler → Ledger
 * with a fixture /proc tree read by the real ProcessTracker. The collectors here are test doubles
 * of external devices (a GPU whose driver call never returns, one that throws, a counter that a
 * driver reload resets), not of our code. Time: the monotonic/wall clock is injected; the only real
 * timer is the collector deadline itself (20 ms here), which the test waits for, never measures.
 *
 * Rows covered elsewhere (file: test name):
 * - child SIGINT / SIGTERM / SIGHUP relayed (the command records the signal it got):
 *   test/cli/run.test.ts: "relays %s to the command (which records it) and exits %i"
 * - child crash / killed by a signal, exit status relayed (kill -9 → 137, exit 42 → 42):
 *   test/cli/run.test.ts: "relays the exit status of %j as %i"
 * - grace expiry on a tree that ignores SIGTERM (SIGKILL to every member):
 *   test/cli/run-kill.test.ts ("the root and its children ignore SIGTERM" rows) and
 *   test/cli/run.test.ts: "SIGKILLs a command that ignores SIGTERM after the grace period, and exits 137"
 * - PID reuse in the process table (another start time: not a member, inherits nothing):
 *   test/jobs/tracker-fixture.test.ts: "a reused PID with another start time does not inherit, and joins only if its parent is a member"
 * - processes vanishing between reads of /proc (never throws, totals monotone):
 *   test/jobs/tracker-fixture.test.ts: "never throws for PIDs that vanish or have no stat file, and stays monotone",
 *   "keeps the whole last-seen tree when the root and its children vanish in the same tick";
 *   test/procfs/reader.test.ts: "returns undefined, never throws, for a vanished PID or missing children files"
 * - a throwing process source: test/core/monitor.test.ts: "a throwing process source is counted, never rejects, and the next tick goes on"
 * - counter wrap with a known range: test/core/counter.test.ts (table rows) and
 *   test/core/energy-ledger.test.ts: "takes counter deltas, handles a wrap with the counter's range"
 * - counter reset with a power reading: test/core/energy-ledger.test.ts: "a counter reset without a range falls back to power for that interval, and says so"
 * - GPU lost (fell off the bus, stub NVML GPU_IS_LOST):
 *   test/collectors/nvml.test.ts: "a GPU lost mid-run keeps a `lost` reading without energy while the other goes on"
 * - a GPU PID missing from the members (node agent, trackMembers false) and one exiting between reads there:
 *   test/core/sampler-job-of-pid.test.ts
 * - slow tick skipped, never stacked: test/core/monitor.test.ts: "start() ticks at once and on the timer; a slow tick is skipped and counted, never stacked"
 * - grid provider / OTLP receiver that never answers, port taken, report folder removed:
 *   test/cli/run-faults.test.ts (one test per row)
 *
 * Known limit (said, not hidden): a GPU PID that exited and was reused by an unrelated process
 * within one interval still maps to its old job for that one interval (NVML gives no start time);
 * from the next interval on it is not a member (the PID-reuse test below shows both).
 */
import { afterEach, describe, expect, it } from "vitest";
import { createCpuModelCollector } from "../../collectors/cpu-model.js";
import type { Collector, DeviceReading, ProcessUsage } from "../../src/core/contracts.js";
import type { MonitorClock } from "../../src/core/clock.js";
import { Ledger } from "../../src/core/ledger.js";
import { Monitor } from "../../src/core/monitor.js";
import { createFixedProvider } from "../../src/grid/static.js";
import { ProcessTracker } from "../../src/jobs/tracker.js";
import { FakeProc } from "../procfs/fixture-tree.js";
import { recordingLogger } from "../exporters/snapshots.js";

const fakes: FakeProc[] = [];
afterEach(() => {
  for (const f of fakes.splice(0)) f.cleanup();
});

const fixed = createFixedProvider(100);
const intensity = { at: (t: Date) => fixed.at("XX", t) };

function testClock(): MonitorClock & { advance(ms: number): void } {
  let mono = 5_000;
  let wall = 1_700_000_000_000;
  return {
    monotonicMillis: () => mono,
    wallMillis: () => wall,
    advance(ms) {
      mono += ms;
      wall += ms;
    },
  };
}

/** A GPU whose next readings the test sets (an external device: what its driver would answer). */
class ScriptedGpu implements Collector {
  reads = 0;
  next: Partial<DeviceReading> = {};
  constructor(
    readonly id: string,
    private readonly deviceId: string,
  ) {}
  probe() {
    return Promise.resolve({ status: "ok" as const, devices: [] });
  }
  read(): Promise<DeviceReading[]> {
    this.reads++;
    return Promise.resolve([{ deviceId: this.deviceId, kind: "gpu", source: this.id, method: "power", ...this.next }]);
  }
  close() {
    return Promise.resolve();
  }
}

/** A GPU whose driver call hangs when told to: read() returns a promise that settles only on release(). */
class HangingGpu extends ScriptedGpu {
  hang = false;
  private releases: (() => void)[] = [];
  override read(): Promise<DeviceReading[]> {
    if (!this.hang) return super.read();
    this.reads++;
    return new Promise((resolve) => this.releases.push(() => resolve([])));
  }
  release(): void {
    this.hang = false;
    for (const r of this.releases.splice(0)) r();
  }
}

/** A source that throws synchronously (a bug in a driver binding) or rejects. */
const throwing = (id: string, sync: boolean): Collector => ({
  id,
  probe: () => Promise.resolve({ status: "unavailable", reason: "test" }),
  read: () => {
    if (sync) throw new Error(`${id} exploded`);
    return Promise.reject(new Error(`${id} rejected`));
  },
  close: () => Promise.resolve(),
});

/** 100 W TDP CPU model: the source that must go on while the others fail. */
const cpuModel = (): Collector => createCpuModelCollector({ cpuModel: "Test CPU", cores: 4, sockets: 1, memoryBytes: 0, tdpWatts: 100, idleFraction: 0.2 });

function setup(collectors: Collector[]) {
  const f = new FakeProc();
  fakes.push(f);
  f.set({ pid: 1, ppid: 0, startTicks: 1, name: "init" });
  f.set({ pid: 10, ppid: 1, startTicks: 100, name: "job", utimeTicks: 0 });
  f.set({ pid: 11, ppid: 10, startTicks: 110, name: "worker", utimeTicks: 0 });
  const tracker = new ProcessTracker({ root: f.root });
  const clock = testClock();
  const ledger = new Ledger({ pue: 1 }, clock.wallMillis());
  ledger.registerJob("j", "j", {}, clock.wallMillis());
  const log = recordingLogger();
  const monitor = new Monitor({
    collectors,
    processes: tracker,
    intensity,
    ledger,
    exporters: [],
    intervalMillis: 1000,
    idlePolicy: "attribute",
    log,
    clock,
    collectorDeadlineMillis: 20,
  });
  monitor.addJob("j", 10);
  let ticks = 0;
  /** Advances one second of job CPU and host time, then ticks. */
  const tick = async (o: { worker?: boolean } = {}) => {
    if (ticks++ > 0) {
      clock.advance(1000);
      f.tickHost(100, 300);
      if (o.worker !== false) f.update(11, { utimeTicks: 100 * ticks });
    }
    await monitor.tick();
  };
  const job = () => monitor.snapshot().jobs.find((j) => j.id === "j")!;
  const device = (id: string) => monitor.snapshot().devices.find((d) => d.id === id);
  return { f, clock, monitor, tick, job, device, log, ledger };
}

const warnings = (log: ReturnType<typeof recordingLogger>, re: RegExp) => log.lines.filter((l) => l.level === "warn" && re.test(l.message));
const onGpu = (pid: number): ProcessUsage[] => [{ pid, share: 1 }];

describe("fault matrix: collectors that hang or throw", () => {
  it("a hung read is timed out, counted, labelled, warned once, not restarted while in flight; the others go on; nothing lost once it answers", async () => {
    const hung = new HangingGpu("hung-gpu", "gpu1");
    const good = new ScriptedGpu("good-gpu", "gpu0");
    hung.next = { powerWatts: 50, processes: onGpu(11) };
    good.next = { powerWatts: 100, processes: onGpu(11) };
    const t = setup([hung, cpuModel(), good]);
    await t.tick(); // baselines
    await t.tick(); // both answer: 1 s each
    expect(t.job().deviceEnergyJoules.gpu1).toBeCloseTo(50, 9);

    hung.hang = true;
    await t.tick(); // resolves: the deadline cut the hung read off
    await t.tick(); // still in flight: not started again
    await t.tick();
    expect(hung.reads).toBe(3); // baseline, one good read, the one that hangs: never a second one
    expect(t.monitor.stats.collectorFailures["collector:hung-gpu:timeout"]).toBe(3);
    expect(t.monitor.stats.skippedTicks).toBe(0);
    // The others went on every tick.
    expect(t.job().deviceEnergyJoules.gpu0).toBeCloseTo(400, 9);
    expect(t.job().energyJoules.cpu).toBeGreaterThan(0);
    expect(warnings(t.log, /hung-gpu: read did not answer within 0.02 s/)).toHaveLength(1);
    expect(t.device("gpu1")!.notes.some((n) => /hung-gpu read timed out/.test(n))).toBe(true);
    // gpu1 got nothing while hung.
    expect(t.job().deviceEnergyJoules.gpu1).toBeCloseTo(50, 9);

    hung.release();
    // Let the late answer settle (it is dropped: it belongs to no tick).
    await new Promise((r) => setImmediate(r));
    await t.tick();
    expect(hung.reads).toBe(4);
    // The interval after the gap spans it: 50 W over the 4 s since gpu1's last reading.
    expect(t.job().deviceEnergyJoules.gpu1).toBeCloseTo(50 + 200, 9);
    expect(t.monitor.stats.collectorFailures["collector:hung-gpu:timeout"]).toBe(3);
  });

  it("a hung collector at the final tick does not hold stop(): the final snapshot has the others' figures", async () => {
    const hung = new HangingGpu("hung-gpu", "gpu1");
    const good = new ScriptedGpu("good-gpu", "gpu0");
    good.next = { powerWatts: 100, processes: onGpu(11) };
    hung.next = { powerWatts: 50 };
    const t = setup([hung, good]);
    await t.tick();
    await t.tick();
    hung.hang = true;
    t.clock.advance(1000);
    const final = await t.monitor.stop(); // the final tick: gpu1 hangs
    expect(final.jobs.find((j) => j.id === "j")!.deviceEnergyJoules.gpu0).toBeCloseTo(200, 9);
    expect(t.monitor.stats.collectorFailures["collector:hung-gpu:timeout"]).toBe(1);
    hung.release();
  });

  it("a collector that throws synchronously or rejects is counted per tick and warned once; the tick goes on", async () => {
    const good = new ScriptedGpu("good-gpu", "gpu0");
    good.next = { powerWatts: 100, processes: onGpu(11) };
    const t = setup([throwing("sync-bad", true), good, throwing("async-bad", false)]);
    for (let i = 0; i < 4; i++) await t.tick();
    expect(t.monitor.stats.collectorFailures["collector:sync-bad"]).toBe(4);
    expect(t.monitor.stats.collectorFailures["collector:async-bad"]).toBe(4);
    expect(t.monitor.stats.collectorFailures.sampler).toBeUndefined();
    expect(t.job().deviceEnergyJoules.gpu0).toBeCloseTo(300, 9);
    expect(warnings(t.log, /sync-bad failed: sync-bad exploded/)).toHaveLength(1);
    expect(warnings(t.log, /async-bad failed: async-bad rejected/)).toHaveLength(1);
  });
});

describe("fault matrix: counters and processes", () => {
  it("a counter reset (driver reload, no wrap range, no power) is bridged: the new counter counts from 0, said once on the device", async () => {
    const gpu = new ScriptedGpu("nvml-like", "gpu0");
    const t = setup([gpu]);
    const read = async (energyJoules: number) => {
      gpu.next = { method: "counter", energyJoules, processes: onGpu(11) };
      await t.tick();
    };
    await read(5000); // baseline
    await read(5100); // +100
    await read(30); // reset: 30 J since the reload
    await read(80); // +50 on the new counter
    await read(10); // a second reset: +10, same note, no second warning
    expect(t.job().deviceEnergyJoules.gpu0).toBeCloseTo(100 + 30 + 50 + 10, 9);
    const notes = t.device("gpu0")!.notes.filter((n) => /energy counter reset/.test(n));
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/counted from the new counter's 0/);
    expect(warnings(t.log, /gpu0: energy counter reset/)).toHaveLength(1);
  });

  it("a GPU process that exited between reads still belongs to its job for the interval it ran in", async () => {
    const gpu = new ScriptedGpu("gpu", "gpu0");
    gpu.next = { powerWatts: 100, processes: onGpu(11) };
    const t = setup([gpu]);
    await t.tick();
    await t.tick();
    // pid 11 exits (and is reaped) before the next sample; the GPU reports it for the interval it ran in.
    t.f.remove(11);
    t.f.update(10, { cutimeTicks: 200 });
    await t.tick({ worker: false });
    // Two intervals of 100 J, the second reported for a PID no longer in the table: both the job's.
    expect(t.job().deviceEnergyJoules.gpu0).toBeCloseTo(200, 9);
    expect(t.monitor.snapshot().buckets.system.deviceEnergyJoules.gpu0 ?? 0).toBe(0);
  });

  it("PID reuse: a GPU PID taken over by an unrelated process leaves the job from the next interval on", async () => {
    const gpu = new ScriptedGpu("gpu", "gpu0");
    gpu.next = { powerWatts: 100, processes: onGpu(11) };
    const t = setup([gpu]);
    const clockTick = () => t.tick();
    await clockTick();
    await clockTick(); // 11 is the job's: 100 J to j
    // 11 exits; an unrelated process (parent init, another start time) gets PID 11 and uses the GPU.
    t.f.remove(11);
    t.f.set({ pid: 11, ppid: 1, startTicks: 9_000, name: "intruder", utimeTicks: 0 });
    await clockTick(); // the known one-interval limit: the last sample still had 11 as j's
    const afterLimit = t.job().deviceEnergyJoules.gpu0;
    await clockTick();
    await clockTick();
    expect(t.job().deviceEnergyJoules.gpu0).toBeCloseTo(afterLimit, 9);
    expect(t.monitor.snapshot().buckets.system.deviceEnergyJoules.gpu0).toBeCloseTo(200, 9);
    expect(afterLimit).toBeCloseTo(200, 9);
  });
});
