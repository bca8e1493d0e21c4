// FinalCpuSource and CompositeSource (powerprint run) over a fixture /proc tree and a scenario.
import { afterEach, describe, expect, it } from "vitest";
import { ProcessTracker } from "../../src/jobs/tracker.js";
import { CompositeSource, FinalCpuSource } from "../../src/jobs/run-sources.js";
import { SimProcessSource, SimWorld } from "../../src/sim/world.js";
import { validateScenario } from "../../src/sim/scenario.js";
import { FakeProc } from "../procfs/fixture-tree.js";

const fakes: FakeProc[] = [];
afterEach(() => {
  for (const f of fakes.splice(0)) f.cleanup();
});

function host() {
  const f = new FakeProc({ childrenFiles: true });
  fakes.push(f);
  f.set({ pid: 1, ppid: 0, startTicks: 1, name: "init" });
  f.set({ pid: 10, ppid: 1, startTicks: 100, name: "cmd" });
  return f;
}

describe("FinalCpuSource", () => {
  it("raises the job's CPU to the kernel's final figure and leaves the host's busy CPU as /proc/stat says", () => {
    const f = host();
    const source = new FinalCpuSource(new ProcessTracker({ root: f.root }), "j");
    source.addJob("j", 10);
    const first = source.sample();
    // The command burns 0.3 s after the last sample and exits; /proc/stat counted it.
    f.update(10, { utimeTicks: 30 });
    f.remove(10);
    f.tickHost(30);
    source.finalCpuSeconds = 0.3;
    const last = source.sample();
    expect(last.jobCpuSeconds.get("j")).toBeCloseTo(0.3, 12);
    // Before the fix the 0.3 s were added to the host a second time (0.6 s busy for 0.3 s of CPU).
    expect(last.hostBusyCpuSeconds - first.hostBusyCpuSeconds).toBeCloseTo(0.3, 12);
  });
});

describe("CompositeSource with FinalCpuSource below it (run --sim)", () => {
  it("adds the real command's final CPU to the simulated host's busy and total CPU", () => {
    const f = host();
    const world = new SimWorld(validateScenario({ durationSeconds: 60, devices: [{ id: "cpu0", kind: "cpu", idleWatts: 10, maxWatts: 100, cores: 4 }], processes: [{ pid: 500, job: "sim", cpu: [[0, 1]] }] }), 0);
    let now = 0;
    const final = new FinalCpuSource(new ProcessTracker({ root: f.root }), "j");
    const source = new CompositeSource(final, new SimProcessSource(world, () => now));
    source.addJob("j", 10);
    const first = source.sample();
    now = 2000;
    f.remove(10);
    final.finalCpuSeconds = 0.5;
    const last = source.sample();
    expect(last.jobCpuSeconds.get("j")).toBeCloseTo(0.5, 12);
    expect(last.jobCpuSeconds.get("sim")).toBeCloseTo(2, 12);
    // Simulated host: 1 busy core × 2 s, plus the real command's 0.5 s.
    expect(last.hostBusyCpuSeconds - first.hostBusyCpuSeconds).toBeCloseTo(2.5, 12);
    expect(last.hostTotalCpuSeconds - first.hostTotalCpuSeconds).toBeCloseTo(4 * 2 + 0.5, 12);
  });
});
