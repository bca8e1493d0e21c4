// Benchmark: cost of one node-mode tick (NodeJobSource.sample()) by pods × processes per pod.
// Results are recorded by hand in bench/RESULTS.md ("node-mode tick" section). Not a test.
//
//   node bench/node-tick.mjs                 fixture trees on tmpfs (/dev/shm) + a real cgroup2 tree
//   node bench/node-tick.mjs --fixture-only
//
// Fixture: a kubelet-shaped cgroup2 tree (systemd driver: kubepods.slice/kubepods-burstable.slice/
// kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope, 2 containers per pod: the app and
// the pause sandbox), every directory holding the 30 control files a real cgroup2 directory has
// (so directory listings cost what they cost), cpu.stat in the kernel's format and cgroup.procs
// listing the container's PIDs. Real: the same tree made on the cgroup2 hierarchy with real
// `sleep` processes moved in (needs root; skipped otherwise). Configurations are interleaved
// (rounds of ticks per configuration), so load drifts hit all of them alike.
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { compileForBench } from "./compile.mjs";

const CONTROL_FILES = "cgroup.controllers cgroup.events cgroup.freeze cgroup.kill cgroup.max.depth cgroup.max.descendants cgroup.pressure cgroup.procs cgroup.stat cgroup.subtree_control cgroup.threads cgroup.type cpu.idle cpu.max cpu.max.burst cpu.pressure cpu.stat cpu.stat.local cpu.weight cpu.weight.nice io.pressure memory.current memory.events memory.high memory.low memory.max memory.min memory.pressure memory.stat pids.current".split(" ");

const uid = (i) => `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`;
const cid = (i, k) => (String(i).padStart(8, "0") + String(k).padStart(4, "0")).padEnd(64, "a");

/** Writes a fixture tree of `pods` pods × `procsPerPod` processes (split over the app container; the sandbox holds 1). */
export function buildFixtureTree(pods, procsPerPod) {
  const top = mkdtempSync(join(existsDir("/dev/shm") ? "/dev/shm" : tmpdir(), "pp-node-bench-"));
  const fill = (dir, pids, usec) => {
    mkdirSync(dir, { recursive: true });
    for (const f of CONTROL_FILES) writeFileSync(join(dir, f), "");
    writeFileSync(join(dir, "cpu.stat"), `usage_usec ${usec}\nuser_usec ${usec >> 1}\nsystem_usec ${usec >> 1}\nnice_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n`);
    writeFileSync(join(dir, "cgroup.procs"), pids.map((p) => `${p}\n`).join(""));
  };
  let pid = 1000;
  const kp = join(top, "kubepods.slice");
  fill(kp, [], 0);
  fill(join(kp, "kubepods-burstable.slice"), [], 0);
  for (let i = 0; i < pods; i++) {
    const pod = join(kp, "kubepods-burstable.slice", `kubepods-burstable-pod${uid(i).replace(/-/g, "_")}.slice`);
    fill(pod, [], 1_000_000 + i);
    const app = [];
    for (let k = 0; k < procsPerPod; k++) app.push(pid++);
    fill(join(pod, `cri-containerd-${cid(i, 0)}.scope`), app.slice(0, Math.max(1, procsPerPod - 1)), 1000);
    fill(join(pod, `cri-containerd-${cid(i, 1)}.scope`), procsPerPod > 1 ? app.slice(-1) : [], 10);
  }
  return top;
}

function existsDir(p) {
  try {
    return readdirSync(p) !== undefined;
  } catch {
    return false;
  }
}

