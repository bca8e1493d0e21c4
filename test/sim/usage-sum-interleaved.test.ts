// A scenario's devices read at other times than its process table (run --sim and agent --sim: the
// process source and the collector each ask the clock): every interval's energy is still the exact
// integral of the scenario's power. Before the fix, a CPU's energy fell to its idle power after
// the first interval (the interval's start point was overwritten by its end's).
import { describe, expect, it } from "vitest";
import { validateScenario } from "../../src/sim/scenario.js";
import { SimCollector, SimProcessSource, SimWorld } from "../../src/sim/world.js";

const scenario = validateScenario({
  durationSeconds: 10,
  devices: [
    { id: "cpu0", kind: "cpu", idleWatts: 90, maxWatts: 360, cores: 8 },
    { id: "gpu0", kind: "gpu", idleWatts: 70, maxWatts: 700 },
  ],
  processes: [
    { pid: 1, job: "a", cpu: [[0, 2], [3, 4]], gpu: { gpu0: [[0, 0.5]] } },
    { pid: 2, job: "b", cpu: [[0, 1]] },
  ],
});

describe("simulated devices read at other times than the process table", () => {
  it("each interval's energy is the exact integral of the scenario's power", async () => {
    const epoch = 1_800_000_000_000;
    let nowMillis = epoch;
    const world = new SimWorld(scenario, epoch);
    const collector = new SimCollector(world);
    const processes = new SimProcessSource(world, () => nowMillis);
    const exact = new SimWorld(scenario, epoch);
    let last: Record<string, number> = { cpu0: 0, gpu0: 0 };
    let from = 0;
    // Ticks of uneven length; the process table is sampled 0.3 ms before each reading.
    for (const t of [0.5, 1.25, 2.0, 2.9, 3.6, 5.1, 7.3]) {
      nowMillis = epoch + t * 1000 - 0.3;
      processes.sample();
      const readings = await collector.read({ timeMillis: epoch + t * 1000 });
      for (const r of readings) {
        const d = scenario.devices.find((x) => x.id === r.deviceId)!;
        expect(r.energyJoules! - last[r.deviceId], `${r.deviceId} over [${from}, ${t}]`).toBeCloseTo(exact.energyJoules(d, from, t), 9);
        last = { ...last, [r.deviceId]: r.energyJoules! };
      }
      from = t;
    }
    // The CPU drew more than its idle power throughout (2 + 1 busy cores of 8 at least).
    expect(last.cpu0 / 7.3).toBeGreaterThan(90 + 270 * (3 / 8) - 1e-9);
  });
});
