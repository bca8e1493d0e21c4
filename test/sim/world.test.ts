// The scalable simulator against independent references: CompiledSeries against seriesAt /
// seriesIntegral (queries forwards, backwards, on steps), and SimWorld's device energy against a
// fine-step integral of DESIGN.md's power model written here from the scenario alone — with
// breakpoints, starts, ends and steps inside ticks and utilisation crossing 1 (the clamp).
import { describe, expect, it } from "vitest";
import { CompiledSeries, seriesAt, seriesIntegral } from "../../src/sim/series.js";
import { validateScenario, type Scenario } from "../../src/sim/scenario.js";
import { SimWorld } from "../../src/sim/world.js";
import { rng } from "../helpers/rng.js";

/** A random series with uneven times and a step (duplicate time) now and then. */
function randomSeries(r: () => number, points: number, span: number, maxValue: number): [number, number][] {
  const out: [number, number][] = [];
  let t = r() * 3;
  for (let i = 0; i < points; i++) {
    out.push([t, Math.round(r() * maxValue * 100) / 100]);
    if (r() < 0.2) out.push([t, Math.round(r() * maxValue * 100) / 100]);
    t += (r() * span) / points;
  }
  return out;
}

describe("CompiledSeries", () => {
  it("agrees with seriesAt and seriesIntegral for increasing, repeated and backward queries", () => {
    const r = rng(42);
    for (let trial = 0; trial < 20; trial++) {
      const s = randomSeries(r, 2 + Math.floor(r() * 30), 50, 5);
      const c = new CompiledSeries(s);
      let t = -2;
      for (let q = 0; q < 200; q++) {
        t = q % 17 === 0 ? r() * 60 - 5 : t + r() * 0.7; // mostly forwards, sometimes a jump back
        expect(c.at(t)).toBeCloseTo(seriesAt(s, t), 12);
        const a = t - r() * 4;
        expect(c.integral(a, t)).toBeCloseTo(seriesIntegral(s, a, t), 9);
      }
      // Exactly at each point: the value after a step; from the left, the value before it.
      for (let i = 1; i < s.length; i++) {
        if (s[i][0] === s[i - 1][0]) {
          expect(c.at(s[i][0])).toBe(seriesAt(s, s[i][0]));
          expect(c.atLeft(s[i][0])).toBeCloseTo(seriesAt(s, s[i][0] - 1e-9), 6);
        }
      }
    }
  });
});

/** DESIGN.md's model, from the scenario only: utilisation then power at t. */
function referencePower(scenario: Scenario, deviceId: string, t: number): number {
  const d = scenario.devices.find((x) => x.id === deviceId)!;
  const alive = (p: Scenario["processes"][number]) => t >= p.startSeconds && (p.endSeconds === undefined || t < p.endSeconds);
  let u = 0;
  if (d.kind === "gpu") {
    for (const p of scenario.processes) if (p.gpu?.[d.id] && alive(p)) u += seriesAt(p.gpu[d.id], t);
  } else {
    const cores = scenario.devices.filter((x) => x.kind === "cpu").reduce((s, x) => s + (x.cores ?? 0), 0);
    for (const p of scenario.processes) if (p.cpu && alive(p)) u += seriesAt(p.cpu, t);
    u = cores > 0 ? u / cores : 0;
  }
  return d.idleWatts + (d.maxWatts - d.idleWatts) * Math.min(1, u);
}

function fineIntegral(f: (t: number) => number, a: number, b: number, steps: number): number {
  const h = (b - a) / steps;
  let total = 0;
  for (let i = 0; i < steps; i++) total += f(a + (i + 0.5) * h) * h;
  return total;
}

describe("SimWorld energy", () => {
  const r = rng(7);
  const processes = [];
  for (let i = 0; i < 12; i++) {
    const start = Math.round(r() * 20 * 10) / 10;
    const p: Record<string, unknown> = { pid: 100 + i, ppid: 1, job: `j${i % 3}`, startSeconds: start, cpu: randomSeries(r, 8, 60, 3) };
    if (i % 2 === 0) p.endSeconds = start + 10 + Math.round(r() * 400) / 10;
    // Shares summing well above 1 at times: the clamp bites, sometimes inside a tick.
    if (i % 3 === 0) p.gpu = { gpu0: randomSeries(r, 6, 60, 0.6) };
    processes.push(p);
  }
  const scenario = validateScenario({
    name: "world-check",
    durationSeconds: 60,
    devices: [
      { id: "gpu0", kind: "gpu", idleWatts: 50, maxWatts: 400 },
      { id: "cpu0", kind: "cpu", idleWatts: 20, maxWatts: 120, cores: 8 },
      { id: "mem0", kind: "memory", idleWatts: 5, maxWatts: 15 },
    ],
    processes,
  });

  it.each(["gpu0", "cpu0", "mem0"])("%s: each uneven tick's energy equals the fine-step integral of the model", (deviceId) => {
    const world = new SimWorld(scenario, 0);
    const device = scenario.devices.find((d) => d.id === deviceId)!;
    let a = 0;
    let crossed = 0;
    while (a < 60) {
      const b = Math.min(60, a + 0.3 + r() * 2.2);
      const got = world.energyJoules(device, a, b);
      const want = fineIntegral((t) => referencePower(scenario, deviceId, t), a, b, 20_000);
      // The midpoint rule misses at most jump × step / 2 per discontinuity: 2e-4 of the maximum
      // energy covers that; a missed breakpoint or clamp costs orders of magnitude more.
      expect(Math.abs(got - want)).toBeLessThan(2e-4 * (b - a) * device.maxWatts);
      if (referencePower(scenario, deviceId, (a + b) / 2) >= device.maxWatts - 1e-9) crossed++;
      a = b;
    }
    if (deviceId === "gpu0") expect(crossed).toBeGreaterThan(0); // the clamp was exercised
  });

  it("CPU seconds per process equal the series' integral over its life", () => {
    const world = new SimWorld(scenario, 0);
    for (let t = 0; t <= 60; t += 0.7) {
      for (const p of scenario.processes) {
        const end = Math.min(t, p.endSeconds ?? Infinity);
        const want = end > p.startSeconds ? seriesIntegral(p.cpu!, p.startSeconds, end) : 0;
        expect(world.processCpuSeconds(p, t)).toBeCloseTo(want, 9);
      }
    }
  });
});
