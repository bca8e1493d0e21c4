/**
 * The contracts the core owns: what a hardware source (Collector) gives, what a job source gives
 * (process table and job membership), what a grid-intensity source gives (IntensityReading,
 * IntensityProvider), where messages go (Logger) and what reads ledger snapshots (Exporter).
 * collectors/, exporters/, src/grid, src/jobs, src/sim and src/agent implement these; the core
 * depends on nothing outside it (test/core/boundary.test.ts).
 */
import type { LedgerSnapshot } from "./types.js";

// ---- hardware sources ----

/** How a figure was obtained: a cumulative hardware energy counter, a power reading integrated over time, or a model. */
export type Method = "counter" | "power" | "model";

/** Kinds of device energy is attributed over. */
export type DeviceKind = "gpu" | "cpu" | "memory";

/** How a device's per-process usage was obtained (GPU attribution reports it). */
export type ProcessUsageMethod =
  | "utilization" // per-process utilisation samples (NVML process utilisation, simulated shares)
  | "equal" // resident processes known, no per-process utilisation: equal split
  | "device-assignment" // PIDs not visible (container): job holds the device via *_VISIBLE_DEVICES
  | "engine-time" // per-client engine busy time (DRM fdinfo: amdgpu, i915, xe)
  | "estimate"; // pod mode on a shared GPU: the pod's estimated share (see DeviceReading.estimatedShare)

/** One process using a device during the last interval. */
export interface ProcessUsage {
  /** PID as the device reports it (host PID namespace for NVML inside containers). */
  pid: number;
  /** Share of the device's utilisation in the interval, 0..1 (absent: unknown). */
  share?: number;
  /** Device memory held, bytes. */
  memoryBytes?: number;
}

/** One reading of one device. */
export interface DeviceReading {
  /** Stable id, unique across collectors: "gpu0", "rapl:package-0", "cpu-model:0", "mem-model". */
  deviceId: string;
  kind: DeviceKind;
  /** Collector id that produced it ("nvml", "nvidia-smi", "rapl", "cpu-model", "amdgpu", "sim"). */
  source: string;
  model?: string;
  /** GPU UUID (NVML/nvidia-smi) or other hardware identity. */
  uuid?: string;
  /** Device index as CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES name it. */
  index?: number;
  /** Cumulative hardware energy counter, joules. Preferred: exact. */
  energyJoules?: number;
  /** The counter wraps to 0 after this many joules (RAPL max_energy_range_uj). Absent: no wrap expected. */
  counterRangeJoules?: number;
  /**
   * The same counter's value at the accounting origin (run: read just before the spawn, before the
   * collector was set up), on a device's first reading only: the energy from the origin to this
   * reading is counted exactly (EnergyIntegrator), not lost.
   */
  originEnergyJoules?: number;
  /** Instantaneous or averaged power, watts. */
  powerWatts?: number;
  /** Device utilisation 0..1. */
  utilization?: number;
  /** Idle power, watts, when the source knows it (simulated devices, config). */
  idleWatts?: number;
  /** Processes using the device, when the device reports them (GPUs). */
  processes?: ProcessUsage[];
  processUsageMethod?: ProcessUsageMethod;
  /** "counter" | "power" | "model": carried to every figure derived from this reading. */
  method: Method;
  /** "lost": the device fell off the bus (NVML GPU_IS_LOST); the run goes on without it. */
  status?: "ok" | "lost";
  /** Minor number of the GPU's character device (/dev/nvidia<minor>; NVML nvmlDeviceGetMinorNumber). */
  minorNumber?: number;
  /** PCI address of the device, "0000:03:00.0" (DRM cards are matched to fdinfo's drm-pdev by it). */
  pciBusId?: string;
  /**
   * A GPU partitioned into MIG instances: each instance is a device of its own and takes a share of
   * this GPU's energy (src/core/gpu-split.ts). The GPU's own `processes` are then those no instance holds.
   */
  mig?: MigPartition;
  /**
   * Set by an observer that sees only part of a shared GPU (pod mode): only this fraction of the
   * device's energy is its to attribute; the rest is other pods' (see src/agent/gpu-filter.ts).
   */
  estimatedShare?: ShareEstimate;
  /** Why the method is weaker than it could be, e.g. "energy counter NOT_SUPPORTED: integrating power". */
  note?: string;
}

/** The MIG instances of one GPU, as its collector read them. */
export interface MigPartition {
  /** Slices of the whole GPU (the largest GPU instance profile's, e.g. 7 on A100/H100); absent: the instances' sum. */
  totalSlices?: number;
  instances: MigInstance[];
  /**
   * Only these instances are the observer's (pod mode: the pod's MIG devices): the GPU's remainder
   * (other instances, unallocated slices) is not recorded by it.
   */
  partial?: boolean;
}

