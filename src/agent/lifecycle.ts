/**
 * Job lifecycle of the agent: jobs appear (a discovering source names them in its sample), finish
 * (no live process left), come back (the same identity again: live once more, counters go on), and
 * are dropped `retentionMillis` after they finished (their final totals are exported until then).
 * Memory is bounded with thousands of short jobs: finished jobs wait in a bounded, time-ordered
 * TerminatedJobs tracker (like Kepler's terminated_resource_tracker); past its capacity the
 * oldest finished job is dropped early, said once.
 */
import type { DiscoveredJob, Logger, ProcessSample, ProcessSource } from "../core/contracts.js";
import type { Ledger } from "../core/ledger.js";
import { mergeSamples } from "../jobs/merge.js";
import { boundAttributes, boundJob } from "../core/bounds.js";

export type { DiscoveredJob };

/** A ProcessSource that finds its jobs itself (pod, selector, node, scenario). */
export interface DiscoveringSource extends ProcessSource {
  /** Forgets a dropped job: it is no longer reported; if it comes back it counts from zero. */
  forget?(jobId: string): void;
  /**
   * CPU counters that survive the agent (node mode: each pod cgroup's), as of the last sample, by
   * key (pod UID), with the job each counts for: saved at checkpoints (the downtime is counted
   * from them after a restart).
   */
  resumeCounters?(): Record<string, { jobId: string; seconds: number }>;
  /**
   * Before the first sample: counters saved at the checkpoint. The first sample counts from them
   * where the same counter is found again (the downtime's CPU, exactly); returns the jobs that do.
   */
  resumeFrom?(saved: Readonly<Record<string, { jobId: string; seconds: number }>>): void;
  /** Jobs whose first sample counted from saved counters (resumeFrom), once that sample was taken. */
  resumedJobs?(): ReadonlySet<string>;
  /**
   * Between samples (a short timer): re-reads the jobs' processes when there are at most
   * `maxProcesses`, so the last CPU of a job's top-level process and of the children it reaped
   * before exiting is not lost until the next sample. false when it did nothing.
   */
  refresh?(maxProcesses: number): boolean;
}

/** The sample a discovering source gives: jobs it knows now (live ones at least). */
export type DiscoveredSample = ProcessSample;

/**
 * Finished jobs in order of finishing, at most `capacity`. O(1) add/remove; expiry walks from the
 * oldest and stops at the first one still retained.
 */
export class TerminatedJobs {
  private readonly byId = new Map<string, number>();

  constructor(
    readonly retentionMillis: number,
    readonly capacity: number,
  ) {}

