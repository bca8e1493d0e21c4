/**
 * ProcessTracker: the real (/proc) ProcessSource. A job is a process (its root) and all its
 * descendants; membership is sticky, so a descendant re-parented to init (or a subreaper) after its
 * parent exits stays in the job.
 *
 * CPU accounting. The job's cumulative CPU is
 *
 *     Σ over live members (utime + stime + cutime + cstime)  +  exited  −  baseline
 *
 * When a member exits and its parent (a member) waits for it, the kernel adds the child's whole
 * total (own + its reaped children) to the parent's cutime/cstime, so the child leaves the live sum
 * and reappears, at least as large, in its parent's: nothing is lost or counted twice, and
 * short-lived descendants that were never seen (compiler workers, data-loader forks) still count
 * through their parent's cutime. A member whose parent at last sight was not a member (the job root,
 * reaped by powerprint; an orphan re-parented to init) keeps its last-seen total in `exited`: the
 * CPU it burned after the last sample is lost (at most one tick). `baseline` is what the root tree
 * had burned when the job was added. The result is clamped to be monotone.
 *
 * Identity is (pid, start time): a PID whose start time changed is a new process, in the job only
 * if its parent is.
 *
 * Cost. Each tick reads /proc/stat once (host CPU and the host fork counter) and the stat file of
 * each live member. New processes are looked for only when the fork counter moved, and then, in
 * order of preference: the PIDs allocated since the last tick (from /proc/loadavg's last PID;
 * cost grows with the host's fork rate, not its size), the members' task/TID/children files
 * (CONFIG_PROC_CHILDREN), or a full /proc scan that reads only PIDs it has not seen before (cost
 * grows with the host). A periodic full discovery (`fullScanIntervalTicks`) is the safety net.
 */
import { readlinkSync } from "node:fs";
import { join } from "node:path";
import { processKey } from "../procfs/types.js";
import type { ProcessSample, ProcessSource } from "../core/contracts.js";
import {
  DEFAULT_TICKS_PER_SECOND,
  ProcReader,
  clockTicksToSeconds,
  hasChildrenFile,
  listPids,
  pageSizeBytes,
  parseHostStat,
  parseLastPid,
  readChildrenWith,
  readEnviron,
  readEnvironAsync,
  readHostMemory,
} from "../procfs/reader.js";
import type { StatFields } from "../procfs/reader.js";

/** How new descendants are found. "auto" picks per tick, as described on ProcessTracker. */
export type DiscoveryMethod = "auto" | "pid-range" | "children" | "scan";

/** Options of ProcessTracker. */
export interface ProcessTrackerOptions {
  /** Filesystem root holding proc/ ("/" on a real host; a fixture tree in tests). */
  root?: string;
  /** Clock ticks per second of /proc times (USER_HZ, `getconf CLK_TCK`). Default 100. */
  ticksPerSecond?: number;
  /**
   * Every this many ticks, a thorough discovery (children walk where available, else a full scan)
   * runs even if the cheap path saw nothing: the safety net for races. 0 disables. Default 60.
   */
  fullScanIntervalTicks?: number;
  /** Force one discovery method (tests, benchmarks). Default "auto". */
  discovery?: DiscoveryMethod;
  /** Above this many PIDs allocated in one tick, the PID-range probe gives way. Default 1024. */
  maxPidRangeProbe?: number;
  /** The reader's own PID, to check that <root>/proc is in its PID namespace. Default process.pid. */
  selfPid?: number;
  /** Page size for RSS (stat field 24 is in pages), bytes. Default: probed from <root>/proc/self, else 4096. */
  pageSizeBytes?: number;
}

/** Counters of the work done, for notes, tests and the benchmark. */
export interface TrackerStats {
  ticks: number;
  /** Ticks where the fork counter had not moved, so no discovery ran. */
  discoverySkipped: number;
  pidRangeProbes: number;
  childrenWalks: number;
  fullScans: number;
  /** stat files read (members and candidates). */
  statReads: number;
  /** Times a live parent's cutime grew less than its vanished children's last totals (e.g. SIGCHLD ignored, so the kernel never added them): the shortfall was counted from the last-seen totals. */
  autoReapCorrections: number;
}

