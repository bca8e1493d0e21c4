// A stand-in for `powerprint run`'s job tracking, run under `strace` by test/cgroup/tick-reads.test.ts
// so the test sees every file read one tick makes. Usage: node tick-reads.mjs CONFIG_JSON
//   CONFIG: { dist, work, prefer: "v2"|"v1", memory: boolean, n, ticks, options }
// Creates a job cgroup (createJobCgroup, built dist/), starts a real job of n processes in it
// (`sh` forking n-1 `sleep`s, then writing WORK/ready and becoming the n-th), builds the
// CgroupJobSource with `options` as run does, ticks a few times to open its files, then makes
// `ticks` ticks between two markers the trace shows (access() of two absent paths), and prints
// what it saw as one JSON line. Kills and removes the job cgroup before exiting; writes the
// cgroup directories to WORK/cgroups.json first so the test can clean up after a crash.
import { spawn } from "node:child_process";
import { accessSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const cfg = JSON.parse(process.argv[2]);
const { createJobCgroup } = await import(pathToFileURL(join(cfg.dist, "src/cgroup/job.js")).href);
const { CgroupJobSource } = await import(pathToFileURL(join(cfg.dist, "src/cgroup/job-source.js")).href);

const r = createJobCgroup({ prefer: cfg.prefer, memory: cfg.memory });
if (r.status !== "ok") {
  console.log(JSON.stringify({ error: r.reason }));
  process.exit(3);
}
const cg = r.cgroup;
writeFileSync(join(cfg.work, "cgroups.json"), JSON.stringify([cg.dir, ...(cg.memory && cg.memory.dir !== cg.dir ? [cg.memory.dir] : [])]));
const ready = join(cfg.work, "ready");
const loop = `i=1; while [ $i -lt ${cfg.n} ]; do sleep 3600 & i=$((i+1)); done; : > "${ready}"; exec sleep 3600`;
const argv = cg.wrapCommand(["/bin/sh", "-c", loop]);
const child = spawn(argv[0], argv.slice(1), { stdio: "ignore" });
const marker = (name) => {
  try {
    accessSync(`/nonexistent/pp-tick-reads-${name}`);
  } catch {
    // absent on purpose: only the syscall matters
  }
};
let out;
try {
  // The job says when its n-1 sleepers are forked (each is in the cgroup from its fork on).
  while (!existsSync(ready)) await new Promise((res) => setTimeout(res, 20));
  const debug = [];
  const source = new CgroupJobSource({ ...cfg.options, log: { debug: (m) => debug.push(m) } });
  source.attach("job", cg);
  source.addJob("job", child.pid);
  for (let i = 0; i < 3; i++) source.sample(); // opens and holds its files
  const samples = [];
  marker("begin");
  for (let i = 0; i < cfg.ticks; i++) samples.push(source.sample());
  marker("end");
  const pids = cg.pids();
  out = {
    pids: pids.length,
    memory: cg.memory ?? null,
    memoryNote: cg.memoryNote ?? null,
    members: samples.map((s) => s.members.size),
    processCount: samples.map((s) => s.jobProcessCount.get("job") ?? null),
    rssBytes: samples.map((s) => s.jobRssBytes?.get("job") ?? null),
    cpuSeconds: samples.map((s) => s.jobCpuSeconds.get("job")),
    debug,
  };
  source.close();
} finally {
  const k = await cg.kill();
  const removed = await cg.remove();
  out = { ...out, killRemaining: k.remaining, removed };
}
console.log(JSON.stringify(out));
