/**
 * NodeJobSource: the ProcessSource of `powerprint agent --mode node` (a DaemonSet). Jobs are the
 * node's pods, found by walking the kubelet's cgroup tree once per tick:
 *
 *     <hierarchy>/.../kubepods[.slice]/[<qos level>/]<pod cgroup>/<container cgroup>
 *
 * (cgroup v2 or v1 cpuacct; systemd driver `kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope`
 * or cgroupfs `kubepods/burstable/pod<uid>/<id>`). Per pod and tick: one CPU read of the POD's
 * cgroup (v2 cpu.stat usage_usec, v1 cpuacct.usage: the kernel's sum over all its containers and
 * processes, exited ones included), one directory listing and one cgroup.procs read per container
 * (members, pid → job, for matching GPU processes: NVML reports host PIDs, as cgroup.procs read from
 * the host's PID namespace does). So a tick costs per pod, not per process. Host CPU from
 * <procRoot>/proc/stat; processes outside every pod stay in `system`.
 *
 * Identity from a PodMetadataLookup (the kubelet cache): job name = pod name, attributes
 * k8s.pod.name, k8s.namespace.name, k8s.pod.uid, k8s.container.name (single-container pods).
 * Without metadata the pod UID is the job's id and name (said once). With `groupByLabel` KEY, all
 * pods whose label KEY has the same value form one job `KEY=value` (all ranks of a PyTorchJob);
 * pods without the label stay jobs of their own.
 *
 * Accounting. A job's CPU is Σ over its pods (pod counter − the pod's baseline) plus what its
 * departed pods had counted. Pods present at the first walk that finds the kubepods tree start from
 * their counter then;
 * pods appearing later start from 0 (they were created since the previous tick, so all their CPU
 * falls in the interval). A pod whose cgroup is removed between two ticks loses its CPU since the
 * last tick (at most one interval: the kubelet removes the cgroup with the pod). A job is in the
 * sample while any of its pods' cgroups exists.
 */
import { readdirSync, statSync, type Dirent } from "node:fs";
import { join } from "node:path";
import type { DiscoveredJob, Logger, ProcessSample, ProcessSource } from "../core/contracts.js";
import { CgroupReader } from "../cgroup/fs.js";
import { readCgroupMounts, type CgroupMounts } from "../cgroup/mounts.js";
import { identityFromProcCgroup, parseCgroupPath, type CgroupDriver, type CgroupVersion, type QosClass } from "../cgroup/path.js";
import type { FetchPodsResult } from "../k8s/client.js";
import type { PodMetadata, PodMetadataLookup } from "../k8s/pods.js";
import { DEFAULT_TICKS_PER_SECOND, HostCpuCounter, ProcReader, readEnviron, readEnvironAsync, readHostMemory } from "../procfs/reader.js";
import { RESOURCE_ATTR } from "../semconv.js";
import { boundText, MAX_JOB_ID_CHARS } from "../core/bounds.js";

/** OTel semconv key of a container's name (not in RESOURCE_ATTR). */
const K8S_CONTAINER_NAME = "k8s.container.name";

/** A mounted hierarchy to walk. */
export interface NodeHierarchy {
  /** Directory on this machine, e.g. "/sys/fs/cgroup" (v2) or "/sys/fs/cgroup/cpuacct" (v1). */
  dir: string;
  version: CgroupVersion;
}

/** Options of NodeJobSource. */
export interface NodeJobSourceOptions {
  hierarchy: NodeHierarchy;
  log: Logger;
  /** Root holding the host's proc/ (e.g. "/host"): /proc/stat and environ. Default "/". */
  procRoot?: string;
  /** Pod metadata by UID; `requestRefresh` is called (fire-and-forget) for a UID it does not know. */
  pods?: PodMetadataLookup & { requestRefresh?(uid?: string): void };
  /** Label key whose value groups pods into one job. */
  groupByLabel?: string;
  ticksPerSecond?: number;
  /** How deep below the hierarchy to look for the kubepods cgroup (kind nests it). Default 4. */
  searchDepth?: number;
  /**
   * A pod's container cgroups are listed again every this many ticks (staggered over pods), and at
   * once when one of them is gone; in between, the known containers' cgroup.procs are read. A
   * container added to a running pod (a restart, an init container giving way) is found within
   * this many ticks: its CPU counts from the start (it is in the pod's counter), only its PIDs
   * (for GPU matching) wait. Default 10; 1 lists every tick.
   */
  relistEveryTicks?: number;
  /** The v1 memory hierarchy's mount point, if any: pods' resident memory from its memory.stat where their own cgroup has none (v1 and hybrid nodes). */
  memoryRoot?: string;
  /**
   * Whether to read the containers' cgroup.procs each tick (members, process counts). They are
   * only needed to match GPU processes: without a GPU collector, false halves a tick's reads
   * (then `members` and `jobProcessCount` stay empty). Default true.
   */
  trackMembers?: boolean;
  /**
   * Files kept open between ticks (a pod's cpu.stat, each container's cgroup.procs), re-read with
   * pread: a third of the cost of open/read/close. Default 4096 (≈ 1,300 pods of 2 containers);
   * beyond it files are opened per read. 0 never holds. close() releases them.
   */
  maxOpenFiles?: number;
}

