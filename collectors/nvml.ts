/**
 * NVIDIA GPUs through NVML (libnvidia-ml.so.1, shipped with the driver), called over FFI with koffi.
 *
 * Per device and read: nvmlDeviceGetTotalEnergyConsumption (cumulative mJ since the driver loaded;
 * Volta and newer) is the preferred source and gives method "counter"; where it answers
 * NOT_SUPPORTED the reading carries nvmlDeviceGetPowerUsage (mW) with method "power" and a note, and
 * the pipeline integrates power over time. Utilisation from nvmlDeviceGetUtilizationRates; resident
 * processes from nvmlDeviceGetComputeRunningProcesses_v3 (record size probed, see gpu-nvml-abi.ts);
 * per-process SM % from nvmlDeviceGetProcessUtilization.
 *
 * Expected NVML failures become values: NOT_SUPPORTED → fallback with a note; GPU_IS_LOST → the
 * device is marked lost for good and keeps returning a reading with status "lost" and no energy.
 * The counter value is returned raw: a counter that goes backwards (driver reload, GPU reset) is
 * passed through unchanged for src/core/energy.ts to treat as a reset.
 */
import koffi, { type LibraryHandle } from "koffi";
import type { Collector, DeviceInfo, DeviceReading, ProbeResult, ProcessUsage } from "../src/core/contracts.js";
import { millijoulesToJoules, milliwattsToWatts } from "../src/units.js";
import {
  NVML_RETURN,
  NVML_STRING_BUFFER_BYTES,
  PROCESS_UTILIZATION_SAMPLE_BYTES,
  decodeProcessRecords,
  decodeProcessUtilizationSamples,
  nvmlReturnName,
  sharesFromSamples,
  type NvmlProcessRecord,
  type ProcessRecordStride,
} from "./gpu-nvml-abi.js";
import { MIG_FUNCTIONS, MigReader, type NvmlMigApi } from "./nvml-mig.js";

/** Options of {@link createNvmlCollector}. */
export interface NvmlCollectorOptions {
  /** Library to dlopen: a soname resolved by the dynamic loader, or a path (tests load a stub). Default "libnvidia-ml.so.1". */
  libraryPath?: string;
}

/** The NVML entry points this collector binds (koffi functions returning nvmlReturn_t unless noted). */
interface NvmlApi {
  init(): number;
  shutdown(): number;
  errorString(code: number): string;
  getCount(count: Buffer): number;
  getHandleByIndex(index: number, handle: Buffer): number;
  getName(device: bigint, name: Buffer, length: number): number;
  getUuid(device: bigint, uuid: Buffer, length: number): number;
  getPowerUsage(device: bigint, powerMilliwatts: Buffer): number;
  getTotalEnergyConsumption(device: bigint, energyMillijoules: Buffer): number;
  getUtilizationRates(device: bigint, utilization: Buffer): number;
  getMemoryInfo(device: bigint, memory: Buffer): number;
  /** Absent when the driver lacks the symbol (older than R510). */
  getComputeRunningProcesses?: (device: bigint, count: Buffer, infos: Buffer | null) => number;
  /** Absent when the driver lacks the symbol. */
  getProcessUtilization?: (device: bigint, samples: Buffer | null, count: Buffer, lastSeenMicros: bigint) => number;
  /** Absent in old drivers: processes are then matched to GPUs by index. */
  getMinorNumber?: (device: bigint, minor: Buffer) => number;
  /** MIG and GPM entry points (R450+ / R520+); absent ones: MIG GPUs are read as whole GPUs, or split by slices. */
  mig: NvmlMigApi;
}

interface NvmlDevice {
  index: number;
  handle: bigint;
  model?: string;
  uuid?: string;
  totalMemoryBytes?: number;
  /** undefined until first asked; false once the counter answered NOT_SUPPORTED (not asked again). */
  counterSupported?: boolean;
  counterNote?: string;
  lost: boolean;
  lostNote?: string;
  /** Newest process-utilisation sample seen, µs (NVML's lastSeenTimeStamp). */
  lastSampleMicros: bigint;
  /** Record size established by a decisive probe (two or more processes). */
  processStride?: ProcessRecordStride;
  /** nvmlDeviceGetMinorNumber: the GPU's /dev/nvidia<minor>. */
  minorNumber?: number;
  /** MIG mode is on: the GPU's instances are read each time (src/core/gpu-split.ts splits its energy). */
  mig?: MigReader;
}

