/**
 * MIG instances of one NVIDIA GPU through NVML (for collectors/nvml.ts): which MIG devices the GPU
 * holds now (nvmlDeviceGetMaxMigDeviceCount, nvmlDeviceGetMigDeviceHandleByIndex), their GPU and
 * compute instance ids, slices and SMs (nvmlDeviceGetAttributes_v2), name and UUID, the processes in
 * each (the MIG device's own process list, completed from the GPU's list by the records' instance
 * ids), and each GPU instance's SM activity between two reads from GPM (nvmlGpmMigSampleGet +
 * nvmlGpmMetricsGet NVML_GPM_METRIC_SM_UTIL; Hopper and later). The energy split itself is the
 * core's (src/core/gpu-split.ts): this only reads.
 *
 * Instances are enumerated on every read: MIG devices are created and destroyed at run time and
 * NVML says a handle must be asked for again after that. Expected failures are values: a MIG
 * device that vanished between calls is skipped; no GPM activity for an interval (first read of an
 * instance, samples < 100 ms apart, GPM unsupported) leaves `activity` absent, so the split falls
 * back to slices for that interval and says so (partitionMethod "slices").
 */
import type { MigInstance, MigPartition, ProcessUsage } from "../src/core/contracts.js";
import {
  DEVICE_ATTRIBUTES_BYTES,
  GPM_METRIC_SM_UTIL,
  GPM_SUPPORT_BYTES,
  GPM_SUPPORT_VERSION,
  GPU_INSTANCE_PROFILE_IDS,
  GPU_INSTANCE_PROFILE_INFO_BYTES,
  NVML_DEVICE_MIG_ENABLE,
  NVML_RETURN,
  NVML_STRING_BUFFER_BYTES,
  PROFILE_INFO_SLICE_COUNT_OFFSET,
  decodeDeviceAttributes,
  decodeGpmMetric,
  encodeGpmMetricsGet,
  type NvmlProcessRecord,
} from "./gpu-nvml-abi.js";

/** The koffi declarations of the MIG and GPM entry points (nvml.h); each is optional. */
export const MIG_FUNCTIONS = {
  getMigMode: "int nvmlDeviceGetMigMode(void *device, void *currentMode, void *pendingMode)",
  getMaxMigDeviceCount: "int nvmlDeviceGetMaxMigDeviceCount(void *device, void *count)",
  getMigDeviceHandleByIndex: "int nvmlDeviceGetMigDeviceHandleByIndex(void *device, unsigned int index, void *migDevice)",
  getGpuInstanceId: "int nvmlDeviceGetGpuInstanceId(void *device, void *id)",
  getComputeInstanceId: "int nvmlDeviceGetComputeInstanceId(void *device, void *id)",
  getAttributes: "int nvmlDeviceGetAttributes_v2(void *device, void *attributes)",
  getGpuInstanceProfileInfo: "int nvmlDeviceGetGpuInstanceProfileInfo(void *device, unsigned int profile, void *info)",
  getName: "int nvmlDeviceGetName(void *device, void *name, unsigned int length)",
  getUuid: "int nvmlDeviceGetUUID(void *device, void *uuid, unsigned int length)",
  gpmQueryDeviceSupport: "int nvmlGpmQueryDeviceSupport(void *device, void *gpmSupport)",
  gpmSampleAlloc: "int nvmlGpmSampleAlloc(void *gpmSample)",
  // nvmlGpmSample_t is a struct of one pointer, passed by value: passed as that pointer.
  gpmSampleFree: "int nvmlGpmSampleFree(void *gpmSample)",
  gpmMigSampleGet: "int nvmlGpmMigSampleGet(void *device, unsigned int gpuInstanceId, void *gpmSample)",
  gpmMetricsGet: "int nvmlGpmMetricsGet(void *metricsGet)",
} as const;

/** An entry point called on the thread pool (collectors/nvml.ts binds each as a koffi async call). */
type Fn<A extends unknown[]> = ((...args: A) => Promise<number>) | undefined;

