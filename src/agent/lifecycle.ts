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

export type { DiscoveredJob };

/** A ProcessSource that finds its jobs itself (pod, selector, node, scenario). */
export interface DiscoveringSource extends ProcessSource {
  /** Forgets a dropped job: it is no longer reported; if it comes back it counts from zero. */
  forget?(jobId: string): void;
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
export class AgentSource implements ProcessSource {
  /** Jobs seen live and not finished since. */
  private readonly live = new Set<string>();
  readonly terminated: TerminatedJobs;
  /** Jobs dropped so far (retention passed or capacity), for stats and tests. */
  dropped = 0;
  /** Identity last registered per job (name + attributes): metadata that arrives later updates it. */
  private readonly identities = new Map<string, string>();
  /** Live member processes of the last sample, pid → job (the /jobs view). */
  lastMembers: ReadonlyMap<number, string> = new Map();

  constructor(private readonly o: AgentSourceOptions) {
    this.terminated = new TerminatedJobs(o.retentionMillis, o.maxTerminated ?? 10_000);
  }

  /** Takes over a restored ledger: its live jobs are live until a sample says otherwise, its finished ones retained from their finish time. */
  adoptRestored(jobIds: Iterable<string>): void {
    for (const id of jobIds) {
      const at = this.o.ledger.finishedAt(id);
      if (at === undefined) this.live.add(id);
      else for (const e of this.terminated.add(id, at)) this.drop(e);
    }
  }

  addJob(jobId: string, rootPid: number): void {
    this.o.real?.addJob(jobId, rootPid);
  }

  jobEnvironment(jobId: string, names: readonly string[]): Record<string, string> {
    return this.o.real?.jobEnvironment(jobId, names) ?? {};
  }

  /** A GPU process the sample's members lack, resolved by the real source (node mode: PID → cgroup → pod). */
  jobOfPid(pid: number): string | undefined {
    return this.o.real?.jobOfPid?.(pid);
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
    for (const job of sample.jobs?.values() ?? []) {
      const signature = identitySignature(job);
      if (!ledger.hasJob(job.id)) ledger.registerJob(job.id, job.name, { ...this.o.extraAttributes, ...job.attributes }, nowMillis);
      else if (this.identities.get(job.id) !== signature) ledger.updateJobIdentity(job.id, job.name, job.attributes);
      this.identities.set(job.id, signature);
    }
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
    for (const id of this.terminated.expired(nowMillis)) this.drop(id, sample);
  }

  private finish(id: string, nowMillis: number, sample: DiscoveredSample): void {
    this.o.ledger.finishJob(id, nowMillis);
    const evicted = this.terminated.add(id, nowMillis);
    if (evicted.length > 0) {
      this.o.log.warnOnce("lifecycle:capacity", `more than ${this.terminated.capacity} finished jobs retained: the oldest are dropped before their --retention ends`);
    }
    for (const e of evicted) this.drop(e, sample);
  }

  private drop(id: string, sample?: DiscoveredSample): void {
    this.o.ledger.dropJob(id);
    this.identities.delete(id);
    this.o.real?.forget?.(id);
    this.o.sim?.forget?.(id);
    this.dropped++;
    if (sample) {
      sample.jobCpuSeconds.delete(id);
      sample.jobProcessCount.delete(id);
    }
  }
}

const identitySignature = (job: DiscoveredJob): string => JSON.stringify([job.name, job.attributes]);
