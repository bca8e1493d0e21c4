// run's cgroup source with its defaults, on real job cgroups of this machine (cgroup2 without
// controllers + the v1 memory hierarchy; and v1 cpuacct + v1 memory), built and entered the way
// `run` does it: createJobCgroup, the handshake shell of run-cgroup.ts, JobTrackingSource.addJob
// (JobCgroup.add: into both cgroups), FinalCpuSource on top. The job: three node processes each
// holding 48 MiB of written anonymous memory, then a 16 MiB file it writes to /dev/shm (resident
// in no process). Checks: the job's RSS, one memory.stat read, lies between the members' own anonymous
// memory and the sum of their RSS (/proc/PID/status), and does not move with the /dev/shm file; a GPU
// process of the job (the stub libnvidia-ml through the real NVML collector) is matched through
// jobOfPid by the real Sampler with no member list; kill() and remove() leave no cgroup in either
// hierarchy.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createNvmlCollector } from "../../collectors/nvml.js";
import { createJobCgroup, jobCgroupParents, type JobCgroup } from "../../src/cgroup/job.js";
import { CgroupJobSource } from "../../src/cgroup/job-source.js";
import { readCgroupMounts } from "../../src/cgroup/mounts.js";
import { handshakeArgv } from "../../src/cli/run-cgroup.js";
import type { Collector } from "../../src/core/contracts.js";
import { Ledger } from "../../src/core/ledger.js";
import { Sampler } from "../../src/core/sampler.js";
import { createFixedProvider } from "../../src/grid/static.js";
import { FinalCpuSource, JobTrackingSource } from "../../src/jobs/run-sources.js";
import { ProcessTracker } from "../../src/jobs/tracker.js";
import { pageSizeBytes } from "../../src/procfs/reader.js";
import { buildStubNvml } from "../native/build-stub.mjs";
import { recordingLogger } from "../grid/replay-server.js";
import { waitFor } from "../helpers/wait.js";