interface PodState {
  uid: string;
  dir: string;
  qosClass?: QosClass;
  jobId: string;
  baselineSeconds: number;
  lastSeconds: number;
  /** Container ids of the pod's container cgroups, from the last listing. */
  containerIds: string[];
  /** Directories of the container cgroups, from the last listing. */
  containerDirs: string[];
  /** Tick of the last listing. */
  listedAt: number;
  /** Stagger of the periodic listing. */
  phase: number;
  /** The identity last built for the pod's own job, and what it was built from. */
  identity?: { meta: PodMetadata | undefined; containerIds: string[]; job: DiscoveredJob };
  /**
   * Its job was dropped while the pod's cgroup stayed, empty (a leftover of a stuck pod cleanup):
   * not reported again until a process appears in it; then it counts from the counter it had
   * when it emptied (lastSeconds: an empty cgroup's counter does not move), never its history.
   */
  retired?: boolean;
  /** Resident memory at the last read, bytes (memory.stat; src/cgroup/fs.ts rssBytes), and where it was read. */
  rssBytes?: number;
  rssFrom?: "own" | "v1" | "none";
}

const isKubepods = (name: string): boolean => name === "kubepods" || name === "kubepods.slice" || name.endsWith("-kubepods.slice");
const isQosLevel = (name: string): boolean =>
  name === "burstable" || name === "besteffort" || name.endsWith("-burstable.slice") || name.endsWith("-besteffort.slice");

function listNames(dir: string): string[] | undefined {
  try {
    return readdirSync(dir);
  } catch {
    return undefined;
  }
}

function subdirs(dir: string): Dirent[] | undefined {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory());
  } catch {
    return undefined;
  }
}

/**
 * Picks the hierarchy the kubelet uses: the one (cgroup2, else v1 cpuacct) holding a kubepods
 * cgroup within `searchDepth` levels; undefined when neither does.
 */
export function selectNodeHierarchy(mounts: CgroupMounts, searchDepth = 4): NodeHierarchy | undefined {
  const candidates: NodeHierarchy[] = [];
  if (mounts.v2) candidates.push({ dir: mounts.v2.mountPoint, version: 2 });
  const v1 = mounts.v1.get("cpuacct");
  if (v1) candidates.push({ dir: v1.mountPoint, version: 1 });
  return candidates.find((h) => findKubepods(h.dir, searchDepth).length > 0);
}

/** Directories of kubepods cgroups below `dir` (breadth first, not below a kubepods one). */
export function findKubepods(dir: string, depth: number): string[] {
  const found: string[] = [];
  let level = [dir];
  for (let d = 0; d <= depth && level.length > 0 && found.length === 0; d++) {
    const next: string[] = [];
    for (const parent of level) {
      for (const e of subdirs(parent) ?? []) {
        if (isKubepods(e.name)) found.push(join(parent, e.name));
        else next.push(join(parent, e.name));
      }
    }
    level = next;
  }
  return found;
}