/** The bound MIG and GPM functions (absent: the driver lacks the symbol), each called off the event loop. Handles are koffi pointer values. */
export interface NvmlMigApi {
  getMigMode: Fn<[bigint, Buffer, Buffer]>;
  getMaxMigDeviceCount: Fn<[bigint, Buffer]>;
  getMigDeviceHandleByIndex: Fn<[bigint, number, Buffer]>;
  getGpuInstanceId: Fn<[bigint, Buffer]>;
  getComputeInstanceId: Fn<[bigint, Buffer]>;
  getAttributes: Fn<[bigint, Buffer]>;
  getGpuInstanceProfileInfo: Fn<[bigint, number, Buffer]>;
  getName: Fn<[bigint, Buffer, number]>;
  getUuid: Fn<[bigint, Buffer, number]>;
  gpmQueryDeviceSupport: Fn<[bigint, Buffer]>;
  gpmSampleAlloc: Fn<[Buffer]>;
  gpmSampleFree: Fn<[bigint]>;
  gpmMigSampleGet: Fn<[bigint, number, bigint]>;
  gpmMetricsGet: Fn<[Buffer]>;
}

/** More MIG devices than any GPU holds (7 on A100/H100/H200): the bound on what is enumerated. */
const MAX_MIG_DEVICES = 16;

/** Two GPM sample buffers of one GPU instance: `previous` holds the last read's sample once taken. */
interface GpmPair {
  previous: bigint;
  current: bigint;
  hasPrevious: boolean;
}

/** What one read found. */
export interface MigRead {
  partition: MigPartition;
  /** The GPU fell off the bus during a call (the caller marks it lost). */
  lost?: boolean;
  note?: string;
}

function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.toString("utf8", 0, end === -1 ? buf.length : end);
}

/** The MIG view of one MIG-enabled GPU (see the file comment). */
export class MigReader {
  private readonly gpm = new Map<number, GpmPair>();

  private constructor(
    private readonly api: NvmlMigApi,
    private readonly parent: bigint,
    private readonly parentId: string,
    /** Slices of the whole GPU (the largest GPU instance profile's); undefined: unknown. */
    readonly totalSlices: number | undefined,
    /** Whether GPM answers for this GPU (Hopper and later). */
    readonly gpmSupported: boolean,
  ) {}

  /** A reader for the GPU `parent` when its MIG mode is on; undefined otherwise (or when the driver has no MIG API). */
  static async open(api: NvmlMigApi, parent: bigint, parentId: string): Promise<MigReader | undefined> {
    if (!api.getMigMode || !api.getMaxMigDeviceCount || !api.getMigDeviceHandleByIndex || !api.getGpuInstanceId || !api.getComputeInstanceId) return undefined;
    const current = Buffer.alloc(4);
    const pending = Buffer.alloc(4);
    if ((await api.getMigMode(parent, current, pending)) !== NVML_RETURN.SUCCESS || current.readUInt32LE(0) !== NVML_DEVICE_MIG_ENABLE) return undefined;
    let totalSlices: number | undefined;
    const info = Buffer.alloc(GPU_INSTANCE_PROFILE_INFO_BYTES);
    for (const profile of GPU_INSTANCE_PROFILE_IDS) {
      info.fill(0);
      if ((await api.getGpuInstanceProfileInfo?.(parent, profile, info)) !== NVML_RETURN.SUCCESS) continue;
      const slices = info.readUInt32LE(PROFILE_INFO_SLICE_COUNT_OFFSET);
      if (slices > 0 && slices <= 64) totalSlices = Math.max(totalSlices ?? 0, slices);
    }
    let gpmSupported = false;
    if (api.gpmQueryDeviceSupport && api.gpmSampleAlloc && api.gpmSampleFree && api.gpmMigSampleGet && api.gpmMetricsGet) {
      const support = Buffer.alloc(GPM_SUPPORT_BYTES);
      support.writeUInt32LE(GPM_SUPPORT_VERSION, 0);
      gpmSupported = (await api.gpmQueryDeviceSupport(parent, support)) === NVML_RETURN.SUCCESS && support.readUInt32LE(4) !== 0;
    }
    return new MigReader(api, parent, parentId, totalSlices, gpmSupported);
  }

