/**
 * Modelled CPU and memory power, for hosts without readable RAPL counters (most VMs and
 * containers). Nothing here is measured: every reading has method "model" and a note saying how
 * its figure was made.
 *
 * CPU: power = idle + (TDP − idle) × utilisation, idle = idleFraction × TDP (linear with an idle
 * floor, the shape of Cloud Carbon Footprint's compute estimator). TDP per socket comes from
 * data/cpu_tdp.csv, CodeCarbon's CPU table (MIT, mlco2/codecarbon
 * `codecarbon/data/hardware/cpu_power.csv`), matched as {@link lookupTdp} documents; utilisation is
 * the host's busy CPU fraction the sampler passes in {@link ReadContext}.
 *
 * Memory: a constant power per GB of installed memory (Cloud Carbon Footprint's coefficient),
 * see {@link DEFAULT_MEMORY_WATTS_PER_GB}.
 */

import os from "node:os";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { dataPath } from "../src/paths.js";
import { errorMessage } from "../src/errors.js";
import { bytesToGibibytes, formatPlain } from "../src/units.js";
import type { Collector, DeviceInfo, DeviceReading, ProbeResult, ReadContext } from "../src/core/contracts.js";

/** Collector id. */
export const CPU_MODEL_COLLECTOR_ID = "cpu-model";

/**
 * Idle power as a fraction of TDP: 0.74 / 3.5 ≈ 0.211, the ratio of Cloud Carbon Footprint's
 * average minimum to average maximum watts per vCPU for AWS (MIN_WATTS_AVG 0.74 W, MAX_WATTS_AVG
 * 3.5 W; CCF derives them from SPECpower results). Caveat: real idle package power ranges from
 * under 10% (modern client parts) to ~30% (servers with deep C-states disabled) of TDP.
 */
export const DEFAULT_IDLE_FRACTION = 0.74 / 3.5;

/**
 * Memory power, watts per GB (GB = 2^30 bytes): 0.392 W/GB, Cloud Carbon Footprint's
 * MEMORY_COEFFICIENT of 0.000392 kWh per GB-hour (Apache-2.0, cloud-carbon-footprint, the
 * per-provider constants files). Modelled as constant: DRAM refresh and background power dominate
 * and the model has no per-access term.
 */
export const DEFAULT_MEMORY_WATTS_PER_GB = 0.392;

/**
 * Fallback TDP for a CPU model that is not in the table, watts per LOGICAL CPU: CodeCarbon's
 * DEFAULT_POWER_PER_CORE (4 W per thread). Per logical CPU rather than per socket because unknown
 * models are mostly generic VM CPU names ("Intel Xeon Processor"), where the socket count says
 * nothing about the share of the physical CPU the VM holds.
 */
export const DEFAULT_WATTS_PER_LOGICAL_CPU = 4;

/**
 * Utilisation assumed when the sampler does not give one (0.5): Cloud Carbon Footprint's
 * AVG_CPU_UTILIZATION_2020 of 50%. Used loudly (the reading's note says so).
 */
export const ASSUMED_UTILIZATION = 0.5;

/** One row of the TDP table. */
export interface TdpRow {
  /** CPU model as the table spells it, e.g. "Intel Xeon Platinum 8375C". */
  name: string;
  /** Thermal design power of one package, watts. */
  tdpWatts: number;
  /** {@link normalizeCpuName} of the name. */
  normalized: string;
  tokens: string[];
}

/** The TDP table: rows, plus how many lines of the file were not usable. */
export interface TdpTable {
  rows: TdpRow[];
  /** Lines skipped because the TDP was not a number (CodeCarbon has a few such as "27.29.5"). */
  skippedLines: number;
}

/** Result of {@link lookupTdp}. */
export interface TdpMatch {
  /** TDP of one package, watts. */
  tdpWatts: number;
  /** The table row's name. */
  matchedName: string;
  /** "exact": same normalized name; "tokens": the table name's words are all in the model string (or the reverse), unambiguously. */
  matchKind: "exact" | "tokens";
  /** Several table rows normalize to the same name with different TDPs: the highest was taken. */
  ambiguous?: boolean;
}

/**
 * Normalizes a CPU model string for matching: lower case; (R), (TM), (C), ®, ™, © removed; the
 * clock ("@ 2.90GHz") and everything after it removed; "NN-Core Processor", "Processor" and "CPU"
 * removed; whitespace collapsed. "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz" →
 * "intel xeon platinum 8375c"; "AMD EPYC 7763 64-Core Processor" → "amd epyc 7763".
 */
