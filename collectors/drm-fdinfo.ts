/**
 * Per-process GPU engine time from DRM fdinfo (Linux Documentation/gpu/drm-usage-stats.rst): every
 * open DRM file (a /dev/dri/renderD* or /dev/dri/card* descriptor) of a driver that implements it
 * (amdgpu, i915, xe, ...) shows in /proc/PID/fdinfo/FD as `drm-` key/value lines:
 *  - `drm-driver` (mandatory), `drm-pdev` (the device's PCI address), `drm-client-id` (one per DRM
 *    file: descriptors dup'ed or passed between processes share it, and it must be counted once);
 *  - `drm-engine-<name>: <ns> ns` busy time per engine (amdgpu, i915), with optional
 *    `drm-engine-capacity-<name>`;
 *  - `drm-cycles-<name>` and `drm-total-cycles-<name>` (xe): busy cycles and a GPU timestamp in the
 *    same unit, so a client's busy share of the interval is Δcycles / Δtotal-cycles;
 *  - `drm-memory-<region>`, `drm-resident-<region>`, `drm-total-<region>` (bytes, `KiB`/`MiB`).
 * Counters may step back briefly: the reader keeps the larger value seen until they catch up, as
 * the spec asks.
 *
 * DrmClients scans <procRoot>/proc/* /fd (bounded), reads each DRM descriptor's fdinfo once per
 * client, and gives per device (drm-pdev) and process the engine busy seconds since its previous
 * scan: the sum over the client's engines (an engine-second of any engine weighs alike), for a
 * client held by several processes given to the one with the lowest PID. A client first seen after
 * the first scan counts from zero (its counters start at zero when it is opened); on the first scan
 * every client is only a baseline.
 */
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";

/** One DRM file's usage, as one fdinfo shows it. */
export interface DrmFdinfo {
  driver: string;
  /** drm-pdev: the PCI address ("0000:03:00.0"). */
  pdev?: string;
  /** drm-client-id. */
  clientId?: string;
  /** drm-engine-<name>: busy nanoseconds per engine. */
  engineNanos: Map<string, number>;
  /** drm-cycles-<name> / drm-total-cycles-<name> (xe). */
  cycles: Map<string, { busy: number; total?: number }>;
  /** Whether the client holds any memory (drm-memory-*, drm-resident-*, drm-total-* > 0). */
  holdsMemory: boolean;
}

/** Largest number of fdinfo lines read per file (a DRM fdinfo has a few dozen). */
const MAX_LINES = 512;

/** Parses one /proc/PID/fdinfo/FD; undefined when it is not a DRM file (no drm-driver). */
export function parseDrmFdinfo(text: string): DrmFdinfo | undefined {
  let driver: string | undefined;
  const info: Omit<DrmFdinfo, "driver"> = { engineNanos: new Map(), cycles: new Map(), holdsMemory: false };
  const lines = text.split("\n", MAX_LINES);
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 4 || !line.startsWith("drm-")) continue;
    const key = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (key === "drm-driver") driver = value;
    else if (key === "drm-pdev") info.pdev = value;
    else if (key === "drm-client-id") info.clientId = value;
    else if (key.startsWith("drm-engine-capacity-")) continue;
    else if (key.startsWith("drm-engine-")) {
      const ns = unsigned(value, ["ns"]);
      if (ns !== undefined) info.engineNanos.set(key.slice("drm-engine-".length), ns);
    } else if (key.startsWith("drm-total-cycles-")) {
      const total = unsigned(value, []);
      if (total !== undefined) cycleEntry(info.cycles, key.slice("drm-total-cycles-".length)).total = total;
    } else if (key.startsWith("drm-cycles-")) {
      const busy = unsigned(value, []);
      if (busy !== undefined) cycleEntry(info.cycles, key.slice("drm-cycles-".length)).busy = busy;
    } else if (/^drm-(memory|resident|total)-/.test(key)) {
      if ((unsigned(value, ["KiB", "MiB", "B"]) ?? 0) > 0) info.holdsMemory = true;
    }
  }
  return driver ? { driver, ...info } : undefined;
}

function cycleEntry(m: Map<string, { busy: number; total?: number }>, name: string): { busy: number; total?: number } {
  let e = m.get(name);
  if (!e) m.set(name, (e = { busy: 0 }));
  return e;
}

/** "<uint>[ unit]" with an allowed unit; KiB/MiB scale to bytes. */
function unsigned(value: string, units: string[]): number | undefined {
  const m = /^(\d{1,20})(?:\s+(\S+))?$/.exec(value);
  if (!m) return undefined;
  if (m[2] !== undefined && !units.includes(m[2])) return undefined;
  const n = Number(m[1]);
  if (!Number.isFinite(n)) return undefined;
  return m[2] === "KiB" ? n * 1024 : m[2] === "MiB" ? n * 1024 * 1024 : n;
}

/** What one scan found per device (drm-pdev): each process's engine busy seconds since the previous scan. */
export interface DrmDeviceUsage {
  /** Processes holding a client that has used an engine or holds memory, with their busy seconds in the interval. */
  busySecondsByPid: Map<number, number>;
}

interface ClientState {
  /** Largest engine nanoseconds seen, by engine (the spec's monotonic rule). */
  engineNanos: Map<string, number>;
  /** Largest busy cycles seen, by engine class. */
  cycles: Map<string, number>;
  seenAtScan: number;
}

/** Bounds of one scan: processes, descriptors, DRM clients kept. */
const MAX_PROCESSES = 65_536;
const MAX_DESCRIPTORS = 262_144;
const MAX_CLIENTS = 65_536;

/** Options of {@link DrmClients}. */
export interface DrmClientsOptions {
  /** Root holding proc/ (default "/"). */
  procRoot?: string;
  /** Only clients of these drivers (drm-driver), e.g. ["amdgpu"] or ["i915", "xe"]. */
  drivers: readonly string[];
}

