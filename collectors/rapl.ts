/**
 * RAPL energy counters through the Linux powercap sysfs interface
 * (`/sys/class/powercap/intel-rapl:*`, driver intel_rapl_msr; also AMD Zen via the same driver).
 *
 * Zones (the kernel names them `intel-rapl:<id>` and `intel-rapl:<id>:<sub>`, ids in HEX, so the
 * eleventh package is `intel-rapl:a`):
 * - top-level `package-N` (or `package-N-die-M` on multi-die parts): one CPU package → kind "cpu",
 *   device "rapl:package-N".
 * - sub-zone `dram` of a package: that socket's memory → kind "memory", device "rapl:dram-N".
 * - sub-zones `core` / `uncore`: parts of their package's energy, already inside it → skipped.
 * - top-level `psys`: the whole platform (SoC, DRAM, chipset, ...), which OVERLAPS package and
 *   dram. It is used (kind "cpu", device "rapl:psys") only when no package zone is readable, in
 *   which case dram zones are dropped and the reading says so; otherwise psys is skipped, so
 *   nothing is counted twice.
 * - `intel-rapl-mmio:*`: the same package counter through MMIO on client parts; ignored
 *   (it duplicates the MSR zone).
 * - anything else (a zone named "domain", "socket", ...) or malformed values: skipped, with a note
 *   in probe().
 * `enabled` files are about power-limit enforcement, not counting, and are not read.
 *
 * Readings: `energyJoules` = energy_uj / 1e6 (cumulative, exact to the µJ), `counterRangeJoules` =
 * max_energy_range_uj / 1e6 (the wrap point, handled by src/core/counter.ts), method "counter".
 *
 * Permissions: on kernels patched for CVE-2020-8694 (PLATYPUS; mainline 5.10, backported to stable
 * kernels) energy_uj is mode 0400 root. Unprivileged runs get "unavailable" with the fixes in
 * {@link RAPL_PERMISSION_FIX}.
 */

import { join } from "node:path";
import { MICROJOULES_PER_JOULE } from "../src/units.js";
import type { Collector, DeviceInfo, DeviceKind, DeviceReading, ProbeResult } from "../src/core/contracts.js";
import { readRegularText, withinMillis } from "../src/guarded-read.js";
import { isDirectory, listZoneDirs, parseMicrojoules, ZONE_DIR, type ReadOutcome } from "./rapl-counters.js";

export { parseMicrojoules, readRaplCountersNow } from "./rapl-counters.js";

/** Collector id. */
export const RAPL_COLLECTOR_ID = "rapl";

/**
 * How to let a non-root powerprint read RAPL counters (shown by `powerprint probe`). Reading a
 * 0400 root file needs root, a wider file mode, or CAP_DAC_READ_SEARCH (which bypasses file read
 * permission checks); CAP_SYS_RAWIO is for /dev/cpu/N/msr and does not help with sysfs.
 */
export const RAPL_PERMISSION_FIX = [
  "energy_uj is readable by root only (Linux fix for CVE-2020-8694). Pick one:",
  "  - run powerprint as root (sudo), or in a container whose user is root;",
  "  - until the next reboot: sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj",
  "  - permanently, a udev rule in /etc/udev/rules.d/99-powerprint-rapl.rules:",
  '      ACTION=="add", SUBSYSTEM=="powercap", KERNEL=="intel-rapl:*", RUN+="/bin/chmod o+r /sys%p/energy_uj"',
  "    then apply it now: sudo udevadm trigger --subsystem-match=powercap --action=add",
  "  - or grant the capability CAP_DAC_READ_SEARCH: docker run --cap-add DAC_READ_SEARCH, or",
  "    Kubernetes securityContext.capabilities.add: [DAC_READ_SEARCH] (with /sys/class/powercap visible).",
  "Note: world-readable energy counters re-open the PLATYPUS power side channel to local users;",
  "on shared hosts prefer root or the capability, or chgrp the files to a trusted group and chmod g+r.",
].join("\n");

