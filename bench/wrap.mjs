// Wrap overhead: a fixed CPU-bound C loop (bench/c/burn.c, calibrated to ~10 s; ~2 s with
// BENCH_QUICK=1) run bare and under `powerprint run -q`, interleaved (order alternating each
// round). Whole-process wall ratio wrapped / bare per round, and its median. Each run goes through
// /usr/bin/time, so the CPU seconds of the whole tree (powerprint + the job) are known too: their
// difference is powerprint's own CPU cost, a figure that holds on a loaded machine where walls do not.
import { CLI, compileC, quick, round, run, stats } from "./lib.mjs";

export async function main({ rounds = quick ? 3 : 5, targetSeconds = quick ? 2 : 10 } = {}) {
  const burn = compileC("burn");
  // Calibrate: iterations for targetSeconds, from a short run.
  const probeIterations = 2e8;
  const probe = await run(burn, [String(probeIterations)]);
  const iterations = Math.round((probeIterations * targetSeconds * 1000) / probe.wallMillis);
  const bare = [];
  const wrapped = [];
  const ratios = [];
  const extraCpu = [];
  for (let i = 0; i < rounds; i++) {
    const pair = {};
    for (const what of i % 2 === 0 ? ["bare", "wrapped"] : ["wrapped", "bare"]) {
      const cmd = what === "bare" ? [burn, String(iterations)] : [process.execPath, CLI, "run", "-q", "--", burn, String(iterations)];
      const r = await run("/usr/bin/time", ["-f", "TIME %e %U %S", ...cmd]);
      if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${r.stderr}`);
      pair[what] = r.wallMillis / 1000;
      const t = /TIME (\S+) (\S+) (\S+)/.exec(r.stderr);
      pair[`${what}Cpu`] = t ? Number(t[2]) + Number(t[3]) : NaN;
    }
    bare.push(pair.bare);
    wrapped.push(pair.wrapped);
    ratios.push(pair.wrapped / pair.bare);
    extraCpu.push(pair.wrappedCpu - pair.bareCpu);
    process.stdout.write(`wrap: round ${i + 1}: bare ${pair.bare.toFixed(2)} s, wrapped ${pair.wrapped.toFixed(2)} s, ratio ${(pair.wrapped / pair.bare).toFixed(4)}, CPU ${pair.bareCpu} → ${pair.wrappedCpu} s\n`);
  }
  const r = stats(ratios);
  const rows = [
    { metric: `bare C loop (${iterations.toExponential(2)} iterations), wall s`, median: round(stats(bare).median, 2), p25: round(stats(bare).p25, 2), p75: round(stats(bare).p75, 2), n: rounds },
    { metric: "same under powerprint run -q, wall s", median: round(stats(wrapped).median, 2), p25: round(stats(wrapped).p25, 2), p75: round(stats(wrapped).p75, 2), n: rounds },
    { metric: "powerprint's own CPU (tree CPU wrapped − bare), s", median: round(stats(extraCpu).median, 3), p25: round(stats(extraCpu).p25, 3), p75: round(stats(extraCpu).p75, 3), n: rounds },
    { metric: "wrapped / bare wall ratio", median: round(r.median, 4), p25: round(r.p25, 4), p75: round(r.p75, 4), min: round(r.min, 4), max: round(r.max, 4), n: rounds, target: "≤ 1.02" },
  ];
  return { name: "wrap", iterations, rows };
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
