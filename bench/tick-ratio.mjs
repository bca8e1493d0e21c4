// procfs tick cost for 1-, 100- and 1,000-process jobs, on a fixture host and on this host's real
// /proc, as a ratio to the floor: the raw cost of the reads the tick makes (one stat per member,
// /proc/stat, /proc/meminfo), each an open/read/close into a reused buffer in a tight loop.
// Quiet host (no fork between ticks), so no discovery runs: the steady-state tick.
// The cgroup variant is bench/tick-cgroup.mjs (nodemode helper): run-all picks it up if present.
import { spawn } from "node:child_process";
import { closeSync, copyFileSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { compileForBench } from "./compile.mjs";
import { benchDir, quick, round } from "./lib.mjs";
import { buildFixtureHost, measure } from "./tick-procfs.mjs";

/** CPU µs of one pass over `paths` (open, read up to 4 KiB, close each), averaged over passes. */
function floorMicros(paths, passes) {
  const buf = Buffer.allocUnsafe(4096);
  const pass = () => {
    for (const p of paths) {
      const fd = openSync(p, "r");
      readSync(fd, buf, 0, 4096, null);
      closeSync(fd);
    }
  };
  for (let i = 0; i < 5; i++) pass();
  const c0 = process.cpuUsage();
  for (let i = 0; i < passes; i++) pass();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / passes;
}

function readsOf(root, pids) {
  return [...pids.map((p) => join(root, "proc", String(p), "stat")), join(root, "proc", "stat"), join(root, "proc", "meminfo")];
}

async function realJob(n) {
  // sh plus n − 1 sleeps; the sh writes a line once all are started.
  const script = `for i in $(seq ${n - 1}); do sleep 600 & done; echo started; wait`;
  const child = spawn("sh", ["-c", script], { stdio: ["ignore", "pipe", "ignore"], detached: true });
  await new Promise((resolve) => child.stdout.once("data", resolve));
  return child;
}

export async function main() {
  const out = compileForBench(["src/jobs/tracker.ts"]);
  const { ProcessTracker } = await import(pathToFileURL(join(out, "src", "jobs", "tracker.js")).href);
  const ticks = quick ? 60 : 200;
  const rows = [];
  for (const n of [1, 100, 1000]) {
    // Fixture: a host of n + 2,000 processes; the 1-process job is an unrelated leaf process.
    const host = buildFixtureHost({ hostProcesses: n + 2000, jobProcesses: Math.max(10, n), childrenFiles: true });
    copyFileSync(join(benchDir, "..", "test", "fixtures", "procfs", "captured", "meminfo.txt"), join(host.root, "proc", "meminfo"));
    try {
      const t = new ProcessTracker({ root: host.root, selfPid: 0, fullScanIntervalTicks: 0 });
      t.addJob("job", n === 1 ? 300 : host.jobRootPid);
      const members = t.sample().jobProcessCount.get("job");
      const pids = n === 1 ? [300] : host.jobPids;
      const r = measure(() => t.sample(), { ticks, between: host.idle });
      const floor = floorMicros(readsOf(host.root, pids), ticks);
      rows.push({ source: "fixture", jobProcesses: members, tickCpuMicros: round(r.cpuMicrosPerTick, 1), tickWallP50Micros: round(r.wallP50Micros, 1), floorCpuMicros: round(floor, 1), ratio: round(r.cpuMicrosPerTick / floor, 2), target: "≤ 1.5" });
    } finally {
      host.cleanup();
    }
    // Real /proc.
    const child = await realJob(n);
    try {
      const t = new ProcessTracker({ fullScanIntervalTicks: 0 });
      t.addJob("job", child.pid);
      const members = t.sample().jobProcessCount.get("job");
      const pids = [];
      // The members the tracker reads: the sh and its sleeps (children of sh).
      pids.push(child.pid);
      const { readFileSync } = await import("node:fs");
      const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
      pids.push(...kids);
      const skippedBefore = t.stats.discoverySkipped;
      const ticksBefore = t.stats.ticks;
      const r = measure(() => t.sample(), { ticks });
      const discoveryTicks = t.stats.ticks - ticksBefore - (t.stats.discoverySkipped - skippedBefore);
      const floor = floorMicros(readsOf("/", pids), ticks);
      rows.push({ source: "real /proc", jobProcesses: members, tickCpuMicros: round(r.cpuMicrosPerTick, 1), tickWallP50Micros: round(r.wallP50Micros, 1), floorCpuMicros: round(floor, 1), ratio: round(r.cpuMicrosPerTick / floor, 2), target: "≤ 1.5", note: discoveryTicks > 0 ? `${discoveryTicks} of ${ticks + 20} ticks ran discovery (other processes forked on the host)` : undefined });
    } finally {
      process.kill(-child.pid, "SIGKILL");
    }
  }
  for (const r of rows) process.stdout.write(`tick: ${r.source}, ${r.jobProcesses} processes: ${r.tickCpuMicros} µs CPU/tick, floor ${r.floorCpuMicros} µs, ratio ${r.ratio}\n`);
  return { name: "tick-procfs-ratio", rows };
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
