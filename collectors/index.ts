import type { Collector, ProbeResult } from "../src/core/contracts.js";
import { UsageError } from "../src/errors.js";
// Each collector module is imported when detectCollectors reaches it (koffi, xml2js and the TDP
// table cost start-up time and memory on hosts that never use them).

/** Options reaching every collector: fixture roots and library paths for tests, overrides for users. */
export interface CollectorOptions {
  /** Root of /proc and /sys (tests point it at a fixture tree). */
  root?: string;
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
  /** How the source was found, when that takes looking (NVIDIA: device nodes, WSL2, PATH, the loader). */
  found?: string;
}

/**
 * Collector options from the environment:
 * - POWERPRINT_SYSFS_ROOT: the directory holding sys/class/powercap and sys/class/drm (default "/";
 *   "/host" in a container that mounts the host's /sys at /host/sys);
 * - POWERPRINT_NVML_LIBRARY: path of libnvidia-ml.so.1 (default: the loader's search path);
 * - POWERPRINT_NVIDIA_SMI: the nvidia-smi command (default: nvidia-smi on PATH);
 * - POWERPRINT_CPU_TDP_WATTS: TDP of one CPU package for the CPU model, watts (default: the table);
 * - POWERPRINT_DEV_ROOT: the directory holding dev/ where NVIDIA device nodes are looked for (default "/").
 * Throws UsageError naming the variable for a bad value.
 */
export function collectorOptionsFromEnv(env: NodeJS.ProcessEnv): CollectorOptions {
  const nonEmpty = (v: string | undefined) => (v !== undefined && v.trim() !== "" ? v.trim() : undefined);
  const tdpText = nonEmpty(env.POWERPRINT_CPU_TDP_WATTS);
  const cpuTdpWatts = tdpText !== undefined ? Number(tdpText) : undefined;
  if (cpuTdpWatts !== undefined && !(Number.isFinite(cpuTdpWatts) && cpuTdpWatts > 0)) {
    throw new UsageError("POWERPRINT_CPU_TDP_WATTS", `must be the TDP of one CPU package in watts, > 0 (e.g. POWERPRINT_CPU_TDP_WATTS=205), got '${tdpText}'`);
  }
  return {
    cpuTdpWatts,
    root: nonEmpty(env.POWERPRINT_SYSFS_ROOT),
    devRoot: nonEmpty(env.POWERPRINT_DEV_ROOT),
    nvmlLibraryPath: nonEmpty(env.POWERPRINT_NVML_LIBRARY),
    nvidiaSmiCommand: nonEmpty(env.POWERPRINT_NVIDIA_SMI),
    searchPath: env.PATH,
    ldLibraryPath: env.LD_LIBRARY_PATH,
  };
}

/**
 * Probes every hardware source and picks what to measure with, in order of exactness:
 * GPUs — NVML (counter where supported), else nvidia-smi (power); AMD and Intel (i915/xe) GPUs via
 * hwmon, split between processes by DRM fdinfo.
 * CPU and memory — RAPL (counter), else the TDP model (model). Every fallback is returned with
 * its reason so the CLI can say it out loud.
 */