export function normalizeCpuName(model: string): string {
  return model
    .toLowerCase()
    .replace(/\((?:r|tm|c)\)|[®™©]/g, " ")
    .replace(/\s*@.*$/, "")
    .replace(/\b\d+-core processor\b/g, " ")
    .replace(/\b(?:processor|cpu)\b/g, " ")
    .replace(/\s+/g, " ")
    .trim();
}

function tokensOf(normalized: string): string[] {
  return normalized.split(/[\s,()]+/).filter((t) => t !== "");
}

const NUMBER = /^\d+(?:\.\d+)?$/;

/**
 * A table row whose normalized name and tokens are computed on first use: a lookup touches only
 * the few rows that can match (see lookupTdp), so start-up does not normalize 4,899 names.
 */
class LazyRow implements TdpRow {
  private norm: string | undefined;
  private toks: string[] | undefined;
  constructor(
    readonly name: string,
    readonly tdpWatts: number,
  ) {}
  get normalized(): string {
    return (this.norm ??= normalizeCpuName(this.name));
  }
  get tokens(): string[] {
    return (this.toks ??= tokensOf(this.normalized));
  }
}

/**
 * Parses the TDP table CSV ("Name,TDP" header, names may be double-quoted with commas inside).
 * Rows whose TDP is not a plain number are counted in `skippedLines`, not guessed.
 */
export function parseTdpCsv(text: string): TdpTable {
  const rows: TdpRow[] = [];
  let skippedLines = 0;
  const lines = text.split(/\r?\n/);
  for (const [index, line] of lines.entries()) {
    if (index === 0 || line.trim() === "") continue; // header, trailing newline
    let name: string;
    let tdpText: string;
    if (line.startsWith('"')) {
      const end = line.indexOf('",', 1);
      if (end < 0) {
        skippedLines++;
        continue;
      }
      name = line.slice(1, end).replace(/""/g, '"');
      tdpText = line.slice(end + 2);
    } else {
      const comma = line.lastIndexOf(",");
      name = line.slice(0, comma);
      tdpText = line.slice(comma + 1);
    }
    tdpText = tdpText.trim();
    if (!NUMBER.test(tdpText) || name.trim() === "") {
      skippedLines++;
      continue;
    }
    rows.push(new LazyRow(name.trim(), Number(tdpText)));
  }
  return { rows, skippedLines };
}

const tableCache = new Map<string, TdpTable>();

/**
 * Loads the TDP table (default: data/cpu_tdp.csv, CodeCarbon's cpu_power.csv, MIT), cached per path.
 * @throws the file system error when the file is missing (a broken install, not a device state)
 */
export function loadTdpTable(path: string = dataPath("cpu_tdp.csv")): TdpTable {
  let table = tableCache.get(path);
  if (!table) {
    table = parseTdpCsv(readFileSync(path, "utf8"));
    tableCache.set(path, table);
  }
  return table;
}

const hasDigit = (token: string): boolean => /\d/.test(token);

const textCache = new Map<string, { text: string; lower: string }>();

/**
 * {@link lookupTdp} against the TDP table file without parsing all of it: the file's lines that
 * can hold a candidate row (a substring search of the lower-cased text for each of the model's
 * tokens with a digit, or, for a model without one, for its longest token, which every exact match
 * contains) are parsed, and lookupTdp runs on them. The same answer as lookupTdp(model,
 * loadTdpTable(path)) (those lines are a superset of the rows lookupTdp's own prefilter keeps;
 * test/collectors/cpu-model.test.ts checks every name in the table and a sample of other
 * spellings), at a fraction of the cost: a cold process spent
 * ~14 ms parsing 4,899 rows and filtering them, right after `run` spawned its command.
 * @throws the file system error when the file is missing (a broken install, not a device state)
 */