  get size(): number {
    return this.byId.size;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Records a finished job; returns the ids evicted (oldest first) to stay within capacity. */
  add(id: string, finishedMillis: number): string[] {
    this.byId.delete(id);
    this.byId.set(id, finishedMillis);
    const evicted: string[] = [];
    while (this.byId.size > this.capacity) {
      const oldest = this.byId.keys().next().value as string;
      this.byId.delete(oldest);
      evicted.push(oldest);
    }
    return evicted;
  }

  /** The job that finished first, if any. */
  oldest(): string | undefined {
    return this.byId.keys().next().value;
  }

  /** A finished job came back: no longer terminated. */
  remove(id: string): boolean {
    return this.byId.delete(id);
  }

  /** Removes and returns the jobs whose retention has passed at `nowMillis`. */
  expired(nowMillis: number): string[] {
    const out: string[] = [];
    for (const [id, at] of this.byId) {
      if (at + this.retentionMillis > nowMillis) break;
      out.push(id);
    }
    for (const id of out) this.byId.delete(id);
    return out;
  }
}

/** Options of AgentSource. */
export interface AgentSourceOptions {
  /** The real job source of --mode (pod, selector, node), if any. */
  real?: DiscoveringSource;
  /** The scenario's process table (--sim), if any: its host CPU is the host's. */
  sim?: DiscoveringSource;
  ledger: Ledger;
  retentionMillis: number;
  /** At most this many finished jobs are retained (default 10,000). */
  maxTerminated?: number;
  /**
   * At most this many jobs are held, live and finished (default 20,000): past it the oldest
   * finished job is dropped early; with none left to drop, a new job is not tracked (its CPU stays
   * in `system`), said once and counted. Exporters size their series limits from it.
   */
  maxJobs?: number;
  nowMillis: () => number;
  log: Logger;
  /** Attributes added to every discovered job (the job's own win). */
  extraAttributes?: Record<string, string>;
  /** Called when a job becomes live (first seen with a process, or back): its environment is readable now. */
  onLive?: (jobId: string) => void;
}

/**
 * The agent's ProcessSource: merges the mode's source with the scenario's (as `run --sim` does:
 * real jobs' CPU is added to the simulated host's), registers discovered jobs in the ledger, and
 * runs the lifecycle on every sample.
 */
/** Default bound on the jobs held (live and finished): 10,000 finished + 10,000 live. */
export const DEFAULT_MAX_JOBS = 20_000;

/** Why jobs were dropped (powerprint.agent.jobs.dropped's powerprint.reason). */
export type DropReason = "retention" | "max-finished-jobs" | "max-jobs";

export class AgentSource implements ProcessSource {
  /** Jobs seen live and not finished since. */
  private readonly live = new Set<string>();
  readonly terminated: TerminatedJobs;
  /** Jobs dropped so far (retention passed or capacity), for stats and tests. */
  dropped = 0;
  /** Jobs dropped by reason (self-metrics). */
  readonly droppedBy: Record<DropReason, number> = { retention: 0, "max-finished-jobs": 0, "max-jobs": 0 };
  readonly maxJobs: number;
  /**
   * Jobs the source reports that are not tracked (over --max-jobs), bounded; and, for those later
   * admitted, the CPU seconds they had then: a job's first interval never counts CPU from before
   * it was admitted.
   */
  private readonly untracked = new Set<string>();
  private readonly cpuOffset = new Map<string, number>();
  /** Identity last registered per job (name + attributes): metadata that arrives later updates it. */
  private readonly identities = new Map<string, string>();
  /** Live member processes of the last sample, pid → job (the /jobs view). */
  lastMembers: ReadonlyMap<number, string> = new Map();

  constructor(private readonly o: AgentSourceOptions) {
    this.terminated = new TerminatedJobs(o.retentionMillis, o.maxTerminated ?? 10_000);
    this.maxJobs = o.maxJobs ?? DEFAULT_MAX_JOBS;
  }

  /** Jobs held now: live and finished (retained). */
  get counts(): { live: number; finished: number } {
    return { live: this.live.size, finished: this.terminated.size };
  }

  /** Takes over a restored ledger: its live jobs are live until a sample says otherwise, its finished ones retained from their finish time. */
  adoptRestored(jobIds: Iterable<string>): void {
    for (const id of jobIds) {
      const at = this.o.ledger.finishedAt(id);
      if (at === undefined) this.live.add(id);
      else for (const e of this.terminated.add(id, at)) this.drop(e, "max-finished-jobs");
    }
    // A checkpoint of an agent with a larger --max-jobs: the oldest finished go first.
    for (let oldest = this.terminated.oldest(); this.o.ledger.jobCount > this.maxJobs && oldest !== undefined; oldest = this.terminated.oldest()) {
      this.terminated.remove(oldest);
      this.drop(oldest, "max-jobs");
    }
  }

  addJob(jobId: string, rootPid: number): void {
    this.o.real?.addJob(jobId, rootPid);
  }

  /** The real source's surviving counters (DiscoveringSource.resumeCounters), for a checkpoint. */
  resumeCounters(): Record<string, { jobId: string; seconds: number }> | undefined {
    return this.o.real?.resumeCounters?.();
  }

  /** Hands a checkpoint's counters to the real source (DiscoveringSource.resumeFrom); false when it keeps none. */
  resumeFrom(saved: Readonly<Record<string, { jobId: string; seconds: number }>>): boolean {
    if (!this.o.real?.resumeFrom) return false;
    this.o.real.resumeFrom(saved);
    return true;
  }