interface Member {
  pid: number;
  startTicks: number;
  key: string;
  jobId: string;
  ppid: number;
  /** Key and PID of the parent when it was a live member at last sight, else undefined. */
  parentKey: string | undefined;
  parentPid: number;
  ownTicks: number;
  childTicks: number;
  /** childTicks at the previous tick (equal to childTicks in the tick the member was found). */
  prevChildTicks: number;
  numThreads: number;
  /** Resident set size at the last read, pages. */
  rssPages: number;
  name?: string;
}

/** How many of the highest PIDs of a probed range are retried next tick when absent (a fork in flight: PID allocated, not yet in /proc). */
const RANGE_RETRY_TAIL = 8;
/** The kernel allocator wraps to this PID (RESERVED_PIDS in kernel/pid.c). */
const RESERVED_PIDS = 300;
/** PID_MAX_DEFAULT. */
const DEFAULT_PID_MAX = 32768;

interface JobState {
  id: string;
  rootPid: number;
  rootKey: string | undefined;
  exitedTicks: number;
  baselineTicks: number;
  lastTicks: number;
}

interface CacheEntry {
  startTicks: number;
  ppid: number;
  gen: number;
}

/**
 * The /proc-backed ProcessSource. See the file comment for the accounting and the discovery
 * methods. `sample()` never throws for vanished processes; an unreadable /proc/stat gives host
 * figures of 0 and a note.
 */
export class ProcessTracker implements ProcessSource {
  readonly root: string;
  readonly ticksPerSecond: number;
  private readonly fullScanIntervalTicks: number;
  private readonly method: DiscoveryMethod;
  private readonly maxPidRangeProbe: number;
  private readonly selfPid: number;
  private readonly reader: ProcReader;
  private readonly members = new Map<number, Member>();
  private readonly jobs = new Map<string, JobState>();
  private cache: Map<number, CacheEntry> | undefined;
  private cacheGen = 0;
  private lastForkCount: number | undefined;
  /** Fork counter when discovery last ran, and when the scan cache was last refreshed. */
  private forkCountAtDiscovery: number | undefined;
  private forkCountAtScan: number | undefined;
  private pidMax: number | undefined;
  private lastPid: number | undefined;
  private retryPids: number[] = [];
  private childrenSupported: boolean | undefined;
  private pidRangeUsable: boolean | undefined;
  private ticksSinceThorough = 0;
  private readonly notesSet = new Set<string>();
  /** Bytes per page of stat's RSS field. */
  readonly pageSizeBytes: number;
  /** Work counters. */
  readonly stats: TrackerStats = {
    ticks: 0,
    discoverySkipped: 0,
    pidRangeProbes: 0,
    childrenWalks: 0,
    fullScans: 0,
    statReads: 0,
    autoReapCorrections: 0,
  };

  constructor(options: ProcessTrackerOptions = {}) {
    this.root = options.root ?? "/";
    this.ticksPerSecond = options.ticksPerSecond ?? DEFAULT_TICKS_PER_SECOND;
    this.fullScanIntervalTicks = options.fullScanIntervalTicks ?? 60;
    this.method = options.discovery ?? "auto";
    this.maxPidRangeProbe = options.maxPidRangeProbe ?? 1024;
    this.selfPid = options.selfPid ?? process.pid;
    this.reader = new ProcReader(this.root);
    this.pageSizeBytes = options.pageSizeBytes ?? pageSizeBytes(this.root);
  }

  /**
   * Loud record of every fallback taken (e.g. "no task/TID/children files: scanning /proc"), for the
   * report. Each distinct note once.
   */
  get notes(): string[] {
    return [...this.notesSet];
  }

  /** Whether the kernel provides task/TID/children files (undefined until first needed). */
  get childrenFiles(): boolean | undefined {
    return this.childrenSupported;
  }

