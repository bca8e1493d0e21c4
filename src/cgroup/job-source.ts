/**
 * CgroupJobSource: the ProcessSource of `run` when the job has its own cgroup (createJobCgroup).
 * Per tick and job, whatever the number of processes: one CPU read (v2 cpu.stat usage_usec / v1
 * cpuacct.usage) and one memory.stat read for its resident memory (the job's cgroup2 with the
 * memory controller on, or its cgroup in the v1 `memory` hierarchy: JobCgroup.memory); plus
 * /proc/stat and /proc/meminfo once for the host. Every descendant is counted, exited ones too (the
 * kernel keeps their time in the cgroup's counter), and none can escape by double-forking or setsid.
 *
 * By default (trackMembers false) the member list is not read: GPU processes are matched by
 * jobOfPid() (one /proc/PID/cgroup read per GPU process, asked by the sampler), and
 * `members` and `jobProcessCount` stay empty (nothing on `run`'s path reads a process count: the
 * report shows none). Where the job has no memory cgroup at all (JobCgroup.memory undefined), its
 * RSS is the sum of its members' /proc/PID/stat RSS, read every `memberRssEveryTicks` ticks and held
 * in between (said once with log.debug): the only read that grows with the job's size then.
 */
import type { Logger, ProcessSample, ProcessSource } from "../core/contracts.js";
import { DEFAULT_TICKS_PER_SECOND, HostCpuCounter, ProcReader, pageSizeBytes, readEnviron, readHostMemory } from "../procfs/reader.js";
import { basename } from "node:path";
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
   * Whether to read cgroup.procs each tick to list `members` and `jobProcessCount` (~0.2 ms for
   * 1,000 processes on cgroup2, growing with the job). Not needed to match GPU processes (the
   * sampler asks jobOfPid() for PIDs `members` lacks). Default false.
   */
  trackMembers?: boolean;
  /**
   * Without a memory cgroup for the job: how often (in ticks) the members' RSS is read from
   * /proc/PID/stat (the value is held in between). Default 10; 1: every tick.
   */
  memberRssEveryTicks?: number;
  /** Says once, at debug level, when a job's RSS comes from its members instead of memory.stat. */
  log?: Pick<Logger, "debug">;
}

interface CgroupJob {
  cgroup: JobCgroup;
  rootPid?: number;
  baselineSeconds: number;
  lastSeconds: number;
  /** Members' RSS fallback: ticks since it was read, and the bytes read then. */
  rssTicks: number;
  rssBytes: number;
  /** The members' RSS fallback was said (log.debug). */
  saidFallback: boolean;
}

export class CgroupJobSource implements ProcessSource {
  private readonly jobs = new Map<string, CgroupJob>();
  private readonly proc: ProcReader;
  private readonly procRoot: string;
  private readonly ticksPerSecond: number;
  private readonly hostCpu: HostCpuCounter;
  private readonly trackMembers: boolean;
  private readonly memberRssEveryTicks: number;
  private readonly log?: Pick<Logger, "debug">;
  /** Holds each job's cpu.stat, memory.stat (and v2 cgroup.procs) open between ticks (pread: a third of open/read/close). */
  private readonly reader = new CgroupReader(64);
  private readonly pageSizeBytes: number;

  constructor(opts: CgroupJobSourceOptions = {}) {
    this.trackMembers = opts.trackMembers ?? false;
    this.memberRssEveryTicks = Math.max(1, Math.floor(opts.memberRssEveryTicks ?? 10));
    this.log = opts.log;
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
    this.jobs.set(jobId, { cgroup, baselineSeconds: baseline, lastSeconds: 0, rssTicks: 0, rssBytes: 0, saidFallback: false });
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
      const memory = job.cgroup.memory;
      // A removed cgroup holds no process: 0 resident bytes.
      const fromCgroup = memory === undefined ? undefined : (this.reader.rssBytes(memory.dir, memory.version) ?? 0);
      if (this.trackMembers) {
        // The member list anyway: the fallback's RSS comes with it (one small read per member).
        let rssPages = 0;
        const count = this.reader.forEachProc(
          job.cgroup.dir,
          (pid) => {
            members.set(pid, id);
            if (fromCgroup === undefined) rssPages += this.proc.readStat(pid)?.rssPages ?? 0;
          },
          job.cgroup.version,
        );
        jobProcessCount.set(id, Math.max(0, count));
        jobRssBytes.set(id, fromCgroup ?? rssPages * this.pageSizeBytes);
      } else {
        jobRssBytes.set(id, fromCgroup ?? this.membersRssBytes(id, job));
      }
    }
    const memory = readHostMemory(this.procRoot);
    return {
      jobCpuSeconds,
      ...this.hostCpu.read(),
      members,
      jobProcessCount,
      jobRssBytes,
      ...(memory && { hostUsedMemoryBytes: memory.usedBytes, hostTotalMemoryBytes: memory.totalBytes }),
    };
  }

  /** Σ of the members' /proc/PID/stat RSS, bytes, read every memberRssEveryTicks ticks (held in between). */
  private membersRssBytes(id: string, job: CgroupJob): number {
    if (!job.saidFallback) {
      job.saidFallback = true;
      this.log?.debug(
        `job ${id}: resident memory from its members' /proc/PID/stat every ${this.memberRssEveryTicks} tick(s), not memory.stat (${job.cgroup.memoryNote ?? "no memory cgroup"})`,
      );
    }
    if (job.rssTicks++ % this.memberRssEveryTicks !== 0) return job.rssBytes;
    let rssPages = 0;
    this.reader.forEachProc(job.cgroup.dir, (pid) => (rssPages += this.proc.readStat(pid)?.rssPages ?? 0), job.cgroup.version);
    job.rssBytes = rssPages * this.pageSizeBytes;
    return job.rssBytes;
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