export class NodeJobSource implements ProcessSource {
  private readonly reader: CgroupReader;
  private readonly proc: ProcReader;
  private readonly procRoot: string;
  private readonly pods = new Map<string, PodState>();
  private readonly podsByDir = new Map<string, PodState>();
  /** CPU seconds counted by pods that left each job (or moved to another job). */
  private readonly departed = new Map<string, number>();
  private kubepods: string[] | undefined;
  private samples = 0;
  private readonly hostCpu: HostCpuCounter;
  private saidNoKubepods = false;
  /** A checkpoint's pod counters (resumeFrom), used at the first walk; the jobs that counted from them. */
  private saved: Map<string, { jobId: string; seconds: number }> | undefined;
  private readonly resumed = new Set<string>();
  /** When the previous walk ended (wall clock: compared with cgroup change times). */
  private lastWalkWallMillis: number | undefined;
  private foundKubepods = false;
  /** Directory names under kubepods that are no pods (not parsed again). */
  private readonly notPods = new Set<string>();
  /** Counters for probe and the benchmark. */
  readonly stats = { ticks: 0, podsSeen: 0, cpuReads: 0, procsReads: 0, dirListings: 0, containerListings: 0 };

  constructor(private readonly o: NodeJobSourceOptions) {
    this.reader = new CgroupReader(o.maxOpenFiles ?? 4096);
    this.procRoot = o.procRoot ?? "/";
    this.proc = new ProcReader(this.procRoot);
    this.hostCpu = new HostCpuCounter(this.proc, o.ticksPerSecond ?? DEFAULT_TICKS_PER_SECOND);
  }

  /** Entries held (for probe and tests: bounded by the pods alive now). */
  stateSizes(): { pods: number; podDirs: number; departedJobs: number; openFiles: number } {
    return { pods: this.pods.size, podDirs: this.podsByDir.size, departedJobs: this.departed.size, openFiles: this.reader.heldFiles };
  }

  /** Node mode discovers its jobs; explicit registration has no meaning here (ignored). */
  addJob(_jobId: string, _rootPid: number): void {}

  sample(): ProcessSample {
    this.stats.ticks++;
    this.samples++;
    // Pods found in the first walk that finds the kubepods tree were there before us: they count
    // from now. (Not simply the first sample: the tree may appear later, with the kubelet.)
    const first = !this.foundKubepods;
    const seen = new Set<string>();
    const members = new Map<number, string>();
    const jobProcessCount = new Map<string, number>();
    const meta = new Map<string, PodMetadata | undefined>();
    const tracking = this.o.trackMembers ?? true;
    const jobRssBytes = new Map<string, number>();
    for (const podDir of this.podDirs()) {
      const pod = this.observePod(podDir, first, meta);
      if (!pod) continue;
      seen.add(pod.uid);
      if (pod.retired && !this.revived(pod, tracking)) continue;
      if (tracking) {
        this.readMembers(pod, members, jobProcessCount);
        const rss = this.readRss(pod);
        if (rss !== undefined) jobRssBytes.set(pod.jobId, (jobRssBytes.get(pod.jobId) ?? 0) + rss);
      } else if (pod.listedAt === -Infinity) this.listContainers(pod); // container ids, for k8s.container.name
    }
    this.dropGone(seen);
    this.lastWalkWallMillis = Date.now();
    if (this.kubepods && this.kubepods.length > 0) {
      this.foundKubepods = true;
      // The saved counters served the first walk that found the pods.
      this.saved = undefined;
    }
    if (this.reader.invisiblePids > 0) {
      this.o.log.warnOnce(
        "node-source:invisible-pids",
        "pod processes are outside this PID namespace (cgroup.procs shows them as 0): pod CPU is exact, but GPU processes cannot be matched to pods; run the DaemonSet with hostPID: true",
      );
    }
    const { jobCpuSeconds, jobs } = this.jobsNow(meta);
    for (const id of this.departed.keys()) if (!jobs.has(id)) this.departed.delete(id);
    if (tracking) for (const id of jobs.keys()) if (!jobProcessCount.has(id)) jobProcessCount.set(id, 0);
    // Memory's static energy is split by resident memory, as in run (where memory.stat is readable).
    const memory = jobRssBytes.size > 0 ? readHostMemory(this.procRoot) : undefined;
    return {
      jobCpuSeconds,
      ...this.hostCpu.read(),
      members,
      jobProcessCount,
      jobs,
      ...(memory && { jobRssBytes, hostUsedMemoryBytes: memory.usedBytes, hostTotalMemoryBytes: memory.totalBytes }),
    };
  }

