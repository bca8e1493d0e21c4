// Benchmark: CPU cost per tick of the process-table read (ProcessTracker.sample()) on a fixture
// host of 10,000 processes with a 100-process job, plus a real-/proc run. Results are recorded by
// hand in bench/RESULTS.md ("procfs tick" section). Not a test: nothing here asserts a time.
//
//   node bench/tick-procfs.mjs            (or: npm run bench)
//
// Hook for the rest of the tick (attribution + ledger): import { buildFixtureHost, measure } from
// this file, build the same host, and time your stage inside the same loop.
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, cpus } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { compileForBench } from "./compile.mjs";

// A real stat line (node, 8 threads) as template; fields after ')' are replaced.
const TEMPLATE =
  "S 15080 15080 2703 0 -1 4194304 4320 0 0 0 11 0 0 0 20 0 8 0 78683 1564778496 13105 18446744073709551615 11988992 39846385 140726185611800 0 0 0 0 4096 134234626 0 0 0 17 1 0 0 0 0 0 44432720 44577936 73928704 140726185619303 140726185619345 140726185619345 140726185623522 0".split(" ");

function statLine(pid, ppid, startTicks, utimeTicks, threads = 1) {
  const f = [...TEMPLATE];
  f[1] = String(ppid);
  f[11] = String(utimeTicks);
  f[12] = "3";
  f[17] = String(threads);
  f[19] = String(startTicks);
  return `${pid} (proc ${pid}) ${f.join(" ")}\n`;
}

/**
 * Writes a fake /proc of `hostProcesses` processes into a temp dir: init (1), unrelated processes,
 * and a job of `jobProcesses` (root + workers + their children, 3 levels). With `childrenFiles`,
 * every process gets task/PID/children. `fork(n)`, called between ticks, makes a busy host: n new
 * unrelated processes appear (fork counter and last PID move) and the n oldest unrelated ones exit,
 * so the host keeps its size.
 */
