/**
 * ProcessSource wrappers used by `powerprint run`: the kernel's final CPU figure for the wrapped
 * command, the choice between the job's own cgroup and /proc, and the merge of the real command with a scenario's simulated process table (`--sim`).
 */
import type { ProcessSample, ProcessSource } from "../core/contracts.js";
import type { CgroupJobSource } from "../cgroup/job-source.js";
import type { JobCgroup } from "../cgroup/job.js";
import { mergeSamples } from "./merge.js";

/**
 * A ProcessSource that forwards to `inner` what it does not change (jobs added, environments,
 * the job of a PID: a cgroup-tracked job lists no members, so GPU PIDs are matched there); the
 * wrappers below change the sample. Extra behaviour by wrapping, not flags.
 */
abstract class WrappedSource implements ProcessSource {
  constructor(protected readonly inner: ProcessSource) {}

  abstract sample(): ProcessSample;

  addJob(jobId: string, rootPid: number): void {
    this.inner.addJob(jobId, rootPid);
  }

  jobEnvironment(jobId: string, names: readonly string[]): Record<string, string> {
    return this.inner.jobEnvironment(jobId, names);
  }

  jobOfPid(pid: number): string | undefined {
    return this.inner.jobOfPid?.(pid);
  }
}

/**
 * Once the wrapped command has exited and been reaped by powerprint, raises the job's CPU total
 * (seconds) to `finalCpuSeconds`: the growth of powerprint's own cutime+cstime, the kernel's exact
 * figure for the command and every descendant it waited for, including CPU burned after the last
 * sample. Only the job's figure changes: the host's busy CPU (from /proc/stat) already holds that
 * CPU time, so it is left alone (raising it too would count the same seconds twice, in the
 * `system` bucket's weight and in the host utilisation the CPU model turns into watts).
 */
export class FinalCpuSource extends WrappedSource {
  /** The command's total CPU seconds once known (set after it was reaped). */
  finalCpuSeconds?: number;

  constructor(
    inner: ProcessSource,
    private readonly jobId: string,
  ) {
    super(inner);
  }

  sample(): ProcessSample {
    const s = this.inner.sample();
    if (this.finalCpuSeconds !== undefined) {
      const tracked = s.jobCpuSeconds.get(this.jobId) ?? 0;
      if (this.finalCpuSeconds > tracked) s.jobCpuSeconds.set(this.jobId, this.finalCpuSeconds);
    }
    return s;
  }
}

/** Merges the real wrapped job (from /proc, the inner source) with a scenario's simulated process table (mergeSamples). */
export class CompositeSource extends WrappedSource {
  constructor(
    real: ProcessSource,
    private readonly sim: ProcessSource,
  ) {
    super(real);
  }

  sample(): ProcessSample {
    return mergeSamples(this.inner.sample(), this.sim.sample());
  }

  /** The real job's source first, then the scenario's. */
  override jobOfPid(pid: number): string | undefined {
    return super.jobOfPid(pid) ?? this.sim.jobOfPid?.(pid);
  }
}

/**
 * The wrapped job's process source: its own cgroup (CgroupJobSource, attached) when it has one,
 * else the /proc tracker. The choice is final at addJob(): when the kernel refuses to move the
 * root process into the cgroup (the move is tried there, before the command execs), the job is
 * tracked by /proc from its first instruction on and `fallbackReason` says why.
 */
export class JobTrackingSource implements ProcessSource {
  private active: ProcessSource;
  /** Why a cgroup-tracked job fell back to /proc at addJob (undefined: it did not). */
  fallbackReason?: string;

  /**
   * Set before addJob when the root was already moved into the cgroup (or refused) at the spawn,
   * before the command could fork (run's handshake): addJob then uses that outcome instead of
   * moving it again.
   */
  moved?: { status: "ok" } | { status: "error"; reason: string };

  /**
   * `countFromProcessStart`: the root was just spawned for this job, so all its CPU (and its
   * descendants') is the job's, also what it used before addJob (/proc tracking; a cgroup counts
   * from its own baseline).
   */
  constructor(
    private readonly procfs: ProcessSource & { addJob(jobId: string, rootPid: number, options?: { countFrom?: "now" | "process-start" }): void },
    private readonly cgroup?: { source: CgroupJobSource; cgroup: JobCgroup },
    private readonly options: { countFromProcessStart?: boolean } = {},
  ) {
    this.active = cgroup ? cgroup.source : procfs;
  }

  /** What the job is tracked by now. */
  get tracking(): "cgroup" | "procfs" {
    return this.active === this.procfs ? "procfs" : "cgroup";
  }

  addJob(jobId: string, rootPid: number): void {
    if (this.cgroup && this.active !== this.procfs) {
      const moved = this.moved ?? this.cgroup.cgroup.add(rootPid);
      if (moved.status === "ok") {
        this.cgroup.source.addJob(jobId, rootPid, { alreadyMoved: true });
        return;
      }
      this.fallbackReason = moved.reason;
      this.active = this.procfs;
    }
    this.procfs.addJob(jobId, rootPid, this.options.countFromProcessStart ? { countFrom: "process-start" } : {});
  }

  sample(): ProcessSample {
    return this.active.sample();
  }

  jobEnvironment(jobId: string, names: readonly string[]): Record<string, string> {
    return this.active.jobEnvironment(jobId, names);
  }

  /** Asked of the source tracking the job now (the cgroup source reads /proc/PID/cgroup). */
  jobOfPid(pid: number): string | undefined {
    return this.active.jobOfPid?.(pid);
  }
}