  /** One pod cgroup of this walk: its state, job and CPU counter read. undefined for a directory that is no pod. */
  private observePod(podDir: { name: string; path: string }, first: boolean, meta: Map<string, PodMetadata | undefined>): PodState | undefined {
    let pod = this.podsByDir.get(podDir.path);
    let uid: string;
    if (pod) uid = pod.uid;
    else {
      if (this.notPods.has(podDir.name)) return undefined;
      const id = parseCgroupPath("/" + podDir.name);
      if (!id.podUid) {
        if (this.notPods.size >= 10_000) this.notPods.clear();
        this.notPods.add(podDir.name);
        return undefined;
      }
      uid = id.podUid;
    }
    pod ??= this.pods.get(uid);
    // A retired leftover: nothing to read but whether a process came (revived()).
    if (pod?.retired) return pod;
    const m = this.o.pods?.byUid(uid);
    meta.set(uid, m);
    const jobId = this.jobIdOf(uid, m);
    const cpu = this.reader.cpuSeconds(podDir.path, this.o.hierarchy.version);
    this.stats.cpuReads++;
    if (!pod) {
      this.stats.podsSeen++;
      // Pods of the first walk were there before us; a later one counts from 0 only if its cgroup
      // was made since the last walk (else it was there unseen: its history is not the interval's).
      let start = first || this.existedBefore(podDir.path) ? cpu ?? 0 : 0;
      const saved = first ? this.saved?.get(uid) : undefined;
      if (saved !== undefined && cpu !== undefined && saved.seconds <= cpu) {
        start = saved.seconds;
        this.resumed.add(jobId);
      }
      pod = { uid, dir: podDir.path, jobId, baselineSeconds: start, lastSeconds: start, containerIds: [], containerDirs: [], listedAt: -Infinity, phase: this.stats.podsSeen };
      this.pods.set(uid, pod);
      this.podsByDir.set(podDir.path, pod);
    } else if (pod.jobId !== jobId) {
      // Metadata arrived (or a label changed): what the pod counted so far stays with the old job.
      this.addDeparted(pod.jobId, pod.lastSeconds - pod.baselineSeconds);
      pod.jobId = jobId;
      pod.baselineSeconds = pod.lastSeconds;
    }
    if (cpu !== undefined && cpu > pod.lastSeconds) pod.lastSeconds = cpu;
    return pod;
  }

  /** Whether the cgroup at `dir` was made before the previous walk (its change time is older). */
  private existedBefore(dir: string): boolean {
    if (this.lastWalkWallMillis === undefined) return false;
    try {
      // A second of slack: a cgroup made just as the last walk listed its parent is still new.
      return statSync(dir).ctimeMs < this.lastWalkWallMillis - 1000;
    } catch {
      return false;
    }
  }

  /**
   * A retired pod (its job dropped, its cgroup left empty): revived once a process is in it
   * (cgroup.procs; without member tracking, once its CPU counter moved), counting from the counter
   * it had when it emptied. false while it stays empty: it is not reported.
   */
  private revived(pod: PodState, tracking: boolean): boolean {
    if (tracking) {
      let n = 0;
      if (this.stats.ticks - pod.listedAt >= Math.max(1, this.o.relistEveryTicks ?? 10)) this.listContainers(pod);
      for (const dir of pod.containerDirs) n += Math.max(0, this.reader.forEachProc(dir, () => undefined, this.o.hierarchy.version));
      if (n === 0) return false;
    }
    const cpu = this.reader.cpuSeconds(pod.dir, this.o.hierarchy.version);
    this.stats.cpuReads++;
    if (!tracking && !(cpu !== undefined && cpu > pod.lastSeconds)) return false;
    pod.retired = false;
    pod.baselineSeconds = pod.lastSeconds;
    pod.identity = undefined;
    if (cpu !== undefined && cpu > pod.lastSeconds) pod.lastSeconds = cpu;
    this.o.log.debug(`node mode: pod ${pod.uid} has a process again: a job once more, counting from now`);
    return true;
  }