/** Options of {@link createRaplCollector}. */
export interface RaplCollectorOptions {
  /** Root of the file system to read (default "/"): the collector reads `${root}/sys/class/powercap`. */
  root?: string;
  /**
   * probe() reads the package counters twice this many milliseconds apart and reports RAPL
   * unavailable when none advanced: some hypervisors expose RAPL zones whose counters never move,
   * which would read as 0 J. Default: 100 when root is "/" (a live system), 0 (off) for fixture roots.
   */
  advanceCheckMillis?: number;
  /**
   * The counters as read at the accounting origin (run: just before the spawn, by
   * readRaplCountersNow), energy_uj path → µJ. The first read() carries each zone's origin value
   * (DeviceReading.originEnergyJoules), so the energy from the spawn to the first read is counted
   * exactly although the collector is set up after the command started.
   */
  origin?: ReadonlyMap<string, number>;
}

/** One powercap zone the collector reads. */
interface RaplZone {
  deviceId: string;
  kind: DeviceKind;
  /** Zone directory name, e.g. "intel-rapl:0:1". */
  zoneId: string;
  /** Zone name as sysfs gives it, e.g. "package-0", "dram", "psys". */
  zoneName: string;
  energyPath: string;
  counterRangeJoules?: number;
  note?: string;
}

/** What a scan of the powercap tree found. */
interface RaplScan {
  status: "ok" | "no-powercap" | "no-zones" | "permission-denied" | "no-usable-zones";
  zones: RaplZone[];
  /** Human-readable notes on skipped zones. */
  notes: string[];
  /** energy_uj files that could not be read for lack of permission. */
  deniedPaths: string[];
  powercapDir: string;
}

const PACKAGE_NAME = /^package-(\d+(?:-die-\d+)?)$/;
const PSYS_NAME = /^psys(?:-\d+)?$/;

function zoneOrder(a: string, b: string): number {
  const pa = ZONE_DIR.exec(a)!;
  const pb = ZONE_DIR.exec(b)!;
  const top = parseInt(pa[1], 16) - parseInt(pb[1], 16);
  if (top !== 0) return top;
  return (pa[2] === undefined ? -1 : parseInt(pa[2], 16)) - (pb[2] === undefined ? -1 : parseInt(pb[2], 16));
}

/** How long one read of a zone file may take at probe, ms: past it the zone is left out, said (a wedged driver). */
const PROBE_READ_DEADLINE_MILLIS = 2_000;

/**
 * A zone file's trimmed text, through src/guarded-read.ts: a FIFO or device refused (ENOTREG)
 * without being opened, the read on the thread pool; at most `deadlineMillis` (ETIMEDOUT; the read
 * itself may stay stuck in the kernel, on its pool thread).
 */
async function readZoneFile(path: string, deadlineMillis = PROBE_READ_DEADLINE_MILLIS): Promise<ReadOutcome> {
  const r = await withinMillis(readRegularText(path), deadlineMillis);
  if (r === "timeout") return { ok: false, code: "ETIMEDOUT", message: `${path}: no answer within ${deadlineMillis} ms` };
  if (r.status === "ok") return { ok: true, text: r.text.trim() };
  if (r.status === "refused") return { ok: false, code: "ENOTREG", message: r.reason };
  return { ok: false, code: r.code, message: r.message };
}