  /**
   * Registers a job rooted at `rootPid` and finds its existing descendants now. CPU already burned
   * by that tree is the job's baseline (the job counts from now). A root that cannot be read (already
   * gone) gives a job with no members and a note. With countFrom "process-start" the baseline is 0:
   * the tree's CPU since it started counts (the agent adds processes that started after it looked). A process already in another job moves to this one;
   * the other job keeps what it had counted.
   */
  addJob(jobId: string, rootPid: number, options: { countFrom?: "now" | "process-start" } = {}): void {
    const job: JobState = { id: jobId, rootPid, rootKey: undefined, exitedTicks: 0, baselineTicks: 0, lastTicks: 0 };
    this.jobs.set(jobId, job);
    const s = this.readStat(rootPid, true);
    if (!s || s.exitSignal === -1) {
      this.note(`job ${jobId}: root process ${rootPid} not found in ${this.reader.procDir}; the job has no processes`);
      return;
    }
    const root = this.addMember(s, jobId, undefined);
    job.rootKey = root.key;
    // Host counters first: whatever is forked after this read is left to the next tick's discovery.
    // Only for the first job: for later ones, the marks of the last tick must stay, or forks made
    // since by other jobs' members would be skipped.
    if (this.lastForkCount === undefined) {
      const host = this.readHost();
      this.lastForkCount = host?.forkCount;
      this.forkCountAtDiscovery = host?.forkCount;
    }
    this.discoverFrom([root]);
    // "process-start" (agent: a process that started after the agent looked): all its CPU is the job's.
    if (options.countFrom === "process-start") return;
    for (const m of this.members.values()) if (m.jobId === jobId) job.baselineTicks += m.ownTicks + m.childTicks;
  }

  /** Forgets a job and its members (for long-running agents). */
  removeJob(jobId: string): void {
    this.jobs.delete(jobId);
    for (const [pid, m] of this.members) if (m.jobId === jobId) this.members.delete(pid);
  }

  /**
   * Samples /proc now: refreshes members, accounts for those that exited, discovers new
   * descendants, and returns cumulative CPU seconds per job (monotone). Never throws for vanished
   * processes.
   */
  sample(): ProcessSample {
    this.stats.ticks++;
    const host = this.readHost();
    if (!host) this.note(`${this.reader.procDir}stat unreadable: host CPU reported as 0`);
    const memory = readHostMemory(this.root);
    if (!memory) this.note(`${this.reader.procDir}meminfo unreadable: memory energy split by CPU seconds only`);

    // 1-2. Refresh every member and account for those gone.
    const replacements = this.refreshMembers();

    // 3. New descendants.
    this.ticksSinceThorough++;
    const forkCount = host?.forkCount;
    const forked = forkCount === undefined || this.lastForkCount === undefined || forkCount !== this.lastForkCount;
    this.lastForkCount = forkCount;
    const thoroughDue = this.fullScanIntervalTicks > 0 && this.ticksSinceThorough >= this.fullScanIntervalTicks;
    if (this.members.size === 0) {
      this.lastPid = this.readLastPid();
      this.forkCountAtDiscovery = forkCount;
    } else if (forked || thoroughDue || replacements.length > 0) {
      this.discover(thoroughDue, replacements, forkCount);
    } else {
      this.stats.discoverySkipped++;
    }

    // 4. Parent links for next tick, and per-job sums.
    const liveTicks = new Map<string, number>();
    const count = new Map<string, number>();
    const memberJobs = new Map<number, string>();
    const rssPages = new Map<string, number>();
    for (const m of this.members.values()) {
      rssPages.set(m.jobId, (rssPages.get(m.jobId) ?? 0) + m.rssPages);
      const parent = this.members.get(m.ppid);
      if (parent && parent.jobId === m.jobId) {
        m.parentKey = parent.key;
        m.parentPid = parent.pid;
      } else {
        m.parentKey = undefined;
        m.parentPid = m.ppid;
      }
      liveTicks.set(m.jobId, (liveTicks.get(m.jobId) ?? 0) + m.ownTicks + m.childTicks);
      count.set(m.jobId, (count.get(m.jobId) ?? 0) + 1);
      memberJobs.set(m.pid, m.jobId);
    }
    const jobCpuSeconds = new Map<string, number>();
    const jobProcessCount = new Map<string, number>();
    const jobRssBytes = new Map<string, number>();
    for (const job of this.jobs.values()) {
      // Threads of a member are not members (exitSignal −1), so shared address spaces count once;
      // pages shared between processes (fork, shmem) count in each, as in ps and top.
      jobRssBytes.set(job.id, (rssPages.get(job.id) ?? 0) * this.pageSizeBytes);
      const ticks = job.exitedTicks + (liveTicks.get(job.id) ?? 0) - job.baselineTicks;
      // Monotone by construction except in rare races (see accountVanished); never go back.
      if (ticks > job.lastTicks) job.lastTicks = ticks;
      jobCpuSeconds.set(job.id, clockTicksToSeconds(job.lastTicks, this.ticksPerSecond));
      jobProcessCount.set(job.id, count.get(job.id) ?? 0);
    }
    return {
      jobCpuSeconds,
      hostBusyCpuSeconds: host ? clockTicksToSeconds(host.busyTicks, this.ticksPerSecond) : 0,
      hostTotalCpuSeconds: host ? clockTicksToSeconds(host.totalTicks, this.ticksPerSecond) : 0,
      members: memberJobs,
      jobProcessCount,
      jobRssBytes,
      ...(memory && { hostUsedMemoryBytes: memory.usedBytes, hostTotalMemoryBytes: memory.totalBytes }),
    };
  }

