/**
 * What reaches the hardware sources from the environment (fixture roots and library paths for
 * tests, overrides for users); see collectors/index.ts for what each collector does with it.
 */
import { UsageError } from "../errors.js";
import type { CollectorOptions } from "../../collectors/index.js";
import { readEnvironment, type EnvSource } from "./env.js";

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
export function collectorConfig(source: EnvSource): CollectorOptions {
  const env = readEnvironment(source);
  const tdpText = env.POWERPRINT_CPU_TDP_WATTS;
  const cpuTdpWatts = tdpText !== undefined ? Number(tdpText) : undefined;
  if (cpuTdpWatts !== undefined && !(Number.isFinite(cpuTdpWatts) && cpuTdpWatts > 0)) {
    throw new UsageError("POWERPRINT_CPU_TDP_WATTS", `must be the TDP of one CPU package in watts, > 0 (e.g. POWERPRINT_CPU_TDP_WATTS=205), got '${tdpText}'`);
  }
  return {
    cpuTdpWatts,
    root: env.POWERPRINT_SYSFS_ROOT,
    devRoot: env.POWERPRINT_DEV_ROOT,
    nvmlLibraryPath: env.POWERPRINT_NVML_LIBRARY,
    nvidiaSmiCommand: env.POWERPRINT_NVIDIA_SMI,
    searchPath: env.PATH,
    ldLibraryPath: env.LD_LIBRARY_PATH,
  };
}
