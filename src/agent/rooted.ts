/**
 * Jobs made of process trees found while the agent runs (pod and selector modes), counted by the
 * run mode's ProcessTracker: each tree is a sub-job of the tracker (its root and every
 * descendant, CPU of reaped children included, PID reuse safe); a job is the sum of its trees.
 * A tree whose processes are all gone is folded into the job's carried CPU and leaves the tracker,
 * so memory follows live processes, and a job's CPU never goes down, also when the job comes back
 * with a new tree under the same identity.
 */
import { processKey } from "../procfs/types.js";
import { ProcessTracker } from "../jobs/tracker.js";
import { ProcReader, readEnviron } from "../procfs/reader.js";
import type { ProcessSample } from "../core/contracts.js";
import type { DiscoveredJob, DiscoveredSample, DiscoveringSource } from "./lifecycle.js";

interface Tree {
  subId: string;
  jobId: string;
  rootPid: number;
}

interface JobEntry {
  job: DiscoveredJob;
  /** CPU seconds of trees that are gone. */
  carriedCpuSeconds: number;
  trees: Set<string>;
  /** Last CPU seconds reported (monotone). */
  lastCpuSeconds: number;
}

/** Process trees grouped into jobs, on a ProcessTracker. */
export class RootedJobs {
  readonly tracker: ProcessTracker;
  private readonly jobs = new Map<string, JobEntry>();
  private readonly trees = new Map<string, Tree>();

  constructor(
    readonly procRoot: string,
    tracker?: ProcessTracker,
  ) {
    this.tracker = tracker ?? new ProcessTracker({ root: procRoot });
  }

  /** Number of process trees tracked now. */
  get treeCount(): number {
    return this.trees.size;
  }

  /** Jobs known (live or kept for their retention). */
  get jobCount(): number {
    return this.jobs.size;
  }

  /**
   * Adds the tree rooted at `pid` (start time `startTicks`) to `job`. `countFromStart`: the process
   * started after the agent looked, so its whole CPU since start is the job's.
   */
  addTree(job: DiscoveredJob, pid: number, startTicks: number, countFromStart: boolean): void {
    let entry = this.jobs.get(job.id);
    if (!entry) {
      entry = { job, carriedCpuSeconds: 0, trees: new Set(), lastCpuSeconds: 0 };
      this.jobs.set(job.id, entry);
    }
    const subId = `${job.id}\u0000${processKey({ pid, startTicks })}`;
    if (this.trees.has(subId)) return;
    this.trees.set(subId, { subId, jobId: job.id, rootPid: pid });
    entry.trees.add(subId);
    this.tracker.addJob(subId, pid, { countFrom: countFromStart ? "process-start" : "now" });
  }

  /** Forgets a job (dropped after its retention): its trees leave the tracker. */
  forget(jobId: string): void {
    const entry = this.jobs.get(jobId);
    if (!entry) return;
    for (const subId of entry.trees) {
      this.tracker.removeJob(subId);
      this.trees.delete(subId);
    }
    this.jobs.delete(jobId);
  }