type OpenState =
  | { status: "ok"; api: NvmlApi; lib: LibraryHandle; devices: NvmlDevice[]; note?: string }
  | { status: "unavailable"; reason: string; fix?: string };

const DEFAULT_LIBRARY = "libnvidia-ml.so.1";

function bindApi(lib: LibraryHandle): { api: NvmlApi; missing: string[] } {
  const missing: string[] = [];
  const optional = <T>(definition: string, said = true): T | undefined => {
    try {
      return lib.func(definition) as unknown as T;
    } catch {
      if (said) missing.push(definition.replace(/^.*?\s(\w+)\(.*$/, "$1"));
      return undefined;
    }
  };
  // MIG and GPM functions: a driver without them has no MIG GPU to read (not worth a note).
  const mig = Object.fromEntries(Object.entries(MIG_FUNCTIONS).map(([name, definition]) => [name, optional(definition, false)])) as unknown as NvmlMigApi;
  // nvmlDevice_t is an opaque pointer: 'void *', passed as koffi's BigInt pointer values. Out
  // parameters are plain Buffers decoded here, so struct layouts stay explicit.
  const api: NvmlApi = {
    init: lib.func("int nvmlInit_v2()"),
    shutdown: lib.func("int nvmlShutdown()"),
    errorString: lib.func("const char *nvmlErrorString(int result)"),
    getCount: lib.func("int nvmlDeviceGetCount_v2(void *deviceCount)"),
    getHandleByIndex: lib.func("int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void *device)"),
    getName: lib.func("int nvmlDeviceGetName(void *device, void *name, unsigned int length)"),
    getUuid: lib.func("int nvmlDeviceGetUUID(void *device, void *uuid, unsigned int length)"),
    getPowerUsage: lib.func("int nvmlDeviceGetPowerUsage(void *device, void *power)"),
    getTotalEnergyConsumption: lib.func("int nvmlDeviceGetTotalEnergyConsumption(void *device, void *energy)"),
    getUtilizationRates: lib.func("int nvmlDeviceGetUtilizationRates(void *device, void *utilization)"),
    getMemoryInfo: lib.func("int nvmlDeviceGetMemoryInfo(void *device, void *memory)"),
    getComputeRunningProcesses: optional("int nvmlDeviceGetComputeRunningProcesses_v3(void *device, void *infoCount, void *infos)"),
    getProcessUtilization: optional(
      "int nvmlDeviceGetProcessUtilization(void *device, void *utilization, void *processSamplesCount, unsigned long long lastSeenTimeStamp)",
    ),
    getMinorNumber: optional("int nvmlDeviceGetMinorNumber(void *device, void *minorNumber)", false),
    mig,
  };
  return { api, missing };
}

function readCString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.toString("utf8", 0, end === -1 ? buf.length : end);
}

/**
 * Creates the NVML collector (id "nvml"). The library is loaded and nvmlInit_v2 called on the first
 * probe() or read(); close() calls nvmlShutdown and unloads it.
 *
 * Readings: deviceId "gpu<NVML index>", kind "gpu", source "nvml"; energyJoules (cumulative counter,
 * J, raw: resets pass through) with method "counter", or powerWatts with method "power" and a note
 * saying why; powerWatts is also filled for counter devices when power answers. utilization is
 * nvmlUtilization_t.gpu / 100. processes: pid, memoryBytes (usedGpuMemory) and, when per-process
 * SM samples exist for the interval, share = that pid's mean SM % / the sum of the means of all
 * sampled pids (relative weights summing to 1; resident pids with no sample get share 0) with
 * processUsageMethod "utilization"; else shares absent and processUsageMethod "equal".
 *
 * Caveats: PIDs are in the host PID namespace; the counter counts from driver load and resets with
 * it; NVML power on some boards is a 1 s average rather than instantaneous.
 */
