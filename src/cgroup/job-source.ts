/**
 * CgroupJobSource: the ProcessSource of `run` when the job has its own cgroup (createJobCgroup).
 * Per tick and job: one CPU read (v2 cpu.stat usage_usec / v1 cpuacct.usage) and one cgroup.procs
 * read, whatever the number of processes; plus /proc/stat once for the host. Every descendant is
 * counted, exited ones too (the kernel keeps their time in the cgroup's counter), and none can
 * escape by double-forking or setsid. The process count is the number of thread-group ids in
 * cgroup.procs (no /proc/PID reads).
 */
import type { ProcessSample, ProcessSource } from "../core/contracts.js";
import { DEFAULT_TICKS_PER_SECOND, HostCpuCounter, ProcReader, pageSizeBytes, readEnviron, readHostMemory } from "../procfs/reader.js";
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { CgroupReader } from "./fs.js";
import type { JobCgroup } from "./job.js";
import { parseProcCgroup } from "./path.js";

/** Options of CgroupJobSource. */
export interface CgroupJobSourceOptions {
  /** Filesystem root holding proc/ (host CPU from <procRoot>/proc/stat, environ). Default "/". */
  procRoot?: string;
  /** USER_HZ of /proc/stat. Default 100. */
  ticksPerSecond?: number;
  /**
   * Whether to read cgroup.procs each tick (members and process counts). Members are only needed
   * to match GPU processes: without a GPU collector, false makes the tick one cpu.stat read per
   * job whatever its size (cgroup.procs costs ~0.2 ms for 1,000 processes); `members` and
   * `jobProcessCount` then stay empty, and jobOfPid() answers for single PIDs. Default true.
   */
  trackMembers?: boolean;
}

interface CgroupJob {
  cgroup: JobCgroup;
  rootPid?: number;
  baselineSeconds: number;
  lastSeconds: number;
}

export class CgroupJobSource implements ProcessSource {
  private readonly jobs = new Map<string, CgroupJob>();
  private readonly proc: ProcReader;
  private readonly procRoot: string;
  private readonly ticksPerSecond: number;
  private readonly hostCpu: HostCpuCounter;
  private readonly trackMembers: boolean;
  /** Holds each job's cpu.stat and cgroup.procs open between ticks (pread: a third of open/read/close). */
  private readonly reader = new CgroupReader(64);
  private readonly pageSizeBytes: number;

  constructor(opts: CgroupJobSourceOptions = {}) {
    this.trackMembers = opts.trackMembers ?? true;
    this.procRoot = opts.procRoot ?? "/";
    this.proc = new ProcReader(this.procRoot);
    this.ticksPerSecond = opts.ticksPerSecond ?? DEFAULT_TICKS_PER_SECOND;
    this.hostCpu = new HostCpuCounter(this.proc, this.ticksPerSecond);
    this.pageSizeBytes = pageSizeBytes(this.procRoot);
  }

  /**
   * Gives a job its cgroup. Its CPU counts from `baselineSeconds` (the counter's value at the
   * spawn, read by the caller before it; default: the counter's value now, 0 for a fresh cgroup).
   * Call before addJob, or instead of it when the command entered the cgroup by
   * JobCgroup.wrapCommand.
   */
  attach(jobId: string, cgroup: JobCgroup, baselineSeconds?: number): void {
    const baseline = baselineSeconds ?? cgroup.cpuSeconds() ?? 0;
    this.jobs.set(jobId, { cgroup, baselineSeconds: baseline, lastSeconds: 0 });
  }

  /**
   * Registers the job's root process: moved into the job's cgroup (a no-op when it is there already,
   * e.g. through wrapCommand; `alreadyMoved`: the caller moved it and saw the kernel accept, so no
   * second write to cgroup.procs). Throws when the job has no cgroup: attach() first.
   */
  addJob(jobId: string, rootPid: number, options: { alreadyMoved?: boolean } = {}): void {
    const job = this.jobs.get(jobId);
    if (!job) throw new Error(`CgroupJobSource.addJob(${jobId}): no cgroup attached; call attach() first`);
    job.rootPid = rootPid;
    if (!options.alreadyMoved) job.cgroup.add(rootPid);
  }

