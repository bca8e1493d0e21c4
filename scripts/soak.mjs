#!/usr/bin/env node
// `npm run soak` (not in CI, not in `npm test`): long checks.
//  1. The fuzz properties at FUZZ_RUNS (default 100,000 each) instead of npm test's 1,000.
//  2. A simulated day at 1 s ticks with jobs coming and going, through simulate() (the same
//     Sampler, attribution and Ledger as real runs): RSS sampled every simulated hour must stay
//     flat after warm-up, and energy must be conserved at the end (jobs + system + idle buckets =
//     device energy, to 1e-9 relative).
// Needs a build (npm run soak builds first). Exit 1 on any failure. Options: --skip-fuzz, --skip-day.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = new Set(process.argv.slice(2));
let failed = false;

if (!args.has("--skip-fuzz")) {
  const runs = process.env.FUZZ_RUNS ?? "100000";
  console.log(`soak: fuzz properties at FUZZ_RUNS=${runs}`);
  const r = spawnSync("npx", ["vitest", "run", "test/fuzz"], { cwd: root, stdio: "inherit", env: { ...process.env, FUZZ_RUNS: runs } });
  if (r.status !== 0) failed = true;
}

if (!args.has("--skip-day")) failed = (await simulatedDay()) || failed;
process.exit(failed ? 1 : 0);

/** A day of 24 jobs (one starting each hour, running 2-5 h, forking and reaping workers). */
function dayScenario() {
  const processes = [];
  let pid = 100;
  for (let h = 0; h < 24; h++) {
    const job = `job-${String(h).padStart(2, "0")}`;
    const start = h * 3600 + 17;
    const end = Math.min(86_400, start + (2 + (h % 4)) * 3600);
    const gpu = `gpu${h % 2}`;
    const leader = pid++;
    processes.push({ pid: leader, ppid: 1, job, name: "python", startSeconds: start, endSeconds: end, cpu: [[0, 0.5]], gpu: { [gpu]: [[0, 0.4], [start + 600, 0.9]] } });
    // Workers that come and go every 20 minutes within the job.
    for (let t = start + 60; t + 600 < end; t += 1200) {
      processes.push({ pid: pid++, ppid: leader, job, name: "worker", startSeconds: t, endSeconds: t + 900, cpu: [[0, 1], [t + 300, 0.2]] });
    }
  }
  return {
    name: "soak-day",
    durationSeconds: 86_400,
    intervalMillis: 1000,
    grid: { intensity: Array.from({ length: 25 }, (_, h) => [h * 3600, 200 + 150 * Math.sin(h / 4)]) },
    devices: [
      { id: "gpu0", kind: "gpu", idleWatts: 60, maxWatts: 700, index: 0 },
      { id: "gpu1", kind: "gpu", idleWatts: 60, maxWatts: 700, index: 1 },
      { id: "cpu0", kind: "cpu", idleWatts: 40, maxWatts: 250, cores: 32 },
    ],
    processes,
  };
}

async function simulatedDay() {
  const { validateScenario } = await import(join(root, "dist/src/sim/scenario.js"));
  const { simulate } = await import(join(root, "dist/src/sim/simulate.js"));
  const scenario = validateScenario(dayScenario(), "soak-day");
  const mib = () => process.memoryUsage().rss / 2 ** 20;
  const rssByHour = [];
  let ticks = 0;
  const startedAt = performance.now();
  const log = { info() {}, warn() {}, warnOnce() {}, debug() {} };
  console.log(`soak: simulated day, ${scenario.processes.length} processes in 24 jobs, 86,400 ticks of 1 s`);
  const result = await simulate(scenario, {
    idlePolicy: "separate",
    ledger: { pue: 1.2 },
    intensity: { at: async () => ({ intensityGramsPerKwh: 300, zone: "soak", source: "fixed" }) },
    log,
    onTick: () => {
      if (++ticks % 3600 === 0) {
        globalThis.gc?.();
        rssByHour.push(mib());
      }
    },
  });
  const s = result.snapshot;
  const wallSeconds = (performance.now() - startedAt) / 1000;
  const devices = s.devices.reduce((a, d) => a + d.energyJoules, 0);
  const buckets = [...s.jobs, s.buckets.system, s.buckets.idle].reduce((a, t) => a + t.energyJoules.total, 0);
  const relative = Math.abs(buckets - devices) / devices;
  // Flat: after two hours of warm-up (JIT, first jobs), RSS may not grow by more than 32 MiB.
  const warm = rssByHour[2];
  const growth = Math.max(...rssByHour.slice(2)) - warm;
  console.log(`soak: ${ticks} ticks in ${wallSeconds.toFixed(1)} s wall; jobs ${s.jobs.length}`);
  console.log(`soak: RSS by simulated hour (MiB): ${rssByHour.map((x) => x.toFixed(0)).join(" ")}`);
  console.log(`soak: RSS growth after warm-up ${growth.toFixed(1)} MiB (limit 32)`);
  console.log(`soak: device energy ${devices.toFixed(3)} J, jobs + system + idle ${buckets.toFixed(3)} J, relative difference ${relative.toExponential(2)} (limit 1e-9)`);
  let bad = false;
  if (ticks < 86_400) (bad = true), console.error(`soak: FAIL only ${ticks} ticks`);
  if (!(growth <= 32)) (bad = true), console.error("soak: FAIL RSS not flat");
  if (!(relative <= 1e-9)) (bad = true), console.error("soak: FAIL energy not conserved");
  if (s.jobs.length < 24) (bad = true), console.error(`soak: FAIL ${s.jobs.length} jobs, expected 24`);
  console.log(bad ? "soak: simulated day FAILED" : "soak: simulated day ok");
  return bad;
}