export function lookupTdpInFile(model: string, path: string = dataPath("cpu_tdp.csv")): TdpMatch | undefined {
  const normalized = normalizeCpuName(model);
  if (normalized === "") return undefined;
  let file = textCache.get(path);
  if (!file) {
    const text = readFileSync(path, "utf8");
    file = { text, lower: text.toLowerCase() };
    textCache.set(path, file);
  }
  // Offsets of the lower-cased text must be the text's (true for this table; a character whose
  // lower case is longer would shift them): else the whole table, parsed.
  if (file.lower.length !== file.text.length) return lookupTdp(model, loadTdpTable(path));
  const tokens = tokensOf(normalized);
  // A row lookupTdp can match holds one of the model's tokens with a digit, or all of its tokens
  // (exact): with a digit token, those needles find every such row; without one, only an exact
  // match can answer, and its row holds the longest token. (The longest token is often the brand,
  // "intel", on half the table's lines: searched only when it is needed.)
  const needles = new Set(tokens.filter(hasDigit));
  if (needles.size === 0) needles.add(tokens.reduce((a, b) => (b.length > a.length ? b : a)));
  const starts = new Set<number>();
  for (const needle of needles) {
    for (let at = file.lower.indexOf(needle); at >= 0; at = file.lower.indexOf(needle, at + needle.length)) {
      starts.add(file.lower.lastIndexOf("\n", at) + 1);
    }
  }
  const lines = [...starts]
    .filter((start) => start > 0) // the header line
    .sort((a, b) => a - b)
    .map((start) => {
      const end = file.text.indexOf("\n", start);
      return file.text.slice(start, end < 0 ? undefined : end);
    });
  return lookupTdp(model, parseTdpCsv(["Name,TDP", ...lines].join("\n")));
}

function single(candidates: TdpRow[], matchKind: TdpMatch["matchKind"]): TdpMatch | undefined {
  const tdps = new Set(candidates.map((c) => c.tdpWatts));
  if (candidates.length === 0 || tdps.size > 1) return undefined;
  return { tdpWatts: candidates[0].tdpWatts, matchedName: candidates[0].name, matchKind };
}

/**
 * Finds a CPU model's TDP (one package, watts) in the table. Matching, in order (facts from
 * CodeCarbon's matcher: exact name, then cleaned name, then token-set match, refusing ties):
 * 1. exact: {@link normalizeCpuName} of the model equals a row's. Several rows with that name and
 *    different TDPs: the highest is used and `ambiguous` is set.
 * 2. tokens, table ⊆ model: every word of a row's name appears in the model string (e.g. "11th
 *    Gen Intel Core i7-1165G7" → "Intel Core i7-1165G7"), the row naming a model number (a word
 *    with a digit). The row with the most words wins; a tie between different TDPs is no match.
 * 3. tokens, model ⊆ table: every word of the model appears in exactly one row's name (or in rows
 *    that all have the same TDP), the model naming a model number.
 * Otherwise undefined: the caller falls back to a default, loudly. Generic names such as "Intel
 * Xeon Processor" (what many VMs show) never match.
 */
export function lookupTdp(model: string, table: TdpTable): TdpMatch | undefined {
  const normalized = normalizeCpuName(model);
  if (normalized === "") return undefined;
  const rows = candidateRows(table.rows, tokensOf(normalized));
  const exact = rows.filter((r) => r.normalized === normalized);
  if (exact.length > 0) {
    const best = exact.reduce((a, b) => (b.tdpWatts > a.tdpWatts ? b : a));
    const match: TdpMatch = { tdpWatts: best.tdpWatts, matchedName: best.name, matchKind: "exact" };
    if (new Set(exact.map((r) => r.tdpWatts)).size > 1) match.ambiguous = true;
    return match;
  }
  const modelTokens = tokensOf(normalized);
  const modelSet = new Set(modelTokens);
  if (!modelTokens.some(hasDigit)) return undefined;

  const contained = rows.filter((r) => r.tokens.some(hasDigit) && r.tokens.every((t) => modelSet.has(t)));
  if (contained.length > 0) {
    const most = Math.max(...contained.map((r) => r.tokens.length));
    return single(contained.filter((r) => r.tokens.length === most), "tokens");
  }
  const containing = rows.filter((r) => {
    const rowSet = new Set(r.tokens);
    return modelTokens.every((t) => rowSet.has(t));
  });
  return single(containing, "tokens");
}

/**
 * The rows that can match a model with these tokens, by a substring test on the raw lower-cased
 * name (normalizing only removes characters or turns them into spaces, so a row's token is always
 * a substring of its raw name): every match kind needs a row holding one of the model's tokens with
 * a digit (the "tokens" kinds) or all of its tokens (exact).
 */
