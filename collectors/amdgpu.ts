/**
 * AMD GPUs through the amdgpu driver's hwmon sysfs files:
 * `<root>/sys/class/drm/card<N>/device/hwmon/hwmon<M>/` whose `name` is "amdgpu".
 *
 * Per card, first present wins: `energy1_input` (cumulative, µJ; hwmon sysfs ABI) gives method
 * "counter"; else `power1_average`, else `power1_input` (µW) gives method "power" with a note, and
 * the pipeline integrates power over time. Utilisation from `device/gpu_busy_percent`; model from
 * `device/product_name` (else the PCI ids); uuid from `device/unique_id` when the card has one.
 *
 * Caveats: sysfs gives no per-process usage, so readings carry no processes (per-process DRM fdinfo
 * is not read); the counter value is returned raw (a reset or wrap is for src/core/energy.ts); a
 * card in runtime suspend may refuse reads (EBUSY/ENODATA), which skips it for that tick.
 */
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Collector, DeviceInfo, DeviceReading, ProbeResult } from "../src/core/contracts.js";
import { microjoulesToJoules, microwattsToWatts } from "../src/units.js";

/** Options of {@link createAmdGpuCollector}. */
export interface AmdGpuCollectorOptions {
  /** Filesystem root under which `sys/class/drm` is read (default "/"; tests pass a fixture tree). */
  root?: string;
}

interface AmdCard {
  /** "card0" */
  card: string;
  deviceDir: string;
  hwmonDir: string;
  model?: string;
  uuid?: string;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, "utf8")).trim();
  } catch {
    return undefined;
  }
}

async function readNumber(path: string): Promise<number | undefined> {
  const text = await readText(path);
  if (text === undefined || !/^-?\d+(\.\d+)?$/.test(text)) return undefined;
  return Number(text);
}

/** Lists amdgpu cards under `<root>/sys/class/drm`, ordered by card number. */
async function findCards(root: string): Promise<AmdCard[] | { reason: string }> {
  const drm = join(root, "sys", "class", "drm");
  let entries: string[];
  try {
    entries = await readdir(drm);
  } catch {
    return { reason: `${drm} not readable (no DRM devices, or /sys not mounted)` };
  }
  const cards = entries
    .filter((e) => /^card\d+$/.test(e)) // connectors (card0-DP-1) and render nodes are not cards
    .sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
  const found: AmdCard[] = [];
  for (const card of cards) {
    const deviceDir = join(drm, card, "device");
    let hwmons: string[];
    try {
      hwmons = (await readdir(join(deviceDir, "hwmon"))).filter((h) => /^hwmon\d+$/.test(h));
    } catch {
      continue; // no hwmon: not a GPU we can measure (or not amdgpu)
    }
    for (const hwmon of hwmons) {
      const hwmonDir = join(deviceDir, "hwmon", hwmon);
      if ((await readText(join(hwmonDir, "name"))) !== "amdgpu") continue;
      const info: AmdCard = { card, deviceDir, hwmonDir };
      const product = await readText(join(deviceDir, "product_name"));
      if (product) info.model = product;
      else {
        const vendor = await readText(join(deviceDir, "vendor"));
        const device = await readText(join(deviceDir, "device"));
        if (vendor && device) info.model = `AMD GPU ${vendor.replace(/^0x/, "")}:${device.replace(/^0x/, "")}`;
      }
      const uuid = await readText(join(deviceDir, "unique_id"));
      if (uuid) info.uuid = uuid;
      found.push(info);
      break;
    }
  }
  return found;
}

type Measure =
  | { method: "counter"; energyJoules: number; powerWatts?: number; powerFile?: string }
  | { method: "power"; powerWatts: number; powerFile: string }
  | { method: "none" };

