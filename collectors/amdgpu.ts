/**
 * AMD GPUs through the amdgpu driver's hwmon sysfs files (`<root>/sys/class/drm/card<N>/device/
 * hwmon/hwmon<M>/` whose `name` is "amdgpu"), split between processes by their DRM fdinfo engine
 * time (amdgpu's `drm-engine-gfx`, `-compute`, `-dma`, `-dec`, `-enc`... in ns). See drm-hwmon.ts
 * for the files read, the methods and the caveats.
 */
import type { Collector } from "../src/core/contracts.js";
import { createDrmHwmonCollector, type DrmHwmonCollectorOptions } from "./drm-hwmon.js";

/** Options of {@link createAmdGpuCollector}. */
export type AmdGpuCollectorOptions = DrmHwmonCollectorOptions;

/**
 * Creates the AMD GPU collector (id "amdgpu"). Readings: deviceId "amdgpu:card<N>", kind "gpu",
 * source "amdgpu"; energyJoules (J, raw counter `energy1_input`) with method "counter", or
 * powerWatts with method "power" and a note naming the file; utilization from gpu_busy_percent;
 * processes with engine-time shares when /proc is readable. Cards are found on each probe() and on
 * the first read().
 */
export function createAmdGpuCollector(opts: AmdGpuCollectorOptions = {}): Collector {
  return createDrmHwmonCollector(
    {
      id: "amdgpu",
      hwmonNames: ["amdgpu"],
      energyFiles: ["energy1_input"],
      vendor: "AMD",
      unavailable: { reason: "no amdgpu hwmon", fix: "needs the amdgpu kernel driver; in a container mount /sys (read-only) and pass /dev/dri and /dev/kfd" },
    },
    opts,
  );
}
