/**
 * GPUs driven by a DRM driver that registers a hwmon device (amdgpu; Intel's i915 and xe on
 * discrete cards), measured from `<root>/sys/class/drm/card<N>/device/hwmon/hwmon<M>/` whose `name`
 * is the driver's, and split between processes by their DRM fdinfo engine time (drm-fdinfo.ts).
 *
 * Per card, first present wins: an energy counter (`energy1_input`, µJ; xe also `energy2_input`, the
 * package's, when the card's is absent) gives method "counter"; else `power1_average`, else
 * `power1_input` (µW) gives method "power" with a note. Model from `device/product_name`, else the
 * PCI ids; uuid from `device/unique_id`; the card's PCI address from `device/uevent` PCI_SLOT_NAME
 * (else the device link's name), which is how fdinfo's drm-pdev names it. Utilisation from
 * `device/gpu_busy_percent` where the driver has it (amdgpu).
 *
 * Processes: when <procRoot>/proc is readable, each reading lists the processes holding a DRM client
 * of the card that has done work or holds memory, with `share` = the process's engine busy seconds
 * over the interval / the card's total (processUsageMethod "engine-time"; "equal" in an interval
 * without engine time). Without /proc the reading has no process list (all to idle, as before).
 *
 * Caveats: a counter is returned raw (resets and wraps are for src/core/energy.ts); a card in
 * runtime suspend may refuse reads (EBUSY/ENODATA), which skips it for that tick; engine time is
 * the sum over a client's engines (each engine-second alike); a client with no drm-pdev goes to the
 * driver's only card, or to none when there are several (said in the note).
 */
import { readFile, readdir, readlink } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Collector, DeviceInfo, DeviceReading, ProbeResult, ProcessUsage } from "../src/core/contracts.js";
import { microjoulesToJoules, microwattsToWatts } from "../src/units.js";
import { DrmClients, type DrmDeviceUsage } from "./drm-fdinfo.js";

/** What differs between the drivers' collectors. */
export interface DrmHwmonSpec {
  /** Collector id and reading source ("amdgpu", "intel-gpu"). */
  id: string;
  /** hwmon `name`s of the driver (amdgpu; i915, xe): the device id is "<name>:card<N>". */
  hwmonNames: readonly string[];
  /** Energy counter files, first present wins (µJ). */
  energyFiles: readonly string[];
  /** Vendor for the model name made of PCI ids ("AMD GPU 1002:73bf"). */
  vendor: string;
  /** Why a host has none, and how to fix it. */
  unavailable: { reason: string; fix: string };
}

/** Options of a DRM hwmon collector. */
export interface DrmHwmonCollectorOptions {
  /** Filesystem root under which `sys/class/drm` is read (default "/"; tests pass a fixture tree). */
  root?: string;
  /** Root holding the proc/ whose DRM fdinfo splits the cards between processes (undefined: `root`). */
  procRoot?: string;
}