  /**
   * Steps 1 and 2 of sample() alone, between samples: every member's CPU read again and the CPU of
   * members gone since accounted for (into a live parent's reaped-children time, or kept as the
   * job's). Watching a few processes this closely keeps their last-seen CPU fresh, so the tail of a
   * member whose parent is outside the job (the top of a job: a container's entrypoint), and of the
   * children it reaped just before exiting, is lost only since the last refresh, not the last tick.
   * Does nothing (false) with more than `maxMembers` members (the cost would grow with the job).
   * New processes are found by the next sample.
   */
  refresh(maxMembers: number): boolean {
    if (this.members.size === 0 || this.members.size > maxMembers) return false;
    this.refreshMembers();
    return true;
  }

  /** Re-reads every member; accounts for the vanished; returns the PIDs now naming another process (for discovery). */
  private refreshMembers(): StatFields[] {
    const vanished: Member[] = [];
    const replacements: StatFields[] = [];
    for (const m of this.members.values()) {
      const s = this.readStat(m.pid, false);
      if (!s || s.startTicks !== m.startTicks) {
        vanished.push(m);
        this.members.delete(m.pid);
        if (s && s.exitSignal !== -1) replacements.push(s);
        continue;
      }
      m.prevChildTicks = m.childTicks;
      m.ownTicks = s.cpuTicks;
      m.childTicks = s.childCpuTicks;
      m.ppid = s.ppid;
      m.numThreads = s.numThreads;
      m.rssPages = s.rssPages;
    }
    // Where did the vanished members' CPU go?
    if (vanished.length > 0) this.accountVanished(vanished);
    return replacements;
  }

  /**
   * Selected environment variables of the job's root process, from /proc/PID/environ (as at exec).
   * {} when the job is unknown, its root has exited, or environ is unreadable.
   */
  jobEnvironment(jobId: string, names: readonly string[]): Record<string, string> {
    const job = this.jobs.get(jobId);
    if (!job || job.rootKey === undefined) return {};
    const s = this.readStat(job.rootPid, false);
    if (!s || processKey(s) !== job.rootKey) return {};
    return readEnviron(this.root, job.rootPid, names);
  }

  /** jobEnvironment with the environ read on the thread pool (readEnvironAsync). */
  async jobEnvironmentAsync(jobId: string, names: readonly string[]): Promise<Record<string, string>> {
    const job = this.jobs.get(jobId);
    if (!job || job.rootKey === undefined) return {};
    const s = this.readStat(job.rootPid, false);
    if (!s || processKey(s) !== job.rootKey) return {};
    return readEnvironAsync(this.root, job.rootPid, names);
  }

  // ---------------------------------------------------------------------------------------------

  private note(text: string): void {
    this.notesSet.add(text);
  }