/** One MIG device (a compute instance of a GPU instance). */
export interface MigInstance {
  /** Stable id of the instance: "<parent>/gi<GPU instance id>/ci<compute instance id>". */
  deviceId: string;
  /** MIG device UUID ("MIG-..."): NVIDIA_VISIBLE_DEVICES may name it. */
  uuid?: string;
  /** "NVIDIA A100-SXM4-80GB MIG 3g.40gb". */
  model?: string;
  gpuInstanceId: number;
  computeInstanceId: number;
  /**
   * This instance's slices of the GPU: its GPU instance's slices × its compute slices / the compute
   * slices of all compute instances of that GPU instance listed (compute instances share their GPU instance).
   */
  sliceCount: number;
  /** Streaming multiprocessors of the instance (weights its activity); absent: slices weigh it. */
  multiprocessorCount?: number;
  /** Share of the instance's SMs busy over the interval, 0..1 (GPM SM utilisation); absent: not measured. */
  activity?: number;
  /** Processes running in the instance (NVML gives no per-process utilisation under MIG: no shares). */
  processes: ProcessUsage[];
  /** Pod mode: the pod's estimated share of this instance (time-slicing inside a MIG device). */
  estimatedShare?: ShareEstimate;
}

/** An observer's estimated share of a device it cannot see whole (pod mode on a shared GPU). */
export interface ShareEstimate {
  /** Fraction of the device's energy that is the observer's, 0..1. */
  fraction: number;
  /** How it was estimated, said in the device's notes. */
  note: string;
}

/** What probe() found about one device. */
export interface DeviceInfo {
  deviceId: string;
  kind: DeviceKind;
  model?: string;
  uuid?: string;
  index?: number;
  method: Method;
  /** Whether a cumulative energy counter is supported (GPUs: Volta+; RAPL: always). */
  energyCounter?: boolean;
  detail?: string;
}

/** probe() result: expected outcomes are values, never exceptions. */
export type ProbeResult =
  | { status: "ok"; devices: DeviceInfo[]; note?: string }
  | { status: "unavailable"; reason: string; fix?: string };

/** One hardware source. read() never throws for expected conditions (it returns fewer readings). */
export interface Collector {
  readonly id: string;
  probe(): Promise<ProbeResult>;
  /**
   * Reads all devices. `context` gives the time of the tick (ms, the sampler's clock) and the busy
   * CPU fraction of the host over the last interval (for model collectors that need it).
   */
  read(context?: ReadContext): Promise<DeviceReading[]>;
  close(): Promise<void>;
}

/** What the sampler tells collectors about the tick being read. */
export interface ReadContext {
  /** Sampler clock, milliseconds. */
  timeMillis: number;
  /** Host CPU utilisation over the last interval, 0..1 (from /proc/stat or the simulator). */
  hostCpuUtilization?: number;
}

// ---- job sources ----

/** What one process-table sample tells the sampler. Real (/proc) and simulated sources both produce it. */
export interface ProcessSample {
  /**
   * Cumulative CPU seconds per job since it was added (monotone non-decreasing), including the
   * CPU time of descendants that have already exited (reaped children), never counted twice.
   */
  jobCpuSeconds: Map<string, number>;
  /** Cumulative busy CPU seconds of the whole host (all processes), from /proc/stat. */
  hostBusyCpuSeconds: number;
  /** Cumulative total (busy + idle) CPU seconds of the host. */
  hostTotalCpuSeconds: number;
  /**
   * Jobs a discovering source (the agent's modes) knows in this sample, by id, with their
   * identity. The agent's AgentSource (src/agent/lifecycle.ts) is their one registrar: it registers
   * them in the ledger and runs their lifecycle; the Monitor does not read this. Absent for sources
   * whose jobs are added explicitly (run, simulate).
   */
  jobs?: ReadonlyMap<string, DiscoveredJob>;
  /**
   * Live member processes: pid → job id (used to match GPU process lists). May be left empty by a
   * source that answers {@link ProcessSource.jobOfPid} instead (the node agent, `simulate`).
   */
  members: Map<number, string>;
  /** Number of live processes per job. */
  jobProcessCount: Map<string, number>;
  /**
   * Resident memory per job at the sample, bytes (Σ of its live processes' RSS, /proc/PID/stat
   * field 24 × page size). With hostTotalMemoryBytes, the static part of memory energy is split by
   * it (attribution.memoryUsages); absent: by CPU seconds like the active part.
   */
  jobRssBytes?: Map<string, number>;
  /** Memory held on the host at the sample, bytes (MemTotal − MemAvailable of /proc/meminfo). */
  hostUsedMemoryBytes?: number;
  /** Installed memory seen by the kernel, bytes (MemTotal). */
  hostTotalMemoryBytes?: number;
}

/** Identity of a job a source discovered (pod, container group, matched process tree). */
export interface DiscoveredJob {
  id: string;
  name: string;
  /** Exported as metric attributes (pod name, namespace, labels). */
  attributes: Record<string, string>;
}