interface Card {
  /** "card0" */
  card: string;
  /** hwmon name: the driver ("amdgpu", "i915", "xe"). */
  driver: string;
  deviceDir: string;
  hwmonDir: string;
  model?: string;
  uuid?: string;
  /** PCI address, "0000:03:00.0". */
  pciBusId?: string;
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

const PCI_ADDRESS = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i;

/** The card's PCI address: uevent's PCI_SLOT_NAME, else the name the device link points at. */
async function pciAddress(deviceDir: string): Promise<string | undefined> {
  const slot = /^PCI_SLOT_NAME=(.+)$/m.exec((await readText(join(deviceDir, "uevent"))) ?? "")?.[1]?.trim();
  if (slot && PCI_ADDRESS.test(slot)) return slot.toLowerCase();
  try {
    const target = basename(await readlink(deviceDir));
    return PCI_ADDRESS.test(target) ? target.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}

/** Lists the driver's cards under `<root>/sys/class/drm`, ordered by card number. */
async function findCards(root: string, spec: DrmHwmonSpec): Promise<Card[] | { reason: string }> {
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
  const found: Card[] = [];
  for (const card of cards) {
    const deviceDir = join(drm, card, "device");
    let hwmons: string[];
    try {
      hwmons = (await readdir(join(deviceDir, "hwmon"))).filter((h) => /^hwmon\d+$/.test(h));
    } catch {
      continue; // no hwmon: not a GPU we can measure
    }
    for (const hwmon of hwmons) {
      const hwmonDir = join(deviceDir, "hwmon", hwmon);
      const driver = await readText(join(hwmonDir, "name"));
      if (driver === undefined || !spec.hwmonNames.includes(driver)) continue;
      const info: Card = { card, driver, deviceDir, hwmonDir };
      const product = await readText(join(deviceDir, "product_name"));
      if (product) info.model = product;
      else {
        const vendor = await readText(join(deviceDir, "vendor"));
        const device = await readText(join(deviceDir, "device"));
        if (vendor && device) info.model = `${spec.vendor} GPU ${vendor.replace(/^0x/, "")}:${device.replace(/^0x/, "")}`;
      }
      const uuid = await readText(join(deviceDir, "unique_id"));
      if (uuid) info.uuid = uuid;
      const pci = await pciAddress(deviceDir);
      if (pci) info.pciBusId = pci;
      found.push(info);
      break;
    }
  }
  return found;
}

type Measure =
  | { method: "counter"; energyJoules: number; energyFile: string; powerWatts?: number; powerFile?: string }
  | { method: "power"; powerWatts: number; powerFile: string }
  | { method: "none" };

async function measure(card: Card, spec: DrmHwmonSpec): Promise<Measure> {
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
  for (const energyFile of spec.energyFiles) {
    const microjoules = await readNumber(join(card.hwmonDir, energyFile));
    if (microjoules === undefined) continue;
    const m: Measure = { method: "counter", energyJoules: microjoulesToJoules(microjoules), energyFile };
    if (powerWatts !== undefined) m.powerWatts = powerWatts;
    if (powerFile !== undefined) m.powerFile = powerFile;
    return m;
  }
  if (powerWatts !== undefined && powerFile !== undefined) return { method: "power", powerWatts, powerFile };
  return { method: "none" };
}

/** One card's processes from a scan: shares by engine time, or equal when none was used this interval. */
function cardProcesses(usage: DrmDeviceUsage | undefined): { processes: ProcessUsage[]; method: DeviceReading["processUsageMethod"] } {
  if (!usage) return { processes: [], method: "engine-time" };
  let total = 0;
  for (const s of usage.busySecondsByPid.values()) total += s;
  const processes: ProcessUsage[] = [];
  for (const [pid, seconds] of usage.busySecondsByPid) processes.push(total > 0 ? { pid, share: seconds / total } : { pid });
  return { processes, method: total > 0 ? "engine-time" : "equal" };
}

/** A collector of the cards of one DRM driver family (see the file comment). */
export function createDrmHwmonCollector(spec: DrmHwmonSpec, opts: DrmHwmonCollectorOptions = {}): Collector {
  const root = opts.root ?? "/";
  const clients = new DrmClients({ procRoot: opts.procRoot ?? root, drivers: spec.hwmonNames });
  let cards: Card[] | undefined;
  let lastScanMillis: number | undefined;
  let procReadable: boolean | undefined;

  async function list(): Promise<Card[] | { reason: string }> {
    const result = await findCards(root, spec);
    if (Array.isArray(result)) cards = result;
    return result;
  }

  /** Per card id: its processes, when /proc can be read. */
  async function processesByCard(found: Card[]): Promise<Map<string, ReturnType<typeof cardProcesses>> | undefined> {
    procReadable ??= (await readdir(join(opts.procRoot ?? root, "proc")).then(() => true, () => false));
    if (!procReadable) return undefined;
    const now = performance.now();
    const usage = clients.scan(lastScanMillis === undefined ? 0 : (now - lastScanMillis) / 1000);
    lastScanMillis = now;
    const out = new Map<string, ReturnType<typeof cardProcesses>>();
    for (const card of found) {
      // A client without drm-pdev belongs to its driver's only card.
      const alone = found.filter((c) => c.driver === card.driver).length === 1;
      const byPdev = card.pciBusId !== undefined ? usage.get(card.pciBusId) : undefined;
      out.set(card.card, cardProcesses(byPdev ?? (alone ? usage.get(card.driver) : undefined)));
    }
    return out;
  }

  return {
    id: spec.id,
    async probe(): Promise<ProbeResult> {
      const result = await list();
      if (!Array.isArray(result)) return { status: "unavailable", reason: result.reason };
      if (result.length === 0) {
        return { status: "unavailable", reason: `${spec.unavailable.reason} under ${join(root, "sys", "class", "drm")}/card*/device/hwmon`, fix: spec.unavailable.fix };
      }
      const devices: DeviceInfo[] = [];
      for (const card of result) {
        const m = await measure(card, spec);
        const info: DeviceInfo = {
          deviceId: `${card.driver}:${card.card}`,
          kind: "gpu",
          method: m.method === "counter" ? "counter" : "power",
          energyCounter: m.method === "counter",
          detail:
            m.method === "counter"
              ? `energy counter (hwmon ${m.energyFile})`
              : m.method === "power"
                ? `no ${spec.energyFiles[0]}: integrating ${m.powerFile}`
                : `no ${spec.energyFiles[0]}, power1_average or power1_input readable: card skipped`,
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
      const processes = await processesByCard(found);
      const readings: DeviceReading[] = [];
      for (const card of found) {
        const m = await measure(card, spec);
        if (m.method === "none") continue;
        const reading: DeviceReading = { deviceId: `${card.driver}:${card.card}`, kind: "gpu", source: spec.id, method: m.method, status: "ok" };
        if (card.model !== undefined) reading.model = card.model;
        if (card.uuid !== undefined) reading.uuid = card.uuid;
        if (card.pciBusId !== undefined) reading.pciBusId = card.pciBusId;
        if (m.method === "counter") {
          reading.energyJoules = m.energyJoules;
          if (m.energyFile !== spec.energyFiles[0]) reading.note = `${card.driver} hwmon has no ${spec.energyFiles[0]}: counting ${m.energyFile}`;
        }
        if (m.powerWatts !== undefined) reading.powerWatts = m.powerWatts;
        if (m.method === "power") reading.note = `${card.driver} hwmon has no ${spec.energyFiles[0]}: integrating ${m.powerFile}`;
        const busy = await readNumber(join(card.deviceDir, "gpu_busy_percent"));
        if (busy !== undefined) reading.utilization = busy / 100;
        const own = processes?.get(card.card);
        if (own) {
          reading.processes = own.processes;
          reading.processUsageMethod = own.method;
        }
        readings.push(reading);
      }
      if (clients.truncated) {
        const bound = "DRM fdinfo scan hit its bound (processes, descriptors or clients): some processes' engine time is not counted";
        for (const r of readings) r.note = r.note ? `${r.note}; ${bound}` : bound;
      }
      return readings;
    },
    async close(): Promise<void> {
      cards = undefined;
    },
  };
}
