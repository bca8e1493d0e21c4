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
 *
 * Never on the event loop: every NVML call that can reach the driver (init, enumeration, each
 * read, shutdown) is a koffi async call, run on libuv's thread pool. A wedged driver (a GPU fallen
 * off the bus: nvmlDeviceGetPowerUsage never returns) then holds one pool thread, not the loop: the
 * sampler's per-read deadline marks the source hung and ticks go on; probe() gives up after
 * PROBE_DEADLINE_MILLIS; a call still stuck at exit is skipped by exitProcess()'s _exit
 * (src/guarded-read.ts tracks each call while it runs). The calls of one collector run one after
 * another, never side by side: a wedged driver takes one pool thread, never all four.
 */
import koffi, { type LibraryHandle } from "koffi";
import { pendingReads, trackBlocking, withinMillis } from "../src/guarded-read.js";
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

/**
 * The NVML entry points this collector binds: each resolves to its nvmlReturn_t, called on the
 * thread pool (koffi async); errorString alone is called in place (a table lookup in the library).
 */
interface NvmlApi {
  init(): Promise<number>;
  shutdown(): Promise<number>;
  errorString(code: number): string;
  getCount(count: Buffer): Promise<number>;
  getHandleByIndex(index: number, handle: Buffer): Promise<number>;
  getName(device: bigint, name: Buffer, length: number): Promise<number>;
  getUuid(device: bigint, uuid: Buffer, length: number): Promise<number>;
  getPowerUsage(device: bigint, powerMilliwatts: Buffer): Promise<number>;
  getTotalEnergyConsumption(device: bigint, energyMillijoules: Buffer): Promise<number>;
  getUtilizationRates(device: bigint, utilization: Buffer): Promise<number>;
  getMemoryInfo(device: bigint, memory: Buffer): Promise<number>;
  /** Absent when the driver lacks the symbol (older than R510). */
  getComputeRunningProcesses?: (device: bigint, count: Buffer, infos: Buffer | null) => Promise<number>;
  /** Absent when the driver lacks the symbol. */
  getProcessUtilization?: (device: bigint, samples: Buffer | null, count: Buffer, lastSeenMicros: bigint) => Promise<number>;
  /** Absent in old drivers: processes are then matched to GPUs by index. */
  getMinorNumber?: (device: bigint, minor: Buffer) => Promise<number>;
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

/** How long probe() waits for NVML (init, enumeration, the counter check), ms: past it NVML is unavailable, said (a wedged driver). */
export const PROBE_DEADLINE_MILLIS = 5_000;
/** Records (processes, utilisation samples) the first call of a list makes room for: one call for most GPUs. */
const INITIAL_RECORDS = 32;
/** How long close() waits for nvmlShutdown, ms: past it the library stays loaded (unloading it under a running call would crash). */
const SHUTDOWN_DEADLINE_MILLIS = 2_000;

/** The C function's name in a koffi declaration ("int nvmlInit_v2()" → "nvmlInit_v2"). */
const functionName = (definition: string): string => definition.replace(/^.*?\s\**(\w+)\(.*$/, "$1");

/**
 * `definition` bound as a call on the thread pool (koffi's async call): resolves to its return
 * value; registered with trackBlocking while it runs, so a call stuck in the driver at exit is
 * not waited for.
 */
function pooled<R>(lib: LibraryHandle, definition: string): (...args: unknown[]) => Promise<R> {
  const fn = lib.func(definition);
  const what = `the NVML call ${functionName(definition)}`;
  return (...args) =>
    new Promise<R>((resolve, reject) => {
      const done = trackBlocking(what);
      try {
        fn.async(...args, (err: unknown, result: R) => {
          done();
          if (err) reject(err instanceof Error ? err : new Error(String(err)));
          else resolve(result);
        });
      } catch (err) {
        done();
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
}

function bindApi(lib: LibraryHandle): { api: NvmlApi; missing: string[] } {
  const missing: string[] = [];
  const optional = <T>(definition: string, said = true): T | undefined => {
    try {
      return pooled(lib, definition) as unknown as T;
    } catch {
      if (said) missing.push(functionName(definition));
      return undefined;
    }
  };
  // MIG and GPM functions: a driver without them has no MIG GPU to read (not worth a note).
  const mig = Object.fromEntries(Object.entries(MIG_FUNCTIONS).map(([name, definition]) => [name, optional(definition, false)])) as unknown as NvmlMigApi;
  // nvmlDevice_t is an opaque pointer: 'void *', passed as koffi's BigInt pointer values. Out
  // parameters are plain Buffers decoded here, so struct layouts stay explicit.
  const api: NvmlApi = {
    init: pooled(lib, "int nvmlInit_v2()"),
    shutdown: pooled(lib, "int nvmlShutdown()"),
    errorString: lib.func("const char *nvmlErrorString(int result)"),
    getCount: pooled(lib, "int nvmlDeviceGetCount_v2(void *deviceCount)"),
    getHandleByIndex: pooled(lib, "int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void *device)"),
    getName: pooled(lib, "int nvmlDeviceGetName(void *device, void *name, unsigned int length)"),
    getUuid: pooled(lib, "int nvmlDeviceGetUUID(void *device, void *uuid, unsigned int length)"),
    getPowerUsage: pooled(lib, "int nvmlDeviceGetPowerUsage(void *device, void *power)"),
    getTotalEnergyConsumption: pooled(lib, "int nvmlDeviceGetTotalEnergyConsumption(void *device, void *energy)"),
    getUtilizationRates: pooled(lib, "int nvmlDeviceGetUtilizationRates(void *device, void *utilization)"),
    getMemoryInfo: pooled(lib, "int nvmlDeviceGetMemoryInfo(void *device, void *memory)"),
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
 * probe() or read(); close() calls nvmlShutdown and unloads it (unless a call is still stuck in the
 * driver: then the library stays loaded). Every call runs on the thread pool, one at a time (see
 * the file comment); probe() answers "unavailable" when NVML does not within PROBE_DEADLINE_MILLIS.
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

  /** The open library, opened once (concurrent callers share the one opening). */
  let opening: Promise<OpenState> | undefined;
  const open = (): Promise<OpenState> => (opening ??= openLibrary().then((s) => (state = s)));

  async function openLibrary(): Promise<OpenState> {
    let lib: LibraryHandle;
    try {
      lib = koffi.load(libraryPath);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const notFound = /no such file|cannot open shared object|not found/i.test(message);
      return notFound
        ? {
            status: "unavailable",
            reason: `${libraryPath} not found (no NVIDIA driver)`,
            fix: "install the NVIDIA driver (it ships libnvidia-ml.so.1); in a container run with the NVIDIA Container Toolkit (--gpus all / runtimeClassName nvidia), or pass the library path",
          }
        : { status: "unavailable", reason: `cannot load ${libraryPath}: ${message}` };
    }
    let bound: ReturnType<typeof bindApi>;
    try {
      bound = bindApi(lib);
    } catch (err) {
      lib.unload();
      return {
        status: "unavailable",
        reason: `${libraryPath} lacks a required NVML function: ${err instanceof Error ? err.message : String(err)}`,
        fix: "update the NVIDIA driver (NVML from R450 or newer is needed)",
      };
    }
    const { api, missing } = bound;
    const initCode = await api.init();
    if (initCode !== NVML_RETURN.SUCCESS) {
      // Describe before unloading: nvmlErrorString lives in the library.
      const reason = `nvmlInit_v2 failed: ${describe(api, initCode)}`;
      lib.unload();
      return {
        status: "unavailable",
        reason,
        fix:
          initCode === NVML_RETURN.ERROR_DRIVER_NOT_LOADED
            ? "the NVIDIA kernel driver is not loaded: check `nvidia-smi` and `lsmod | grep nvidia`"
            : initCode === NVML_RETURN.ERROR_NO_PERMISSION
              ? "no permission to open /dev/nvidia*: run with access to the GPU device nodes"
              : undefined,
      };
    }
    const countBuf = Buffer.alloc(4);
    const countCode = await api.getCount(countBuf);
    if (countCode !== NVML_RETURN.SUCCESS) {
      const reason = `nvmlDeviceGetCount_v2 failed: ${describe(api, countCode)}`;
      await api.shutdown();
      lib.unload();
      return { status: "unavailable", reason };
    }
    const devices: NvmlDevice[] = [];
    for (let index = 0; index < countBuf.readUInt32LE(0); index++) {
      const handleBuf = Buffer.alloc(8);
      const code = await api.getHandleByIndex(index, handleBuf);
      const device: NvmlDevice = { index, handle: handleBuf.readBigUInt64LE(0), lost: false, lastSampleMicros: 0n };
      devices.push(device);
      if (code !== NVML_RETURN.SUCCESS) {
        // A device NVML cannot hand out stays listed (lost) so its index never shifts to another GPU.
        device.lost = true;
        device.lostNote = `nvmlDeviceGetHandleByIndex_v2: ${describe(api, code)}`;
        continue;
      }
      const text = Buffer.alloc(NVML_STRING_BUFFER_BYTES);
      if ((await api.getName(device.handle, text, text.length)) === NVML_RETURN.SUCCESS) device.model = readCString(text);
      text.fill(0);
      if ((await api.getUuid(device.handle, text, text.length)) === NVML_RETURN.SUCCESS) device.uuid = readCString(text);
      const memory = Buffer.alloc(24);
      if ((await api.getMemoryInfo(device.handle, memory)) === NVML_RETURN.SUCCESS) device.totalMemoryBytes = Number(memory.readBigUInt64LE(0));
      const minor = Buffer.alloc(4);
      if ((await api.getMinorNumber?.(device.handle, minor)) === NVML_RETURN.SUCCESS) device.minorNumber = minor.readUInt32LE(0);
      device.mig = await MigReader.open(api.mig, device.handle, `gpu${index}`);
    }
    return {
      status: "ok",
      api,
      lib,
      devices,
      note: missing.length > 0 ? `driver lacks ${missing.join(", ")}: per-process data reduced` : undefined,
    };
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
  async function processRecords(api: NvmlApi, device: NvmlDevice, handle: bigint): Promise<{ records: NvmlProcessRecord[]; note?: string; lost?: boolean }> {
    if (!api.getComputeRunningProcesses) return { records: [], note: "nvmlDeviceGetComputeRunningProcesses_v3 missing: no process list" };
    const countBuf = Buffer.alloc(4);
    // One call in the common case (each is a hop to the thread pool): room for INITIAL_RECORDS
    // records, sized for the larger record layout. Too small: NVML says how many; asked again with
    // room for processes that start in between. Bounded: NVML never lists more processes than a
    // GPU can hold contexts for.
    let capacity = INITIAL_RECORDS;
    let infos = Buffer.alloc(capacity * 32);
    countBuf.writeUInt32LE(capacity, 0);
    let code = await api.getComputeRunningProcesses(handle, countBuf, infos);
    if (checkLost(api, device, "nvmlDeviceGetComputeRunningProcesses_v3", code)) return { records: [], lost: true };
    if (code === NVML_RETURN.ERROR_INSUFFICIENT_SIZE) {
      capacity = Math.min(countBuf.readUInt32LE(0), 4096) + 8;
      infos = Buffer.alloc(capacity * 32);
      countBuf.writeUInt32LE(capacity, 0);
      code = await api.getComputeRunningProcesses(handle, countBuf, infos);
      if (checkLost(api, device, "nvmlDeviceGetComputeRunningProcesses_v3", code)) return { records: [], lost: true };
    }
    if (code !== NVML_RETURN.SUCCESS) return { records: [], note: `nvmlDeviceGetComputeRunningProcesses_v3: ${describe(api, code)}` };
    if (countBuf.readUInt32LE(0) === 0) return { records: [] };
    const decoded = decodeProcessRecords(infos, Math.min(countBuf.readUInt32LE(0), capacity), {
      totalMemoryBytes: device.totalMemoryBytes,
      preferredStride: device.processStride,
    });
    if (!decoded.ambiguous && decoded.plausible) device.processStride = decoded.stride;
    return decoded.plausible ? { records: decoded.records } : { records: decoded.records, note: `process records implausible at both strides; decoded at ${decoded.stride} bytes` };
  }

  async function readProcesses(
    api: NvmlApi,
    device: NvmlDevice,
  ): Promise<{ processes?: ProcessUsage[]; records?: NvmlProcessRecord[]; method?: DeviceReading["processUsageMethod"]; note?: string; lost?: boolean }> {
    const listed = await processRecords(api, device, device.handle);
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
      // One call in the common case, as for the process list; too small: asked again at the size NVML says.
      const sampleCount = Buffer.alloc(4);
      let samplesBuf = Buffer.alloc(INITIAL_RECORDS * PROCESS_UTILIZATION_SAMPLE_BYTES);
      sampleCount.writeUInt32LE(INITIAL_RECORDS, 0);
      code = await api.getProcessUtilization(device.handle, samplesBuf, sampleCount, device.lastSampleMicros);
      if (checkLost(api, device, "nvmlDeviceGetProcessUtilization", code)) return { lost: true };
      if (code === NVML_RETURN.ERROR_INSUFFICIENT_SIZE) {
        const capacity = Math.min(sampleCount.readUInt32LE(0), 65_536) + 8;
        samplesBuf = Buffer.alloc(capacity * PROCESS_UTILIZATION_SAMPLE_BYTES);
        sampleCount.writeUInt32LE(capacity, 0);
        code = await api.getProcessUtilization(device.handle, samplesBuf, sampleCount, device.lastSampleMicros);
        if (checkLost(api, device, "nvmlDeviceGetProcessUtilization", code)) return { lost: true };
      }
      if (code === NVML_RETURN.SUCCESS) {
        const samples = decodeProcessUtilizationSamples(samplesBuf, sampleCount.readUInt32LE(0));
        for (const s of samples) if (s.timeStampMicros > device.lastSampleMicros) device.lastSampleMicros = s.timeStampMicros;
        shares = sharesFromSamples(samples);
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

  async function readDevice(api: NvmlApi, device: NvmlDevice): Promise<DeviceReading | undefined> {
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
      const code = await api.getTotalEnergyConsumption(device.handle, energy);
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
    const powerCode = await api.getPowerUsage(device.handle, power);
    // Lost after the counter answered: that value is this read's (the device is lost from the next).
    const lostAfterCounter = (): DeviceReading =>
      energyJoules === undefined ? lostReading(device) : { ...base, method: "counter", energyJoules, note: [...notes, device.lostNote].filter(Boolean).join("; ") };
    if (checkLost(api, device, "nvmlDeviceGetPowerUsage", powerCode)) return lostAfterCounter();
    if (powerCode === NVML_RETURN.SUCCESS) powerWatts = milliwattsToWatts(power.readUInt32LE(0));
    else if (energyJoules === undefined) notes.push(`nvmlDeviceGetPowerUsage: ${describe(api, powerCode)}`);

    if (energyJoules === undefined && powerWatts === undefined) return undefined; // nothing to measure this tick

    let utilization: number | undefined;
    const util = Buffer.alloc(8);
    const utilCode = await api.getUtilizationRates(device.handle, util);
    if (checkLost(api, device, "nvmlDeviceGetUtilizationRates", utilCode)) return lostAfterCounter();
    if (utilCode === NVML_RETURN.SUCCESS) utilization = util.readUInt32LE(0) / 100;

    const procs = await readProcesses(api, device);
    if (procs.lost) return lostAfterCounter();
    if (procs.note) notes.push(procs.note);
    let mig: DeviceReading["mig"];
    if (device.mig) {
      // MIG: each instance's processes from its own list (the GPU's list adds any it lacks, by the
      // records' instance ids); the GPU keeps only the processes no instance holds.
      const read = await device.mig.read((handle) => processRecords(api, device, handle), procs.records ?? [], (fn, code) => checkLost(api, device, fn, code));
      if (read.lost) return lostAfterCounter();
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

  /** The chain of NVML work in flight (an opening, a probe, a read), if any. */
  let busy: Promise<unknown> | undefined;
  /**
   * Runs `work` once the NVML work before it has ended: one call at a time, so a wedged driver
   * holds one pool thread (its stuck call) and what comes after waits behind it, unstarted.
   */
  function serial<T>(work: () => Promise<T>): Promise<T> {
    const next = (busy ?? Promise.resolve()).then(work, work);
    const settled: Promise<unknown> = next.then(
      () => undefined,
      () => undefined,
    );
    busy = settled;
    void settled.then(() => {
      if (busy === settled) busy = undefined;
    });
    return next;
  }

  /** Whether each device has the energy counter (asked once, at probe), and what probe says of it. */
  async function probeDevices(): Promise<ProbeResult> {
    const s = await open();
    if (s.status !== "ok") return s.fix ? { status: "unavailable", reason: s.reason, fix: s.fix } : { status: "unavailable", reason: s.reason };
    const devices: DeviceInfo[] = [];
    for (const device of s.devices) {
      if (!device.lost && device.counterSupported === undefined) {
        const energy = Buffer.alloc(8);
        const code = await s.api.getTotalEnergyConsumption(device.handle, energy);
        if (!checkLost(s.api, device, "nvmlDeviceGetTotalEnergyConsumption", code)) {
          if (code === NVML_RETURN.SUCCESS) device.counterSupported = true;
          else if (code === NVML_RETURN.ERROR_NOT_SUPPORTED) {
            device.counterSupported = false;
            device.counterNote = `nvmlDeviceGetTotalEnergyConsumption: ${nvmlReturnName(code)}; integrating power`;
          }
        }
      }
      devices.push(deviceInfo(device));
    }
    return s.note ? { status: "ok", devices, note: s.note } : { status: "ok", devices };
  }

  return {
    id: "nvml",
    async probe(): Promise<ProbeResult> {
      const r = await withinMillis(serial(probeDevices), PROBE_DEADLINE_MILLIS);
      if (r !== "timeout") return r;
      const stuck = pendingReads().find((p) => p.what.startsWith("the NVML call"))?.what.replace(/^the NVML call /, "") ?? "an NVML call";
      return {
        status: "unavailable",
        reason: `${stuck} did not return within ${PROBE_DEADLINE_MILLIS / 1000} s (a wedged driver): GPUs not measured`,
        fix: "check `nvidia-smi` and the kernel log (an Xid 79 'fallen off the bus' needs a GPU reset or a reboot)",
      };
    },
    read(): Promise<DeviceReading[]> {
      return serial(async () => {
        const s = await open();
        if (s.status !== "ok") return [];
        const readings: DeviceReading[] = [];
        for (const device of s.devices) {
          const reading = await readDevice(s.api, device);
          if (reading) readings.push(reading);
        }
        return readings;
      });
    },
    async close(): Promise<void> {
      const s = state;
      state = undefined;
      opening = undefined;
      // A call still in the driver: the library stays loaded (unloading it under the call would
      // crash the process); exitProcess() does not wait for it.
      if (busy !== undefined && (await withinMillis(busy, SHUTDOWN_DEADLINE_MILLIS)) === "timeout") return;
      if (s?.status !== "ok") return;
      const shutdown = async (): Promise<void> => {
        for (const device of s.devices) await device.mig?.close();
        await s.api.shutdown();
      };
      if ((await withinMillis(shutdown(), SHUTDOWN_DEADLINE_MILLIS)) === "timeout") return;
      s.lib.unload();
    },
  };
}

/** What probe says of one GPU. */
function deviceInfo(device: NvmlDevice): DeviceInfo {
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
}
