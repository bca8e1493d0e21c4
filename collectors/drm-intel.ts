/**
 * Intel GPUs through the i915 and xe drivers' hwmon (`<root>/sys/class/drm/card<N>/device/hwmon/
 * hwmon<M>/` whose `name` is "i915" or "xe"; registered on discrete cards): `energy1_input` (i915:
 * the device's energy; xe: the card's), else xe's `energy2_input` (the package's), in µJ. Split
 * between processes by their DRM fdinfo engine time (i915 `drm-engine-render`, `-copy`, `-video`,
 * `-video-enhance`... in ns; xe `drm-cycles-<class>` over `drm-total-cycles-<class>`). Integrated
 * GPUs register no hwmon: they are part of the CPU package's RAPL energy. See drm-hwmon.ts.
 */
import type { Collector } from "../src/core/contracts.js";
import { createDrmHwmonCollector, type DrmHwmonCollectorOptions } from "./drm-hwmon.js";

/**
 * Creates the Intel GPU collector (id "intel-gpu"). Readings: deviceId "i915:card<N>" or
 * "xe:card<N>", kind "gpu", source "intel-gpu", as the AMD collector's otherwise.
 */
export function createIntelGpuCollector(opts: DrmHwmonCollectorOptions = {}): Collector {
  return createDrmHwmonCollector(
    {
      id: "intel-gpu",
      hwmonNames: ["i915", "xe"],
      energyFiles: ["energy1_input", "energy2_input"],
      vendor: "Intel",
      unavailable: { reason: "no i915 or xe hwmon", fix: "needs a discrete Intel GPU on the i915 or xe driver (an integrated GPU is measured with the CPU package by RAPL); in a container mount /sys (read-only)" },
    },
    opts,
  );
}