function candidateRows(rows: readonly TdpRow[], modelTokens: readonly string[]): TdpRow[] {
  const digitTokens = modelTokens.filter(hasDigit);
  return rows.filter((r) => {
    const raw = r.name.toLowerCase();
    return digitTokens.some((t) => raw.includes(t)) || modelTokens.every((t) => raw.includes(t));
  });
}

/**
 * Modelled CPU power, watts: idle + (TDP − idle) × utilisation, idle = idleFraction × TDP.
 * Utilisation is clamped to 0..1.
 * @param utilization busy CPU fraction of the host, 0..1
 * @param tdpWatts TDP of all packages together, watts
 * @param idleFraction idle power as a fraction of TDP, 0..1 (default {@link DEFAULT_IDLE_FRACTION})
 * @throws RangeError for NaN, negative TDP or an idle fraction outside 0..1
 */
export function modelCpuPowerWatts(utilization: number, tdpWatts: number, idleFraction: number = DEFAULT_IDLE_FRACTION): number {
  if (Number.isNaN(utilization)) throw new RangeError("utilization is NaN");
  if (!Number.isFinite(tdpWatts) || tdpWatts < 0) throw new RangeError(`tdpWatts must be >= 0 (got ${tdpWatts})`);
  if (!(idleFraction >= 0 && idleFraction <= 1)) throw new RangeError(`idleFraction must be in 0..1 (got ${idleFraction})`);
  const idleWatts = tdpWatts * idleFraction;
  const busy = Math.min(1, Math.max(0, utilization));
  return idleWatts + (tdpWatts - idleWatts) * busy;
}

/**
 * Modelled memory power, watts: GB × watts per GB (GB = 2^30 bytes).
 * @param memoryBytes installed memory, bytes
 * @param wattsPerGb default {@link DEFAULT_MEMORY_WATTS_PER_GB}
 */
export function modelMemoryPowerWatts(memoryBytes: number, wattsPerGb: number = DEFAULT_MEMORY_WATTS_PER_GB): number {
  if (!(memoryBytes >= 0) || !(wattsPerGb >= 0)) throw new RangeError("memoryBytes and wattsPerGb must be >= 0");
  return bytesToGibibytes(memoryBytes) * wattsPerGb;
}

/** What the collector needs to know about the host. */
export interface CpuHostInfo {
  /** CPU model string, e.g. "Intel Xeon® Platinum 8375C" or "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz". */
  cpuModel: string;
  /** Logical CPUs. */
  cores: number;
  /** CPU packages (sockets) as the OS reports them (virtual sockets in a VM). */
  sockets: number;
  /** Installed memory, bytes (the host's, not a container's limit: the DIMMs draw power regardless). */
  memoryBytes: number;
  /** Running under a hypervisor (the "hypervisor" CPU flag). */
  virtualized?: boolean;
}

/** Options of {@link createCpuModelCollector}. Each given value overrides what loadInfo finds. */
export interface CpuModelCollectorOptions {
  cpuModel?: string;
  /** Logical CPUs. */
  cores?: number;
  sockets?: number;
  /** TDP of ONE package, watts: skips the table lookup. */
  tdpWatts?: number;
  /** Installed memory, bytes. */
  memoryBytes?: number;
  /** Memory power per GB (2^30 bytes), watts; default {@link DEFAULT_MEMORY_WATTS_PER_GB}. */
  memoryWattsPerGb?: number;
  /** Idle power as a fraction of TDP; default {@link DEFAULT_IDLE_FRACTION}. */
  idleFraction?: number;
  /** TDP table; default {@link loadTdpTable}(). */
  tdpTable?: TdpTable;
  /** Host facts; default: {@link loadHostInfo} under `root`. */
  loadInfo?: () => Promise<CpuHostInfo>;
  /** Root holding proc/cpuinfo and proc/meminfo (default "/"; tests point it at a fixture tree). */
  root?: string;
}

/** What /proc/cpuinfo and /proc/meminfo say; fields the files lack are absent. */
export type ProcHostInfo = Partial<CpuHostInfo>;

/**
 * Parses /proc/cpuinfo (x86 layout): the first "model name", the number of "processor" entries
 * (logical CPUs), the distinct "physical id"s (sockets; 1 when the kernel gives none) and the
 * "hypervisor" flag. ARM kernels give no "model name" (only implementer/part numbers, which lscpu
 * decodes): cpuModel is then absent and the caller falls back.
 */
