/**
 * NVML ABI details shared by the NVML collector, its tests and the device check: return codes,
 * struct layouts, and the decoder for nvmlDeviceGetComputeRunningProcesses_v3 records whose size
 * changed between driver generations. Pure functions over bytes; no FFI here.
 *
 * Source: nvml.h as shipped with the CUDA toolkit / NVIDIA driver (nvmlReturn_t enumeration,
 * nvmlProcessInfo_v2_t, nvmlProcessInfo_t, nvmlProcessUtilizationSample_t).
 */

/** nvmlReturn_t values this project names (nvml.h). */
export const NVML_RETURN = {
  SUCCESS: 0,
  ERROR_UNINITIALIZED: 1,
  ERROR_INVALID_ARGUMENT: 2,
  ERROR_NOT_SUPPORTED: 3,
  ERROR_NO_PERMISSION: 4,
  ERROR_ALREADY_INITIALIZED: 5,
  ERROR_NOT_FOUND: 6,
  ERROR_INSUFFICIENT_SIZE: 7,
  ERROR_INSUFFICIENT_POWER: 8,
  ERROR_DRIVER_NOT_LOADED: 9,
  ERROR_TIMEOUT: 10,
  ERROR_IRQ_ISSUE: 11,
  ERROR_LIBRARY_NOT_FOUND: 12,
  ERROR_FUNCTION_NOT_FOUND: 13,
  ERROR_CORRUPTED_INFOROM: 14,
  ERROR_GPU_IS_LOST: 15,
  ERROR_RESET_REQUIRED: 16,
  ERROR_OPERATING_SYSTEM: 17,
  ERROR_LIB_RM_VERSION_MISMATCH: 18,
  ERROR_IN_USE: 19,
  ERROR_MEMORY: 20,
  ERROR_NO_DATA: 21,
  ERROR_INSUFFICIENT_RESOURCES: 23,
  ERROR_ARGUMENT_VERSION_MISMATCH: 25,
  ERROR_DEPRECATED: 26,
  ERROR_NOT_READY: 27,
  ERROR_GPU_NOT_FOUND: 28,
  ERROR_INVALID_STATE: 29,
  ERROR_UNKNOWN: 999,
} as const;

const RETURN_NAMES = new Map<number, string>(
  Object.entries(NVML_RETURN).map(([name, code]) => [code, name.replace(/^ERROR_/, "")]),
);

/** Short symbolic name of an nvmlReturn_t ("NOT_SUPPORTED", "GPU_IS_LOST"), or "NVML_RETURN_<n>" when unknown. */
export function nvmlReturnName(code: number): string {
  return RETURN_NAMES.get(code) ?? `NVML_RETURN_${code}`;
}

/** NVML_DEVICE_NAME_V2_BUFFER_SIZE and NVML_DEVICE_UUID_V2_BUFFER_SIZE (bytes). */
export const NVML_STRING_BUFFER_BYTES = 96;

/** NVML_VALUE_NOT_AVAILABLE as an unsigned long long: usedGpuMemory is unknown (e.g. Windows WDDM, no permission). */
export const NVML_VALUE_NOT_AVAILABLE_U64 = 0xffff_ffff_ffff_ffffn;

/**
 * Candidate record sizes of nvmlDeviceGetComputeRunningProcesses_v3, bytes:
 * 24 = nvmlProcessInfo_v2_t {u32 pid; (pad); u64 usedGpuMemory; u32 gpuInstanceId; u32 computeInstanceId}
 * 32 = nvmlProcessInfo_t of newer headers, which appends u64 usedGpuCcProtectedMemory.
 */
export const PROCESS_RECORD_STRIDES = [24, 32] as const;
export type ProcessRecordStride = (typeof PROCESS_RECORD_STRIDES)[number];

/** Largest PID Linux can hand out (PID_MAX_LIMIT on 64-bit: 2^22). */
const PID_MAX = 4_194_304;
/** No GPU has more than a few MIG instances; NVML reports 0xFFFFFFFF when MIG is off. */
const INSTANCE_ID_NONE = 0xffff_ffff;
const INSTANCE_ID_MAX = 64;