  /**
   * The GPU's MIG devices now, with their processes and activity. `listProcesses` lists a handle's
   * compute processes (the collector's decoder); `parentRecords` are the GPU's own list (records of
   * processes in an instance carry its ids); `lost` says whether a return code means the GPU is lost.
   */
  async read(
    listProcesses: (handle: bigint) => Promise<{ records: NvmlProcessRecord[]; lost?: boolean }>,
    parentRecords: readonly NvmlProcessRecord[],
    lost: (fn: string, code: number) => boolean,
  ): Promise<MigRead> {
    const api = this.api;
    const countBuf = Buffer.alloc(4);
    let code = await api.getMaxMigDeviceCount!(this.parent, countBuf);
    if (lost("nvmlDeviceGetMaxMigDeviceCount", code)) return { partition: { instances: [] }, lost: true };
    const count = code === NVML_RETURN.SUCCESS ? Math.min(countBuf.readUInt32LE(0), MAX_MIG_DEVICES) : 0;
    const found: { instance: MigInstance; ciSlices: number; giSlices: number }[] = [];
    const notes = new Set<string>();
    for (let index = 0; index < count; index++) {
      const handleBuf = Buffer.alloc(8);
      code = await api.getMigDeviceHandleByIndex!(this.parent, index, handleBuf);
      if (lost("nvmlDeviceGetMigDeviceHandleByIndex", code)) return { partition: { instances: [] }, lost: true };
      if (code !== NVML_RETURN.SUCCESS) continue; // NOT_FOUND: no MIG device at this index
      const handle = handleBuf.readBigUInt64LE(0);
      const id = Buffer.alloc(4);
      if ((await api.getGpuInstanceId!(handle, id)) !== NVML_RETURN.SUCCESS) continue;
      const gpuInstanceId = id.readUInt32LE(0);
      if ((await api.getComputeInstanceId!(handle, id)) !== NVML_RETURN.SUCCESS) continue;
      const computeInstanceId = id.readUInt32LE(0);
      const listed = await listProcesses(handle);
      if (listed.lost) return { partition: { instances: [] }, lost: true };
      const instance: MigInstance = {
        deviceId: `${this.parentId}/gi${gpuInstanceId}/ci${computeInstanceId}`,
        gpuInstanceId,
        computeInstanceId,
        sliceCount: 1,
        processes: listed.records.map(toUsage),
      };
      let giSlices = 1;
      let ciSlices = 1;
      const attributes = Buffer.alloc(DEVICE_ATTRIBUTES_BYTES);
      if ((await api.getAttributes?.(handle, attributes)) === NVML_RETURN.SUCCESS) {
        const a = decodeDeviceAttributes(attributes);
        giSlices = a.gpuInstanceSliceCount || 1;
        ciSlices = a.computeInstanceSliceCount || 1;
        if (a.multiprocessorCount > 0) instance.multiprocessorCount = a.multiprocessorCount;
      } else notes.add("MIG: nvmlDeviceGetAttributes_v2 unanswered: an instance's slices taken as 1");
      const text = Buffer.alloc(NVML_STRING_BUFFER_BYTES);
      if ((await api.getName?.(handle, text, text.length)) === NVML_RETURN.SUCCESS) instance.model = cString(text);
      text.fill(0);
      if ((await api.getUuid?.(handle, text, text.length)) === NVML_RETURN.SUCCESS) instance.uuid = cString(text);
      found.push({ instance, ciSlices, giSlices });
    }
    const instances = found.map((f) => f.instance);
    // Compute instances of one GPU instance share its slices, in proportion to their compute slices.
    for (const f of found) {
      const siblings = found.filter((g) => g.instance.gpuInstanceId === f.instance.gpuInstanceId);
      const ciTotal = siblings.reduce((a, g) => a + g.ciSlices, 0);
      f.instance.sliceCount = (f.giSlices * f.ciSlices) / ciTotal;
    }
    addFromParentList(instances, parentRecords);
    if (this.gpmSupported) await this.activity(instances, lost);
    else if (instances.length > 0) notes.add("MIG: no GPM on this GPU (Hopper and later have it): the instances' active energy is split by slices");
    const partition: MigPartition = { instances };
    if (this.totalSlices !== undefined) partition.totalSlices = this.totalSlices;
    else if (instances.length > 0) notes.add("MIG: the GPU's slice count is unknown: unallocated slices cannot be told apart");
    return notes.size > 0 ? { partition, note: [...notes].join("; ") } : { partition };
  }