export async function detectCollectors(opts: CollectorOptions = {}): Promise<ProbeEntry[]> {
  const entries: ProbeEntry[] = [];
  const probe = async (c: Collector): Promise<ProbeResult> => {
    try {
      return await c.probe();
    } catch (err) {
      return { status: "unavailable", reason: `probe failed: ${(err as Error).message}` };
    }
  };

  await detectNvidia(opts, probe, entries);
  const { createAmdGpuCollector } = await import("./amdgpu.js");
  const amd = createAmdGpuCollector({ root: opts.root });
  const amdResult = await probe(amd);
  entries.push({ collector: amd, result: amdResult, used: amdResult.status === "ok", role: "AMD GPUs" });
  const { createIntelGpuCollector } = await import("./drm-intel.js");
  const intel = createIntelGpuCollector({ root: opts.root });
  const intelResult = await probe(intel);
  entries.push({ collector: intel, result: intelResult, used: intelResult.status === "ok", role: "Intel GPUs" });

  const { createRaplCollector } = await import("./rapl.js");
  const rapl = createRaplCollector({ root: opts.root, origin: opts.raplOrigin });
  const raplResult = await probe(rapl);
  entries.push({ collector: rapl, result: raplResult, used: raplResult.status === "ok", role: "CPU and memory (preferred)" });
  const { createCpuModelCollector } = await import("./cpu-model.js");
  const model = createCpuModelCollector({ tdpWatts: opts.cpuTdpWatts, root: opts.root });
  const raplHasMemory = raplResult.status === "ok" && raplResult.devices.some((d) => d.kind === "memory");
  if (raplResult.status !== "ok" || !raplHasMemory) {
    const r = await probe(model);
    entries.push({
      collector: raplResult.status === "ok" ? memoryOnly(model) : model,
      result: r,
      used: r.status === "ok",
      role: raplResult.status === "ok" ? "memory (model: RAPL has no dram zone)" : "CPU and memory (fallback: RAPL unavailable)",
    });
  } else {
    entries.push({ collector: model, result: { status: "unavailable", reason: "not needed: RAPL is available" }, used: false, role: "CPU and memory (fallback)" });
  }
  return entries;
}


type Probe = (c: Collector) => Promise<ProbeResult>;

/**
 * NVML, else nvidia-smi; neither loaded nor spawned when nothing says the host has an NVIDIA GPU
 * (device nodes, WSL2's /dev/dxg and driver files, nvidia-smi on PATH, the loader's NVML:
 * nvidia-discovery.ts, no spawn). Each entry says how the GPU was found.
 */
async function detectNvidia(opts: CollectorOptions, probe: Probe, entries: ProbeEntry[]): Promise<void> {
  const { discoverNvidia } = await import("./nvidia-discovery.js");
  const found = discoverNvidia({ root: opts.devRoot, nvmlLibraryPath: opts.nvmlLibraryPath, nvidiaSmiCommand: opts.nvidiaSmiCommand, searchPath: opts.searchPath, libraryPath: opts.ldLibraryPath });
  if (found.status === "none") {
    const result = { status: "unavailable" as const, reason: found.reason, fix: found.fix };
    entries.push({ collector: absent("nvml"), result, used: false, role: "NVIDIA GPUs (preferred)" });
    entries.push({ collector: absent("nvidia-smi"), result, used: false, role: "NVIDIA GPUs (fallback)" });
    return;
  }
  const { createNvmlCollector } = await import("./nvml.js");
  const nvml = createNvmlCollector({ libraryPath: found.nvmlLibraryPath });
  const nvmlResult = await probe(nvml);
  entries.push({ collector: nvml, result: nvmlResult, used: nvmlResult.status === "ok", role: "NVIDIA GPUs (preferred)", found: found.how });
  const { createNvidiaSmiCollector } = await import("./nvidia-smi.js");
  const smi = createNvidiaSmiCollector({ command: found.nvidiaSmiCommand });
  if (nvmlResult.status === "ok") {
    entries.push({ collector: smi, result: { status: "unavailable", reason: "not needed: NVML is available" }, used: false, role: "NVIDIA GPUs (fallback)", found: found.how });
  } else {
    const r = await probe(smi);
    entries.push({ collector: smi, result: r, used: r.status === "ok", role: "NVIDIA GPUs (fallback: NVML unavailable)", found: found.how });
  }
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

/** Keeps only the memory readings of a collector (RAPL measures the CPU; the model gives memory). */
function memoryOnly(c: Collector): Collector {
  return {
    id: c.id,
    probe: () => c.probe(),
    read: async (ctx) => (await c.read(ctx)).filter((r) => r.kind === "memory"),
    close: () => c.close(),
  };
}