export function parseCpuinfo(text: string): ProcHostInfo {
  let cpuModel: string | undefined;
  let processors = 0;
  const sockets = new Set<string>();
  let virtualized: boolean | undefined;
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (key === "processor") processors++;
    else if (key === "model name" && cpuModel === undefined && value !== "") cpuModel = value;
    else if (key === "physical id") sockets.add(value);
    else if (key === "flags" && virtualized === undefined) virtualized = /(?:^|\s)hypervisor(?:\s|$)/.test(value);
  }
  const info: ProcHostInfo = {};
  if (cpuModel !== undefined) info.cpuModel = cpuModel;
  if (processors > 0) {
    info.cores = processors;
    info.sockets = sockets.size || 1;
  }
  if (virtualized !== undefined) info.virtualized = virtualized;
  return info;
}

/** MemTotal of /proc/meminfo, bytes (the kernel writes kB = 1024 bytes); undefined when absent. */
export function parseMeminfoTotalBytes(text: string): number | undefined {
  const m = /^MemTotal:\s+(\d+)\s*kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}

/**
 * Host facts from `root`/proc/cpuinfo and `root`/proc/meminfo, without spawning anything; only
 * when they lack the CPU model or the memory size, systeminformation (which runs lscpu and
 * dmidecode) fills the gaps, imported on that path only. `source` says which was used.
 */
export async function loadHostInfo(root = "/"): Promise<CpuHostInfo & { source: "procfs" | "systeminformation" }> {
  // A container that mounts only the host's /sys under root still has the host's CPUs and memory
  // in its own /proc (neither file is namespaced), so "/" is tried after root.
  const read = (name: string): string | undefined => {
    for (const base of root === "/" ? ["/"] : [root, "/"]) {
      try {
        return readFileSync(join(base, "proc", name), "utf8");
      } catch {
        // next base
      }
    }
    return undefined;
  };
  const cpuinfo = read("cpuinfo");
  const meminfo = read("meminfo");
  const proc: ProcHostInfo = cpuinfo !== undefined ? parseCpuinfo(cpuinfo) : {};
  const memoryBytes = meminfo !== undefined ? parseMeminfoTotalBytes(meminfo) : undefined;
  if (proc.cpuModel !== undefined && proc.cores !== undefined && memoryBytes !== undefined) {
    return { cpuModel: proc.cpuModel, cores: proc.cores, sockets: proc.sockets ?? 1, memoryBytes, virtualized: proc.virtualized, source: "procfs" };
  }
  const si = await loadHostInfoFromSystemInformation();
  return {
    cpuModel: proc.cpuModel ?? si.cpuModel,
    cores: proc.cores ?? si.cores,
    sockets: proc.sockets ?? si.sockets,
    memoryBytes: memoryBytes ?? si.memoryBytes,
    virtualized: proc.virtualized ?? si.virtualized,
    source: "systeminformation",
  };
}

/** Host facts from systeminformation: CPU brand, logical CPUs, sockets, hypervisor flag, total memory. */
export async function loadHostInfoFromSystemInformation(): Promise<CpuHostInfo> {
  const si = await import("systeminformation");
  const [cpu, mem] = await Promise.all([si.cpu(), si.mem()]);
  return {
    cpuModel: `${cpu.manufacturer} ${cpu.brand}`.trim(),
    cores: cpu.cores,
    sockets: cpu.processors || 1,
    memoryBytes: mem.total,
    virtualized: /(?:^|\s)hypervisor(?:\s|$)/.test(cpu.flags ?? ""),
  };
}

interface CpuModelSetup {
  host: CpuHostInfo;
  tdpTotalWatts: number;
  /** How the TDP was obtained, for notes. */
  tdpOrigin: string;
  /** Loud notes: fallbacks and caveats. */
  warnings: string[];
  idleFraction: number;
  memoryWattsPerGb: number;
}

/**
 * Cloud Carbon Footprint's maximum watts per vCPU for AWS (average over instance families), used to
 * cap the model inside a VM. Source: cloud-carbon-footprint coefficients (Apache-2.0), AWS max 3.5 W.
 */
export const VM_MAX_WATTS_PER_VCPU = 3.5;

const fmt = (value: number): string => String(Math.round(value * 1000) / 1000);

