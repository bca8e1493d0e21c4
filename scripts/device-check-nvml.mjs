// Device check of the real NVML collector (run by scripts/device-check-nvml.sh on a GPU machine).
// Usage: node scripts/device-check-nvml.mjs DIST_DIR SECONDS OUTJSON
// Imports the compiled collectors/nvml.js from DIST_DIR (built by `device-check-nvml.sh prepare`),
// reads every 1 s for SECONDS, and compares the energy counter's increase with the trapezoid
// integral of the power readings over the same window.
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { writeFileSync } from "node:fs";

const [distDir, secondsText, outPath] = process.argv.slice(2);
const { createNvmlCollector } = await import(pathToFileURL(join(distDir, "collectors", "nvml.js")).href);
const collector = createNvmlCollector({ libraryPath: process.env.NVML_LIBRARY });
const probe = await collector.probe();
console.log(JSON.stringify({ probe }));
if (probe.status !== "ok") process.exit(1);

const seconds = Number(secondsText);
const rows = [];
const t0 = performance.now();
let readMillisTotal = 0;
for (let k = 0; k <= seconds; k++) {
  const wait = t0 + k * 1000 - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const before = performance.now();
  const readings = await collector.read();
  readMillisTotal += performance.now() - before;
  rows.push({ t: (before - t0) / 1000, readings });
}
await collector.close();

const series = rows.map((r) => ({ t: r.t, g: r.readings.find((x) => x.deviceId === "gpu0") })).filter((r) => r.g);
const withEnergy = series.filter((r) => r.g.energyJoules !== undefined);
const withPower = series.filter((r) => r.g.powerWatts !== undefined);
const counterJoules = withEnergy.length > 1 ? withEnergy.at(-1).g.energyJoules - withEnergy[0].g.energyJoules : null;
let trapezoidJoules = 0;
for (let i = 1; i < withPower.length; i++)
  trapezoidJoules += ((withPower[i].t - withPower[i - 1].t) * (withPower[i].g.powerWatts + withPower[i - 1].g.powerWatts)) / 2;
const lastWithProcs = series.filter((r) => (r.g.processes ?? []).length > 0).at(-1);
const summary = {
  source: "powerprint collectors/nvml.ts via koffi",
  node: process.version,
  model: series[0]?.g.model,
  method: series[0]?.g.method,
  seconds: series.length > 1 ? series.at(-1).t - series[0].t : 0,
  samples: series.length,
  counterJoules,
  trapezoidPowerJoules: trapezoidJoules,
  differencePercent: counterJoules ? (100 * (trapezoidJoules - counterJoules)) / counterJoules : null,
  meanReadMillis: readMillisTotal / rows.length,
  utilizationMean: series.reduce((a, r) => a + (r.g.utilization ?? 0), 0) / series.length,
  processesLastSeen: lastWithProcs?.g.processes,
  processUsageMethodLastSeen: lastWithProcs?.g.processUsageMethod,
  notes: [...new Set(series.map((r) => r.g.note).filter(Boolean))],
};
writeFileSync(outPath, JSON.stringify({ summary, rows }, null, 1));
console.log(JSON.stringify({ summary }));
