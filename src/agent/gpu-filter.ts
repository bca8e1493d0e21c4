/**
 * Pod mode's GPU view: a sidecar may see every GPU of the node (NVML answers for all of them), but
 * the pod owns only those the device plugin gave the training container, named in its
 * NVIDIA_VISIBLE_DEVICES (host indices or GPU-/MIG- UUIDs, "all", "none") or, when that is unset,
 * CUDA_VISIBLE_DEVICES, read from the training processes' /proc/PID/environ. Readings of other
 * GPUs are dropped; CPU and memory readings pass. No training process yet: no GPU is the pod's
 * (nothing of the pod runs; the assignment is read once it does). A training process with neither
 * variable: every GPU is kept, said once. A MIG GPU of which the pod was given MIG devices (by
 * their MIG- UUIDs) keeps only those instances (`mig.partial`: the rest of the GPU is not the pod's).
 *
 * Shared GPUs (time-slicing, MPS: several pods on one GPU). NVML lists every process on the GPU by
 * its host PID, which the pod's PID namespace cannot see, so the sidecar cannot tell which of them
 * are its own. It counts its own instead: the pod's processes holding the GPU's device node
 * (/dev/nvidia<minor>, from /proc/PID/fd). When NVML lists more processes than that (n > k), the
 * GPU is shared (from then on, for the sidecar's life), and the pod is charged k / n of the GPU's
 * energy, active and idle parts alike (DeviceReading.estimatedShare; `powerprint.gpu.shared`,
 * processUsageMethod "estimate"). Why by process count: the pod cannot match host PIDs to its
 * processes, so NVML's per-process SM samples and memory cannot be told apart by owner; with
 * nothing to distinguish them, k / n is the expectation of the exact SM split over every way the
 * pod's k processes could be among the n; under time-slicing the GPU gives each context with work
 * an equal time slice, which is k / n when all are busy; and Σ k_i ≤ n, so sidecars on one GPU
 * never charge more than the GPU's energy together. An interval in which a shared GPU runs no
 * process is charged to no pod (a node agent counts it as idle). Node mode sees host PIDs and
 * splits shared GPUs exactly by SM share.
 */
import { readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import type { Collector, DeviceReading, Logger, MigInstance, ReadContext, ShareEstimate } from "../core/contracts.js";
import { parseVisibleDevices } from "../core/attribution.js";

export const VISIBLE_DEVICE_VARIABLES = ["NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"] as const;

/** The GPUs a container may use: "all", or a list of indices / UUIDs; undefined when neither variable is set. */
export function visibleGpus(env: Record<string, string>): "all" | string[] | undefined {
  const value = env.NVIDIA_VISIBLE_DEVICES ?? env.CUDA_VISIBLE_DEVICES;
  if (value === undefined) return undefined;
  if (value.trim() === "all") return "all";
  return parseVisibleDevices(value);
}

/** Whether a GPU reading is one of `visible` (by index or UUID). */
export function isVisibleGpu(reading: Pick<DeviceReading, "index" | "uuid">, visible: readonly string[]): boolean {
  return visible.some((v) => (reading.uuid !== undefined && v === reading.uuid) || (reading.index !== undefined && v === String(reading.index)));
}

/** What the sidecar sees of its pod's GPU use (see the file comment, "Shared GPUs"). */
export interface PodGpuView {
  /** Root holding the pod's proc/ ("/" in the sidecar). */
  procRoot: string;
  /** Root holding the dev/ the pod's processes opened /dev/nvidia* under (POWERPRINT_DEV_ROOT, "/"). */
  devRoot: string;
  /** The pod's processes now (the job's members: not the agent, not PID 1). */
  podPids: () => Iterable<number>;
}

/** The one text a shared GPU's device carries in the report (a fixed text: notes are kept once each). */
export const SHARED_GPU_NOTE =
  "shared with other pods: this sidecar counts its pod's estimated share, k/n of the GPU's energy (k: the pod's processes holding the GPU's device node, n: the processes NVML lists on it); node mode splits shared GPUs exactly";

/** At most this many of the pod's processes, and of their descriptors in all, are looked at per read. */
const MAX_PROCESSES_SCANNED = 4096;
const MAX_DESCRIPTORS_SCANNED = 65_536;

/** The pod's processes holding each GPU's device node (countGpuHolders). */
export interface GpuHolders {
  /** Processes holding /dev/nvidia<minor> open, by minor. */
  byMinor: Map<number, number>;
  /** Processes whose descriptors could not be read (EACCES: another UID, no CAP_SYS_PTRACE). */
  unreadable: number;
}

/**
 * How many of `pids` hold each /dev/nvidia<minor> open, by minor: read from <procRoot>/proc/PID/fd
 * (a descriptor's link names the path it was opened as, <devRoot>/dev/nvidia<minor>). Each process
 * counts once per GPU. Bounded (MAX_PROCESSES_SCANNED, MAX_DESCRIPTORS_SCANNED); processes gone
 * meanwhile are skipped, those the sidecar may not look into are counted as unreadable.
 */
export function countGpuHolders(procRoot: string, devRoot: string, pids: Iterable<number>): GpuHolders {
  const prefix = `${join(devRoot, "dev")}/nvidia`;
  const counts = new Map<number, number>();
  let unreadable = 0;
  let processes = 0;
  let descriptors = 0;
  for (const pid of pids) {
    if (++processes > MAX_PROCESSES_SCANNED || descriptors >= MAX_DESCRIPTORS_SCANNED) break;
    const fdDir = join(procRoot, "proc", String(pid), "fd");
    let fds: string[];
    try {
      fds = readdirSync(fdDir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EACCES" || code === "EPERM") unreadable++;
      continue;
    }
    const held = new Set<number>();
    for (const fd of fds) {
      if (++descriptors > MAX_DESCRIPTORS_SCANNED) break;
      let target: string;
      try {
        target = readlinkSync(join(fdDir, fd));
      } catch {
        continue;
      }
      if (!target.startsWith(prefix)) continue;
      const rest = target.slice(prefix.length);
      if (/^\d{1,4}$/.test(rest)) held.add(Number(rest));
    }
    for (const minor of held) counts.set(minor, (counts.get(minor) ?? 0) + 1);
  }
  return { byMinor: counts, unreadable };
}

/** Wraps a collector, keeping only the pod's GPUs (see the file comment). */
export class PodGpuFilter implements Collector {
  readonly id: string;
  private said = "";
  /** GPUs (and MIG instances) seen shared with other pods: shared for the sidecar's life. */
  private readonly shared = new Set<string>();

  constructor(
    private readonly inner: Collector,
    /** The training container's environment (the two variables); undefined while no training process runs. May read off the loop (a promise). */
    private readonly env: () => Record<string, string> | undefined | Promise<Record<string, string> | undefined>,
    private readonly log: Logger,
    /** The pod's processes, to detect and estimate sharing; absent: GPUs are taken as the pod's alone. */
    private readonly view?: PodGpuView,
  ) {
    this.id = inner.id;
  }

  probe(): ReturnType<Collector["probe"]> {
    return this.inner.probe();
  }

  async read(context?: ReadContext): Promise<DeviceReading[]> {
    // The pod's descriptors are counted before NVML is asked: a process of the pod that exits in
    // between is then counted and maybe listed (never listed but not counted, which would look like
    // another pod's); one that starts in between cannot be listed yet (a CUDA context takes far longer
    // to create than this gap, and its device node is opened first).
    const holders = this.view ? countGpuHolders(this.view.procRoot, this.view.devRoot, this.view.podPids()) : undefined;
    const readings = await this.inner.read(context);
    if (!readings.some((r) => r.kind === "gpu")) return readings;
    const env = await this.env();
    if (env === undefined) {
      this.say("waiting", "pod mode: no training process yet: no GPU is counted as the pod's until one runs");
      return readings.filter((r) => r.kind !== "gpu");
    }
    const visible = visibleGpus(env);
    if (visible === undefined || visible === "all") {
      this.say(visible === "all" ? "all" : "unknown", visible === "all"
        ? "pod mode: the training container may use every GPU (NVIDIA_VISIBLE_DEVICES=all): all are the pod's"
        : "pod mode: the training process names no NVIDIA_VISIBLE_DEVICES/CUDA_VISIBLE_DEVICES: every GPU this sidecar sees is counted as the pod's");
      return readings;
    }
    this.say(visible.join(","), `pod mode: GPUs of the pod: ${visible.length > 0 ? visible.join(", ") : "none"} (from the training container's environment)`);
    const kept: DeviceReading[] = [];
    for (const r of readings) {
      if (r.kind !== "gpu" || isVisibleGpu(r, visible)) kept.push(r);
      else {
        const instances = r.mig?.instances.filter((i) => i.uuid !== undefined && visible.includes(i.uuid)) ?? [];
        if (instances.length > 0) kept.push({ ...r, mig: { ...r.mig!, instances, partial: true } });
      }
    }
    return holders ? this.estimateShares(kept, holders) : kept;
  }

  /** Marks the GPUs (and MIG instances) shared with other pods with the pod's estimated share. */
  private estimateShares(readings: DeviceReading[], holders: GpuHolders): DeviceReading[] {
    if (!readings.some((r) => r.kind === "gpu" && (r.processes !== undefined || r.mig))) return readings;
    if (holders.unreadable > 0) {
      // Without the pod's descriptors k is unknown: the GPUs stay the pod's (as before sharing was
      // looked for), said once with the fix.
      this.log.warnOnce(
        "pod:fd-unreadable",
        `pod mode: cannot read /proc/PID/fd of ${holders.unreadable} of the pod's processes (permission): GPU sharing with other pods cannot be detected, each GPU is counted as the pod's alone; run the sidecar as the training container's UID (or with CAP_SYS_PTRACE)`,
      );
      return readings;
    }
    return readings.map((r) => {
      if (r.kind !== "gpu") return r;
      const minor = r.minorNumber ?? r.index;
      const k = minor !== undefined ? (holders.byMinor.get(minor) ?? 0) : 0;
      if (r.mig) {
        const instances = r.mig.instances.map((i) => this.instanceShare(i, k));
        return instances.some((i, n) => i !== r.mig!.instances[n]) ? { ...r, mig: { ...r.mig, instances } } : r;
      }
      const share = this.share(r.deviceId, r.processes?.length ?? 0, k);
      return share ? { ...r, estimatedShare: share } : r;
    });
  }

  private instanceShare(instance: MigInstance, k: number): MigInstance {
    // A MIG device's processes hold its GPU's node: the pod's holders are counted on the GPU.
    const share = this.share(instance.deviceId, instance.processes.length, k);
    return share ? { ...instance, estimatedShare: share } : instance;
  }

  /** The pod's share of a device NVML lists `n` processes on, `k` of them the pod's; undefined: not shared. */
  private share(deviceId: string, n: number, k: number): ShareEstimate | undefined {
    if (n > k && !this.shared.has(deviceId)) {
      this.shared.add(deviceId);
      this.log.warnOnce(
        `pod:shared:${deviceId}`,
        `pod mode: ${deviceId} is shared with other pods (NVML lists ${n} processes on it, ${k} of them this pod's by their open device node): the pod is charged ${k}/${n} of its energy, an estimate by process count (powerprint.gpu.shared=true); node mode (a DaemonSet agent) splits shared GPUs exactly`,
      );
    }
    if (!this.shared.has(deviceId)) return undefined;
    return { fraction: n > 0 ? Math.min(1, k / n) : 0, note: SHARED_GPU_NOTE };
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private say(key: string, message: string): void {
    if (this.said === key) return;
    this.said = key;
    if (key === "unknown") this.log.warnOnce("pod:gpus-unknown", message);
    else this.log.info(message);
  }
}