async function setUp(opts: CpuModelCollectorOptions): Promise<CpuModelSetup> {
  const warnings: string[] = [];
  let loaded: Partial<CpuHostInfo> = {};
  const complete = opts.cpuModel !== undefined && opts.cores !== undefined && opts.sockets !== undefined && opts.memoryBytes !== undefined;
  if (!complete) {
    try {
      const info = await (opts.loadInfo ?? (() => loadHostInfo(opts.root)))();
      if ("source" in info && info.source === "systeminformation") {
        warnings.push("host facts: /proc/cpuinfo or /proc/meminfo lacked the CPU model or memory size: completed from systeminformation (lscpu, dmidecode)");
      }
      loaded = info;
    } catch (err) {
      const cpus = os.cpus();
      loaded = { cpuModel: cpus[0]?.model ?? "", cores: cpus.length || 1, sockets: 1, memoryBytes: os.totalmem() };
      warnings.push(`host facts unavailable (${errorMessage(err)}): using node:os (model, ${loaded.cores} CPUs, 1 socket, total memory)`);
    }
  }
  const host: CpuHostInfo = {
    cpuModel: opts.cpuModel ?? loaded.cpuModel ?? "",
    cores: opts.cores ?? loaded.cores ?? 1,
    sockets: opts.sockets ?? loaded.sockets ?? 1,
    memoryBytes: opts.memoryBytes ?? loaded.memoryBytes ?? 0,
    virtualized: loaded.virtualized,
  };

  let tdpTotalWatts: number;
  let tdpOrigin: string;
  if (opts.tdpWatts !== undefined) {
    tdpTotalWatts = opts.tdpWatts * host.sockets;
    tdpOrigin = `configured ${fmt(opts.tdpWatts)} W per socket × ${host.sockets}`;
  } else {
    let match: TdpMatch | undefined;
    try {
      match = opts.tdpTable ? lookupTdp(host.cpuModel, opts.tdpTable) : lookupTdpInFile(host.cpuModel);
    } catch (err) {
      warnings.push(`TDP table unreadable (${errorMessage(err)})`);
    }
    if (match) {
      tdpTotalWatts = match.tdpWatts * host.sockets;
      tdpOrigin =
        `${fmt(match.tdpWatts)} W per socket × ${host.sockets} from CodeCarbon's CPU table ` +
        `("${match.matchedName}", ${match.matchKind} match${match.ambiguous ? ", several rows: highest TDP" : ""})`;
      if (host.virtualized) {
        // A VM holds a slice of the physical CPU, and hypervisors often report one virtual socket
        // per vCPU: TDP × sockets would charge a 2-vCPU VM for whole packages. Cap at Cloud Carbon
        // Footprint's per-vCPU maximum (AWS average, 3.5 W per vCPU).
        const perVcpuCap = VM_MAX_WATTS_PER_VCPU * host.cores;
        if (perVcpuCap < tdpTotalWatts) {
          warnings.push(
            `running under a hypervisor: capped the CPU model at ${VM_MAX_WATTS_PER_VCPU} W per vCPU × ${host.cores} = ${fmt(perVcpuCap)} W (Cloud Carbon Footprint AWS average) instead of the physical CPU's ${fmt(tdpTotalWatts)} W (${tdpOrigin}); set POWERPRINT_CPU_TDP_WATTS (watts per package) to correct`,
          );
          tdpOrigin = `${VM_MAX_WATTS_PER_VCPU} W per vCPU × ${host.cores} (hypervisor cap)`;
          tdpTotalWatts = perVcpuCap;
        }
      }
    } else {
      tdpTotalWatts = DEFAULT_WATTS_PER_LOGICAL_CPU * host.cores;
      tdpOrigin = `default ${DEFAULT_WATTS_PER_LOGICAL_CPU} W per logical CPU × ${host.cores}`;
      warnings.push(
        `CPU model "${host.cpuModel}" not in TDP table: using default ${DEFAULT_WATTS_PER_LOGICAL_CPU} W per logical CPU × ${host.cores} = ${fmt(tdpTotalWatts)} W (set POWERPRINT_CPU_TDP_WATTS, watts per package, to correct)`,
      );
    }
  }
  return {
    host,
    tdpTotalWatts,
    tdpOrigin,
    warnings,
    idleFraction: opts.idleFraction ?? DEFAULT_IDLE_FRACTION,
    memoryWattsPerGb: opts.memoryWattsPerGb ?? DEFAULT_MEMORY_WATTS_PER_GB,
  };
}