/** The same tree on the real cgroup2 hierarchy, with real sleeping processes. Returns { top, cleanup }. */
async function buildRealTree(v2dir, pods, procsPerPod) {
  const top = join(v2dir, `pp-node-bench-${process.pid}`);
  const dirs = [top, join(top, "kubepods.slice"), join(top, "kubepods.slice", "kubepods-burstable.slice")];
  for (const d of dirs) mkdirSync(d);
  const shells = [];
  for (let i = 0; i < pods; i++) {
    const pod = join(dirs[2], `kubepods-burstable-pod${uid(i).replace(/-/g, "_")}.slice`);
    const app = join(pod, `cri-containerd-${cid(i, 0)}.scope`);
    const pause = join(pod, `cri-containerd-${cid(i, 1)}.scope`);
    mkdirSync(pod);
    mkdirSync(app);
    mkdirSync(pause);
    dirs.push(pod, app, pause);
    // The shell enters the container's cgroup, forks its sleepers there, then becomes one.
    const n = Math.max(1, procsPerPod - 1);
    const script = `echo $$ > ${app}/cgroup.procs; i=1; while [ $i -lt ${n} ]; do sleep 3600 & i=$((i+1)); done; exec sleep 3600`;
    shells.push(spawn("/bin/sh", ["-c", script], { stdio: "ignore", detached: true }));
    if (procsPerPod > 1) {
      const p = spawn("/bin/sh", ["-c", `echo $$ > ${pause}/cgroup.procs; exec sleep 3600`], { stdio: "ignore", detached: true });
      shells.push(p);
    }
  }
  // Wait until every process is in place (each container's cgroup.procs shows them).
  const want = pods * procsPerPod;
  for (;;) {
    let have = 0;
    for (const d of dirs) have += readFileSync(join(d, "cgroup.procs"), "utf8").split("\n").filter(Boolean).length;
    if (have >= want) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    top,
    cleanup: async () => {
      for (const d of dirs.slice().reverse()) {
        try {
          writeFileSync(join(d, "cgroup.kill"), "1");
        } catch {
          // the root of the test tree has no members
        }
      }
      for (const d of dirs.slice().reverse()) {
        for (let t = 0; t < 200; t++) {
          try {
            rmdirSync(d);
            break;
          } catch {
            await new Promise((r) => setTimeout(r, 25));
          }
        }
      }
    },
  };
}

const quiet = { info() {}, warn() {}, warnOnce() {}, debug() {} };
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
};