/** Scans `${root}/sys/class/powercap`. Never throws; every file read bounded (readZoneFile). */
async function scanPowercap(root: string): Promise<RaplScan> {
  const powercapDir = join(root, "sys", "class", "powercap");
  const scan: RaplScan = { status: "ok", zones: [], notes: [], deniedPaths: [], powercapDir };
  if (!isDirectory(powercapDir)) return { ...scan, status: "no-powercap" };
  const dirs = listZoneDirs(powercapDir);
  if (dirs.size === 0) return { ...scan, status: "no-zones" };

  const ids = [...dirs.keys()].sort(zoneOrder);
  // Top-level zone id → package suffix ("0", "0-die-1"), for naming dram sub-zones.
  const packageSuffixByTop = new Map<string, string>();
  const names = new Map<string, string>();
  for (const zoneId of ids) {
    const name = await readZoneFile(join(dirs.get(zoneId)!, "name"));
    if (!name.ok || name.text === "") {
      scan.notes.push(`${zoneId}: no readable name (${name.ok ? "empty" : name.code}); skipped`);
      continue;
    }
    names.set(zoneId, name.text);
    const top = ZONE_DIR.exec(zoneId)!;
    const pkg = PACKAGE_NAME.exec(name.text);
    if (top[2] === undefined && pkg) packageSuffixByTop.set(top[1], pkg[1]);
  }

  const psysCandidates: RaplZone[] = [];
  const seenDeviceIds = new Set<string>();
  for (const zoneId of ids) {
    const zoneName = names.get(zoneId);
    if (zoneName === undefined) continue;
    const dir = dirs.get(zoneId)!;
    const [, topId, subId] = ZONE_DIR.exec(zoneId)!;
    let deviceId: string;
    let kind: DeviceKind;
    const pkg = PACKAGE_NAME.exec(zoneName);
    if (subId === undefined && pkg) {
      deviceId = `rapl:package-${pkg[1]}`;
      kind = "cpu";
    } else if (subId === undefined && PSYS_NAME.test(zoneName)) {
      deviceId = `rapl:${zoneName}`;
      kind = "cpu";
    } else if (zoneName === "dram") {
      // dram is a sub-zone of its package; a top-level dram (old kernels) is named by its zone index.
      const suffix = subId === undefined ? String(parseInt(topId, 16)) : packageSuffixByTop.get(topId);
      if (suffix === undefined) {
        scan.notes.push(`${zoneId} (dram): parent ${`intel-rapl:${topId}`} is not a readable package zone; skipped`);
        continue;
      }
      deviceId = `rapl:dram-${suffix}`;
      kind = "memory";
    } else if (subId !== undefined && (zoneName === "core" || zoneName === "uncore")) {
      scan.notes.push(`${zoneId} (${zoneName}): part of its package's energy, not added`);
      continue;
    } else {
      scan.notes.push(`${zoneId}: unknown zone name "${zoneName}"; skipped`);
      continue;
    }
    if (seenDeviceIds.has(deviceId)) {
      scan.notes.push(`${zoneId} (${zoneName}): duplicate of ${deviceId}; skipped`);
      continue;
    }

    const energyPath = join(dir, "energy_uj");
    const energy = await readZoneFile(energyPath);
    if (!energy.ok) {
      if (energy.code === "EACCES" || energy.code === "EPERM") scan.deniedPaths.push(energyPath);
      scan.notes.push(`${zoneId} (${zoneName}): energy_uj unreadable (${energy.code}); skipped`);
      continue;
    }
    if (parseMicrojoules(energy.text) === undefined) {
      scan.notes.push(`${zoneId} (${zoneName}): malformed energy_uj "${energy.text}"; skipped`);
      continue;
    }
    const zone: RaplZone = { deviceId, kind, zoneId, zoneName, energyPath };
    const range = await readZoneFile(join(dir, "max_energy_range_uj"));
    const rangeMicrojoules = range.ok ? parseMicrojoules(range.text) : undefined;
    if (rangeMicrojoules !== undefined && rangeMicrojoules > 0) {
      zone.counterRangeJoules = rangeMicrojoules / MICROJOULES_PER_JOULE;
    } else {
      const why = range.ok ? `malformed max_energy_range_uj "${range.text}"` : `max_energy_range_uj unreadable (${range.code})`;
      zone.note = `${why}: a counter wrap cannot be corrected`;
    }
    seenDeviceIds.add(deviceId);
    if (kind === "cpu" && PSYS_NAME.test(zoneName)) psysCandidates.push(zone);
    else scan.zones.push(zone);
  }

  const hasPackage = scan.zones.some((z) => z.kind === "cpu");
  if (psysCandidates.length > 0) {
    if (hasPackage) {
      for (const psys of psysCandidates) {
        scan.notes.push(`${psys.zoneId} (psys): whole-platform energy overlaps the package and dram zones; not added`);
      }
    } else {
      // psys covers the whole platform, DRAM included: keeping a dram zone too would count it twice.
      for (const dram of scan.zones.filter((z) => z.kind === "memory")) {
        scan.notes.push(`${dram.zoneId} (dram): inside the psys platform energy used instead of packages; not added`);
      }
      scan.zones = psysCandidates.map((psys) => ({
        ...psys,
        note: [psys.note, "psys: whole-platform energy (CPU, SoC, DRAM, chipset), used because no package zone is readable"]
          .filter(Boolean)
          .join("; "),
      }));
    }
  }
  for (const zone of scan.zones) if (zone.note) scan.notes.push(`${zone.zoneId} (${zone.zoneName}): ${zone.note}`);

  if (scan.zones.length === 0) scan.status = scan.deniedPaths.length > 0 ? "permission-denied" : "no-usable-zones";
  return scan;
}