  private readStat(pid: number, withName: boolean): StatFields | undefined {
    this.stats.statReads++;
    return this.reader.readStat(pid, withName);
  }

  private readHost(): ReturnType<typeof parseHostStat> {
    const text = this.reader.readText("stat");
    return text === undefined ? undefined : parseHostStat(text);
  }

  private readLastPid(): number | undefined {
    if (this.method !== "auto" && this.method !== "pid-range") return undefined;
    if (this.pidRangeUsable === undefined) this.pidRangeUsable = this.checkPidRangeUsable();
    if (!this.pidRangeUsable) return undefined;
    const text = this.reader.readText("loadavg");
    return text === undefined ? undefined : parseLastPid(text);
  }

  /**
   * /proc/loadavg reports the last PID of the READER's PID namespace; the range is meaningful only
   * if <root>/proc shows that same namespace (its "self" link is our PID) or is a fixture without
   * a "self" link.
   */
  private checkPidRangeUsable(): boolean {
    let self: string | undefined;
    try {
      self = readlinkSync(join(this.root, "proc", "self"));
    } catch {
      self = undefined;
    }
    if (self !== undefined && Number(self) !== this.selfPid) {
      this.note(`${this.reader.procDir} belongs to another PID namespace: new processes are found by walking children files or scanning /proc`);
      return false;
    }
    return true;
  }

  /** pid_max from <root>/proc/sys/kernel/pid_max; the kernel default 32768 (the cautious value) when unreadable. */
  private maxPid(): number {
    if (this.pidMax === undefined) {
      const n = Number(this.reader.readText("sys/kernel/pid_max")?.trim());
      this.pidMax = Number.isInteger(n) && n > RESERVED_PIDS ? n : DEFAULT_PID_MAX;
    }
    return this.pidMax;
  }

  private addMember(s: StatFields, jobId: string, parent: Member | undefined): Member {
    const existing = this.members.get(s.pid);
    if (existing && existing.startTicks === s.startTicks && existing.jobId !== jobId) {
      // Moves to the new job; the old job keeps what it counted so far.
      const old = this.jobs.get(existing.jobId);
      if (old) old.exitedTicks += existing.ownTicks + existing.childTicks;
    }
    const m: Member = {
      pid: s.pid,
      startTicks: s.startTicks,
      key: processKey(s),
      jobId,
      ppid: s.ppid,
      parentKey: parent?.key,
      parentPid: s.ppid,
      ownTicks: s.cpuTicks,
      childTicks: s.childCpuTicks,
      prevChildTicks: s.childCpuTicks,
      numThreads: s.numThreads,
      rssPages: s.rssPages,
      name: s.name,
    };
    this.members.set(s.pid, m);
    this.cache?.delete(s.pid);
    return m;
  }

  /**
   * A vanished member's last total is either inside a live member's cutime (it was reaped by its
   * parent, or by an ancestor through a chain of members that vanished in the same tick) or kept as
   * `exited` (its parent chain ends outside the job). For each live absorbing parent, if its cutime
   * grew by less than the last totals it should have absorbed (children auto-reaped because the
   * parent ignores SIGCHLD: the kernel then adds nothing), the shortfall is added from last-seen
   * totals. Children never seen add to cutime too, so this is a lower bound, never a double count.
   */
  private accountVanished(vanished: Member[]): void {
    const byKey = new Map<string, Member>();
    for (const v of vanished) byKey.set(v.key, v);
    const expected = new Map<Member, number>();
    for (const v of vanished) {
      let cur = v;
      for (let guard = 0; cur.parentKey !== undefined && byKey.has(cur.parentKey) && guard < vanished.length; guard++) {
        cur = byKey.get(cur.parentKey)!;
      }
      const total = v.ownTicks + v.childTicks;
      const absorber = cur.parentKey !== undefined ? this.members.get(cur.parentPid) : undefined;
      if (absorber && absorber.key === cur.parentKey) {
        expected.set(absorber, (expected.get(absorber) ?? 0) + total);
      } else {
        const job = this.jobs.get(v.jobId);
        if (job) job.exitedTicks += total;
      }
    }
    for (const [q, expectedTicks] of expected) {
      const grewTicks = q.childTicks - q.prevChildTicks;
      if (grewTicks < expectedTicks) {
        const job = this.jobs.get(q.jobId);
        if (job) job.exitedTicks += expectedTicks - grewTicks;
        this.stats.autoReapCorrections++;
        this.note(`a parent's cutime grew less than its exited children's CPU (SIGCHLD ignored?): their last-seen CPU time was counted instead`);
      }
    }
  }

