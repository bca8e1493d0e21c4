/**
 * PodJobSource: `powerprint agent --mode pod`, a sidecar in a pod with `shareProcessNamespace:
 * true`. Every process of the PID namespace belongs to the pod's one job, except PID 1 (the pause
 * container) and the agent's own tree (itself, its ancestors below PID 1: a wrapper shell or tini
 * of the sidecar container, and its descendants: nvidia-smi helpers). Identity from the downward
 * API volume (pod name, namespace, uid, and the job labels when mounted).
 *
 * Each tick lists `<procRoot>/proc` (a pod holds tens of processes) and adds every top-level
 * process not yet tracked (parent outside the job: PID 1, or 0 for a container's init whose parent
 * is in the node's namespace) as a process tree of the job, counted by the run mode's
 * ProcessTracker (see RootedJobs). Processes present at the first look count from then; those
 * started later count from their start (they are found at most one interval late).
 */
import { listPids, uptimeTicks } from "../procfs/reader.js";
import type { DiscoveredJob, ProcessSample } from "../core/contracts.js";
import { RESOURCE_ATTR } from "../semconv.js";
import { boundJob } from "../core/bounds.js";
import type { DownwardPodInfo } from "../k8s/downward.js";
import { RootedSource } from "./rooted.js";

/** Labels that name the training job a pod belongs to, when the downward API mounts them (first wins). */
export const JOB_NAME_LABELS = ["training.kubeflow.org/job-name", "batch.kubernetes.io/job-name", "job-name"] as const;

/** The pod's job identity from the downward API; `fallbackName` (the hostname: the pod name) when the files are absent. */
export function podJobIdentity(info: DownwardPodInfo, fallbackName: string): DiscoveredJob {
  const name = info.name ?? fallbackName;
  const namespace = info.namespace ?? "default";
  const attributes: Record<string, string> = { [RESOURCE_ATTR.k8sPodName]: name, [RESOURCE_ATTR.k8sNamespaceName]: namespace };
  if (info.uid) attributes[RESOURCE_ATTR.k8sPodUid] = info.uid;
  if (info.nodeName) attributes[RESOURCE_ATTR.k8sNodeName] = info.nodeName;
  const jobLabel = JOB_NAME_LABELS.map((k) => info.labels[k]).find((v) => v !== undefined && v !== "");
  if (jobLabel) attributes["k8s.job.name"] = jobLabel;
  // The id is the pod (restarts of the sidecar find it again by the same id); the job label is an attribute.
  return boundJob({ id: `${namespace}/${name}`, name, attributes });
}

/** Options of PodJobSource. */
export interface PodJobSourceOptions {
  /** Root holding proc/ (the pod's shared PID namespace: "/"). */
  procRoot: string;
  job: DiscoveredJob;
  /** The agent's own PID in that namespace. Default process.pid. */
  selfPid?: number;
}

export class PodJobSource extends RootedSource {
  private readonly selfPid: number;
  /** Clock ticks since boot at the first look: processes started later count from their start. */
  private firstLookTicks: number | undefined;
  /** PIDs (pid@start) known to be the agent's or PID 1: skipped without reading their ancestry again. */
  private readonly excluded = new Map<number, number>();
  /** The job's processes at the last sample. */
  private lastPids: number[] = [];

  constructor(private readonly o: PodJobSourceOptions) {
    super(o.procRoot);
    this.selfPid = o.selfPid ?? process.pid;
  }

  /** The job (the pod). */
  get job(): DiscoveredJob {
    return this.o.job;
  }

  sample(): ProcessSample {
    const s = this.trees.sample();
    this.lastPids = [...s.rawMembers.keys()];
    this.discover(new Set(this.lastPids));
    const { rawMembers: _raw, ...sample } = s;
    if (!sample.jobs!.has(this.o.job.id)) {
      // No training process yet: the job still exists (zeros) so the pod shows up at once.
      (sample.jobs as Map<string, DiscoveredJob>).set(this.o.job.id, this.o.job);
      sample.jobCpuSeconds.set(this.o.job.id, 0);
      sample.jobProcessCount.set(this.o.job.id, 0);
    }
    return sample;
  }

  /** The pod's processes at the last sample (PIDs in the pod's namespace; the GPU filter counts their GPU descriptors). */
  memberPids(): readonly number[] {
    return this.lastPids;
  }

  /** trainingEnvironment with the environ reads on the thread pool (another process's environ can block in the kernel). */
  async trainingEnvironmentAsync(names: readonly string[]): Promise<Record<string, string> | undefined> {
    return this.trees.hasTrees(this.o.job.id) ? this.trees.jobEnvironmentAsync(this.o.job.id, names) : undefined;
  }

  /** The training processes' variables `names`; undefined while the pod runs no training process. */
  trainingEnvironment(names: readonly string[]): Record<string, string> | undefined {
    return this.trees.hasTrees(this.o.job.id) ? this.trees.jobEnvironment(this.o.job.id, names) : undefined;
  }

  private discover(members: ReadonlySet<number>): void {
    const first = this.firstLookTicks === undefined;
    if (first) this.firstLookTicks = uptimeTicks(this.o.procRoot, this.trees.tracker.ticksPerSecond);
    const stats = new Map<number, { ppid: number; startTicks: number }>();
    for (const pid of listPids(this.o.procRoot)) {
      if (pid === 1 || members.has(pid)) continue;
      const st = this.reader.readStat(pid, false);
      if (!st || st.exitSignal === -1) continue;
      stats.set(pid, { ppid: st.ppid, startTicks: st.startTicks });
    }
    const agentTree = this.agentTree(stats);
    for (const [pid, st] of stats) {
      if (agentTree.has(pid)) continue;
      // Top-level: its parent is outside the job (PID 1, 0, or gone). A child of another candidate
      // or of a member joins through the tracker's own discovery.
      if (st.ppid !== 0 && st.ppid !== 1 && (stats.has(st.ppid) || members.has(st.ppid))) continue;
      const countFromStart = !first && st.startTicks > (this.firstLookTicks ?? Infinity);
      this.trees.addTree(this.o.job, pid, st.startTicks, countFromStart);
    }
  }

  /** The agent itself, its ancestors below PID 1 and its descendants, among `stats`. */
  private agentTree(stats: ReadonlyMap<number, { ppid: number; startTicks: number }>): Set<number> {
    const out = new Set<number>([this.selfPid]);
    for (let p = stats.get(this.selfPid)?.ppid; p !== undefined && p > 1 && !out.has(p); p = stats.get(p)?.ppid) out.add(p);
    for (const [pid, st] of stats) {
      if (st.startTicks === this.excluded.get(pid)) {
        out.add(pid);
        continue;
      }
      for (let p: number | undefined = pid, guard = 0; p !== undefined && p > 1 && guard < 64; p = stats.get(p)?.ppid, guard++) {
        if (p === this.selfPid) {
          out.add(pid);
          this.excluded.set(pid, st.startTicks);
          break;
        }
      }
    }
    for (const pid of this.excluded.keys()) if (!stats.has(pid)) this.excluded.delete(pid);
    return out;
  }
}
