// Runs every benchmark in bench/ and prints its results (record them in bench/RESULTS.md by hand,
// with date, machine and method). Add yours to the list.
const benches = ["./tick-procfs.mjs", "./tick-full.mjs", "./gpu-read.bench.mjs", "./export.mjs"];
for (const b of benches) {
  const mod = await import(b);
  await mod.main();
}