  /** Finds new descendants of live members. `thorough`: the periodic safety net. */
  private discover(thorough: boolean, replacements: StatFields[], forkCount: number | undefined): void {
    const lastPidBefore = this.lastPid;
    const lastPidNow = this.readLastPid();
    this.lastPid = lastPidNow;
    // So many forks that the cyclic PID allocator may have gone all the way round: the range
    // (before, now] no longer holds every new PID.
    const forks = forkCount !== undefined && this.forkCountAtDiscovery !== undefined ? forkCount - this.forkCountAtDiscovery : undefined;
    this.forkCountAtDiscovery = forkCount;
    const mayHaveWrapped = forks === undefined || forks >= this.maxPid() - RESERVED_PIDS;
    if (replacements.length > 0) this.adopt(replacements);
    const method = this.method;
    if (method === "scan") return this.fullScan();
    if (method === "children") return this.childrenWalk() ? undefined : this.fullScan();
    if (thorough) {
      if (!this.childrenWalk()) this.fullScan();
      return;
    }
    if (lastPidBefore !== undefined && lastPidNow !== undefined) {
      const span = lastPidNow - lastPidBefore;
      if (span >= 0 && span <= this.maxPidRangeProbe && !mayHaveWrapped) {
        this.probeRange(lastPidBefore, lastPidNow);
        return;
      }
      if (method === "pid-range") this.note(`PID range too large or wrapped (${lastPidBefore} → ${lastPidNow}): fell back to a full discovery this tick`);
    } else if (method === "pid-range" && lastPidNow === undefined) {
      this.note(`${this.reader.procDir}loadavg gives no last PID: discovering by children files or /proc scan`);
    }
    if (!this.childrenWalk()) this.fullScan();
  }

  /** Initial discovery below new members (addJob). */
  private discoverFrom(start: Member[]): void {
    const lastPid = this.readLastPid();
    this.lastPid ??= lastPid;
    if (this.method !== "scan" && this.childrenWalk(start)) return;
    if (this.method !== "children" && lastPid !== undefined) {
      const lowest = Math.min(...start.map((m) => m.pid));
      // In run mode the root was just spawned: its descendants hold PIDs allocated since.
      if (lastPid >= lowest && lastPid - lowest <= this.maxPidRangeProbe) {
        this.probeRange(lowest, lastPid);
        return;
      }
    }
    this.fullScan(true);
  }

  /** Probes PIDs (from, to] plus last tick's retries; adopts those whose parent is a member. */
  private probeRange(from: number, to: number): void {
    this.stats.pidRangeProbes++;
    const found: StatFields[] = [];
    const retry: number[] = [];
    const pids = this.retryPids;
    this.retryPids = [];
    for (let pid = from + 1; pid <= to; pid++) pids.push(pid);
    for (const pid of pids) {
      const m = this.members.get(pid);
      if (m) continue;
      const s = this.readStat(pid, false);
      if (!s) {
        if (pid > to - RANGE_RETRY_TAIL && pid > from) retry.push(pid);
        continue;
      }
      if (s.exitSignal === -1) continue; // a thread's TID
      if (this.cache) this.cache.set(pid, { startTicks: s.startTicks, ppid: s.ppid, gen: this.cacheGen });
      found.push(s);
    }
    this.retryPids = retry;
    this.adopt(found);
  }