function readingOf(zone: RaplZone, microjoules: number): DeviceReading {
  const reading: DeviceReading = {
    deviceId: zone.deviceId,
    kind: zone.kind,
    source: RAPL_COLLECTOR_ID,
    energyJoules: microjoules / MICROJOULES_PER_JOULE,
    method: "counter",
  };
  if (zone.counterRangeJoules !== undefined) reading.counterRangeJoules = zone.counterRangeJoules;
  if (zone.note) reading.note = zone.note;
  return reading;
}

/** Package (kind "cpu") zones whose counter did not move over `waitMillis`; none when the check is off. */
async function stuckPackageCounters(zones: RaplZone[], waitMillis: number): Promise<RaplZone[]> {
  if (waitMillis <= 0) return [];
  const packages = zones.filter((z) => z.kind === "cpu");
  const read = async (z: RaplZone): Promise<string | undefined> => {
    const text = await readZoneFile(z.energyPath);
    return text.ok ? text.text : undefined;
  };
  const before = await Promise.all(packages.map(read));
  await new Promise((resolve) => setTimeout(resolve, waitMillis));
  const after = await Promise.all(packages.map(read));
  return packages.filter((_, i) => before[i] !== undefined && after[i] === before[i]);
}

/**
 * Creates the RAPL collector (id "rapl"). probe() scans the powercap tree and says which zones it
 * uses, or why RAPL is unavailable and how to fix it (on a live system it also checks that the
 * package counters advance, see {@link RaplCollectorOptions.advanceCheckMillis}); read() re-reads the energy_uj of those zones
 * (the zone list is scanned once, on the first probe() or read()).
 *
 * Data source: Linux powercap sysfs (`${root}/sys/class/powercap`). Unit: energy in joules from
 * microjoule counters. Caveats: see the module comment (psys, core/uncore, mmio, permissions).
 */