  /**
   * The pod's resident memory from memory.stat, bytes: its own cgroup's (cgroup2 with the memory
   * controller), else the v1 memory hierarchy's at the same path (v1 nodes; hybrid ones, whose
   * cgroup2 tree has no memory controller). Where it was found is remembered per pod until the
   * next container listing. undefined when neither is readable.
   */
  private readRss(pod: PodState): number | undefined {
    const own = this.o.hierarchy.version === 2 ? pod.dir : undefined;
    const v1 = this.o.memoryRoot !== undefined ? this.o.memoryRoot + pod.dir.slice(this.o.hierarchy.dir.length) : undefined;
    let rss: number | undefined;
    if (pod.rssFrom === "none") return undefined;
    if (pod.rssFrom !== "v1" && own !== undefined) {
      rss = this.reader.rssBytes(own, 2);
      if (rss !== undefined) pod.rssFrom = "own";
    }
    if (rss === undefined && pod.rssFrom !== "own" && v1 !== undefined) {
      rss = this.reader.rssBytes(v1, 1);
      if (rss !== undefined) pod.rssFrom = "v1";
    }
    if (rss !== undefined) pod.rssBytes = rss;
    // Neither readable: not tried again until the pod's containers are listed again.
    else if (pod.rssFrom === undefined) pod.rssFrom = "none";
    return rss;
  }

  /** Each reported pod's CPU counter as of the last sample, by UID, with its job (DiscoveringSource.resumeCounters). */
  resumeCounters(): Record<string, { jobId: string; seconds: number }> {
    const out: Record<string, { jobId: string; seconds: number }> = Object.create(null) as Record<string, { jobId: string; seconds: number }>;
    for (const pod of this.pods.values()) if (!pod.retired) out[pod.uid] = { jobId: pod.jobId, seconds: pod.lastSeconds };
    return out;
  }

  /**
   * A checkpoint's pod counters (DiscoveringSource.resumeFrom): at the first walk, a pod found
   * again counts from its saved counter instead of from now, so the downtime's CPU is its job's
   * (a counter below the saved one is another cgroup of the same name: it counts from now).
   */
  resumeFrom(saved: Readonly<Record<string, { jobId: string; seconds: number }>>): void {
    this.saved = new Map(Object.entries(saved));
  }

  /** Jobs whose pods counted from saved counters at the first walk. */
  resumedJobs(): ReadonlySet<string> {
    return this.resumed;
  }

  /**
   * Forgets a dropped job: its pods whose cgroups remain (empty: a finished job has no process)
   * are retired, so the walk that finds them again does not make them a new job with their whole
   * CPU history; a process appearing in one revives it (revived()).
   */
  forget(jobId: string): void {
    for (const pod of this.pods.values()) {
      if (pod.jobId !== jobId) continue;
      pod.retired = true;
    }
    this.departed.delete(jobId);
  }

  /** Pods gone since the last tick: their counted CPU stays with their job; their held files are closed. */
  private dropGone(seen: ReadonlySet<string>): void {
    for (const [uid, pod] of this.pods) {
      if (seen.has(uid)) continue;
      if (!pod.retired) this.addDeparted(pod.jobId, pod.lastSeconds - pod.baselineSeconds);
      this.pods.delete(uid);
      this.podsByDir.delete(pod.dir);
      this.reader.forget([join(pod.dir, this.o.hierarchy.version === 2 ? "cpu.stat" : "cpuacct.usage"), ...pod.containerDirs.map((d) => join(d, "cgroup.procs"))]);
    }
  }

  /**
   * The job of one host PID, from <procRoot>/proc/PID/cgroup (one small read): for matching a GPU's
   * few processes when members are not tracked (trackMembers false). undefined when the process is
   * gone, outside every pod, or in a pod not seen by the last sample.
   */
  jobOfPid(pid: number): string | undefined {
    const text = this.proc.readText(`${pid}/cgroup`);
    if (text === undefined) return undefined;
    const uid = identityFromProcCgroup(text).podUid;
    return uid === undefined ? undefined : this.pods.get(uid)?.jobId;
  }

  /** UIDs of the pods a job holds now (one for an ungrouped pod's job; --group-by-label jobs may hold several). */
  podUidsOfJob(jobId: string): string[] {
    if (this.pods.get(jobId)?.jobId === jobId) return [jobId];
    return [...this.pods.values()].filter((p) => p.jobId === jobId).map((p) => p.uid);
  }

  /** jobEnvironment with each environ read on the thread pool (readEnvironAsync). */
  async jobEnvironmentAsync(jobId: string, names: readonly string[]): Promise<Record<string, string>> {
    for (const pids of this.pidsOfJob(jobId)) {
      for (const pid of pids) {
        const env = await readEnvironAsync(this.procRoot, pid, names);
        if (Object.keys(env).length > 0) return env;
      }
    }
    return {};
  }