  /** The job's cgroup, for kill() and remove() at the end. */
  cgroupOf(jobId: string): JobCgroup | undefined {
    return this.jobs.get(jobId)?.cgroup;
  }

  sample(): ProcessSample {
    const jobCpuSeconds = new Map<string, number>();
    const members = new Map<number, string>();
    const jobProcessCount = new Map<string, number>();
    const jobRssBytes = new Map<string, number>();
    for (const [id, job] of this.jobs) {
      const now = this.reader.cpuSeconds(job.cgroup.dir, job.cgroup.version);
      // Gone (removed after the job) or unreadable: keep the last value, the counter never goes down.
      if (now !== undefined) job.lastSeconds = Math.max(job.lastSeconds, now - job.baselineSeconds);
      jobCpuSeconds.set(id, job.lastSeconds);
      if (!this.trackMembers) continue;
      // Resident memory for the memory split (static part by RSS): the cgroup's memory.stat where
      // the memory controller is on the job's hierarchy (v2 with it enabled), else the members'
      // RSS from /proc/PID/stat (one small read each, only what the member list already names).
      let rssPages = 0;
      const rssFromCgroup = this.cgroupRssBytes(job);
      jobProcessCount.set(
        id,
        Math.max(
          0,
          this.reader.forEachProc(
            job.cgroup.dir,
            (pid) => {
              members.set(pid, id);
              if (rssFromCgroup === undefined) rssPages += this.proc.readStat(pid)?.rssPages ?? 0;
            },
            job.cgroup.version,
          ),
        ),
      );
      jobRssBytes.set(id, rssFromCgroup ?? rssPages * this.pageSizeBytes);
    }
    const memory = readHostMemory(this.procRoot);
    return {
      jobCpuSeconds,
      ...this.hostCpu.read(),
      members,
      jobProcessCount,
      ...(this.trackMembers && { jobRssBytes }),
      ...(memory && { hostUsedMemoryBytes: memory.usedBytes, hostTotalMemoryBytes: memory.totalBytes }),
    };
  }

  /** anon + file_mapped + shmem of the job cgroup's v2 memory.stat (≈ the members' RSS), when there. */
  private cgroupRssBytes(job: CgroupJob): number | undefined {
    if (job.cgroup.version !== 2) return undefined;
    let text: string;
    try {
      text = readFileSync(join(job.cgroup.dir, "memory.stat"), "utf8");
    } catch {
      return undefined; // no memory controller on this cgroup
    }
    const field = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    return field("anon") + field("file_mapped") + field("shmem");
  }

  /**
   * The job a PID belongs to, from <procRoot>/proc/PID/cgroup (one small read): whether the
   * process's cgroup (on the job cgroup's hierarchy) is the job's or below it.
   */
  jobOfPid(pid: number): string | undefined {
    const text = this.proc.readText(`${pid}/cgroup`);
    if (text === undefined) return undefined;
    const lines = parseProcCgroup(text);
    for (const [id, job] of this.jobs) {
      const suffix = "/" + basename(job.cgroup.dir);
      const v = job.cgroup.version;
      for (const l of lines) {
        if (v === 2 ? l.version !== 2 : !(l.version === 1 && l.controllers.includes("cpuacct"))) continue;
        if (l.path.endsWith(suffix) || l.path.includes(suffix + "/")) return id;
      }
    }
    return undefined;
  }

  /** Releases the files held open between ticks. */
  close(): void {
    this.reader.close();
  }

  jobEnvironment(jobId: string, names: readonly string[]): Record<string, string> {
    const job = this.jobs.get(jobId);
    const pid = job?.rootPid ?? job?.cgroup.pids()[0];
    return pid === undefined ? {} : readEnviron(this.procRoot, pid, names);
  }
}