/** One decoded compute-process record. */
export interface NvmlProcessRecord {
  pid: number;
  /** Device memory the process holds, bytes; absent when NVML reports NVML_VALUE_NOT_AVAILABLE. */
  usedGpuMemoryBytes?: number;
  /** MIG: the GPU instance the process runs in (absent when NVML reports 0xFFFFFFFF: MIG off). */
  gpuInstanceId?: number;
  /** MIG: the compute instance within it. */
  computeInstanceId?: number;
}

/** Result of decoding a process-record buffer. */
export interface DecodedProcessRecords {
  stride: ProcessRecordStride;
  records: NvmlProcessRecord[];
  /** True when the chosen stride made every record plausible. */
  plausible: boolean;
  /** True when both strides were plausible (one or zero records, or a coincidence) and the choice came from `preferredStride`. */
  ambiguous: boolean;
}

function recordPlausible(buf: Buffer, offset: number, totalMemoryBytes: number | undefined): boolean {
  if (offset + 24 > buf.length) return false;
  const pid = buf.readUInt32LE(offset);
  if (pid < 1 || pid > PID_MAX) return false;
  const memory = buf.readBigUInt64LE(offset + 8);
  if (memory !== NVML_VALUE_NOT_AVAILABLE_U64) {
    const limit = totalMemoryBytes !== undefined && totalMemoryBytes > 0 ? BigInt(totalMemoryBytes) : 1n << 50n;
    if (memory > limit) return false;
  }
  for (const at of [offset + 16, offset + 20]) {
    const id = buf.readUInt32LE(at);
    if (id !== INSTANCE_ID_NONE && id > INSTANCE_ID_MAX) return false;
  }
  return true;
}

function decodeWith(buf: Buffer, count: number, stride: ProcessRecordStride): NvmlProcessRecord[] {
  const records: NvmlProcessRecord[] = [];
  for (let i = 0; i < count; i++) {
    const offset = i * stride;
    if (offset + 16 > buf.length) break;
    const memory = buf.readBigUInt64LE(offset + 8);
    const record: NvmlProcessRecord = { pid: buf.readUInt32LE(offset) };
    if (memory !== NVML_VALUE_NOT_AVAILABLE_U64) record.usedGpuMemoryBytes = Number(memory);
    if (offset + 24 <= buf.length) {
      const gi = buf.readUInt32LE(offset + 16);
      const ci = buf.readUInt32LE(offset + 20);
      if (gi !== INSTANCE_ID_NONE && gi <= INSTANCE_ID_MAX) record.gpuInstanceId = gi;
      if (ci !== INSTANCE_ID_NONE && ci <= INSTANCE_ID_MAX) record.computeInstanceId = ci;
    }
    records.push(record);
  }
  return records;
}

/**
 * Decodes `count` records written by nvmlDeviceGetComputeRunningProcesses_v3 into `buf` (which the
 * caller zero-filled and sized for `count` records of the largest stride), probing the record size:
 * a stride is plausible when every record has 1 ≤ pid ≤ 2^22, usedGpuMemory ≤ the device's memory
 * (or NVML_VALUE_NOT_AVAILABLE), and GPU/compute instance ids that are 0xFFFFFFFF or small, with no
 * pid repeated. Decoding 24-byte records at 32 puts memory bytes in the pid slot, and 32-byte
 * records at 24 reads the zero-filled cc-protected field as a pid, so with two or more records the
 * wrong stride fails. With fewer the layouts agree on the first record and `preferredStride`
 * (default 24, the documented nvmlProcessInfo_v2_t) is used.
 */
