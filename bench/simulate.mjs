// simulate throughput: process-intervals per second of virtual time, for N processes × duration.
// Scenario: 2 GPUs, 1 CPU (64 cores), memory; N processes in jobs of 10, each with a CPU series of
// a point every 60 s (bursts and ramps), every 4th with a GPU share series, starts and ends spread.
// Times `simulate()` of the current sources (compiled by bench/compile.mjs) with process.hrtime.
//
// Before/after: BENCH_SIM_BEFORE=<git commit> compiles that commit's sources too and runs every
// combination BENCH_SIM_ROUNDS times (default 3) for each, alternating which goes first, each run
// in a fresh node process; the table gives medians (and min–max). BENCH_SIM_ONLY=1000x3600,10000x21600
// picks combinations (processes x simulated seconds); without it, as below.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, symlinkSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { compileForBench, repoRoot } from "./compile.mjs";
import { rng } from "./lib.mjs";

const ENTRIES = ["src/sim/simulate.ts", "src/sim/scenario.ts", "src/log.ts"];

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

function combinations(quick) {
  if (process.env.BENCH_SIM_ONLY) return process.env.BENCH_SIM_ONLY.split(",").map((c) => c.split("x").map(Number));
  const combos = [];
  for (const n of [100, 1000, 10000]) {
    for (const seconds of [3600, 6 * 3600, 86400]) {
      const intervals = n * seconds;
      if (quick && intervals > 1e7) continue;
      // 10,000 × 6 h and × 1 day exceed the scenario bound (2 M series points: 3.8 M and 15 M here);
      // BENCH_SIM_ALL=1 adds 10,000 × 3 h (1.9 M points) for the linearity at that size.
      if (!quick && intervals > 1e8) continue;
      combos.push([n, seconds]);
    }
  }
  if (process.env.BENCH_SIM_ALL === "1") combos.push([10000, 3 * 3600]);
  return combos;
}

/** One timed simulate() of the sources compiled in `dir`. */
async function measure(dir, n, seconds) {
  const { simulate } = await import(`${dir}/src/sim/simulate.js`);
  const { validateScenario } = await import(`${dir}/src/sim/scenario.js`);
  const { createStderrLogger } = await import(`${dir}/src/log.js`);
  const log = createStderrLogger({ write: () => {} });
  const scenario = validateScenario(benchScenario(n, seconds));
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const result = await simulate(scenario, { idlePolicy: "attribute", ledger: { pue: 1.2 }, intensity: { at: async () => ({ intensityGramsPerKwh: 300, zone: "x", source: "fixed" }) }, log });
  const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  const cpuSeconds = (c.user + c.system) / 1e6;
  return { processes: n, simulatedSeconds: seconds, ticks: result.stats.ticks - 1, wallSeconds, cpuSeconds };
}

/** The sources of `commit`, compiled like the current ones. */
function compileCommit(commit) {
  const src = mkdtempSync(join(tmpdir(), "powerprint-bench-src-"));
  execFileSync("sh", ["-c", `git -C "${repoRoot}" archive ${commit} src tsconfig.json package.json | tar -x -C "${src}"`]);
  symlinkSync(join(repoRoot, "node_modules"), join(src, "node_modules"));
  const outDir = mkdtempSync(join(tmpdir(), "powerprint-bench-"));
  execFileSync(join(repoRoot, "node_modules", ".bin", "tsc"), ["--ignoreConfig", "--outDir", outDir, "--rootDir", src, "--module", "nodenext", "--moduleResolution", "nodenext",
    "--target", "es2022", "--strict", "--skipLibCheck", "--types", "node", ...ENTRIES.map((e) => join(src, e))], { cwd: src, stdio: "inherit" });
  symlinkSync(join(repoRoot, "node_modules"), join(outDir, "node_modules"));
  return outDir;
}