/** A process table the sampler can sample: /proc (ProcessTracker) or the simulator. */
export interface ProcessSource {
  /** Registers a job rooted at `rootPid`: it and all its descendants belong to the job. */
  addJob(jobId: string, rootPid: number): void;
  /** Samples the table now. Never throws for vanished processes. */
  sample(): ProcessSample;
  /**
   * Reads that can block in the kernel (another process's /proc/PID/cmdline or environ), done off
   * the event loop for the next sample() (which stays synchronous and uses what they found). The
   * sampler awaits it before each sample, bounded by its read deadline, and never starts a second
   * while one is in flight. Optional: sources with nothing of the kind leave it out.
   */
  prepare?(): Promise<void>;
  /**
   * Selected environment variables of a job's root process (e.g. CUDA_VISIBLE_DEVICES), for
   * device-assignment fallback. Empty when unreadable.
   */
  jobEnvironment(jobId: string, names: readonly string[]): Record<string, string>;
  /**
   * jobEnvironment with its reads off the event loop (another process's environ can block in the
   * kernel). The sampler prefers it where a source has it, and bounds it.
   */
  jobEnvironmentAsync?(jobId: string, names: readonly string[]): Promise<Record<string, string>>;
  /**
   * The job of one live PID, asked by the sampler only for a device's processes (a GPU's few PIDs)
   * that `ProcessSample.members` does not list: lets a source skip listing every member each tick
   * (the node agent reads /proc/PID/cgroup for these few instead of every container's
   * cgroup.procs; run's cgroup source reads none either; `simulate` looks its scenario up instead
   * of listing 10,000 members a tick). undefined: gone, or in no job. Optional: sources whose
   * members are complete (the /proc tracker, `run --sim`'s simulated side) leave it out.
   */
  jobOfPid?(pid: number): string | undefined;
}

// ---- grid carbon intensity (src/grid implements the providers) ----
/** One intensity figure, always with where it came from and how fresh it is. */
export interface IntensityReading {
  /** Grams CO2e per kWh of electricity consumed. */
  intensityGramsPerKwh: number;
  /** Zone as asked (ISO country code, provider zone or region). */
  zone: string;
  /** Provider id: "electricitymaps", "watttime", "uk-carbon-intensity", "carbon-aware-sdk", "static-table", "fixed", "world-average", "scenario". */
  source: string;
  /** Start of the period this value is valid for. */
  validFrom?: Date;
  /** End of the validity period; the cache keeps the value until then. */
  validUntil?: Date;
  /** Provider says the value is estimated (Electricity Maps isEstimated), or a forecast rather than an actual. */
  isEstimated?: boolean;
  /** "lifecycle" | "direct" (Electricity Maps), "marginal" (WattTime MOER), "average". */
  emissionFactorType?: string;
  /** Set when this is not a fresh live value: "stale" (last good value), "static-table", "world-average". */
  fallback?: "stale" | "static-table" | "world-average";
  /** For a stale value: its age in seconds at the time it was used. */
  staleAgeSeconds?: number;
  /** Year of an annual table value. */
  year?: number;
  /** Free-text caveat shown in the summary (e.g. "country-level annual average used for sub-zone US-CAL-CISO"). */
  note?: string;
}

/** A source of grid intensity, live or static. */
export interface IntensityProvider {
  readonly id: string;
  /** Intensity valid at `time` in `zone`. Throws ProviderError on failure (the fallback chain catches it). */
  at(zone: string, time: Date): Promise<IntensityReading>;
  /** Forecast for the next `hours` hours, sorted by validFrom. */
  forecast?(zone: string, hours: number): Promise<IntensityReading[]>;
}

// ---- outputs ----

/**
 * An output of the pipeline. Exporters only read ledger snapshots; they never block sampling.
 * Lifecycle: start() once, update() after every tick with the newest snapshot (cheap: store it),
 * shutdown(final) once at exit: must flush the final totals (a 3 s job still exports them).
 */
export interface Exporter {
  readonly id: string;
  start?(): Promise<void>;
  update?(snapshot: LedgerSnapshot): void;
  /**
   * Optional, instead of update(): the exporter reads the newest snapshot itself when it needs one
   * (a scrape, a push) from `latest`, which copies the ledger at most once per tick and only when
   * asked. With thousands of retained jobs and a 1 s tick, copying the ledger after every tick for
   * an exporter read every 15 s was most of the agent's memory churn.
   */
  readSnapshotsFrom?(latest: () => LedgerSnapshot): void;
  shutdown(final: LedgerSnapshot): Promise<void>;
  /** Export failures so far, by kind (e.g. "otlp:ECONNREFUSED"); the summary prints them. */
  failures?(): Record<string, number>;
}

/** Where powerprint's own messages go (stderr in the CLI; the child owns stdout). */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  /** Warns once per key (e.g. per export failure kind). */
  warnOnce(key: string, message: string): void;
  debug(message: string): void;
}