async function measure(card: AmdCard): Promise<Measure> {
  let powerWatts: number | undefined;
  let powerFile: string | undefined;
  for (const file of ["power1_average", "power1_input"]) {
    const microwatts = await readNumber(join(card.hwmonDir, file));
    if (microwatts !== undefined) {
      powerWatts = microwattsToWatts(microwatts);
      powerFile = file;
      break;
    }
  }
  const microjoules = await readNumber(join(card.hwmonDir, "energy1_input"));
  if (microjoules !== undefined) {
    const m: Measure = { method: "counter", energyJoules: microjoulesToJoules(microjoules) };
    if (powerWatts !== undefined) m.powerWatts = powerWatts;
    if (powerFile !== undefined) m.powerFile = powerFile;
    return m;
  }
  if (powerWatts !== undefined && powerFile !== undefined) return { method: "power", powerWatts, powerFile };
  return { method: "none" };
}

/**
 * Creates the AMD GPU collector (id "amdgpu"). Readings: deviceId "amdgpu:card<N>", kind "gpu",
 * source "amdgpu"; energyJoules (J, raw counter) with method "counter", or powerWatts with method
 * "power" and a note naming the file; utilization 0..1; no processes. Cards are found on each
 * probe() and on the first read().
 */
export function createAmdGpuCollector(opts: AmdGpuCollectorOptions = {}): Collector {
  const root = opts.root ?? "/";
  let cards: AmdCard[] | undefined;

  async function list(): Promise<AmdCard[] | { reason: string }> {
    const result = await findCards(root);
    if (Array.isArray(result)) cards = result;
    return result;
  }

  return {
    id: "amdgpu",
    async probe(): Promise<ProbeResult> {
      const result = await list();
      if (!Array.isArray(result)) return { status: "unavailable", reason: result.reason };
      if (result.length === 0) {
        return {
          status: "unavailable",
          reason: `no amdgpu hwmon under ${join(root, "sys", "class", "drm")}/card*/device/hwmon`,
          fix: "needs the amdgpu kernel driver; in a container mount /sys (read-only) and pass /dev/dri and /dev/kfd",
        };
      }
      const devices: DeviceInfo[] = [];
      for (const card of result) {
        const m = await measure(card);
        const info: DeviceInfo = {
          deviceId: `amdgpu:${card.card}`,
          kind: "gpu",
          method: m.method === "counter" ? "counter" : "power",
          energyCounter: m.method === "counter",
          detail:
            m.method === "counter"
              ? "energy counter (hwmon energy1_input)"
              : m.method === "power"
                ? `no energy1_input: integrating ${m.powerFile}`
                : "no energy1_input, power1_average or power1_input readable: card skipped",
        };
        if (card.model !== undefined) info.model = card.model;
        if (card.uuid !== undefined) info.uuid = card.uuid;
        devices.push(info);
      }
      return { status: "ok", devices };
    },
    async read(): Promise<DeviceReading[]> {
      const found = cards ?? (await list());
      if (!Array.isArray(found)) return [];
      const readings: DeviceReading[] = [];
      for (const card of found) {
        const m = await measure(card);
        if (m.method === "none") continue;
        const reading: DeviceReading = {
          deviceId: `amdgpu:${card.card}`,
          kind: "gpu",
          source: "amdgpu",
          method: m.method,
          status: "ok",
        };
        if (card.model !== undefined) reading.model = card.model;
        if (card.uuid !== undefined) reading.uuid = card.uuid;
        if (m.method === "counter") reading.energyJoules = m.energyJoules;
        if (m.powerWatts !== undefined) reading.powerWatts = m.powerWatts;
        if (m.method === "power") reading.note = `amdgpu hwmon has no energy1_input: integrating ${m.powerFile}`;
        const busy = await readNumber(join(card.deviceDir, "gpu_busy_percent"));
        if (busy !== undefined) reading.utilization = busy / 100;
        readings.push(reading);
      }
      return readings;
    },
    async close(): Promise<void> {
      cards = undefined;
    },
  };
}