/** measure() in a fresh node process (no JIT or heap state shared between runs). */
function measureApart(dir, n, seconds) {
  const r = spawnSync(process.execPath, [new URL(import.meta.url).pathname, "--measure", dir, String(n), String(seconds)], { encoding: "utf8", maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`simulate bench child failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const rate = (m) => (m.processes * m.ticks) / m.wallSeconds;
const cpuRate = (m) => (m.processes * m.ticks) / m.cpuSeconds;
const millions = (x) => (x / 1e6).toFixed(2);

function row(variant, runs) {
  const rates = runs.map(rate);
  const cpuRates = runs.map(cpuRate);
  const m = runs[0];
  return {
    ...(variant ? { variant } : {}),
    processes: m.processes,
    simulatedSeconds: m.simulatedSeconds,
    ticks: m.ticks,
    runs: runs.length,
    wallSeconds: +median(runs.map((r) => r.wallSeconds)).toFixed(3),
    cpuSeconds: +median(runs.map((r) => r.cpuSeconds)).toFixed(3),
    processIntervalsPerSecond: Math.round(median(rates)),
    processIntervalsPerSecondMin: Math.round(Math.min(...rates)),
    processIntervalsPerSecondMax: Math.round(Math.max(...rates)),
    processIntervalsPerCpuSecond: Math.round(median(cpuRates)),
    loadAverage1m: +loadavg()[0].toFixed(2),
    target: "≥ 2,000,000",
  };
}

export async function main({ quick = process.env.BENCH_QUICK === "1", dir } = {}) {
  dir ??= compileForBench(ENTRIES);
  const before = process.env.BENCH_SIM_BEFORE;
  const rounds = Number(process.env.BENCH_SIM_ROUNDS ?? (before ? 3 : 1));
  const variants = before ? [["before", compileCommit(before)], ["after", dir]] : [[undefined, dir]];
  const rows = [];
  for (const [n, seconds] of combinations(quick)) {
    const runs = new Map(variants.map(([v]) => [v, []]));
    for (let r = 0; r < rounds; r++) {
      // Alternate which variant goes first: neither always meets the same neighbours.
      const order = r % 2 === 0 ? variants : [...variants].reverse();
      for (const [variant, d] of order) {
        const m = rounds > 1 || before ? measureApart(d, n, seconds) : await measure(d, n, seconds);
        runs.get(variant).push(m);
        process.stdout.write(`simulate ${n} processes × ${seconds} s${variant ? ` (${variant})` : ""}: ${m.wallSeconds.toFixed(2)} s wall, ${m.cpuSeconds.toFixed(2)} s CPU, ${millions(rate(m))} M process-intervals/s wall, ${millions(cpuRate(m))} M per CPU second (load ${loadavg()[0].toFixed(2)})\n`);
      }
    }
    for (const [variant] of variants) rows.push(row(variant, runs.get(variant)));
  }
  return { name: "simulate", ...(before ? { before } : {}), rows };
}

if (process.argv[2] === "--measure") {
  process.stdout.write(JSON.stringify(await measure(process.argv[3], Number(process.argv[4]), Number(process.argv[5]))));
} else if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await main();
  if (process.env.BENCH_SIM_BEFORE) {
    // Markdown table of medians, for bench/RESULTS.md.
    process.stdout.write("\n| processes × simulated | before: M process-intervals/s wall, median (min–max) | after | before, per CPU second | after, per CPU second |\n|---|---|---|---|---|\n");
    for (let i = 0; i < result.rows.length; i += 2) {
      const [b, a] = [result.rows[i], result.rows[i + 1]];
      const cell = (r) => `${millions(r.processIntervalsPerSecond)} (${millions(r.processIntervalsPerSecondMin)}–${millions(r.processIntervalsPerSecondMax)})`;
      process.stdout.write(`| ${a.processes} × ${a.simulatedSeconds / 3600} h | ${cell(b)} | ${cell(a)} | ${millions(b.processIntervalsPerCpuSecond)} | ${millions(a.processIntervalsPerCpuSecond)} |\n`);
    }
  }
}