  /** Samples the tracker and sums trees into jobs. */
  sample(): DiscoveredSample & { rawMembers: ReadonlyMap<number, string> } {
    const s: ProcessSample = this.tracker.sample();
    const jobCpuSeconds = new Map<string, number>();
    const jobProcessCount = new Map<string, number>();
    // Resident memory per job (Σ over its trees): memory's static energy is split by it, as in run.
    const jobRssBytes = new Map<string, number>();
    const members = new Map<number, string>();
    const jobs = new Map<string, DiscoveredJob>();
    for (const [pid, subId] of s.members) {
      const t = this.trees.get(subId);
      if (t) members.set(pid, t.jobId);
    }
    for (const entry of this.jobs.values()) {
      let cpu = entry.carriedCpuSeconds;
      let count = 0;
      let rss = 0;
      for (const subId of [...entry.trees]) {
        const treeCpu = s.jobCpuSeconds.get(subId) ?? 0;
        const n = s.jobProcessCount.get(subId) ?? 0;
        cpu += treeCpu;
        count += n;
        rss += s.jobRssBytes?.get(subId) ?? 0;
        if (n === 0) {
          // The tree is gone: its final CPU stays with the job; the tracker forgets it.
          entry.carriedCpuSeconds += treeCpu;
          entry.trees.delete(subId);
          this.trees.delete(subId);
          this.tracker.removeJob(subId);
        }
      }
      entry.lastCpuSeconds = Math.max(entry.lastCpuSeconds, cpu);
      jobCpuSeconds.set(entry.job.id, entry.lastCpuSeconds);
      jobProcessCount.set(entry.job.id, count);
      jobRssBytes.set(entry.job.id, rss);
      jobs.set(entry.job.id, entry.job);
    }
    return {
      jobCpuSeconds,
      jobProcessCount,
      members,
      jobs,
      hostBusyCpuSeconds: s.hostBusyCpuSeconds,
      hostTotalCpuSeconds: s.hostTotalCpuSeconds,
      ...(s.jobRssBytes ? { jobRssBytes } : {}),
      ...(s.hostTotalMemoryBytes !== undefined ? { hostUsedMemoryBytes: s.hostUsedMemoryBytes, hostTotalMemoryBytes: s.hostTotalMemoryBytes } : {}),
      rawMembers: s.members,
    };
  }

  /**
   * Between samples: re-reads the trees' processes when they are few (ProcessTracker.refresh), so
   * a job whose top-level process exits right after reaping its workers keeps their last CPU.
   */
  refresh(maxProcesses: number): boolean {
    return this.tracker.refresh(maxProcesses);
  }

  /** Whether `jobId` has a process tree now (a live root or descendants). */
  hasTrees(jobId: string): boolean {
    return (this.jobs.get(jobId)?.trees.size ?? 0) > 0;
  }

  /** Selected environment variables of the first live root of `jobId` that has any of them. */
  jobEnvironment(jobId: string, names: readonly string[]): Record<string, string> {
    const entry = this.jobs.get(jobId);
    if (!entry) return {};
    for (const subId of entry.trees) {
      const env = this.tracker.jobEnvironment(subId, names);
      if (Object.keys(env).length > 0) return env;
    }
    return {};
  }

  /** jobEnvironment with the reads on the thread pool. */
  async jobEnvironmentAsync(jobId: string, names: readonly string[]): Promise<Record<string, string>> {
    const entry = this.jobs.get(jobId);
    if (!entry) return {};
    for (const subId of [...entry.trees]) {
      const env = await this.tracker.jobEnvironmentAsync(subId, names);
      if (Object.keys(env).length > 0) return env;
    }
    return {};
  }

  /** Environment of a PID (for roots not yet sampled). */
  environOf(pid: number, names: readonly string[]): Record<string, string> {
    return readEnviron(this.procRoot, pid, names);
  }
}

/**
 * A discovering source over RootedJobs (pod and selector modes): its jobs are found, not added;
 * forgetting a job, refreshing between samples and the jobs' environments are the trees'. Each mode
 * adds how it finds the trees (sample()).
 */
export abstract class RootedSource implements DiscoveringSource {
  protected readonly trees: RootedJobs;
  protected readonly reader: ProcReader;

  constructor(procRoot: string) {
    this.trees = new RootedJobs(procRoot);
    this.reader = new ProcReader(procRoot);
  }

  abstract sample(): ProcessSample;

  addJob(): void {
    // Found, not added.
  }

  forget(jobId: string): void {
    this.trees.forget(jobId);
  }

  /** Re-reads the job processes between samples when they are few (DiscoveringSource.refresh). */
  refresh(maxProcesses: number): boolean {
    return this.trees.refresh(maxProcesses);
  }

  jobEnvironmentAsync(jobId: string, names: readonly string[]): Promise<Record<string, string>> {
    return this.trees.jobEnvironmentAsync(jobId, names);
  }

  jobEnvironment(jobId: string, names: readonly string[]): Record<string, string> {
    return this.trees.jobEnvironment(jobId, names);
  }
}