  /** Whether the real source can be watched between samples (DiscoveringSource.refresh). */
  get refreshes(): boolean {
    return this.o.real?.refresh !== undefined;
  }

  /** Re-reads the real source's processes between samples (DiscoveringSource.refresh). */
  refresh(maxProcesses: number): boolean {
    return this.o.real?.refresh?.(maxProcesses) ?? false;
  }

  /** Jobs whose first sample counted from saved counters. */
  resumedJobs(): ReadonlySet<string> {
    return this.o.real?.resumedJobs?.() ?? new Set();
  }

  jobEnvironment(jobId: string, names: readonly string[]): Record<string, string> {
    return this.o.real?.jobEnvironment(jobId, names) ?? {};
  }

  /** The real source's jobEnvironmentAsync (its reads off the loop), else its jobEnvironment. */
  async jobEnvironmentAsync(jobId: string, names: readonly string[]): Promise<Record<string, string>> {
    const real = this.o.real;
    if (!real) return {};
    return real.jobEnvironmentAsync ? real.jobEnvironmentAsync(jobId, names) : real.jobEnvironment(jobId, names);
  }

  /** A GPU process the sample's members lack, resolved by the real source (node mode: PID → cgroup → pod). */
  jobOfPid(pid: number): string | undefined {
    return this.o.real?.jobOfPid?.(pid);
  }

  /** The real source's off-loop reads for the next sample (ProcessSource.prepare). */
  async prepare(): Promise<void> {
    await this.o.real?.prepare?.();
  }

  sample(): ProcessSample {
    const real = this.o.real?.sample() as DiscoveredSample | undefined;
    const sim = this.o.sim?.sample() as DiscoveredSample | undefined;
    const merged = mergeSamples(real, sim);
    this.observe(merged, this.o.nowMillis());
    this.lastMembers = merged.members;
    // Registered here (and their devices noted on going live, onLive): the Monitor need not see
    // them, so it keeps no entry per job id ever seen (thousands of short jobs).
    delete merged.jobs;
    return merged;
  }

  private observe(sample: DiscoveredSample, nowMillis: number): void {
    const ledger = this.o.ledger;
    for (const found of sample.jobs?.values() ?? []) {
      // Bounded on the way in: a 1.4 MB command line never becomes a 1.4 MB id, label or state entry.
      const job = boundJob(found);
      if (job.id !== found.id) renameJob(sample, found.id, job.id);
      if (!ledger.hasJob(job.id)) {
        if (!this.admit(job.id, sample)) continue;
        ledger.registerJob(job.id, job.name, boundAttributes({ ...this.o.extraAttributes, ...job.attributes }), nowMillis);
      } else if (this.identities.get(job.id) !== identitySignature(job)) ledger.updateJobIdentity(job.id, job.name, job.attributes);
      this.identities.set(job.id, identitySignature(job));
    }
    this.withoutUntracked(sample);
    for (const [id, count] of sample.jobProcessCount) {
      if (!ledger.hasJob(id)) continue;
      if (count > 0) {
        if (this.live.has(id)) continue;
        this.live.add(id);
        this.o.onLive?.(id);
        if (this.terminated.remove(id)) {
          ledger.reviveJob(id);
          this.o.log.debug(`job ${id} is back: its counters go on`);
        }
      } else if (!this.live.has(id) && !this.terminated.has(id) && ledger.finishedAt(id) === undefined) {
        // Known but never seen with a live process (it ended before a sample caught it, or has not
        // started): finished now, so it too is dropped after its retention.
        this.finish(id, nowMillis, sample);
      }
    }
    for (const id of [...this.live]) {
      if ((sample.jobProcessCount.get(id) ?? 0) > 0) continue;
      this.live.delete(id);
      this.finish(id, nowMillis, sample);
    }
    for (const id of this.terminated.expired(nowMillis)) this.drop(id, "retention", sample);
  }

