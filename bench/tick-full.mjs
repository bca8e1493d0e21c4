// Benchmark: CPU cost of one whole sampler tick — procfs read (ProcessTracker) + collector readings
// + device intervals + attribution + ledger — on the fixture host of bench/tick-procfs.mjs
// (10,000 processes, a 100-process job), with a constant in-memory collector of 4 devices (a GPU
// whose process list names 8 job members, 2 CPU packages, DRAM) so that only our code is timed.
// Not a test: nothing asserts a time. Record results in bench/RESULTS.md ("full tick").
import { cpus } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { compileForBench } from "./compile.mjs";
import { buildFixtureHost } from "./tick-procfs.mjs";

async function measureAsync(tick, { ticks = 300, warmup = 30, between = () => {} } = {}) {
  for (let i = 0; i < warmup; i++) {
    between();
    await tick();
  }
  let cpuMicros = 0;
  const walls = [];
  for (let i = 0; i < ticks; i++) {
    between();
    const c0 = process.cpuUsage();
    const w0 = process.hrtime.bigint();
    await tick();
    walls.push(Number(process.hrtime.bigint() - w0) / 1000);
    const c = process.cpuUsage(c0);
    cpuMicros += c.user + c.system;
  }
  walls.sort((a, b) => a - b);
  return { cpuMicrosPerTick: cpuMicros / ticks, wallP50Micros: walls[Math.floor(ticks / 2)], wallP99Micros: walls[Math.floor(ticks * 0.99)] };
}

export async function main() {
  const out = compileForBench(["src/jobs/tracker.ts", "src/core/sampler.ts", "src/core/ledger.ts"]);
  const imp = (p) => import(pathToFileURL(join(out, p)).href);
  const { ProcessTracker } = await imp("src/jobs/tracker.js");
  const { Sampler } = await imp("src/core/sampler.js");
  const { Ledger } = await imp("src/core/ledger.js");
  console.log(`# full tick benchmark — ${new Date().toISOString()} — ${cpus().length} × ${cpus()[0]?.model ?? "?"}, node ${process.version}`);
  const host = buildFixtureHost({ hostProcesses: 10_000, jobProcesses: 100, childrenFiles: true });
  try {
    for (const [label, between] of [["quiet host", host.idle], ["busy host (20 forks/tick)", () => host.fork(20)]]) {
      let now = 0;
      let energy = 0;
      const collector = {
        id: "bench",
        probe: async () => ({ status: "ok", devices: [] }),
        close: async () => {},
        read: async () => {
          energy += 500;
          return [
            { deviceId: "gpu0", kind: "gpu", source: "bench", method: "counter", energyJoules: energy, processUsageMethod: "utilization", processes: host.jobPids.slice(0, 8).map((pid, i) => ({ pid, share: 0.1 + i / 100 })) },
            { deviceId: "pkg0", kind: "cpu", source: "bench", method: "counter", energyJoules: energy / 3 },
            { deviceId: "pkg1", kind: "cpu", source: "bench", method: "counter", energyJoules: energy / 4 },
            { deviceId: "dram", kind: "memory", source: "bench", method: "counter", energyJoules: energy / 10 },
          ];
        },
      };
      const tracker = new ProcessTracker({ root: host.root, selfPid: 0 });
      const ledger = new Ledger({ pue: 1.2, wueLitersPerKwh: 0.5, waterIntensityLitersPerKwh: 3, pricePerKwh: 0.1 }, 0);
      ledger.registerJob("job", "job", {}, 0);
      const log = { info() {}, warn() {}, warnOnce() {}, debug() {} };
      const sampler = new Sampler({
        collectors: [collector],
        processes: tracker,
        intensity: { at: async () => ({ intensityGramsPerKwh: 300, zone: "DE", source: "fixed" }) },
        ledger,
        nowMillis: () => (now += 1000),
        idlePolicy: "attribute",
        log,
        isVisiblePid: () => true,
      });
      tracker.addJob("job", host.jobRootPid);
      const r = await measureAsync(() => sampler.tick(), { between });
      const snap = ledger.snapshot();
      console.log(
        `| ${label} | ${r.cpuMicrosPerTick.toFixed(1)} | ${r.wallP50Micros.toFixed(1)} | ${r.wallP99Micros.toFixed(1)} | job ${(snap.jobs[0].energyJoules.total / 1000).toFixed(1)} kJ, ${sampler.stats.ticks} ticks |`,
      );
    }
  } finally {
    host.cleanup();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main();