  /** The PIDs of each container of the job's pods (read when asked). */
  private *pidsOfJob(jobId: string): Generator<readonly number[]> {
    for (const pod of [...this.pods.values()]) {
      if (pod.jobId !== jobId) continue;
      for (const c of subdirs(pod.dir) ?? []) yield this.reader.procs(join(pod.dir, c.name), this.o.hierarchy.version) ?? [];
    }
  }

  jobEnvironment(jobId: string, names: readonly string[]): Record<string, string> {
    for (const pod of this.pods.values()) {
      if (pod.jobId !== jobId) continue;
      for (const c of subdirs(pod.dir) ?? []) {
        const pids = this.reader.procs(join(pod.dir, c.name), this.o.hierarchy.version);
        for (const pid of pids ?? []) {
          const env = readEnviron(this.procRoot, pid, names);
          if (Object.keys(env).length > 0) return env;
        }
      }
    }
    return {};
  }

  private addDeparted(jobId: string, seconds: number): void {
    if (seconds > 0) this.departed.set(jobId, (this.departed.get(jobId) ?? 0) + seconds);
  }

  private jobIdOf(uid: string, m: PodMetadata | undefined): string {
    const key = this.o.groupByLabel;
    const value = key && m ? m.labels[key] : undefined;
    if (value !== undefined) return boundText(`${key}=${value}`, MAX_JOB_ID_CHARS);
    if (!m) {
      this.o.pods?.requestRefresh?.(uid);
      this.o.log.warnOnce(
        "node-source:no-metadata",
        `no pod metadata for pod ${uid}${this.o.pods ? " (not in the kubelet's answer yet, or the kubelet is unreachable)" : " (no kubelet or API server configured)"}: such pods are named by their UID`,
      );
    }
    return uid;
  }

  /** Reads the cgroup.procs of a pod's containers, listing them again when due or when one is gone. */
  private readMembers(pod: PodState, members: Map<number, string>, counts: Map<string, number>): void {
    const every = Math.max(1, this.o.relistEveryTicks ?? 10);
    const tick = this.stats.ticks;
    if (tick - pod.listedAt >= every) {
      const firstListing = pod.listedAt === -Infinity;
      this.listContainers(pod);
      // Staggered: pods found in the same tick are not all listed again in the same later tick.
      if (firstListing) pod.listedAt = tick - (pod.phase % every);
    }
    const jobId = pod.jobId;
    const add = (pid: number): void => void members.set(pid, jobId);
    let n = counts.get(jobId) ?? 0;
    for (let pass = 0; pass < 2; pass++) {
      let lost = false;
      let got = 0;
      for (const dir of pod.containerDirs) {
        this.stats.procsReads++;
        const c = this.reader.forEachProc(dir, add, this.o.hierarchy.version);
        if (c < 0) lost = true;
        else got += c;
      }
      // A container's cgroup went away (restart, pod shutting down): list again, read again once.
      if (!lost || pass === 1 || pod.listedAt === tick) {
        n += got;
        break;
      }
      this.listContainers(pod);
    }
    counts.set(jobId, n);
  }

  private listContainers(pod: PodState): void {
    pod.rssFrom = undefined;
    this.stats.dirListings++;
    this.stats.containerListings++;
    pod.listedAt = this.stats.ticks;
    const before = pod.containerDirs;
    pod.containerIds = [];
    pod.containerDirs = [];
    for (const c of subdirs(pod.dir) ?? []) {
      const cid = parseCgroupPath("/" + c.name).containerId;
      if (cid) pod.containerIds.push(cid);
      pod.containerDirs.push(join(pod.dir, c.name));
    }
    const now = new Set(pod.containerDirs);
    this.reader.forget(before.filter((d) => !now.has(d)).map((d) => join(d, "cgroup.procs")));
  }

  /** Releases the files held open between ticks. The source may be sampled again afterwards. */
  close(): void {
    this.reader.close();
  }

