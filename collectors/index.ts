/**
 * The registry of hardware sources (shaped after Kepler's internal/device registry): one entry per
 * collector, in order of preference, each naming what it measures, what it stands in for when
 * it is a fallback, and how it is created. Each collector module is imported when the probe
 * reaches it (koffi, xml2js and the TDP table cost start-up time and memory on hosts that never
 * use them). Adding a collector: its file, and one entry in BUILT_IN (docs/development.md).
 */
import type { Collector, DeviceKind, ProbeResult } from "../src/core/contracts.js";

/** Options reaching every collector: fixture roots and library paths for tests, overrides for users. */
export interface CollectorOptions {
  /** Root of /proc and /sys (tests point it at a fixture tree). */
  root?: string;
  /** Root of the proc/ whose DRM fdinfo splits AMD/Intel GPUs per process, when it differs from `root` (agent --proc-root). */
  procRoot?: string;
  /**
   * Root holding dev/ (POWERPRINT_DEV_ROOT, default "/"): no dev/nvidia[0-9]* there and no explicit
   * NVML library or nvidia-smi command means no NVIDIA GPU, so neither is probed (nothing spawned).
   */
  devRoot?: string;
  /** Path of libnvidia-ml.so.1 (POWERPRINT_NVML_LIBRARY). */
  nvmlLibraryPath?: string;
  /** nvidia-smi command (POWERPRINT_NVIDIA_SMI). */
  nvidiaSmiCommand?: string;
  /** PATH and LD_LIBRARY_PATH: where nvidia-smi and libnvidia-ml.so.1 are looked for without device nodes (nvidia-discovery.ts). */
  searchPath?: string;
  ldLibraryPath?: string;
  /** TDP of one CPU package for the CPU model, watts (POWERPRINT_CPU_TDP_WATTS): skips the table and the hypervisor cap. */
  cpuTdpWatts?: number;
  /** RAPL counters read at the accounting origin (run: just before the spawn; see RaplCollectorOptions.origin). */
  raplOrigin?: ReadonlyMap<string, number>;
}

/** One collector's probe outcome, and whether it was chosen. */
export interface ProbeEntry {
  collector: Collector;
  result: ProbeResult;
  /** Chosen for measuring; false for a fallback that was not needed or an unavailable source. */
  used: boolean;
  /** Why this collector is (not) used, e.g. "fallback: NVML unavailable". */
  role: string;
  /** The collector this one stands in for, if it is a fallback. */
  fallbackFor?: string;
  /** How the source was found, when that takes looking (NVIDIA: device nodes, WSL2, PATH, the loader). */
  found?: string;
}

/** What a registration's discover() finds: nothing to probe (with why), or how it was found and the options it found. */
export type Discovery = { status: "none"; reason: string; fix?: string } | { status: "found"; how?: string; options?: Partial<CollectorOptions> };

/** A hardware source in the registry. */
export interface CollectorRegistration {
  /** The collector's id ("nvml", "rapl"...). */
  id: string;
  /** Its name in other entries' messages ("NVML"). */
  label: string;
  /** The device kinds it measures. */
  kinds: readonly DeviceKind[];
  /** What it is for, as `probe` shows it: "NVIDIA GPUs (preferred)", "CPU and memory (fallback)". */
  role: string;
  /**
   * The id of the collector this one stands in for: probed only when that one is unavailable, or
   * (then reading only those) for the kinds that one does not measure here.
   */
  fallbackFor?: string;
  /** Its role standing in for an unavailable primary: "NVIDIA GPUs (fallback: NVML unavailable)". */
  standInRole?: string;
  /** Its role measuring only the kinds the primary lacks: "memory (model: RAPL has no dram zone)". */
  partialRole?: string;
  /**
   * Whether there is anything for it on this host, by file checks only (nothing loaded or
   * spawned): "none" with the reason skips it; "found" may say how and add options (a library
   * found by the loader). Absent: always probed.
   */
  discover?(options: CollectorOptions): Discovery | Promise<Discovery>;
  /** Creates it; its module is imported now, not before. */
  create(options: CollectorOptions): Promise<Collector>;
}

