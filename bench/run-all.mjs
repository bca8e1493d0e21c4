// Runs the benchmarks and writes bench/results.json and bench/results.md (machine, Node version,
// median and spread of interleaved runs). `BENCH_QUICK=1` shortens every one (fewer rounds, a 2 s
// instead of 10 s job, 15 s instead of 60 s of sleep, smaller simulations). `BENCH_ONLY=a,b` runs
// only those (startup, wrap, footprint, tick, tick-cgroup, accuracy, simulate, legacy).
// Not a test: nothing here asserts a time. Record what the tables say in bench/RESULTS.md by hand.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { benchDir, machine, quick } from "./lib.mjs";

const all = {
  startup: "./startup.mjs",
  wrap: "./wrap.mjs",
  footprint: "./footprint.mjs",
  tick: "./tick-ratio.mjs",
  // The cgroup tick (nodemode helper's bench/tick-cgroup.mjs): its main() returns { name, rows }.
  "tick-cgroup": "./tick-cgroup.mjs",
  accuracy: "./accuracy.mjs",
  simulate: "./simulate.mjs",
};
// The earlier benchmarks print their own tables (see RESULTS.md); run them with BENCH_ONLY=legacy.
const legacy = ["./tick-procfs.mjs", "./tick-full.mjs", "./gpu-read.bench.mjs", "./export.mjs"];

const only = process.env.BENCH_ONLY?.split(",").map((s) => s.trim()).filter(Boolean);
const resultsFile = join(benchDir, "results.json");
// With BENCH_ONLY, the other benches' results already in results.json are kept (each with its machine line).
const previous = only && existsSync(resultsFile) ? JSON.parse(readFileSync(resultsFile, "utf8")) : undefined;
const results = { machine: machine(), quick, benches: [] };
for (const [key, file] of Object.entries(all)) {
  if (only ? !only.includes(key) : key === "legacy") continue;
  if (!existsSync(join(benchDir, file))) {
    process.stdout.write(`(${key}: ${file} not present, skipped)\n`);
    continue;
  }
  const mod = await import(file);
  const t0 = Date.now();
  const load = (await import("node:os")).loadavg().map((x) => Number(x.toFixed(2)));
  const r = await mod.main();
  results.benches.push({ key, seconds: Math.round((Date.now() - t0) / 1000), date: new Date().toISOString(), quick, loadAverageAtStart: load, ...(r ?? {}) });
}
if (previous) {
  const fresh = new Set(results.benches.map((b) => b.key));
  const order = Object.keys(all);
  results.benches = [...previous.benches.filter((b) => !fresh.has(b.key)), ...results.benches].sort((a, b) => order.indexOf(a.key) - order.indexOf(b.key));
}
if (only?.includes("legacy")) for (const file of legacy) await (await import(file)).main();
results.machine.loadAverageAtEnd = (await import("node:os")).loadavg().map((x) => Number(x.toFixed(2)));

writeFileSync(resultsFile, JSON.stringify(results, null, 2) + "\n");
writeFileSync(join(benchDir, "results.md"), toMarkdown(results));
process.stdout.write(`\nwrote bench/results.json and bench/results.md\n`);

function toMarkdown(r) {
  const m = r.machine;
  const lines = [
    `# Benchmark results (${m.date}${r.quick ? ", BENCH_QUICK=1" : ""})`,
    "",
    `Machine: ${m.logicalCpus} × ${m.cpu}, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}; load average ${m.loadAverageAtStart.join(" ")} at start, ${m.loadAverageAtEnd.join(" ")} at end.`,
    "",
  ];
  for (const b of r.benches) {
    lines.push(`## ${b.name ?? b.key} (${b.date ?? ""}, ${b.seconds} s${b.quick ? ", BENCH_QUICK=1" : ""}, load average ${b.loadAverageAtStart?.join(" ") ?? "?"} at its start)`, "");
    const rows = b.rows ?? [];
    if (rows.length === 0) continue;
    const cols = [...new Set(rows.flatMap((x) => Object.keys(x)))];
    lines.push(`| ${cols.join(" | ")} |`, `|${cols.map(() => "---").join("|")}|`);
    for (const x of rows) lines.push(`| ${cols.map((c) => (x[c] === undefined ? "" : String(x[c]))).join(" | ")} |`);
    lines.push("");
  }
  return lines.join("\n");
}