  /** Frees the GPM sample buffers. */
  async close(): Promise<void> {
    for (const gi of [...this.gpm.keys()]) await this.free(gi);
  }

  /** Sets each instance's activity from its GPU instance's GPM SM utilisation since the last read. */
  private async activity(instances: MigInstance[], lost: (fn: string, code: number) => boolean): Promise<void> {
    const api = this.api;
    const byGi = new Map<number, number | undefined>();
    for (const gi of new Set(instances.map((i) => i.gpuInstanceId))) {
      let pair = this.gpm.get(gi);
      if (!pair) {
        const a = Buffer.alloc(8);
        const b = Buffer.alloc(8);
        if ((await api.gpmSampleAlloc!(a)) !== NVML_RETURN.SUCCESS) continue;
        if ((await api.gpmSampleAlloc!(b)) !== NVML_RETURN.SUCCESS) {
          await api.gpmSampleFree!(a.readBigUInt64LE(0));
          continue;
        }
        pair = { previous: a.readBigUInt64LE(0), current: b.readBigUInt64LE(0), hasPrevious: false };
        this.gpm.set(gi, pair);
      }
      const code = await api.gpmMigSampleGet!(this.parent, gi, pair.current);
      if (lost("nvmlGpmMigSampleGet", code) || code !== NVML_RETURN.SUCCESS) {
        pair.hasPrevious = false;
        continue;
      }
      if (pair.hasPrevious) {
        const request = encodeGpmMetricsGet(pair.previous, pair.current, [GPM_METRIC_SM_UTIL]);
        if ((await api.gpmMetricsGet!(request)) === NVML_RETURN.SUCCESS) {
          const metric = decodeGpmMetric(request, 0);
          if (metric.status === NVML_RETURN.SUCCESS && Number.isFinite(metric.value)) byGi.set(gi, Math.min(1, Math.max(0, metric.value / 100)));
        }
      }
      // This read's sample is the next one's first.
      [pair.previous, pair.current] = [pair.current, pair.previous];
      pair.hasPrevious = true;
    }
    for (const instance of instances) {
      const activity = byGi.get(instance.gpuInstanceId);
      if (activity !== undefined) instance.activity = activity;
    }
    // GPU instances destroyed since: their buffers go.
    for (const gi of [...this.gpm.keys()]) if (!instances.some((i) => i.gpuInstanceId === gi)) await this.free(gi);
  }

  private async free(gi: number): Promise<void> {
    const pair = this.gpm.get(gi);
    if (!pair) return;
    this.gpm.delete(gi);
    await this.api.gpmSampleFree?.(pair.previous);
    await this.api.gpmSampleFree?.(pair.current);
  }
}

function toUsage(r: NvmlProcessRecord): ProcessUsage {
  return r.usedGpuMemoryBytes !== undefined ? { pid: r.pid, memoryBytes: r.usedGpuMemoryBytes } : { pid: r.pid };
}

/** Processes of the GPU's list that no instance listed, placed by their records' GPU/compute instance ids. */
function addFromParentList(instances: MigInstance[], records: readonly NvmlProcessRecord[]): void {
  const listed = new Set(instances.flatMap((i) => i.processes.map((p) => p.pid)));
  for (const r of records) {
    if (listed.has(r.pid) || r.gpuInstanceId === undefined) continue;
    const target =
      instances.find((i) => i.gpuInstanceId === r.gpuInstanceId && i.computeInstanceId === r.computeInstanceId) ??
      instances.find((i) => i.gpuInstanceId === r.gpuInstanceId);
    if (!target) continue;
    target.processes.push(toUsage(r));
    listed.add(r.pid);
  }
}