export function decodeProcessRecords(
  buf: Buffer,
  count: number,
  options: { totalMemoryBytes?: number; preferredStride?: ProcessRecordStride } = {},
): DecodedProcessRecords {
  const preferred = options.preferredStride ?? 24;
  const scores = PROCESS_RECORD_STRIDES.map((stride) => {
    let plausible = 0;
    const pids = new Set<number>();
    for (let i = 0; i < count; i++) {
      const offset = i * stride;
      if (!recordPlausible(buf, offset, options.totalMemoryBytes)) continue;
      const pid = buf.readUInt32LE(offset);
      if (pids.has(pid)) continue;
      pids.add(pid);
      plausible++;
    }
    return { stride, plausible };
  });
  const full = scores.filter((s) => s.plausible === count);
  let stride: ProcessRecordStride;
  let ambiguous = false;
  if (full.length === 1) stride = full[0].stride;
  else if (full.length === 2) {
    stride = preferred;
    ambiguous = true;
  } else {
    // Neither layout explains every record: take the better one (ties: the preferred one).
    const best = Math.max(...scores.map((s) => s.plausible));
    stride = scores.find((s) => s.plausible === best && s.stride === preferred)?.stride ?? scores.find((s) => s.plausible === best)!.stride;
  }
  return { stride, records: decodeWith(buf, count, stride), plausible: full.some((s) => s.stride === stride), ambiguous };
}

/** sizeof(nvmlProcessUtilizationSample_t): {u32 pid; (pad); u64 timeStamp µs; u32 smUtil, memUtil, encUtil, decUtil}. */
export const PROCESS_UTILIZATION_SAMPLE_BYTES = 32;

/** One nvmlProcessUtilizationSample_t. Utilisations are percent 0..100; timeStampMicros is CPU time, µs. */
export interface NvmlProcessUtilizationSample {
  pid: number;
  timeStampMicros: bigint;
  smPercent: number;
  memPercent: number;
}

/** Decodes `count` nvmlProcessUtilizationSample_t records. */
export function decodeProcessUtilizationSamples(buf: Buffer, count: number): NvmlProcessUtilizationSample[] {
  const samples: NvmlProcessUtilizationSample[] = [];
  for (let i = 0; i < count; i++) {
    const offset = i * PROCESS_UTILIZATION_SAMPLE_BYTES;
    if (offset + PROCESS_UTILIZATION_SAMPLE_BYTES > buf.length) break;
    samples.push({
      pid: buf.readUInt32LE(offset),
      timeStampMicros: buf.readBigUInt64LE(offset + 8),
      smPercent: buf.readUInt32LE(offset + 16),
      memPercent: buf.readUInt32LE(offset + 20),
    });
  }
  return samples;
}

/**
 * Per-process shares from utilisation samples: each pid's mean SM % over its samples, divided by
 * the sum of those means over all pids. Shares are relative weights summing to 1 (not fractions of
 * the device's utilisation). Returns undefined when there are no samples or every mean is 0.
 */
export function sharesFromSamples(samples: NvmlProcessUtilizationSample[]): Map<number, number> | undefined {
  const sums = new Map<number, { total: number; n: number }>();
  for (const s of samples) {
    const acc = sums.get(s.pid) ?? { total: 0, n: 0 };
    acc.total += s.smPercent;
    acc.n += 1;
    sums.set(s.pid, acc);
  }
  const means = new Map<number, number>();
  let all = 0;
  for (const [pid, { total, n }] of sums) {
    const mean = total / n;
    means.set(pid, mean);
    all += mean;
  }
  if (all <= 0) return undefined;
  const shares = new Map<number, number>();
  for (const [pid, mean] of means) shares.set(pid, mean / all);
  return shares;
}

// ---- MIG and GPM (nvml.h: "Multi Instance GPU Management", "GPM Functions") ----

/** NVML_DEVICE_MIG_ENABLE: nvmlDeviceGetMigMode's current mode when MIG is on. */
export const NVML_DEVICE_MIG_ENABLE = 1;

/**
 * GPU instance profile ids (NVML_GPU_INSTANCE_PROFILE_1_SLICE .. _6_SLICE = 0x0..0x6: 1, 2, 3, 4, 7, 8
 * and 6 slices). The largest profile a GPU answers is the whole GPU: its slice count is the GPU's.
 */
export const GPU_INSTANCE_PROFILE_IDS = [0, 1, 2, 3, 4, 5, 6] as const;

