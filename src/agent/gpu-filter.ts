/**
 * Pod mode's GPU view: a sidecar may see every GPU of the node (NVML answers for all of them), but
 * the pod owns only those the device plugin gave the training container, named in its
 * NVIDIA_VISIBLE_DEVICES (host indices or GPU-/MIG- UUIDs, "all", "none") or, when that is unset,
 * CUDA_VISIBLE_DEVICES, read from the training processes' /proc/PID/environ. Readings of other
 * GPUs are dropped; CPU and memory readings pass. No training process yet: no GPU is the pod's
 * (nothing of the pod runs; the assignment is read once it does). A training process with neither
 * variable: every GPU is kept, said once.
 */
import type { Collector, DeviceReading, Logger, ReadContext } from "../core/contracts.js";
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

/** Wraps a collector, keeping only the pod's GPUs (see the file comment). */
export class PodGpuFilter implements Collector {
  readonly id: string;
  private said = "";

  constructor(
    private readonly inner: Collector,
    /** The training container's environment (the two variables); undefined while no training process runs. */
    private readonly env: () => Record<string, string> | undefined,
    private readonly log: Logger,
  ) {
    this.id = inner.id;
  }

  probe(): ReturnType<Collector["probe"]> {
    return this.inner.probe();
  }

  async read(context?: ReadContext): Promise<DeviceReading[]> {
    const readings = await this.inner.read(context);
    if (!readings.some((r) => r.kind === "gpu")) return readings;
    const env = this.env();
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
    return readings.filter((r) => r.kind !== "gpu" || isVisibleGpu(r, visible));
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