  /**
   * The kubepods cgroups' pod directories, located once and again when lost. Plain name listings
   * (no file types: control files never look like pods), paths by concatenation: this runs for
   * every pod on every tick.
   */
  private podDirs(): { name: string; path: string }[] {
    if (!this.kubepods || this.kubepods.length === 0 || this.samples % 60 === 0) {
      this.kubepods = findKubepods(this.o.hierarchy.dir, this.o.searchDepth ?? 4);
      if (this.kubepods.length === 0 && !this.saidNoKubepods) {
        this.saidNoKubepods = true;
        this.o.log.warnOnce("node-source:no-kubepods", `no kubepods cgroup under ${this.o.hierarchy.dir} (cgroup v${this.o.hierarchy.version}): no pods on this node yet, or the host's cgroup tree is not mounted there`);
      }
    }
    const out: { name: string; path: string }[] = [];
    for (const kp of this.kubepods) {
      const names = listNames(kp);
      this.stats.dirListings++;
      if (!names) {
        this.kubepods = undefined; // gone (kubelet restarted with another driver?): look again next tick
        continue;
      }
      for (const name of names) {
        if (isQosLevel(name)) {
          const level = kp + "/" + name;
          this.stats.dirListings++;
          for (const p of listNames(level) ?? []) if (p.includes("pod")) out.push({ name: p, path: level + "/" + p });
        } else if (name.includes("pod")) {
          out.push({ name, path: kp + "/" + name });
        }
      }
    }
    return out;
  }

  private jobsNow(meta: Map<string, PodMetadata | undefined>): { jobCpuSeconds: Map<string, number>; jobs: Map<string, DiscoveredJob> } {
    const jobCpuSeconds = new Map<string, number>();
    const byJob = new Map<string, PodState[]>();
    for (const pod of this.pods.values()) {
      if (pod.retired) continue;
      jobCpuSeconds.set(pod.jobId, (jobCpuSeconds.get(pod.jobId) ?? 0) + (pod.lastSeconds - pod.baselineSeconds));
      const list = byJob.get(pod.jobId);
      if (list) list.push(pod);
      else byJob.set(pod.jobId, [pod]);
    }
    for (const [id, s] of jobCpuSeconds) jobCpuSeconds.set(id, s + (this.departed.get(id) ?? 0));
    const jobs = new Map<string, DiscoveredJob>();
    for (const [id, pods] of byJob) {
      // A pod's own job keeps its identity object while its metadata and containers stay the same.
      const pod = pods[0];
      const m = meta.get(pod.uid);
      if (pods.length === 1 && id === pod.uid) {
        const c = pod.identity;
        if (c && c.meta === m && c.containerIds === pod.containerIds) {
          jobs.set(id, c.job);
          continue;
        }
        const job = this.identity(id, pods, meta);
        pod.identity = { meta: m, containerIds: pod.containerIds, job };
        jobs.set(id, job);
      } else jobs.set(id, this.identity(id, pods, meta));
    }
    return { jobCpuSeconds, jobs };
  }

  private identity(id: string, pods: PodState[], meta: Map<string, PodMetadata | undefined>): DiscoveredJob {
    const metas = pods.map((p) => meta.get(p.uid));
    const attributes: Record<string, string> = {};
    const namespaces = new Set(metas.map((m) => m?.namespace).filter((n): n is string => n !== undefined));
    if (namespaces.size === 1) attributes[RESOURCE_ATTR.k8sNamespaceName] = [...namespaces][0];
    if (pods.length === 1 && id === pods[0].uid) {
      const m = metas[0];
      attributes[RESOURCE_ATTR.k8sPodUid] = pods[0].uid;
      if (m) {
        attributes[RESOURCE_ATTR.k8sPodName] = m.name;
        if (m.nodeName) attributes[RESOURCE_ATTR.k8sNodeName] = m.nodeName;
        const names = pods[0].containerIds.map((cid) => m.containers.find((c) => c.id === cid)?.name).filter((n): n is string => n !== undefined);
        if (names.length === 1 && pods[0].containerIds.length === 1) attributes[K8S_CONTAINER_NAME] = names[0];
      }
      return { id, name: m?.name ?? pods[0].uid, attributes };
    }
    const key = this.o.groupByLabel!;
    const value = id.slice(key.length + 1);
    attributes[`k8s.pod.label.${key}`] = value;
    return { id, name: value, attributes };
  }
}

