// simulate throughput: process-intervals per second of virtual time, for N processes × duration.
// Scenario: 2 GPUs, 1 CPU (64 cores), memory; N processes in jobs of 10, each with a CPU series of
// a point every 60 s (bursts and ramps), every 4th with a GPU share series, starts and ends spread.
// Times `simulate()` of the current sources (compiled by bench/compile.mjs) with process.hrtime.
import { compileForBench } from "./compile.mjs";

/** Deterministic PRNG (mulberry32) so every run simulates the same scenario. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function benchScenario(processCount, durationSeconds) {
  const r = rng(processCount * 7919 + durationSeconds);
  const processes = [];
  for (let i = 0; i < processCount; i++) {
    const start = i % 3 === 0 ? 0 : Math.floor(r() * durationSeconds * 0.2);
    const end = i % 5 === 0 ? start + Math.floor(durationSeconds * (0.5 + 0.5 * r())) : undefined;
    const cpu = [];
    for (let t = 0; t <= durationSeconds; t += 60) cpu.push([t, Math.round(r() * 200) / 100]);
    const p = { pid: 1000 + i, ppid: i % 10 === 0 ? 1 : 1000 + i - (i % 10), name: `p${i}`, startSeconds: start, cpu };
    if (end !== undefined) p.endSeconds = end;
    if (i % 10 === 0) p.job = `job-${i / 10}`;
    if (i % 4 === 0) {
      const g = [];
      for (let t = 0; t <= durationSeconds; t += 300) g.push([t, Math.round(r() * 100) / (100 * Math.max(1, processCount / 8))]);
      p.gpu = { [i % 8 === 0 ? "gpu0" : "gpu1"]: g };
    }
    processes.push(p);
  }
  return {
    name: `bench-${processCount}x${durationSeconds}`,
    durationSeconds,
    intervalMillis: 1000,
    devices: [
      { id: "gpu0", kind: "gpu", model: "NVIDIA H100 80GB HBM3", idleWatts: 70, maxWatts: 700, counter: true },
      { id: "gpu1", kind: "gpu", model: "NVIDIA H100 80GB HBM3", idleWatts: 70, maxWatts: 700, counter: false },
      { id: "cpu0", kind: "cpu", model: "AMD EPYC 9654", idleWatts: 90, maxWatts: 360, cores: 64, counter: true },
      { id: "mem0", kind: "memory", idleWatts: 20, maxWatts: 40, counter: true },
    ],
    processes,
  };
}

export async function main({ quick = process.env.BENCH_QUICK === "1", dir } = {}) {
  dir ??= compileForBench(["src/sim/simulate.ts", "src/sim/scenario.ts", "src/log.ts"]);
  const { simulate } = await import(`${dir}/src/sim/simulate.js`);
  const { validateScenario } = await import(`${dir}/src/sim/scenario.js`);
  const { createStderrLogger } = await import(`${dir}/src/log.js`);
  const log = createStderrLogger({ write: () => {} });
  const combos = [];
  for (const n of [100, 1000, 10000]) {
    for (const seconds of [3600, 6 * 3600, 86400]) {
      const intervals = n * seconds;
      if (quick && intervals > 1e7) continue;
      if (!quick && intervals > 1e8) continue; // 10,000 × 6 h and × 1 day: minutes; BENCH_SIM_ALL=1 adds them
      combos.push([n, seconds]);
    }
  }
  if (process.env.BENCH_SIM_ALL === "1") combos.push([10000, 6 * 3600], [10000, 86400]);
  const rows = [];
  for (const [n, seconds] of combos) {
    const scenario = validateScenario(benchScenario(n, seconds));
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    const result = await simulate(scenario, { idlePolicy: "attribute", ledger: { pue: 1.2 }, intensity: { at: async () => ({ intensityGramsPerKwh: 300, zone: "x", source: "fixed" }) }, log });
    const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    const cpuSeconds = (c.user + c.system) / 1e6;
    const ticks = result.stats.ticks - 1;
    // Per CPU second too: on a shared machine the wall figure measures the neighbours as well.
    const row = {
      processes: n,
      simulatedSeconds: seconds,
      ticks,
      wallSeconds: +wallSeconds.toFixed(3),
      cpuSeconds: +cpuSeconds.toFixed(3),
      processIntervalsPerSecond: Math.round((n * ticks) / wallSeconds),
      processIntervalsPerCpuSecond: Math.round((n * ticks) / cpuSeconds),
      target: "≥ 2,000,000",
    };
    rows.push(row);
    process.stdout.write(`simulate ${n} processes × ${seconds} s: ${row.wallSeconds} s wall, ${row.cpuSeconds} s CPU, ${(row.processIntervalsPerSecond / 1e6).toFixed(2)} M process-intervals/s wall, ${(row.processIntervalsPerCpuSecond / 1e6).toFixed(2)} M per CPU second\n`);
  }
  return { name: "simulate", rows };
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