function cpuNote(setup: CpuModelSetup, extra: string[]): string {
  return [
    `modelled: ${fmt(setup.tdpTotalWatts)} W TDP (${setup.tdpOrigin}); idle ${formatPlain(setup.idleFraction * 100)}% of TDP + the rest × host CPU utilisation`,
    ...setup.warnings,
    ...extra,
  ].join("; ");
}

function memoryNote(setup: CpuModelSetup): string {
  return `modelled: ${fmt(bytesToGibibytes(setup.host.memoryBytes))} GiB × ${fmt(setup.memoryWattsPerGb)} W/GiB (Cloud Carbon Footprint memory coefficient), constant: all of it is the idle part`;
}

/**
 * Creates the CPU/memory model collector (id "cpu-model"). Devices: "cpu-model:0" (kind cpu, all
 * packages together) and "mem-model" (kind memory). Readings carry powerWatts, idleWatts and
 * method "model"; memory's idleWatts equals its powerWatts (a constant model has no active part:
 * with --idle-policy separate, modelled memory energy goes to `idle`; otherwise it is split by CPU
 * time like any memory energy). probe() is always ok, with a note that the figures are modelled.
 *
 * Data sources: /proc/cpuinfo and /proc/meminfo (CPU model, logical CPUs, sockets, memory; systeminformation
 * only where they lack a field, e.g. the model name on ARM), data/cpu_tdp.csv
 * (CodeCarbon, MIT), Cloud Carbon Footprint's constants (idle ratio, memory W/GB). Host facts are
 * read once, on the first probe() or read().
 */
export function createCpuModelCollector(opts: CpuModelCollectorOptions = {}): Collector {
  let setup: Promise<CpuModelSetup> | undefined;
  const getSetup = (): Promise<CpuModelSetup> => (setup ??= setUp(opts));

  return {
    id: CPU_MODEL_COLLECTOR_ID,

    async probe(): Promise<ProbeResult> {
      const s = await getSetup();
      const devices: DeviceInfo[] = [
        {
          deviceId: "cpu-model:0",
          kind: "cpu",
          model: s.host.cpuModel || undefined,
          method: "model",
          energyCounter: false,
          detail: `${fmt(s.tdpTotalWatts)} W TDP (${s.tdpOrigin}), ${s.host.cores} logical CPUs`,
        },
        {
          deviceId: "mem-model",
          kind: "memory",
          method: "model",
          energyCounter: false,
          detail: `${fmt(bytesToGibibytes(s.host.memoryBytes))} GiB × ${fmt(s.memoryWattsPerGb)} W/GiB`,
        },
      ];
      const note = ["figures are modelled from the CPU's TDP and the memory size, not measured", ...s.warnings].join("; ");
      return { status: "ok", devices, note };
    },

    async read(context?: ReadContext): Promise<DeviceReading[]> {
      const s = await getSetup();
      const extra: string[] = [];
      let utilization = context?.hostCpuUtilization;
      if (utilization === undefined || Number.isNaN(utilization)) {
        utilization = ASSUMED_UTILIZATION;
        extra.push(`host CPU utilisation unknown: assuming ${ASSUMED_UTILIZATION * 100}%`);
      }
      utilization = Math.min(1, Math.max(0, utilization));
      const memoryWatts = modelMemoryPowerWatts(s.host.memoryBytes, s.memoryWattsPerGb);
      const cpu: DeviceReading = {
        deviceId: "cpu-model:0",
        kind: "cpu",
        source: CPU_MODEL_COLLECTOR_ID,
        method: "model",
        powerWatts: modelCpuPowerWatts(utilization, s.tdpTotalWatts, s.idleFraction),
        idleWatts: s.tdpTotalWatts * s.idleFraction,
        utilization,
        note: cpuNote(s, extra),
      };
      if (s.host.cpuModel) cpu.model = s.host.cpuModel;
      const memory: DeviceReading = {
        deviceId: "mem-model",
        kind: "memory",
        source: CPU_MODEL_COLLECTOR_ID,
        method: "model",
        powerWatts: memoryWatts,
        idleWatts: memoryWatts,
        note: memoryNote(s),
      };
      return [cpu, memory];
    },

    async close(): Promise<void> {},
  };
}