/** Interleaved timing: `rounds` rounds, each running `ticksPerRound` ticks of every configuration. */
function timeInterleaved(configs, rounds = 10, ticksPerRound = 20) {
  const wall = new Map(configs.map((c) => [c.label, []]));
  const cpu = new Map(configs.map((c) => [c.label, 0]));
  for (const c of configs) for (let i = 0; i < 20; i++) c.source.sample(); // warm-up
  for (let r = 0; r < rounds; r++) {
    for (const c of configs) {
      const u0 = process.cpuUsage();
      for (let i = 0; i < ticksPerRound; i++) {
        const t0 = process.hrtime.bigint();
        c.source.sample();
        wall.get(c.label).push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      const u = process.cpuUsage(u0);
      cpu.set(c.label, cpu.get(c.label) + (u.user + u.system) / 1000);
    }
  }
  return configs.map((c) => {
    const w = wall.get(c.label);
    return { label: c.label, medianMillis: median(w), p10Millis: pct(w, 0.1), p90Millis: pct(w, 0.9), cpuMeanMillis: cpu.get(c.label) / w.length, stats: c.source.stats };
  });
}

export async function main() {
  const fixtureOnly = process.argv.includes("--fixture-only");
  const dir = compileForBench(["src/agent/node-source.ts", "src/cgroup/mounts.ts"]);
  const { NodeJobSource } = await import(pathToFileURL(join(dir, "src/agent/node-source.js")).href);
  const { readCgroupMounts } = await import(pathToFileURL(join(dir, "src/cgroup/mounts.js")).href);
  console.log(`node-mode tick, ${cpus()[0]?.model ?? "?"} × ${cpus().length}, node ${process.version}`);

  const shapes = [[200, 10], [200, 1], [200, 50], [50, 10], [400, 10]];
  const trees = [];
  const configs = shapes.map(([pods, procs]) => {
    const top = buildFixtureTree(pods, procs);
    trees.push(top);
    return { label: `fixture ${pods} pods × ${procs} procs`, source: new NodeJobSource({ hierarchy: { dir: top, version: 2 }, log: quiet }) };
  });
  configs.push({ label: "fixture 200 × 10, trackMembers false", source: new NodeJobSource({ hierarchy: { dir: trees[0], version: 2 }, log: quiet, trackMembers: false }) });
  for (const r of timeInterleaved(configs)) print(r);
  for (const t of trees) rmSync(t, { recursive: true, force: true });

  const v2 = readCgroupMounts().v2;
  if (fixtureOnly || !v2 || process.getuid?.() !== 0) return;
  const real = await buildRealTree(v2.mountPoint, 200, 10);
  try {
    const source = new NodeJobSource({ hierarchy: { dir: real.top, version: 2 }, log: quiet });
    const s = source.sample();
    console.log(`real cgroup2 tree: ${s.jobs.size} pods, ${s.members.size} processes`);
    const everyTick = new NodeJobSource({ hierarchy: { dir: real.top, version: 2 }, log: quiet, relistEveryTicks: 1, maxOpenFiles: 0 });
    const noHold = new NodeJobSource({ hierarchy: { dir: real.top, version: 2 }, log: quiet, maxOpenFiles: 0 });
    const cpuOnly = new NodeJobSource({ hierarchy: { dir: real.top, version: 2 }, log: quiet, trackMembers: false });
    // A GPU node as the sampler drives it with trackMembers false: the tick plus jobOfPid for the
    // PIDs 8 GPUs report (one process each, in 8 different pods), read from /proc/PID/cgroup.
    const gpuNode = new NodeJobSource({ hierarchy: { dir: real.top, version: 2 }, log: quiet, trackMembers: false });
    const byPod = new Map();
    for (const [pid, job] of s.members) if (!byPod.has(job)) byPod.set(job, pid);
    const gpuPids = [...byPod.values()].slice(0, 8);
    const gpuTick = { sample: () => { const out = gpuNode.sample(); for (const pid of gpuPids) if (gpuNode.jobOfPid(pid) === undefined) throw new Error(`bench: GPU pid ${pid} not resolved`); return out; } };
    const results = timeInterleaved([
      { label: "real cgroup2 200 pods × 10 procs", source },
      { label: "real, open/read/close (maxOpenFiles 0)", source: noHold },
      { label: "real, listing every tick, open/read/close", source: everyTick },
      { label: "real, trackMembers false (no GPU)", source: cpuOnly },
      { label: "real, trackMembers false + jobOfPid × 8 GPU PIDs", source: gpuTick },
    ]);
    print(results[0]);
    // The floor: the reads the tick makes, as it makes them (the kubepods and QoS-level listings,
    // pread of each pod's held cpu.stat and each container's held cgroup.procs, /proc/stat, and a
    // tenth of the pods' container listings: they are listed again every 10 ticks), in a bare loop.
    const kp = join(real.top, "kubepods.slice");
    const level = join(kp, "kubepods-burstable.slice");
    const podDirs = readdirSync(level).filter((n) => n.includes("-pod")).map((n) => join(level, n));
    const containers = podDirs.map((p) => readdirSync(p, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(p, d.name)));
    const cpuFds = podDirs.map((p) => openSync(join(p, "cpu.stat"), "r"));
    const procFds = containers.flat().map((c) => openSync(join(c, "cgroup.procs"), "r"));
    const buf = Buffer.allocUnsafe(65536);
    const pread = (fd) => {
      let n = 0;
      let k;
      while ((k = readSync(fd, buf, n, buf.length - n, n)) > 0) n += k;
    };
    const floor = [];
    for (let t = 0; t < 200; t++) {
      const t0 = process.hrtime.bigint();
      readdirSync(kp, { withFileTypes: true });
      readdirSync(level, { withFileTypes: true });
      for (let i = 0; i < podDirs.length; i++) if ((i + t) % 10 === 0) readdirSync(podDirs[i], { withFileTypes: true });
      for (const fd of cpuFds) pread(fd);
      for (const fd of procFds) pread(fd);
      readFileSync("/proc/stat");
      floor.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    for (const fd of [...cpuFds, ...procFds]) closeSync(fd);
    console.log(`  raw reads of that tick (floor): median ${median(floor).toFixed(3)} ms (p10 ${pct(floor, 0.1).toFixed(3)}, p90 ${pct(floor, 0.9).toFixed(3)})`);
    for (const r of results.slice(1)) print(r);
    for (const x of [source, everyTick, noHold, cpuOnly, gpuNode]) x.close();
  } finally {
    await real.cleanup();
  }
}

function print(r) {
  console.log(
    `  ${r.label.padEnd(34)} median ${r.medianMillis.toFixed(3)} ms (p10 ${r.p10Millis.toFixed(3)}, p90 ${r.p90Millis.toFixed(3)}), CPU ${r.cpuMeanMillis.toFixed(3)} ms/tick`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main();
