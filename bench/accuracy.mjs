// Integration accuracy on synthetic power traces (1 h at 1 ms resolution): steady, bursty (200 ms
// spikes at random instants) and ramps. Each method's energy against the exact integral of the
// trace, error in %, over 5 seeds (random phases):
//  - counter path: powerprint's EnergyIntegrator fed a cumulative energy counter (1 mJ resolution,
//    as NVML's) read at 1 Hz;
//  - 1 Hz power path: the EnergyIntegrator fed power at 1 Hz, (a) the instantaneous value, (b) the
//    average over the last second (what NVML/nvidia-smi report on recent drivers);
//  - 15 s sampled-and-held: one instantaneous reading every 15 s held for 15 s (what most users
//    run today). The whole-machine part of that method (other tenants charged to the job) is NOT
//    in this figure: this is the sampling error alone, on the job's own device.
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { compileForBench } from "./compile.mjs";
import { round, stats, rng } from "./lib.mjs";

const MS = 3_600_000; // 1 h in ms

/** Power per millisecond, watts. */
const traces = {
  steady(r) {
    const p = new Float64Array(MS);
    const phase = r() * 2 * Math.PI;
    for (let i = 0; i < MS; i++) p[i] = 250 + 5 * Math.sin(phase + (2 * Math.PI * i) / 600_000);
    return p;
  },
  bursty(r) {
    // 100 W base; 200 ms spikes to 600 W, on average one every 2 s (Poisson arrivals).
    const p = new Float64Array(MS).fill(100);
    let t = Math.floor(-Math.log(1 - r()) * 2000);
    while (t < MS) {
      for (let i = t; i < Math.min(MS, t + 200); i++) p[i] = 600;
      t += 200 + Math.floor(-Math.log(1 - r()) * 2000);
    }
    return p;
  },
  ramps(r) {
    // 100 → 500 W over 30 s, back down over 30 s, with a random phase; a 20 s pause at 100 W between.
    const p = new Float64Array(MS);
    const period = 80_000;
    const phase = Math.floor(r() * period);
    for (let i = 0; i < MS; i++) {
      const x = (i + phase) % period;
      p[i] = x < 30_000 ? 100 + (400 * x) / 30_000 : x < 60_000 ? 500 - (400 * (x - 30_000)) / 30_000 : 100;
    }
    return p;
  },
};

function exact(p) {
  let s = 0;
  for (let i = 0; i < p.length; i++) s += p[i];
  return s / 1000; // W × ms → J
}

function viaIntegrator(EnergyIntegrator, p, reading) {
  const integrator = new EnergyIntegrator();
  let total = 0;
  let cumulative = 0;
  for (let t = 0; t <= MS; t += 1000) {
    if (t > 0) for (let i = t - 1000; i < t; i++) cumulative += p[i] / 1000;
    const r = { deviceId: "d", kind: "gpu", ...reading(p, t, cumulative) };
    const interval = integrator.interval(r, t);
    if (interval) total += interval.energyJoules;
  }
  return total;
}

const counter = (p, t, cumulative) => ({ method: "counter", energyJoules: Math.floor(cumulative * 1000) / 1000 });
const instant = (p, t) => ({ method: "power", powerWatts: p[Math.min(t, MS - 1)] });
const averaged = (p, t) => {
  if (t === 0) return { method: "power", powerWatts: p[0] };
  let s = 0;
  for (let i = t - 1000; i < t; i++) s += p[i];
  return { method: "power", powerWatts: s / 1000 };
};

function sampledAndHeld(p, periodMs, offset) {
  let total = 0;
  for (let t = offset; t < MS; t += periodMs) total += (p[t] * Math.min(periodMs, MS - t)) / 1000;
  // The first `offset` ms are held from the first sample.
  return total + (p[offset] * offset) / 1000;
}

export async function main({ seeds = 5 } = {}) {
  const out = compileForBench(["src/core/energy.ts"]);
  const { EnergyIntegrator } = await import(pathToFileURL(join(out, "src", "core", "energy.js")).href);
  const rows = [];
  for (const [name, make] of Object.entries(traces)) {
    const errors = { counter: [], powerInstant: [], powerAveraged: [], sampled15s: [] };
    for (let seed = 1; seed <= seeds; seed++) {
      const r = rng(seed * 101 + name.length);
      const p = make(r);
      const e = exact(p);
      const pct = (x) => (100 * Math.abs(x - e)) / e;
      errors.counter.push(pct(viaIntegrator(EnergyIntegrator, p, counter)));
      errors.powerInstant.push(pct(viaIntegrator(EnergyIntegrator, p, instant)));
      errors.powerAveraged.push(pct(viaIntegrator(EnergyIntegrator, p, averaged)));
      errors.sampled15s.push(pct(sampledAndHeld(p, 15_000, Math.floor(r() * 15_000))));
    }
    const m = Object.fromEntries(Object.entries(errors).map(([k, v]) => [k, stats(v)]));
    const row = {
      trace: name,
      counterErrorPct: round(m.counter.median, 5),
      power1HzInstantErrorPct: round(m.powerInstant.median, 3),
      power1HzInstantMaxPct: round(m.powerInstant.max, 3),
      power1HzAveragedErrorPct: round(m.powerAveraged.median, 4),
      sampled15sErrorPct: round(m.sampled15s.median, 3),
      sampled15sMaxPct: round(m.sampled15s.max, 3),
      closerInstant: round(m.sampled15s.median / Math.max(m.powerInstant.median, 1e-9), 1),
      closerAveraged: round(m.sampled15s.median / Math.max(m.powerAveraged.median, 1e-9), 1),
      seeds,
    };
    rows.push(row);
    process.stdout.write(`accuracy: ${name}: ${JSON.stringify(row)}\n`);
  }
  return { name: "accuracy", rows };
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