/**
 * Whether the host has an NVIDIA GPU (device nodes, WSL2's /dev/dxg and driver files, nvidia-smi on
 * PATH, the loader's NVML: nvidia-discovery.ts, no spawn); neither NVIDIA source is loaded without.
 */
function discoverNvidia(o: CollectorOptions): Promise<Discovery> {
  // Once per probe (NVML and nvidia-smi ask the same; the loader's cache is read once).
  let d = nvidiaDiscoveries.get(o);
  if (!d) nvidiaDiscoveries.set(o, (d = lookForNvidia(o)));
  return d;
}
const nvidiaDiscoveries = new WeakMap<CollectorOptions, Promise<Discovery>>();

async function lookForNvidia(o: CollectorOptions): Promise<Discovery> {
  const { discoverNvidia } = await import("./nvidia-discovery.js");
  const found = discoverNvidia({ root: o.devRoot, nvmlLibraryPath: o.nvmlLibraryPath, nvidiaSmiCommand: o.nvidiaSmiCommand, searchPath: o.searchPath, libraryPath: o.ldLibraryPath });
  if (found.status === "none") return found;
  return { status: "found", how: found.how, options: { nvmlLibraryPath: found.nvmlLibraryPath, nvidiaSmiCommand: found.nvidiaSmiCommand } };
}

/**
 * The built-in sources, in order of exactness: GPUs — NVML (counter where supported), else
 * nvidia-smi (power); AMD and Intel (i915/xe) GPUs via hwmon, split between processes by DRM
 * fdinfo. CPU and memory — RAPL (counter), else the TDP model (model).
 */
const BUILT_IN: CollectorRegistration[] = [
  {
    id: "nvml",
    label: "NVML",
    kinds: ["gpu"],
    role: "NVIDIA GPUs (preferred)",
    discover: discoverNvidia,
    create: async (o) => (await import("./nvml.js")).createNvmlCollector({ libraryPath: o.nvmlLibraryPath }),
  },
  {
    id: "nvidia-smi",
    label: "nvidia-smi",
    kinds: ["gpu"],
    role: "NVIDIA GPUs (fallback)",
    fallbackFor: "nvml",
    standInRole: "NVIDIA GPUs (fallback: NVML unavailable)",
    discover: discoverNvidia,
    create: async (o) => (await import("./nvidia-smi.js")).createNvidiaSmiCollector({ command: o.nvidiaSmiCommand }),
  },
  {
    id: "amdgpu",
    label: "AMD hwmon",
    kinds: ["gpu"],
    role: "AMD GPUs",
    create: async (o) => (await import("./amdgpu.js")).createAmdGpuCollector({ root: o.root, procRoot: o.procRoot }),
  },
  {
    id: "intel-gpu",
    label: "Intel hwmon",
    kinds: ["gpu"],
    role: "Intel GPUs",
    create: async (o) => (await import("./drm-intel.js")).createIntelGpuCollector({ root: o.root, procRoot: o.procRoot }),
  },
  {
    id: "rapl",
    label: "RAPL",
    kinds: ["cpu", "memory"],
    role: "CPU and memory (preferred)",
    create: async (o) => (await import("./rapl.js")).createRaplCollector({ root: o.root, origin: o.raplOrigin }),
  },
  {
    id: "cpu-model",
    label: "the CPU model",
    kinds: ["cpu", "memory"],
    role: "CPU and memory (fallback)",
    fallbackFor: "rapl",
    standInRole: "CPU and memory (fallback: RAPL unavailable)",
    partialRole: "memory (model: RAPL has no dram zone)",
    create: async (o) => (await import("./cpu-model.js")).createCpuModelCollector({ tdpWatts: o.cpuTdpWatts, root: o.root }),
  },
];