/** sizeof(nvmlDeviceAttributes_t): 8 × u32 (SMs, shared CE/DEC/ENC/JPEG/OFA, GI slices, CI slices) + u64 memorySizeMB. */
export const DEVICE_ATTRIBUTES_BYTES = 40;

/** The fields of nvmlDeviceAttributes_t this project uses (MIG device handles only). */
export interface NvmlDeviceAttributes {
  multiprocessorCount: number;
  gpuInstanceSliceCount: number;
  computeInstanceSliceCount: number;
  memorySizeMebibytes: number;
}

/** Decodes nvmlDeviceAttributes_t. */
export function decodeDeviceAttributes(buf: Buffer): NvmlDeviceAttributes {
  return {
    multiprocessorCount: buf.readUInt32LE(0),
    gpuInstanceSliceCount: buf.readUInt32LE(24),
    computeInstanceSliceCount: buf.readUInt32LE(28),
    memorySizeMebibytes: Number(buf.readBigUInt64LE(32)),
  };
}

/** sizeof(nvmlGpuInstanceProfileInfo_t): 10 × u32 (id, isP2pSupported, sliceCount, ...) + u64 memorySizeMB. */
export const GPU_INSTANCE_PROFILE_INFO_BYTES = 48;
/** Offset of nvmlGpuInstanceProfileInfo_t.sliceCount. */
export const PROFILE_INFO_SLICE_COUNT_OFFSET = 8;

/** NVML_GPM_SUPPORT_VERSION, and sizeof(nvmlGpmSupport_t) {u32 version; u32 isSupportedDevice}. */
export const GPM_SUPPORT_VERSION = 1;
export const GPM_SUPPORT_BYTES = 8;

/** NVML_GPM_METRIC_SM_UTIL: "Percentage of SMs that were busy. 0.0 - 100.0". */
export const GPM_METRIC_SM_UTIL = 2;
/** NVML_GPM_METRICS_GET_VERSION. */
export const GPM_METRICS_GET_VERSION = 1;
/** NVML_GPM_METRIC_MAX: nvmlGpmMetricsGet_t holds this many nvmlGpmMetric_t. */
export const GPM_METRIC_MAX = 333;
/** sizeof(nvmlGpmMetric_t): {u32 metricId; i32 nvmlReturn; double value; 3 × char* metricInfo}. */
export const GPM_METRIC_BYTES = 40;
/** Offset of nvmlGpmMetricsGet_t.metrics: {u32 version; u32 numMetrics; sample1; sample2 (one pointer each)}. */
export const GPM_METRICS_OFFSET = 24;
/** sizeof(nvmlGpmMetricsGet_t). */
export const GPM_METRICS_GET_BYTES = GPM_METRICS_OFFSET + GPM_METRIC_MAX * GPM_METRIC_BYTES;

/** An nvmlGpmMetricsGet_t asking for `metricIds` between two samples (handles as koffi pointer values). */
export function encodeGpmMetricsGet(sample1: bigint, sample2: bigint, metricIds: readonly number[]): Buffer {
  const buf = Buffer.alloc(GPM_METRICS_GET_BYTES);
  buf.writeUInt32LE(GPM_METRICS_GET_VERSION, 0);
  buf.writeUInt32LE(metricIds.length, 4);
  buf.writeBigUInt64LE(sample1, 8);
  buf.writeBigUInt64LE(sample2, 16);
  metricIds.forEach((id, i) => buf.writeUInt32LE(id, GPM_METRICS_OFFSET + i * GPM_METRIC_BYTES));
  return buf;
}

/** Metric `i` of a filled nvmlGpmMetricsGet_t: its value, or the nvmlReturn_t that says why there is none. */
export function decodeGpmMetric(buf: Buffer, i: number): { status: number; value: number } {
  const at = GPM_METRICS_OFFSET + i * GPM_METRIC_BYTES;
  return { status: buf.readInt32LE(at + 4), value: buf.readDoubleLE(at + 8) };
}