export function createNvmlCollector(opts: NvmlCollectorOptions = {}): Collector {
  const libraryPath = opts.libraryPath ?? DEFAULT_LIBRARY;
  let state: OpenState | undefined;

  const describe = (api: NvmlApi, code: number): string => {
    let text = "";
    try {
      text = api.errorString(code);
    } catch {
      // errorString itself failing must not hide the code.
    }
    return text ? `${nvmlReturnName(code)} (${text})` : nvmlReturnName(code);
  };

  function open(): OpenState {
    if (state) return state;
    let lib: LibraryHandle;
    try {
      lib = koffi.load(libraryPath);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const notFound = /no such file|cannot open shared object|not found/i.test(message);
      state = notFound
        ? {
            status: "unavailable",
            reason: `${libraryPath} not found (no NVIDIA driver)`,
            fix: "install the NVIDIA driver (it ships libnvidia-ml.so.1); in a container run with the NVIDIA Container Toolkit (--gpus all / runtimeClassName nvidia), or pass the library path",
          }
        : { status: "unavailable", reason: `cannot load ${libraryPath}: ${message}` };
      return state;
    }
    let bound: ReturnType<typeof bindApi>;
    try {
      bound = bindApi(lib);
    } catch (err) {
      lib.unload();
      state = {
        status: "unavailable",
        reason: `${libraryPath} lacks a required NVML function: ${err instanceof Error ? err.message : String(err)}`,
        fix: "update the NVIDIA driver (NVML from R450 or newer is needed)",
      };
      return state;
    }
    const { api, missing } = bound;
    const initCode = api.init();
    if (initCode !== NVML_RETURN.SUCCESS) {
      // Describe before unloading: nvmlErrorString lives in the library.
      const reason = `nvmlInit_v2 failed: ${describe(api, initCode)}`;
      lib.unload();
      state = {
        status: "unavailable",
        reason,
        fix:
          initCode === NVML_RETURN.ERROR_DRIVER_NOT_LOADED
            ? "the NVIDIA kernel driver is not loaded: check `nvidia-smi` and `lsmod | grep nvidia`"
            : initCode === NVML_RETURN.ERROR_NO_PERMISSION
              ? "no permission to open /dev/nvidia*: run with access to the GPU device nodes"
              : undefined,
      };
      return state;
    }
    const countBuf = Buffer.alloc(4);
    const countCode = api.getCount(countBuf);
    if (countCode !== NVML_RETURN.SUCCESS) {
      const reason = `nvmlDeviceGetCount_v2 failed: ${describe(api, countCode)}`;
      api.shutdown();
      lib.unload();
      state = { status: "unavailable", reason };
      return state;
    }
    const devices: NvmlDevice[] = [];
    for (let index = 0; index < countBuf.readUInt32LE(0); index++) {
      const handleBuf = Buffer.alloc(8);
      const code = api.getHandleByIndex(index, handleBuf);
      const device: NvmlDevice = { index, handle: handleBuf.readBigUInt64LE(0), lost: false, lastSampleMicros: 0n };
      devices.push(device);
      if (code !== NVML_RETURN.SUCCESS) {
        // A device NVML cannot hand out stays listed (lost) so its index never shifts to another GPU.
        device.lost = true;
        device.lostNote = `nvmlDeviceGetHandleByIndex_v2: ${describe(api, code)}`;
        continue;
      }
      const text = Buffer.alloc(NVML_STRING_BUFFER_BYTES);
      if (api.getName(device.handle, text, text.length) === NVML_RETURN.SUCCESS) device.model = readCString(text);
      text.fill(0);
      if (api.getUuid(device.handle, text, text.length) === NVML_RETURN.SUCCESS) device.uuid = readCString(text);
      const memory = Buffer.alloc(24);
      if (api.getMemoryInfo(device.handle, memory) === NVML_RETURN.SUCCESS) device.totalMemoryBytes = Number(memory.readBigUInt64LE(0));
      const minor = Buffer.alloc(4);
      if (api.getMinorNumber?.(device.handle, minor) === NVML_RETURN.SUCCESS) device.minorNumber = minor.readUInt32LE(0);
      device.mig = MigReader.open(api.mig, device.handle, `gpu${index}`);
    }
    state = {
      status: "ok",
      api,
      lib,
      devices,
      note: missing.length > 0 ? `driver lacks ${missing.join(", ")}: per-process data reduced` : undefined,
    };
    return state;
  }

  /** Marks the device lost when `code` is GPU_IS_LOST; returns whether it was. */
  function checkLost(api: NvmlApi, device: NvmlDevice, fn: string, code: number): boolean {
    if (code !== NVML_RETURN.ERROR_GPU_IS_LOST) return false;
    device.lost = true;
    device.lostNote = `${fn}: ${describe(api, code)}; device dropped, the run goes on without it`;
    return true;
  }

  function lostReading(device: NvmlDevice): DeviceReading {
    return {
      deviceId: `gpu${device.index}`,
      kind: "gpu",
      source: "nvml",
      model: device.model,
      uuid: device.uuid,
      index: device.index,
      method: device.counterSupported === false ? "power" : "counter",
      status: "lost",
      note: device.lostNote,
    };
  }

  /**
   * The compute processes NVML lists for `handle` (the GPU's, or one of its MIG devices'), decoded
   * with the GPU's established record size.
   */
  function processRecords(api: NvmlApi, device: NvmlDevice, handle: bigint): { records: NvmlProcessRecord[]; note?: string; lost?: boolean } {
    if (!api.getComputeRunningProcesses) return { records: [], note: "nvmlDeviceGetComputeRunningProcesses_v3 missing: no process list" };
    const countBuf = Buffer.alloc(4);
    let code = api.getComputeRunningProcesses(handle, countBuf, null);
    if (checkLost(api, device, "nvmlDeviceGetComputeRunningProcesses_v3", code)) return { records: [], lost: true };
    if (code === NVML_RETURN.SUCCESS) return { records: [] };
    if (code !== NVML_RETURN.ERROR_INSUFFICIENT_SIZE) return { records: [], note: `nvmlDeviceGetComputeRunningProcesses_v3: ${describe(api, code)}` };
    // Room for processes that start between the two calls; sized for the larger record layout. Bounded:
    // NVML never lists more processes than a GPU can hold contexts for.
    const capacity = Math.min(countBuf.readUInt32LE(0), 4096) + 8;
    const infos = Buffer.alloc(capacity * 32);
    countBuf.writeUInt32LE(capacity, 0);
    code = api.getComputeRunningProcesses(handle, countBuf, infos);
    if (checkLost(api, device, "nvmlDeviceGetComputeRunningProcesses_v3", code)) return { records: [], lost: true };
    if (code !== NVML_RETURN.SUCCESS) return { records: [], note: `nvmlDeviceGetComputeRunningProcesses_v3: ${describe(api, code)}` };
    const decoded = decodeProcessRecords(infos, Math.min(countBuf.readUInt32LE(0), capacity), {
      totalMemoryBytes: device.totalMemoryBytes,
      preferredStride: device.processStride,
    });
    if (!decoded.ambiguous && decoded.plausible) device.processStride = decoded.stride;
    return decoded.plausible ? { records: decoded.records } : { records: decoded.records, note: `process records implausible at both strides; decoded at ${decoded.stride} bytes` };
  }

  function readProcesses(
    api: NvmlApi,
    device: NvmlDevice,
  ): { processes?: ProcessUsage[]; records?: NvmlProcessRecord[]; method?: DeviceReading["processUsageMethod"]; note?: string; lost?: boolean } {
    const listed = processRecords(api, device, device.handle);
    if (listed.lost) return { lost: true };
    const { records, note } = listed;
    let code: number;

    const processes = new Map<number, ProcessUsage>();
    for (const r of records) {
      const usage: ProcessUsage = { pid: r.pid };
      if (r.usedGpuMemoryBytes !== undefined) usage.memoryBytes = r.usedGpuMemoryBytes;
      processes.set(r.pid, usage);
    }

    let shares: Map<number, number> | undefined;
    if (api.getProcessUtilization) {
      const sampleCount = Buffer.alloc(4);
      code = api.getProcessUtilization(device.handle, null, sampleCount, device.lastSampleMicros);
      if (checkLost(api, device, "nvmlDeviceGetProcessUtilization", code)) return { lost: true };
      if (code === NVML_RETURN.ERROR_INSUFFICIENT_SIZE || (code === NVML_RETURN.SUCCESS && sampleCount.readUInt32LE(0) > 0)) {
        const capacity = sampleCount.readUInt32LE(0) + 8;
        const samplesBuf = Buffer.alloc(capacity * PROCESS_UTILIZATION_SAMPLE_BYTES);
        sampleCount.writeUInt32LE(capacity, 0);
        code = api.getProcessUtilization(device.handle, samplesBuf, sampleCount, device.lastSampleMicros);
        if (checkLost(api, device, "nvmlDeviceGetProcessUtilization", code)) return { lost: true };
        if (code === NVML_RETURN.SUCCESS) {
          const samples = decodeProcessUtilizationSamples(samplesBuf, sampleCount.readUInt32LE(0));
          for (const s of samples) if (s.timeStampMicros > device.lastSampleMicros) device.lastSampleMicros = s.timeStampMicros;
          shares = sharesFromSamples(samples);
        }
      }
      // NOT_FOUND: no sample newer than lastSeen (nothing ran on the SMs); NOT_SUPPORTED: pre-Maxwell
      // or vGPU. Both leave shares absent and the split equal.
    }
    if (shares) {
      for (const [pid, share] of shares) {
        const usage = processes.get(pid) ?? { pid };
        usage.share = share;
        processes.set(pid, usage);
      }
      for (const usage of processes.values()) usage.share ??= 0;
    }
    return { processes: [...processes.values()], records, method: shares ? "utilization" : "equal", note };
  }

  function readDevice(api: NvmlApi, device: NvmlDevice): DeviceReading | undefined {
    if (device.lost) return lostReading(device);
    const notes: string[] = [];
    const base = {
      deviceId: `gpu${device.index}`,
      kind: "gpu" as const,
      source: "nvml",
      model: device.model,
      uuid: device.uuid,
      index: device.index,
      status: "ok" as const,
    };
    let energyJoules: number | undefined;
    if (device.counterSupported !== false) {
      const energy = Buffer.alloc(8);
      const code = api.getTotalEnergyConsumption(device.handle, energy);
      if (checkLost(api, device, "nvmlDeviceGetTotalEnergyConsumption", code)) return lostReading(device);
      if (code === NVML_RETURN.SUCCESS) {
        device.counterSupported = true;
        energyJoules = millijoulesToJoules(Number(energy.readBigUInt64LE(0)));
      } else if (code === NVML_RETURN.ERROR_NOT_SUPPORTED) {
        device.counterSupported = false;
        device.counterNote = `nvmlDeviceGetTotalEnergyConsumption: ${nvmlReturnName(code)}; integrating power`;
      } else {
        // Transient failure of a supported counter: this tick falls back to power, loudly.
        notes.push(`nvmlDeviceGetTotalEnergyConsumption: ${describe(api, code)}; integrating power this tick`);
      }
    }
    if (device.counterNote) notes.push(device.counterNote);

    let powerWatts: number | undefined;
    const power = Buffer.alloc(4);
    const powerCode = api.getPowerUsage(device.handle, power);
    if (checkLost(api, device, "nvmlDeviceGetPowerUsage", powerCode)) return lostReading(device);
    if (powerCode === NVML_RETURN.SUCCESS) powerWatts = milliwattsToWatts(power.readUInt32LE(0));
    else if (energyJoules === undefined) notes.push(`nvmlDeviceGetPowerUsage: ${describe(api, powerCode)}`);

    if (energyJoules === undefined && powerWatts === undefined) return undefined; // nothing to measure this tick

    let utilization: number | undefined;
    const util = Buffer.alloc(8);
    const utilCode = api.getUtilizationRates(device.handle, util);
    if (checkLost(api, device, "nvmlDeviceGetUtilizationRates", utilCode)) return lostReading(device);
    if (utilCode === NVML_RETURN.SUCCESS) utilization = util.readUInt32LE(0) / 100;

    const procs = readProcesses(api, device);
    if (procs.lost) return lostReading(device);
    if (procs.note) notes.push(procs.note);
    let mig: DeviceReading["mig"];
    if (device.mig) {
      // MIG: each instance's processes from its own list (the GPU's list adds any it lacks, by the
      // records' instance ids); the GPU keeps only the processes no instance holds.
      const read = device.mig.read((handle) => processRecords(api, device, handle), procs.records ?? [], (fn, code) => checkLost(api, device, fn, code));
      if (read.lost) return lostReading(device);
      mig = read.partition;
      const held = new Set(mig.instances.flatMap((i) => i.processes.map((p) => p.pid)));
      procs.processes = (procs.processes ?? []).filter((p) => !held.has(p.pid));
      procs.method = "equal";
      if (read.note) notes.push(read.note);
    }

    const reading: DeviceReading = {
      ...base,
      method: energyJoules !== undefined ? "counter" : "power",
    };
    if (energyJoules !== undefined) reading.energyJoules = energyJoules;
    if (powerWatts !== undefined) reading.powerWatts = powerWatts;
    if (utilization !== undefined) reading.utilization = utilization;
    if (procs.processes) reading.processes = procs.processes;
    if (procs.method) reading.processUsageMethod = procs.method;
    if (device.minorNumber !== undefined) reading.minorNumber = device.minorNumber;
    if (mig) reading.mig = mig;
    if (notes.length > 0) reading.note = notes.join("; ");
    return reading;
  }

  return {
    id: "nvml",
    async probe(): Promise<ProbeResult> {
      const s = open();
      if (s.status !== "ok") return s.fix ? { status: "unavailable", reason: s.reason, fix: s.fix } : { status: "unavailable", reason: s.reason };
      const devices: DeviceInfo[] = s.devices.map((device) => {
        if (!device.lost && device.counterSupported === undefined) {
          const energy = Buffer.alloc(8);
          const code = s.api.getTotalEnergyConsumption(device.handle, energy);
          if (!checkLost(s.api, device, "nvmlDeviceGetTotalEnergyConsumption", code)) {
            if (code === NVML_RETURN.SUCCESS) device.counterSupported = true;
            else if (code === NVML_RETURN.ERROR_NOT_SUPPORTED) {
              device.counterSupported = false;
              device.counterNote = `nvmlDeviceGetTotalEnergyConsumption: ${nvmlReturnName(code)}; integrating power`;
            }
          }
        }
        const details: string[] = [];
        if (device.totalMemoryBytes !== undefined) details.push(`memory ${Math.round(device.totalMemoryBytes / 2 ** 20)} MiB`);
        if (device.mig) {
          details.push(
            `MIG on: each instance is a device of its own (the GPU's energy split by slices${device.mig.gpmSupported ? " and GPM SM activity" : "; no GPM"}${device.mig.totalSlices !== undefined ? `, ${device.mig.totalSlices} slices` : ""})`,
          );
        }
        if (device.lost) details.push(device.lostNote ?? "lost");
        else if (device.counterNote) details.push(device.counterNote);
        else if (device.counterSupported) details.push("energy counter (nvmlDeviceGetTotalEnergyConsumption)");
        const info: DeviceInfo = {
          deviceId: `gpu${device.index}`,
          kind: "gpu",
          index: device.index,
          method: device.counterSupported === false ? "power" : "counter",
          energyCounter: device.counterSupported === true,
          detail: details.join("; "),
        };
        if (device.model !== undefined) info.model = device.model;
        if (device.uuid !== undefined) info.uuid = device.uuid;
        return info;
      });
      return s.note ? { status: "ok", devices, note: s.note } : { status: "ok", devices };
    },
    async read(): Promise<DeviceReading[]> {
      const s = open();
      if (s.status !== "ok") return [];
      const readings: DeviceReading[] = [];
      for (const device of s.devices) {
        const reading = readDevice(s.api, device);
        if (reading) readings.push(reading);
      }
      return readings;
    },
    async close(): Promise<void> {
      if (state?.status === "ok") {
        for (const device of state.devices) device.mig?.close();
        state.api.shutdown();
        state.lib.unload();
      }
      state = undefined;
    },
  };
}
