import { afterEach, describe, expect, it } from "vitest";
import { createCpuModelCollector } from "../../collectors/cpu-model.js";
import { Ledger } from "../../src/core/ledger.js";
import { Sampler } from "../../src/core/sampler.js";
import { createFixedProvider } from "../../src/grid/static.js";
import { ProcessTracker } from "../../src/jobs/tracker.js";
import { createStderrLogger } from "../../src/log.js";
import { FakeProc } from "../procfs/fixture-tree.js";

const fakes: FakeProc[] = [];
afterEach(() => {
  for (const f of fakes.splice(0)) f.cleanup();
});

describe("Sampler: host CPU utilisation between samples closer than a clock tick", () => {
  it("keeps the last measured utilisation when /proc/stat has not moved (no 'assuming 50%' guess)", async () => {
    const f = new FakeProc();
    fakes.push(f);
    f.set({ pid: 1, ppid: 0, startTicks: 1, name: "init" });
    f.set({ pid: 10, ppid: 1, startTicks: 100, name: "job" });
    const tracker = new ProcessTracker({ root: f.root });
    tracker.addJob("j", 10);
    // 100 W TDP, idle fraction 0.2: power = 20 W + 80 W × utilisation.
    const model = createCpuModelCollector({ cpuModel: "Test CPU", cores: 4, sockets: 1, memoryBytes: 0, tdpWatts: 100, idleFraction: 0.2 });
    const ledger = new Ledger({ pue: 1 }, 0);
    ledger.registerJob("j", "j", {}, 0);
    const fixed = createFixedProvider(100);
    let now = 0;
    const sampler = new Sampler({
      collectors: [model],
      processes: tracker,
      intensity: { at: (t) => fixed.at("XX", t) },
      ledger,
      nowMillis: () => now,
      idlePolicy: "attribute",
      log: createStderrLogger({ quiet: true }),
    });
    await sampler.tick(); // baseline
    f.tickHost(100, 300); // 25 % busy over the first second
    now = 1000;
    await sampler.tick();
    now = 1005; // 5 ms later: /proc/stat unchanged
    await sampler.tick();
    const cpu = ledger.snapshot().devices.find((d) => d.id === "cpu-model:0")!;
    expect(cpu.notes.join("; ")).not.toMatch(/assuming/);
    // The last 5 ms are modelled at the held 25 %: 20 W + 80 W × 0.25 = 40 W (a guess of 50 % gives 60 W).
    expect(cpu.lastPowerWatts).toBeCloseTo(40, 9);
  });
});
