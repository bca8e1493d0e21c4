// Benchmark: tick cost of run's job tracking by cgroup (CgroupJobSource as run builds it, default
// options: one cpu read, v2 cpu.stat / v1 cpuacct.usage, and one memory.stat read of the job's
// memory cgroup per job, plus /proc/stat and /proc/meminfo) against the same source with
// trackMembers true (also cgroup.procs each tick: the round-2 default) and /proc tracking
// (ProcessTracker: one stat read per member), for real jobs of 1, 100 and 1,000 processes, each as
// a ratio to the raw cost of the reads it makes the way it makes them (its floor: pread of held
// files for the cgroup source). Results are recorded by hand in bench/RESULTS.md. Not a test.
// Needs root and a writable cgroup2 hierarchy (or v1 cpuacct: `--v1`); the job's memory cgroup is
// the job cgroup itself on cgroup2 with the memory controller, else one in the v1 memory hierarchy.
//
//   node bench/tick-cgroup.mjs [--v1] [--no-memory]   (--no-memory: no memory cgroup for the job,
//   the source's fallback: members' RSS every 10 ticks)
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { compileForBench } from "./compile.mjs";

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

function timeLoop(f, ticks) {
  const wall = [];
  for (let i = 0; i < 200; i++) f(); // JIT and held files warm before timing
  for (let i = 0; i < ticks; i++) {
    const t0 = process.hrtime.bigint();
    f();
    wall.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return wall;
}

export async function main() {
  const prefer = process.argv.includes("--v1") ? "v1" : "v2";
  const dir = compileForBench(["src/cgroup/job.ts", "src/cgroup/job-source.ts", "src/jobs/tracker.ts"]);
  const { createJobCgroup } = await import(pathToFileURL(join(dir, "src/cgroup/job.js")).href);
  const { CgroupJobSource } = await import(pathToFileURL(join(dir, "src/cgroup/job-source.js")).href);
  const { ProcessTracker } = await import(pathToFileURL(join(dir, "src/jobs/tracker.js")).href);
  console.log(`job tick, cgroup (${prefer}) vs procfs, ${cpus()[0]?.model ?? "?"} × ${cpus().length}, node ${process.version}`);
  const buf = Buffer.allocUnsafe(65536);
  const rawRead = (path) => {
    const fd = openSync(path, "r");
    try {
      let n = 0;
      let k;
      while ((k = readSync(fd, buf, n, buf.length - n, null)) > 0) n += k;
      return n;
    } finally {
      closeSync(fd);
    }
  };
  for (const n of [1, 100, 1000]) {
    const r = createJobCgroup({ prefer, memory: !process.argv.includes("--no-memory") });
    if (r.status !== "ok") {
      console.log(`  cannot create a job cgroup: ${r.reason}`);
      return;
    }
    const cg = r.cgroup;
    // sh enters the cgroup, forks n-1 sleepers, then becomes the n-th: a real job of n processes.
    const argv = cg.wrapCommand(["/bin/sh", "-c", `i=1; while [ $i -lt ${n} ]; do sleep 3600 & i=$((i+1)); done; exec sleep 3600`]);
    const child = spawn(argv[0], argv.slice(1), { stdio: "ignore" });
    try {
      while (cg.pids().length < n) await new Promise((res) => setTimeout(res, 50));
      const cgs = new CgroupJobSource(); // run's source: its defaults
      cgs.attach("job", cg);
      cgs.addJob("job", child.pid);
      const members = new CgroupJobSource({ trackMembers: true });
      members.attach("job", cg);
      const tracker = new ProcessTracker();
      tracker.addJob("job", child.pid);
      for (let i = 0; i < 50 && tracker.sample().jobProcessCount.get("job") < n; i++) await new Promise((res) => setTimeout(res, 50));
      const tracked = tracker.sample().jobProcessCount.get("job");
      const pids = cg.pids();
      const memDir = cg.memory?.dir;
      if (n === 1) console.log(`  job's memory: ${cg.memory ? `v${cg.memory.version} ${memDir}` : `none (${cg.memoryNote}): RSS from the members every 10 ticks`}`);
      // The cgroup source holds its files open and re-reads them with pread (see CgroupReader).
      const cpuFd = openSync(join(cg.dir, prefer === "v2" ? "cpu.stat" : "cpuacct.usage"), "r");
      const memFd = memDir ? openSync(join(memDir, "memory.stat"), "r") : undefined;
      const procsFd = openSync(join(cg.dir, "cgroup.procs"), "r");
      const pread = (fd) => {
        let n = 0;
        let k;
        while ((k = readSync(fd, buf, n, buf.length - n, n)) > 0) n += k;
      };
      // v1 cgroup.procs is never held (its PID list is cached per open file): open/read/close.
      const procsRead = () => (prefer === "v2" ? pread(procsFd) : rawRead(join(cg.dir, "cgroup.procs")));
      const hostReads = () => (rawRead("/proc/stat"), rawRead("/proc/meminfo"));
      const ticks = n >= 1000 ? 200 : 500;
      // Interleave: alternate blocks of the three sources and their floors.
      const res = { cgroup: [], cgroupFloor: [], members: [], membersFloor: [], procfs: [], procfsFloor: [] };
      for (let round = 0; round < 5; round++) {
        res.cgroup.push(...timeLoop(() => cgs.sample(), ticks / 5));
        res.cgroupFloor.push(...timeLoop(() => (pread(cpuFd), memFd !== undefined && pread(memFd), hostReads()), ticks / 5));
        res.members.push(...timeLoop(() => members.sample(), ticks / 5));
        res.membersFloor.push(...timeLoop(() => (pread(cpuFd), memFd !== undefined && pread(memFd), procsRead(), hostReads()), ticks / 5));
        res.procfs.push(...timeLoop(() => tracker.sample(), ticks / 5));
        res.procfsFloor.push(...timeLoop(() => {
          for (const p of pids) rawRead(`/proc/${p}/stat`);
          hostReads();
        }, ticks / 5));
      }
      const m = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, median(v)]));
      const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const fmt = (k) => `${m[k].toFixed(3)} ms (p10 ${pct(res[k], 0.1).toFixed(3)}, p90 ${pct(res[k], 0.9).toFixed(3)}, mean ${mean(res[k]).toFixed(3)})`;
      console.log(`  ${n}-process job (tracker sees ${tracked}):`);
      console.log(`    cgroup (run's default)  ${fmt("cgroup")}  floor ${fmt("cgroupFloor")}  ratio ${(m.cgroup / m.cgroupFloor).toFixed(2)}`);
      console.log(`    cgroup, trackMembers true  ${fmt("members")}  floor ${fmt("membersFloor")}  ratio ${(m.members / m.membersFloor).toFixed(2)}`);
      console.log(`    procfs  ${fmt("procfs")}  floor ${fmt("procfsFloor")}  ratio ${(m.procfs / m.procfsFloor).toFixed(2)}`);
      console.log(`    procfs / cgroup ${(m.procfs / m.cgroup).toFixed(1)}×`);
      closeSync(cpuFd);
      if (memFd !== undefined) closeSync(memFd);
      closeSync(procsFd);
      cgs.close();
      members.close();
    } finally {
      await cg.kill();
      await cg.remove();
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main();