const allocator = fileURLToPath(new URL("./scripts/allocator.mjs", import.meta.url));
const made: JobCgroup[] = [];
const dirs: string[] = [];
const children: ChildProcess[] = [];
const collectors: Collector[] = [];
afterAll(async () => {
  for (const c of collectors) await c.close();
  for (const c of children) c.kill("SIGKILL");
  for (const c of made) {
    await c.kill({ timeoutMillis: 3000 });
    await c.remove({ timeoutMillis: 3000 });
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const KIB = 1024;
const MIB = 1024 * KIB;
/** A /proc/PID/status field in bytes (kB lines), 0 when the process is gone. */
const statusBytes = (pid: number, field: string): number => {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * KIB : 0;
  } catch {
    return 0;
  }
};
const procsOf = (dir: string): number[] =>
  readFileSync(join(dir, "cgroup.procs"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map(Number)
    .sort((a, b) => a - b);
const statField = (dir: string, key: string): number => Number(new RegExp(`^${key} (\\d+)$`, "m").exec(readFileSync(join(dir, "memory.stat"), "utf8"))?.[1]);

const mounts = readCgroupMounts();
const root = process.getuid?.() === 0;
const hierarchies = [
  { prefer: "v2" as const, present: mounts.v2 !== undefined },
  { prefer: "v1" as const, present: mounts.v1.has("cpuacct") },
];

describe.each(hierarchies)("run's cgroup source on $prefer with the job's v1 memory cgroup", ({ prefer, present }) => {
  it.skipIf(!present || !root || !mounts.v1.has("memory"))(
    "RSS from memory.stat within the members' anon..RSS (no /dev/shm file); GPU PID through jobOfPid; kill+remove leave no cgroup",
    async () => {
      const r = createJobCgroup({ prefer });
      if (r.status !== "ok") throw new Error(r.reason);
      const cg = r.cgroup;
      made.push(cg);
      const mem = cg.memory;
      // cgroup2 here has no controllers: the job's memory is a v1 cgroup of the same name.
      expect(mem?.version).toBe(1);
      expect(mem!.dir.split("/").at(-1)).toBe(cg.dir.split("/").at(-1));
      expect(mem!.dir.startsWith(mounts.v1.get("memory")!.mountPoint + "/")).toBe(true);
      expect(jobCgroupParents(cg)).toHaveLength(2);

      const work = mkdtempSync(join(tmpdir(), "pp-cgmem-"));
      dirs.push(work);
      const shm = `/dev/shm/pp-cgmem-${process.pid}-${prefer}`;
      dirs.push(shm);
      const log = recordingLogger();
      // As run builds it (see the report: run-measure passes only the logger).
      const source = new CgroupJobSource({ log });
      source.attach("job", cg);
      const tracking = new JobTrackingSource(new ProcessTracker({ root: "/" }), { source, cgroup: cg });
      const final = new FinalCpuSource(tracking, "job");

      // After the allocators, the job blocks on a FIFO until the test says go, writes the /dev/shm
      // file, says so, and waits.
      const fifo = join(work, "go");
      expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
      const shmReady = join(work, "shm-ready");
      const job = `for i in 1 2 3; do ${process.execPath} ${allocator} ${work} 48 & done; read _ < ${fifo}; dd if=/dev/zero of=${shm} bs=1M count=16 2>/dev/null; : > ${shmReady}; wait`;
      const argv = handshakeArgv(["/bin/sh", "-c", job]);
      const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "ignore", "inherit", "pipe"] });
      children.push(child);
      tracking.addJob("job", child.pid!);
      (child.stdio[3] as Duplex).destroy(); // the shell may exec the job now
      expect(tracking.tracking).toBe("cgroup");
      const allocators = await waitFor("three allocators ready", () => {
        const ready = readdirSync(work).filter((f) => /^ready-\d+$/.test(f));
        return ready.length === 3 ? ready.map((f) => Number(f.slice(6))) : undefined;
      });

      // Every member is in both cgroups (add() moved the root into both; forks inherit both).
      const members = procsOf(cg.dir);
      expect(members).toEqual(procsOf(mem!.dir));
      expect(members).toEqual(expect.arrayContaining([child.pid!, ...allocators]));
      const s = final.sample();
      expect(s.members.size).toBe(0);
      expect(log.lines.filter((l) => l.includes("resident memory from its members"))).toEqual([]);
      const rssBytes = s.jobRssBytes!.get("job")!;
      const anon = members.reduce((a, p) => a + statusBytes(p, "RssAnon"), 0);
      const rss = members.reduce((a, p) => a + statusBytes(p, "VmRSS"), 0);
      expect(anon).toBeGreaterThan(3 * 48 * MIB);
      // Anonymous pages are private and charged to the job's cgroup (faulted in there): all counted;
      // shared file pages count once at most (Σ RSS counts them in every member). Slack: the
      // kernel's per-CPU batching of cgroup statistics (well under 1 MiB on 2 CPUs).
      expect(rssBytes).toBeGreaterThanOrEqual(anon - MIB);
      expect(rssBytes).toBeLessThanOrEqual(rss + MIB);

      // The job writes 16 MiB to /dev/shm: charged to it as shmem, resident in no process: its RSS stays.
      const shmemBefore = statField(mem!.dir, "total_shmem");
      writeFileSync(fifo, "go\n");
      await waitFor("the /dev/shm file", () => (existsSync(shmReady) ? true : undefined));
      expect(statField(mem!.dir, "total_shmem") - shmemBefore).toBeGreaterThanOrEqual(16 * MIB);
      expect(Math.abs(final.sample().jobRssBytes!.get("job")! - rssBytes)).toBeLessThan(MIB);

      // A GPU process deep in the job (an allocator, forked by the job's shell) and one outside.
      const outside = spawn("sleep", ["600"], { stdio: "ignore" });
      children.push(outside);
      const lib = buildStubNvml();
      const stub = join(work, "stub.txt");
      process.env.STUB_NVML_SCRIPT = stub;
      let version = 0;
      const gpuScript = (energyMillijoules: number, micros: number): void => {
        const lines = [
          "count 1",
          "gpu0.name NVIDIA H100 80GB HBM3",
          "gpu0.uuid GPU-5e3a1c2b-0000-4d6e-9f00-bbbbbbbbbbbb",
          `gpu0.energy_mj ${energyMillijoules}`,
          "gpu0.power_mw 500000",
          "gpu0.util 100",
          `gpu0.procs ${allocators[1]}:1000000,${outside.pid}:1000000`,
          `gpu0.samples ${allocators[1]}:75:10:${micros},${outside.pid}:25:10:${micros}`,
        ];
        const t = join(work, `s.${version++}`);
        writeFileSync(t, lines.join("\n") + "\n");
        renameSync(t, stub);
      };
      gpuScript(1_000_000, 1);
      const nvml = createNvmlCollector({ libraryPath: lib });
      collectors.push(nvml);
      expect((await nvml.probe()).status).toBe("ok");
      let now = 0;
      const ledger = new Ledger({ pue: 1 }, 0);
      ledger.registerJob("job", "job", {}, 0);
      const fixed = createFixedProvider(100);
      const sampler = new Sampler({
        collectors: [nvml],
        processes: final,
        intensity: { at: (t) => fixed.at("XX", t) },
        ledger,
        nowMillis: () => now,
        idlePolicy: "attribute",
        idle: { byKind: { gpu: 100 } },
        log,
        isVisiblePid: (pid) => existsSync(`/proc/${pid}`),
      });
      await sampler.tick(); // baseline
      now = 2000;
      gpuScript(2_000_000, 2_000_000);
      await sampler.tick(); // 1000 J: idle 200 J split between the two holders, active 800 J 75:25
      const snap = ledger.snapshot();
      expect(snap.devices.find((d) => d.id === "gpu0")!.energyJoules).toBeCloseTo(1000, 9);
      expect(snap.jobs.find((j) => j.id === "job")!.deviceEnergyJoules.gpu0).toBeCloseTo(800 * 0.75 + 100, 9);
      expect(snap.buckets.system.deviceEnergyJoules.gpu0).toBeCloseTo(800 * 0.25 + 100, 9);

      // kill() reaches every member, remove() both cgroups: nothing left in either hierarchy.
      const k = await cg.kill();
      expect(k.remaining).toBe(0);
      expect(await cg.remove()).toBe(true);
      expect(existsSync(cg.dir)).toBe(false);
      expect(existsSync(mem!.dir)).toBe(false);
      // Gone: no process holds memory in it any more.
      expect(final.sample().jobRssBytes!.get("job")).toBe(0);
      source.close();
    },
  );
});

describe("a job whose memory cgroup cannot take it", () => {
  it.skipIf(!mounts.v2 || !root || !mounts.v1.has("memory"))(
    "add() still moves it into the job cgroup, drops the memory cgroup (said once), RSS from the members' /proc/PID/stat",
    async () => {
      const r = createJobCgroup({ prefer: "v2" });
      if (r.status !== "ok") throw new Error(r.reason);
      const cg = r.cgroup;
      made.push(cg);
      const memDir = cg.memory!.dir;
      // Someone removed the (empty) memory cgroup before the job entered it: its cgroup.procs is gone.
      rmdirSync(memDir);
      const work = mkdtempSync(join(tmpdir(), "pp-cgmem-"));
      dirs.push(work);
      const child = spawn(process.execPath, [allocator, work, "32"], { stdio: "ignore" });
      children.push(child);
      expect(cg.add(child.pid!)).toEqual({ status: "ok" });
      expect(procsOf(cg.dir)).toEqual([child.pid!]);
      expect(cg.memory).toBeUndefined();
      expect(cg.memoryNote).toMatch(new RegExp(`^moving PID ${child.pid} into the v1 memory cgroup ${memDir}: .*ENOENT`));
      await waitFor("allocator ready", () => (existsSync(join(work, `ready-${child.pid}`)) ? true : undefined));

      const log = recordingLogger();
      const source = new CgroupJobSource({ log });
      source.attach("job", cg);
      const rss = source.sample().jobRssBytes!.get("job")!;
      const statRss = Number(readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1].split(" ")[21]) * pageSizeBytes();
      // The same figure /proc/PID/stat gives (field 24, pages).
      expect(Math.abs(rss - statRss)).toBeLessThanOrEqual(256 * KIB);
      expect(rss).toBeGreaterThan(32 * MIB);
      source.sample();
      const said = log.lines.filter((l) => l.includes("resident memory from its members"));
      expect(said).toHaveLength(1);
      expect(said[0]).toContain(memDir);
      const k = await cg.kill();
      expect(k.remaining).toBe(0);
      expect(await cg.remove()).toBe(true);
      expect(existsSync(cg.dir)).toBe(false);
      source.close();
    },
  );
});