/** The DRM clients of a host, scanned each read (see the file comment). */
export class DrmClients {
  private readonly procRoot: string;
  private readonly clients = new Map<string, ClientState>();
  /** xe: the previous scan's total cycles (GPU timestamp) per device and engine class. */
  private readonly totals = new Map<string, number>();
  private scans = 0;
  /** Set when a scan hit a bound (said by the collector). */
  truncated = false;

  constructor(private readonly o: DrmClientsOptions) {
    this.procRoot = o.procRoot ?? "/";
  }

  /** Scans now; per drm-pdev (or "<driver>" when a client has none), each process's busy seconds since the last scan. */
  scan(intervalSeconds: number): Map<string, DrmDeviceUsage> {
    this.scans++;
    this.truncated = false;
    const owners = this.readClients();
    const out = new Map<string, DrmDeviceUsage>();
    const totalsNow = new Map<string, number>();
    for (const [key, { pid, info }] of owners) {
      const device = info.pdev ?? info.driver;
      const state = this.clients.get(key);
      const busySeconds = this.busySeconds(device, info, state, intervalSeconds);
      for (const [name, c] of info.cycles) if (c.total !== undefined) totalsNow.set(`${device}\u0000${name}`, Math.max(c.total, totalsNow.get(`${device}\u0000${name}`) ?? 0));
      this.remember(key, info, state);
      const used = busySeconds > 0 || info.holdsMemory || [...info.engineNanos.values()].some((v) => v > 0) || [...info.cycles.values()].some((c) => c.busy > 0);
      if (!used) continue;
      let usage = out.get(device);
      if (!usage) out.set(device, (usage = { busySecondsByPid: new Map() }));
      usage.busySecondsByPid.set(pid, (usage.busySecondsByPid.get(pid) ?? 0) + busySeconds);
    }
    for (const [k, v] of totalsNow) this.totals.set(k, v);
    // Clients gone (closed, or their processes exited) are forgotten.
    for (const [key, state] of this.clients) if (state.seenAtScan !== this.scans) this.clients.delete(key);
    return out;
  }

  /** Busy seconds of one client since the previous scan (0 on the first scan: a baseline). */
  private busySeconds(device: string, info: DrmFdinfo, state: ClientState | undefined, intervalSeconds: number): number {
    if (this.scans === 1) return 0;
    let seconds = 0;
    for (const [name, ns] of info.engineNanos) seconds += Math.max(0, ns - (state?.engineNanos.get(name) ?? 0)) / 1e9;
    for (const [name, c] of info.cycles) {
      const previousTotal = this.totals.get(`${device}\u0000${name}`);
      if (c.total === undefined || previousTotal === undefined || c.total <= previousTotal) continue;
      const busy = Math.max(0, c.busy - (state?.cycles.get(name) ?? 0));
      // Busy cycles over elapsed GPU cycles: the client's share of the interval on that engine class.
      seconds += Math.min(1, busy / (c.total - previousTotal)) * intervalSeconds;
    }
    return seconds;
  }

  private remember(key: string, info: DrmFdinfo, state: ClientState | undefined): void {
    const s: ClientState = state ?? { engineNanos: new Map(), cycles: new Map(), seenAtScan: 0 };
    for (const [name, ns] of info.engineNanos) s.engineNanos.set(name, Math.max(ns, s.engineNanos.get(name) ?? 0));
    for (const [name, c] of info.cycles) s.cycles.set(name, Math.max(c.busy, s.cycles.get(name) ?? 0));
    s.seenAtScan = this.scans;
    if (state || this.clients.size < MAX_CLIENTS) this.clients.set(key, s);
    else this.truncated = true;
  }

  /**
   * Every DRM client of the wanted drivers, once: keyed by (pdev, client id), owned by the lowest
   * PID holding it. A client without drm-client-id cannot be told apart from a duplicate: it is
   * keyed by its process and descriptor.
   */
  private readClients(): Map<string, { pid: number; info: DrmFdinfo }> {
    const clients = new Map<string, { pid: number; info: DrmFdinfo }>();
    const proc = join(this.procRoot, "proc");
    let pids: number[];
    try {
      pids = readdirSync(proc)
        .filter((e) => /^\d+$/.test(e))
        .map(Number)
        .sort((a, b) => a - b);
    } catch {
      return clients;
    }
    if (pids.length > MAX_PROCESSES) {
      pids = pids.slice(0, MAX_PROCESSES);
      this.truncated = true;
    }
    let descriptors = 0;
    for (const pid of pids) {
      const fdDir = join(proc, String(pid), "fd");
      let fds: string[];
      try {
        fds = readdirSync(fdDir);
      } catch {
        continue; // gone, or not ours to read
      }
      for (const fd of fds) {
        if (++descriptors > MAX_DESCRIPTORS) {
          this.truncated = true;
          return clients;
        }
        let target: string;
        try {
          target = readlinkSync(join(fdDir, fd));
        } catch {
          continue;
        }
        if (!target.startsWith("/dev/dri/")) continue;
        let info: DrmFdinfo | undefined;
        try {
          info = parseDrmFdinfo(readFileSync(join(proc, String(pid), "fdinfo", fd), "utf8"));
        } catch {
          continue;
        }
        if (!info || !this.o.drivers.includes(info.driver)) continue;
        const key = info.clientId !== undefined ? `${info.pdev ?? info.driver}\u0000${info.clientId}` : `${pid}\u0000fd${fd}`;
        // PIDs are visited in increasing order: the first holder is the lowest PID.
        if (!clients.has(key)) clients.set(key, { pid, info });
      }
    }
    return clients;
  }
}