  /**
   * Whether a new job may be held: below --max-jobs, or once the oldest finished job is dropped
   * to make room. Otherwise it is not tracked (its CPU stays in `system`), said once, counted once
   * per job. A job admitted after being refused counts its CPU from now (cpuOffset).
   */
  private admit(id: string, sample: DiscoveredSample): boolean {
    if (this.o.ledger.jobCount >= this.maxJobs) {
      const oldest = this.terminated.oldest();
      if (oldest !== undefined) {
        this.terminated.remove(oldest);
        this.drop(oldest, "max-jobs", sample);
      }
    }
    if (this.o.ledger.jobCount < this.maxJobs) {
      if (this.untracked.delete(id)) this.cpuOffset.set(id, sample.jobCpuSeconds.get(id) ?? 0);
      return true;
    }
    if (!this.untracked.has(id)) {
      if (this.untracked.size >= this.maxJobs) this.untracked.clear();
      this.untracked.add(id);
      this.droppedBy["max-jobs"]++;
      this.dropped++;
      this.o.log.warnOnce("lifecycle:max-jobs", `more than --max-jobs ${this.maxJobs} jobs live at once: new ones are not tracked (their CPU stays in system) until some finish; counted in powerprint.agent.jobs.dropped{powerprint.reason="max-jobs"}`);
    }
    return false;
  }

  /** Removes jobs that are not held from the sample (their figures stay in `system`); applies admission offsets. */
  private withoutUntracked(sample: DiscoveredSample): void {
    if (this.untracked.size === 0 && this.cpuOffset.size === 0) return;
    for (const id of this.untracked) forgetInSample(sample, id);
    // Their processes match no job either (a GPU process of one counts as system, like its CPU).
    if (this.untracked.size > 0) for (const [pid, job] of sample.members) if (this.untracked.has(job)) sample.members.delete(pid);
    for (const [id, offset] of this.cpuOffset) {
      const cpu = sample.jobCpuSeconds.get(id);
      if (cpu === undefined) continue;
      sample.jobCpuSeconds.set(id, Math.max(0, cpu - offset));
    }
  }

  private finish(id: string, nowMillis: number, sample: DiscoveredSample): void {
    this.o.ledger.finishJob(id, nowMillis);
    const evicted = this.terminated.add(id, nowMillis);
    if (evicted.length > 0) {
      this.o.log.warnOnce("lifecycle:capacity", `more than ${this.terminated.capacity} finished jobs retained: the oldest are dropped before their --retention ends`);
    }
    for (const e of evicted) this.drop(e, "max-finished-jobs", sample);
  }

  private drop(id: string, reason: DropReason, sample?: DiscoveredSample): void {
    this.o.ledger.dropJob(id);
    this.identities.delete(id);
    this.cpuOffset.delete(id);
    this.o.real?.forget?.(id);
    this.o.sim?.forget?.(id);
    this.dropped++;
    this.droppedBy[reason]++;
    if (sample) forgetInSample(sample, id);
  }
}

/** A job's figures out of a sample (dropped or not tracked: the sampler counts them as system). */
function forgetInSample(sample: DiscoveredSample, id: string): void {
  sample.jobCpuSeconds.delete(id);
  sample.jobProcessCount.delete(id);
  sample.jobRssBytes?.delete(id);
  (sample.jobs as Map<string, DiscoveredJob> | undefined)?.delete(id);
}

/** Moves a job's figures to its bounded id (a source gave an id over MAX_JOB_ID_CHARS). */
function renameJob(sample: DiscoveredSample, from: string, to: string): void {
  const move = <V>(m: Map<string, V> | undefined) => {
    if (!m?.has(from)) return;
    m.set(to, m.get(from)!);
    m.delete(from);
  };
  move(sample.jobCpuSeconds);
  move(sample.jobProcessCount);
  move(sample.jobRssBytes);
  for (const [pid, job] of sample.members) if (job === from) sample.members.set(pid, to);
}

const identitySignature = (job: DiscoveredJob): string => JSON.stringify([job.name, job.attributes]);