const registry: CollectorRegistration[] = [...BUILT_IN];

/** Adds a collector to the registry (after the built-in ones; a fallback after its primary). Throws for an id already there. */
export function registerCollector(registration: CollectorRegistration): void {
  if (registry.some((r) => r.id === registration.id)) throw new Error(`collector '${registration.id}' is registered already`);
  registry.push(registration);
}

/** The registered collectors, in probing order. */
export function registeredCollectors(): readonly CollectorRegistration[] {
  return registry;
}

/** A probe that never throws: an exception is the source's unavailability. */
async function probeOf(c: Collector): Promise<ProbeResult> {
  try {
    return await c.probe();
  } catch (err) {
    return { status: "unavailable", reason: `probe failed: ${(err as Error).message}` };
  }
}

/**
 * Probes every registered source in order and picks what to measure with: a primary when it is
 * available; its fallback for the device kinds it does not measure (all of them when it is
 * unavailable, then said as a stand-in). Every outcome is returned with its reason so the CLI
 * can say it out loud.
 */
export async function detectCollectors(opts: CollectorOptions = {}): Promise<ProbeEntry[]> {
  const entries: ProbeEntry[] = [];
  for (const r of registry) entries.push(await detect(r, opts, entries));
  return entries;
}

async function detect(r: CollectorRegistration, given: CollectorOptions, before: readonly ProbeEntry[]): Promise<ProbeEntry> {
  const fallbackFor = r.fallbackFor;
  const discovery = await r.discover?.(given);
  if (discovery?.status === "none") {
    const { status: _none, ...why } = discovery;
    return { collector: absent(r.id), result: { status: "unavailable", ...why }, used: false, role: r.role, ...(fallbackFor && { fallbackFor }) };
  }
  const found = discovery?.how !== undefined ? { found: discovery.how } : {};
  const opts = { ...given, ...discovery?.options };
  const primary = fallbackFor !== undefined ? before.find((e) => e.collector.id === fallbackFor) : undefined;
  if (!primary) {
    const collector = await r.create(opts);
    const result = await probeOf(collector);
    return { collector, result, used: result.status === "ok", role: r.role, ...found };
  }
  const primaryKinds = registry.find((x) => x.id === fallbackFor)?.kinds ?? [];
  // An available primary covers the kinds of its devices (RAPL without a dram zone: no memory);
  // one that sees no device at all covers its kinds still (nothing of them there to measure).
  const covered = primary.result.status !== "ok" ? [] : primary.result.devices.length > 0 ? primary.result.devices.map((d) => d.kind) : primaryKinds;
  const missing = r.kinds.filter((k) => !covered.includes(k));
  const label = registry.find((x) => x.id === fallbackFor)?.label ?? fallbackFor;
  if (missing.length === 0) {
    return { collector: absent(r.id), result: { status: "unavailable", reason: `not needed: ${label} is available` }, used: false, role: r.role, fallbackFor, ...found };
  }
  const created = await r.create(opts);
  const result = await probeOf(created);
  const partial = missing.length < r.kinds.length;
  return {
    collector: partial ? onlyKinds(created, missing) : created,
    result,
    used: result.status === "ok",
    role: partial ? (r.partialRole ?? r.role) : (r.standInRole ?? r.role),
    fallbackFor,
    ...found,
  };
}

/** A collector entry for a source that was not loaded: it reads nothing. */
function absent(id: string): Collector {
  return {
    id,
    probe: async () => ({ status: "unavailable", reason: "not probed" }),
    read: async () => [],
    close: async () => {},
  };
}

/** Keeps only the readings of some kinds (RAPL measures the CPU; the model gives memory). */
function onlyKinds(c: Collector, kinds: readonly DeviceKind[]): Collector {
  return {
    id: c.id,
    probe: () => c.probe(),
    read: async (ctx) => (await c.read(ctx)).filter((r) => kinds.includes(r.kind)),
    close: () => c.close(),
  };
}