/** Options of createNodeJobSource: where the host's /proc and /sys are, plus NodeJobSource's own. */
export interface NodeSetupOptions extends Omit<NodeJobSourceOptions, "hierarchy" | "procRoot"> {
  /** Root holding the host's proc/ ("/" on the host; "/host" when /host/proc is the host's). */
  procRoot?: string;
  /** The host's /sys ("/sys"; "/host/sys" in a DaemonSet). */
  sysRoot?: string;
}

/** createNodeJobSource's result. */
export type NodeSetup =
  | { status: "ok"; source: NodeJobSource; hierarchy: NodeHierarchy; kubepods: string[]; driver?: CgroupDriver }
  | { status: "unavailable"; reason: string };

/**
 * Finds the host's cgroup hierarchy holding the kubelet's tree (mountinfo of the host's init when
 * procRoot is not "/", else of this process; mount points rebased on sysRoot) and makes a
 * NodeJobSource on it. Never throws.
 */
export function createNodeJobSource(opts: NodeSetupOptions): NodeSetup {
  const procRoot = opts.procRoot ?? "/";
  const mounts = readCgroupMounts({ procRoot, sysRoot: opts.sysRoot, pid: procRoot === "/" ? "self" : 1 });
  if (!mounts.v2 && !mounts.v1.has("cpuacct")) {
    return { status: "unavailable", reason: `no cgroup2 or v1 cpuacct mount in ${join(procRoot, "proc", procRoot === "/" ? "self" : "1", "mountinfo")}` };
  }
  const depth = opts.searchDepth ?? 4;
  const hierarchy = selectNodeHierarchy(mounts, depth);
  if (!hierarchy) {
    const where = [mounts.v2?.mountPoint, mounts.v1.get("cpuacct")?.mountPoint].filter(Boolean).join(" or ");
    return { status: "unavailable", reason: `no kubepods cgroup under ${where}: not a Kubernetes node, or the host's /sys is not mounted there (--sys-root)` };
  }
  const kubepods = findKubepods(hierarchy.dir, depth);
  const driver: CgroupDriver = kubepods.some((k) => k.endsWith(".slice")) ? "systemd" : "cgroupfs";
  const { sysRoot: _sysRoot, ...rest } = opts;
  // v1 (and hybrid) nodes: a pod's memory.stat lives in the memory hierarchy, at the same path.
  const memoryRoot = mounts.v1.get("memory")?.mountPoint;
  return { status: "ok", source: new NodeJobSource({ ...rest, procRoot, hierarchy, ...(memoryRoot && { memoryRoot }) }), hierarchy, kubepods, driver };
}

/** What node mode would find here, for `powerprint probe` in agent context. */
export interface NodeProbe {
  cgroup:
    | { status: "ok"; version: CgroupVersion; dir: string; driver?: CgroupDriver; kubepods: string[]; pods: number }
    | { status: "unavailable"; reason: string };
  /** Absent when no pod source was given. */
  podMetadata?: { status: "ok"; pods: number; matched: number } | { status: "error"; reason: string };
}

/**
 * Probes node mode: the hierarchy and driver (createNodeJobSource), how many pod cgroups one walk
 * finds, and, with `fetchPods`, whether pod metadata comes and how many of the pods found it names.
 * Never throws; reads the network only through `fetchPods`.
 */
export async function probeNodeMode(
  opts: { procRoot?: string; sysRoot?: string; log: Logger; fetchPods?: () => Promise<FetchPodsResult> },
): Promise<NodeProbe> {
  const setup = createNodeJobSource({ procRoot: opts.procRoot, sysRoot: opts.sysRoot, log: opts.log, trackMembers: false, maxOpenFiles: 0 });
  const out: NodeProbe = { cgroup: setup.status === "ok" ? { status: "ok", version: setup.hierarchy.version, dir: setup.hierarchy.dir, kubepods: setup.kubepods, pods: 0 } : setup };
  let uids: string[] = [];
  if (setup.status === "ok" && out.cgroup.status === "ok") {
    if (setup.driver) out.cgroup.driver = setup.driver;
    uids = [...(setup.source.sample().jobs?.keys() ?? [])];
    out.cgroup.pods = uids.length;
  }
  if (opts.fetchPods) {
    const r = await opts.fetchPods();
    out.podMetadata = r.status === "ok" ? { status: "ok", pods: r.pods.length, matched: r.pods.filter((p) => uids.includes(p.uid)).length } : { status: "error", reason: r.reason };
  }
  return out;
}