  /**
   * Walks task/TID/children from `start` (default: all live members), adopting new children and
   * walking below them. false when the kernel has no children files (then the caller scans).
   */
  private childrenWalk(start?: Member[]): boolean {
    if (this.childrenSupported === false) return false;
    const queue = start ?? [...this.members.values()];
    if (queue.length === 0) return true;
    if (this.childrenSupported === undefined) {
      this.childrenSupported = hasChildrenFile(this.root, queue[0].pid);
      if (!this.childrenSupported) {
        // A vanished first member is no evidence; decide on a live one.
        const alive = this.readStat(queue[0].pid, false);
        if (!alive) {
          this.childrenSupported = undefined;
          return false;
        }
        this.note(`no ${this.reader.procDir}PID/task/TID/children files (kernel without CONFIG_PROC_CHILDREN): descendants found by scanning /proc`);
        return false;
      }
    }
    this.stats.childrenWalks++;
    if (!start) this.ticksSinceThorough = 0;
    for (let i = 0; i < queue.length; i++) {
      const parent = queue[i];
      const children = readChildrenWith(this.reader, parent.pid, parent.numThreads);
      if (!children) continue;
      for (const pid of children) {
        const known = this.members.get(pid);
        if (known) continue;
        const s = this.readStat(pid, false);
        if (!s || s.ppid !== parent.pid || s.exitSignal === -1) continue;
        queue.push(this.addMember(s, parent.jobId, parent));
      }
    }
    return true;
  }

  /**
   * Lists <root>/proc and reads the stat of PIDs not seen before (a cache keeps start time and
   * parent of non-members); adopts those whose parent is a member. With `resolveCached` (a new
   * job), cached PIDs are also resolved through their cached parent links.
   */
  private fullScan(resolveCached = false): void {
    this.stats.fullScans++;
    this.ticksSinceThorough = 0;
    const gen = ++this.cacheGen;
    // A cached PID could have died and been reused only if the allocator went round since the
    // last scan: then the cache is dropped (and every PID read again).
    const forkCount = this.lastForkCount;
    if (
      this.cache &&
      (forkCount === undefined || this.forkCountAtScan === undefined || forkCount - this.forkCountAtScan >= this.maxPid() - RESERVED_PIDS)
    ) {
      this.cache = undefined;
    }
    this.forkCountAtScan = forkCount;
    if (!this.cache) this.cache = new Map();
    const cache = this.cache;
    const found: StatFields[] = [];
    for (const pid of listPids(this.root)) {
      if (this.members.has(pid)) continue;
      const e = cache.get(pid);
      if (e) {
        e.gen = gen;
        continue;
      }
      const s = this.readStat(pid, false);
      if (!s || s.exitSignal === -1) continue;
      cache.set(pid, { startTicks: s.startTicks, ppid: s.ppid, gen });
      found.push(s);
    }
    for (const [pid, e] of cache) if (e.gen !== gen) cache.delete(pid);
    this.adopt(found);
    if (resolveCached) {
      // Parent → cached children index, walked from the members; fresh stat for each one adopted.
      const byParent = new Map<number, number[]>();
      for (const [pid, e] of cache) {
        const list = byParent.get(e.ppid);
        if (list) list.push(pid);
        else byParent.set(e.ppid, [pid]);
      }
      const queue = [...this.members.values()];
      for (let i = 0; i < queue.length; i++) {
        for (const pid of byParent.get(queue[i].pid) ?? []) {
          if (this.members.has(pid)) continue;
          const s = this.readStat(pid, false);
          if (!s || s.ppid !== queue[i].pid) continue;
          queue.push(this.addMember(s, queue[i].jobId, queue[i]));
        }
      }
    }
  }

  /** Adopts candidates whose parent is a live member (repeatedly, so chains of new processes join). */
  private adopt(candidates: StatFields[]): void {
    if (candidates.length === 0) return;
    candidates.sort((a, b) => a.startTicks - b.startTicks);
    let pending = candidates;
    for (;;) {
      const rest: StatFields[] = [];
      for (const s of pending) {
        const parent = this.members.get(s.ppid);
        if (parent && !this.members.has(s.pid)) this.addMember(s, parent.jobId, parent);
        else if (!this.members.has(s.pid)) rest.push(s);
      }
      if (rest.length === pending.length) return;
      pending = rest;
    }
  }
}