export function buildFixtureHost({ hostProcesses = 10_000, jobProcesses = 100, childrenFiles = true } = {}) {
  const root = mkdtempSync(join(tmpdir(), "pp-bench-proc-"));
  const proc = join(root, "proc");
  mkdirSync(join(proc, "sys", "kernel"), { recursive: true });
  writeFileSync(join(proc, "sys", "kernel", "pid_max"), "4194304\n");
  const procs = [];
  procs.push({ pid: 1, ppid: 0 });
  let pid = 300;
  const others = hostProcesses - 1 - jobProcesses;
  for (let i = 0; i < others / 2; i++) procs.push({ pid: pid++, ppid: 1 });
  const jobRootPid = pid++;
  const jobPids = [jobRootPid];
  procs.push({ pid: jobRootPid, ppid: 1, threads: 8 });
  const workers = [];
  for (let i = 0; i < 9; i++) {
    const w = pid++;
    workers.push(w);
    jobPids.push(w);
    procs.push({ pid: w, ppid: jobRootPid, threads: 4 });
  }
  for (let i = 0; jobPids.length < jobProcesses; i++) {
    const c = pid++;
    jobPids.push(c);
    procs.push({ pid: c, ppid: workers[i % workers.length] });
  }
  while (procs.length < hostProcesses) procs.push({ pid: pid++, ppid: 1 });
  const lastPid = pid - 1;
  const children = new Map();
  for (const p of procs) {
    if (!children.has(p.ppid)) children.set(p.ppid, []);
    children.get(p.ppid).push(p.pid);
  }
  for (const p of procs) {
    const dir = join(proc, String(p.pid));
    mkdirSync(dir);
    writeFileSync(join(dir, "stat"), statLine(p.pid, p.ppid, 1000 + p.pid, 100, p.threads ?? 1));
    if (childrenFiles) {
      const t = join(dir, "task", String(p.pid));
      mkdirSync(t, { recursive: true });
      writeFileSync(join(t, "children"), (children.get(p.pid) ?? []).map((c) => `${c} `).join(""));
    }
  }
  // Unrelated processes (children of init), oldest first: the ones fork() retires.
  const exitable = procs.filter((p) => p.ppid === 1 && !p.threads).map((p) => p.pid);
  let forks = 100_000;
  let last = lastPid;
  let busy = 1_000_000;
  const writeHost = () => {
    writeFileSync(join(proc, "stat"), `cpu  ${busy} 0 1000 5000000 100 0 50 0 0 0\ncpu0 ${busy} 0 1000 5000000 100 0 50 0 0 0\nintr 1\nctxt 1\nbtime 1\nprocesses ${forks}\nprocs_running 1\n`);
    writeFileSync(join(proc, "loadavg"), `0.00 0.00 0.00 1/${hostProcesses} ${last}\n`);
  };
  writeHost();
  return {
    root,
    jobRootPid,
    jobPids,
    /** n forks elsewhere on the host (and n exits, so the host keeps its size). */
    fork(n) {
      for (let i = 0; i < n; i++) {
        const p = ++last;
        mkdirSync(join(proc, String(p)));
        writeFileSync(join(proc, String(p), "stat"), statLine(p, 1, 1000 + p, 1));
        if (childrenFiles) {
          mkdirSync(join(proc, String(p), "task", String(p)), { recursive: true });
          writeFileSync(join(proc, String(p), "task", String(p), "children"), "");
        }
        exitable.push(p);
        rmSync(join(proc, String(exitable.shift())), { recursive: true, force: true });
      }
      forks += n;
      busy += 7;
      writeHost();
    },
    /** Host CPU moves, nothing forked. */
    idle() {
      busy += 7;
      writeHost();
    },
    cleanup() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Runs `tick` `ticks` times (after `warmup`), calling `between` outside the timing; returns µs/tick (CPU and wall). */
export function measure(tick, { ticks = 200, warmup = 20, between = () => {} } = {}) {
  for (let i = 0; i < warmup; i++) {
    between();
    tick();
  }
  let cpuMicros = 0;
  let wallNanos = 0n;
  const walls = [];
  for (let i = 0; i < ticks; i++) {
    between();
    const c0 = process.cpuUsage();
    const w0 = process.hrtime.bigint();
    tick();
    const w = process.hrtime.bigint() - w0;
    const c = process.cpuUsage(c0);
    cpuMicros += c.user + c.system;
    wallNanos += w;
    walls.push(Number(w) / 1000);
  }
  walls.sort((a, b) => a - b);
  return {
    cpuMicrosPerTick: cpuMicros / ticks,
    wallMicrosPerTick: Number(wallNanos) / 1000 / ticks,
    wallP50Micros: walls[Math.floor(ticks / 2)],
    wallP99Micros: walls[Math.floor(ticks * 0.99)],
  };
}

function readCost(path, n = 20_000) {
  const buf = Buffer.allocUnsafe(4096);
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const fd = openSync(path, "r");
    readSync(fd, buf, 0, 4096, null);
    closeSync(fd);
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

const fmt = (x) => x.toFixed(1);

export async function main() {
  const out = compileForBench(["src/jobs/tracker.ts"]);
  const { ProcessTracker } = await import(pathToFileURL(join(out, "src", "jobs", "tracker.js")).href);
  const rows = [];
  const row = (scenario, r, extra = "") =>
    rows.push(`| ${scenario} | ${fmt(r.cpuMicrosPerTick)} | ${fmt(r.wallMicrosPerTick)} | ${fmt(r.wallP50Micros)} | ${fmt(r.wallP99Micros)} | ${extra} |`);

  console.log(`# procfs tick benchmark — ${new Date().toISOString()} — ${cpus().length} × ${cpus()[0]?.model ?? "?"}, node ${process.version}`);
  const t0 = Date.now();
  const host = buildFixtureHost({ hostProcesses: 10_000, jobProcesses: 100, childrenFiles: true });
  console.log(`fixture: 10,000 processes written in ${Date.now() - t0} ms under ${host.root}`);
  try {
    console.log(`raw read of one fixture stat file: ${fmt(readCost(join(host.root, "proc", String(host.jobRootPid), "stat")))} µs CPU; of real /proc/self/stat: ${fmt(readCost("/proc/self/stat"))} µs CPU`);
    const make = (discovery, fullScanIntervalTicks = 60) => {
      const t = new ProcessTracker({ root: host.root, discovery, fullScanIntervalTicks, selfPid: 0 });
      t.addJob("job", host.jobRootPid);
      return t;
    };

    // 1. Quiet host: no fork anywhere between ticks.
    {
      const t = make("auto");
      const r = measure(() => t.sample(), { between: host.idle });
      row("quiet host, auto (no fork: member stats only)", r, `members ${t.sample().jobProcessCount.get("job")}`);
    }
    // 2. Busy host: 20 forks elsewhere per tick.
    for (const discovery of ["auto", "children", "scan"]) {
      const t = make(discovery, 0);
      const r = measure(() => t.sample(), { between: () => host.fork(20), ticks: discovery === "scan" ? 60 : 200, warmup: 5 });
      row(`busy host (20 forks/tick), ${discovery === "auto" ? "auto = PID-range probe" : discovery}`, r, JSON.stringify({ pidRangeProbes: t.stats.pidRangeProbes, childrenWalks: t.stats.childrenWalks, fullScans: t.stats.fullScans }));
    }
    // 3. Full scan per host process: cold (first: every stat read) and warm (readdir + cache).
    {
      const t = new ProcessTracker({ root: host.root, discovery: "scan", fullScanIntervalTicks: 0, selfPid: 0 });
      const c0 = process.cpuUsage();
      t.addJob("job", host.jobRootPid); // cold full scan of 10,000 PIDs
      const c = process.cpuUsage(c0);
      rows.push(`| full scan, cold (addJob: reads all 10,000 stat files) | ${fmt(c.user + c.system)} | | | | ${fmt((c.user + c.system) / 10_000)} µs per host process |`);
      const r = measure(() => t.sample(), { between: () => host.fork(1), ticks: 60, warmup: 5 });
      row("full scan, warm (readdir + cache, 1 new PID)", r, `${fmt(r.cpuMicrosPerTick / 10_000)} µs per host process`);
    }
  } finally {
    host.cleanup();
  }

  // 4. Real /proc: a job of 100 real processes (sh + 99 sleep) on this host.
  {
    const script = "for i in $(seq 99); do sleep 300 & done; wait";
    const root = spawn("sh", ["-c", script], { stdio: "ignore", detached: true });
    await new Promise((r) => setTimeout(r, 1500));
    try {
      const t = new ProcessTracker({ discovery: "auto" });
      t.addJob("job", root.pid);
      const members = t.sample().jobProcessCount.get("job");
      const hostPids = (await import("node:fs")).readdirSync("/proc").filter((n) => /^\d+$/.test(n)).length;
      const r = measure(() => t.sample(), { ticks: 200 });
      row(`real /proc, auto, job of ${members} processes, host of ${hostPids}`, r, JSON.stringify({ discoverySkipped: t.stats.discoverySkipped, pidRangeProbes: t.stats.pidRangeProbes }));
      const s = new ProcessTracker({ discovery: "scan", fullScanIntervalTicks: 0 });
      const c0 = process.cpuUsage();
      s.addJob("job", root.pid); // cold full scan: every stat of the host read once
      const c = process.cpuUsage(c0);
      rows.push(`| real /proc, full scan, cold (addJob, first use: JIT not warm), host of ${hostPids} | ${fmt(c.user + c.system)} | | | | ${fmt((c.user + c.system) / hostPids)} µs per host process |`);
      const s2 = new ProcessTracker({ discovery: "scan", fullScanIntervalTicks: 0 });
      const c2 = process.cpuUsage();
      s2.addJob("job", root.pid);
      const d2 = process.cpuUsage(c2);
      rows.push(`| real /proc, full scan, cold (addJob, JIT warm), host of ${hostPids} | ${fmt(d2.user + d2.system)} | | | | ${fmt((d2.user + d2.system) / hostPids)} µs per host process |`);
      const rs = measure(() => s.sample(), { ticks: 200 });
      row(`real /proc, scan, job of ${members} processes, host of ${hostPids}`, rs, "");
    } finally {
      process.kill(-root.pid, "SIGTERM");
    }
  }

  console.log("\n| scenario | CPU µs/tick | wall µs/tick | wall p50 µs | wall p99 µs | notes |\n|---|---|---|---|---|---|");
  for (const r of rows) console.log(r);
  rmSync(out, { recursive: true, force: true });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main();