export function createRaplCollector(opts: RaplCollectorOptions = {}): Collector {
  const root = opts.root ?? "/";
  const advanceCheckMillis = opts.advanceCheckMillis ?? (root === "/" ? 100 : 0);
  let scan: RaplScan | undefined;
  const getScan = async (): Promise<RaplScan> => (scan ??= await scanPowercap(root));
  let origin = opts.origin;

  return {
    id: RAPL_COLLECTOR_ID,

    async probe(): Promise<ProbeResult> {
      // probe() always rescans: after a chmod the user expects `powerprint probe` to see it.
      scan = await scanPowercap(root);
      const s = scan;
      switch (s.status) {
        case "no-powercap":
          return {
            status: "unavailable",
            reason: `no RAPL powercap zones (VM or container without /sys/class/powercap): ${s.powercapDir} does not exist`,
            fix: "on bare metal, load the driver (sudo modprobe intel_rapl_msr); in a container, make the host's /sys/class/powercap visible (e.g. -v /sys/class/powercap:/sys/class/powercap:ro); in a VM RAPL is not exposed and the cpu-model collector estimates CPU and memory power instead",
          };
        case "no-zones":
          return {
            status: "unavailable",
            reason: `no RAPL powercap zones under ${s.powercapDir} (VM, or the intel_rapl_msr driver is not loaded)`,
            fix: "on bare metal: sudo modprobe intel_rapl_msr; in a VM RAPL is not exposed and the cpu-model collector estimates CPU and memory power instead",
          };
        case "permission-denied":
          return {
            status: "unavailable",
            reason: `permission denied reading ${s.deniedPaths[0]}${s.deniedPaths.length > 1 ? ` (and ${s.deniedPaths.length - 1} more energy_uj files)` : ""}`,
            fix: RAPL_PERMISSION_FIX,
          };
        case "no-usable-zones":
          return {
            status: "unavailable",
            reason: `no usable RAPL zone under ${s.powercapDir}: ${s.notes.join("; ")}`,
          };
        case "ok": {
          const stuck = await stuckPackageCounters(s.zones, advanceCheckMillis);
          const packages = s.zones.filter((z) => z.kind === "cpu");
          if (stuck.length > 0 && stuck.length === packages.length) {
            return {
              status: "unavailable",
              reason: `RAPL counters did not advance in ${advanceCheckMillis} ms (${stuck.map((z) => z.energyPath).join(", ")}): emulated RAPL (a VM) gives no energy`,
              fix: "nothing to fix on this host: the cpu-model collector estimates CPU and memory power instead; on bare metal, check that the intel_rapl_msr driver is loaded",
            };
          }
          for (const z of stuck) s.notes.push(`${z.zoneId} (${z.zoneName}): counter did not advance in ${advanceCheckMillis} ms`);
          const devices: DeviceInfo[] = s.zones.map((z) => ({
            deviceId: z.deviceId,
            kind: z.kind,
            method: "counter",
            energyCounter: true,
            detail: `${z.zoneId} (${z.zoneName})${z.note ? `: ${z.note}` : ""}`,
          }));
          const notes = [...s.notes];
          if (s.deniedPaths.length > 0) notes.push(`some zones were not readable; to fix:\n${RAPL_PERMISSION_FIX}`);
          return notes.length > 0 ? { status: "ok", devices, note: notes.join("; ") } : { status: "ok", devices };
        }
      }
    },

    async read(): Promise<DeviceReading[]> {
      const readings: DeviceReading[] = [];
      const failed: string[] = [];
      for (const zone of (await getScan()).zones) {
        // On the thread pool, refused unless a regular file: a wedged read holds a pool thread, and
        // the sampler's deadline gives it up (the collector is then hung, not read again until it answers).
        const r = await readRegularText(zone.energyPath);
        const microjoules = r.status === "ok" ? parseMicrojoules(r.text.trim()) : undefined;
        // A zone that cannot be read this time (gone, a torn value) yields no reading this tick; one
        // that is no longer a regular file (a FIFO put in its place) is refused: the read fails.
        if (r.status === "refused") failed.push(r.reason);
        if (microjoules === undefined) continue;
        const reading = readingOf(zone, microjoules);
        const atOrigin = origin?.get(zone.energyPath);
        if (atOrigin !== undefined) reading.originEnergyJoules = atOrigin / MICROJOULES_PER_JOULE;
        readings.push(reading);
      }
      // A zone usable at probe that is now refused is trouble, not an expected condition: the read
      // fails (counted, said once, the source unhealthy on /healthz); the counters' next readings
      // span the gap exactly. A restart probes again, leaving such a zone out.
      if (failed.length > 0) throw new Error(failed.join("; "));
      // The origin belongs to the first reading only (the integrator's first interval).
      origin = undefined;
      return readings;
    },

    async close(): Promise<void> {},
  };
}
