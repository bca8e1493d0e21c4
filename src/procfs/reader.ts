/**
 * Readers of the Linux process table under an injected root ("/" on a real host, a fixture tree
 * in tests). Files read: `<root>/proc/PID/stat`, `/proc/stat`, `/proc/loadavg`,
 * `/proc/PID/environ`, `/proc/PID/task/TID/children`.
 *
 * Hot-path reads use one `openSync`/`readSync`/`closeSync` into a reused Buffer: on a 2-core VM
 * that costs ~10 µs per /proc stat file against ~23 µs for `readFileSync` and ~160 µs for
 * `fs.promises.readFile` (figures in bench/RESULTS.md).
 *
 * Times in /proc are clock ticks (USER_HZ, `getconf CLK_TCK`, 100 on Linux x86/arm64); every
 * function takes `ticksPerSecond` so tests and unusual kernels can inject it.
 */
import { readRegularBytes } from "../guarded-read.js";
import { closeSync, constants, fstatSync, openSync, readSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ReadBuffer } from "../files.js";
import { clockTicksToSeconds } from "../units.js";
import type { ProcessInfo } from "./types.js";

/** USER_HZ on every mainstream Linux architecture (`getconf CLK_TCK`). */
export const DEFAULT_TICKS_PER_SECOND = 100;

export { clockTicksToSeconds };

/**
 * Raw fields of one /proc/PID/stat line, times kept as integer clock ticks so sums stay exact.
 * Field numbers are those of proc(5).
 */
export interface StatFields {
  pid: number;
  /** Field 4. For a thread opened as /proc/TID, the parent of its whole process. */
  ppid: number;
  /** Field 3, one letter (R, S, D, Z, ...). */
  state: string;
  /** utime + stime (fields 14, 15), clock ticks, all threads of the process. */
  cpuTicks: number;
  /** cutime + cstime (fields 16, 17), clock ticks of reaped (waited-for) children. */
  childCpuTicks: number;
  /** Field 20. */
  numThreads: number;
  /** Field 22, clock ticks since boot. With `pid`, identifies the process across PID reuse. */
  startTicks: number;
  /**
   * Field 24: resident set size, pages (the kernel's counter: file-backed, anonymous and shmem
   * pages mapped; shared pages count in every process mapping them). Bytes: × the page size.
   */
  rssPages: number;
  /**
   * Field 38: signal sent to the parent at exit; -1 for a non-leader thread (CLONE_THREAD), which is
   * how a TID probed as /proc/TID is told apart from a process. undefined on kernels before 2.1.22.
   */
  exitSignal: number | undefined;
  /** comm (field 2), decoded only when asked for. */
  name?: string;
}

const CLOSE_PAREN = 0x29;
const SPACE = 0x20;
const MINUS = 0x2d;

/**
 * Parses a /proc/PID/stat line held in `buf[0..length)`. comm may contain spaces and ')', so the
 * fields after it are found from the LAST ')'. Returns undefined for a malformed line.
 */
export function parseStatBuffer(buf: Uint8Array, length: number, withName = false): StatFields | undefined {
  let close = -1;
  for (let i = length - 1; i >= 0; i--) {
    if (buf[i] === CLOSE_PAREN) {
      close = i;
      break;
    }
  }
  if (close < 0) return undefined;
  // pid: leading digits.
  let pid = 0;
  let i = 0;
  while (i < close && buf[i] >= 0x30 && buf[i] <= 0x39) pid = pid * 10 + (buf[i++] - 0x30);
  if (i === 0 || buf[i] !== SPACE || buf[i + 1] !== 0x28 /* ( */) return undefined;
  const nameStart = i + 2;
  // Fields after ") ": index 0 is field 3 (state). We need indices 1, 11..14, 17, 19, 21, 35.
  let pos = close + 2;
  if (pos >= length) return undefined;
  const state = String.fromCharCode(buf[pos]);
  let field = 0;
  let ppid = -1;
  let utime = 0;
  let stime = 0;
  let cutime = 0;
  let cstime = 0;
  let numThreads = 0;
  let startTicks = -1;
  let rssPages = 0;
  let exitSignal: number | undefined;
  // Walk to each field start; parse integer fields we need in place.
  while (pos < length && field < 36) {
    if (field === 1 || (field >= 11 && field <= 14) || field === 17 || field === 19 || field === 21 || field === 35) {
      let neg = false;
      if (buf[pos] === MINUS) {
        neg = true;
        pos++;
      }
      let v = 0;
      const start = pos;
      while (pos < length && buf[pos] >= 0x30 && buf[pos] <= 0x39) v = v * 10 + (buf[pos++] - 0x30);
      if (pos === start) return undefined;
      if (neg) v = -v;
      switch (field) {
        case 1: ppid = v; break;
        case 11: utime = v; break;
        case 12: stime = v; break;
        case 13: cutime = v; break;
        case 14: cstime = v; break;
        case 17: numThreads = v; break;
        case 19: startTicks = v; break;
        case 21: rssPages = v; break;
        case 35: exitSignal = v; break;
      }
    } else {
      while (pos < length && buf[pos] !== SPACE && buf[pos] !== 0x0a) pos++;
    }
    if (pos >= length || buf[pos] === 0x0a) {
      field++;
      break;
    }
    pos++; // the space
    field++;
  }
  if (field < 20 || ppid < 0 || startTicks < 0) return undefined;
  const fields: StatFields = {
    pid,
    ppid,
    state,
    cpuTicks: utime + stime,
    childCpuTicks: cutime + cstime,
    numThreads,
    startTicks,
    rssPages,
    exitSignal,
  };
  if (withName) fields.name = Buffer.from(buf.buffer, buf.byteOffset + nameStart, close - nameStart).toString("utf8");
  return fields;
}

/**
 * Pure parser of one /proc/PID/stat line (proc(5)). comm may contain spaces and ')': fields after
 * it are taken from the LAST ')'. Times are converted from clock ticks to seconds with
 * `ticksPerSecond`. Returns undefined for a malformed line.
 */
export function parseStat(text: string, ticksPerSecond = DEFAULT_TICKS_PER_SECOND): ProcessInfo | undefined {
  const buf = Buffer.from(text, "utf8");
  const f = parseStatBuffer(buf, buf.length, true);
  return f && statFieldsToInfo(f, ticksPerSecond);
}

/** Converts raw stat fields (ticks) to the shared ProcessInfo (seconds). */
export function statFieldsToInfo(f: StatFields, ticksPerSecond: number): ProcessInfo {
  return {
    pid: f.pid,
    ppid: f.ppid,
    startTicks: f.startTicks,
    cpuSeconds: clockTicksToSeconds(f.cpuTicks, ticksPerSecond),
    childCpuSeconds: clockTicksToSeconds(f.childCpuTicks, ticksPerSecond),
    name: f.name,
  };
}

/**
 * Reads small /proc files with one open/read/close into a reused buffer (no per-read allocation
 * beyond the result). Not thread-safe; one per tracker. Every method returns undefined, never
 * throws, when the file is gone (process exited between listing and reading: ENOENT, ESRCH).
 */
export class ProcReader {
  private readonly rb = new ReadBuffer();
  /** `<root>/proc/` with a trailing slash. */
  readonly procDir: string;

  constructor(readonly root = "/") {
    this.procDir = join(root, "proc") + "/";
  }

  /**
   * Bytes of `path` into the shared buffer; returns the length, or -1 when unreadable. With
   * `singleRead`, one read() only: procfs hands out a small seq file (a stat line) whole, which
   * saves the second, empty read.
   */
  readInto(path: string, singleRead = false): number {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch {
      return -1;
    }
    try {
      return this.rb.readFd(fd, { singleRead });
    } finally {
      closeSync(fd);
    }
  }

  /** The current contents of the shared buffer, valid until the next read. */
  get buffer(): Buffer {
    return this.rb.buf;
  }

  /** /proc/PID/stat, parsed; undefined when the process is gone or the line is malformed. */
  readStat(pid: number, withName = false): StatFields | undefined {
    const n = this.readInto(this.procDir + pid + "/stat", true);
    if (n <= 0) return undefined;
    return parseStatBuffer(this.rb.buf, n, withName);
  }

  /** Text of a /proc file relative to `<root>/proc/`, or undefined. */
  readText(relative: string): string | undefined {
    const n = this.readInto(this.procDir + relative);
    if (n < 0) return undefined;
    return this.rb.buf.toString("utf8", 0, n);
  }
}

/**
 * One process from `<root>/proc/PID/stat`, times in seconds (clock ticks ÷ ticksPerSecond).
 * undefined when the process has vanished or the file is malformed; never throws.
 */
export function readProcessInfo(root: string, pid: number, ticksPerSecond = DEFAULT_TICKS_PER_SECOND): ProcessInfo | undefined {
  const f = new ProcReader(root).readStat(pid, true);
  return f && statFieldsToInfo(f, ticksPerSecond);
}

/** Host-wide CPU time from the first line of /proc/stat, plus the fork counter. */
export interface HostCpu {
  /** user + nice + system + irq + softirq + steal, seconds since boot (guest time is inside user). */
  busyCpuSeconds: number;
  /** busy + idle + iowait, seconds since boot. */
  totalCpuSeconds: number;
  /**
   * The `processes` line: forks (processes and threads) since boot, host-wide. Unchanged between
   * two reads means no process was created anywhere in between. undefined when absent.
   */
  forkCount: number | undefined;
}

/** Raw /proc/stat figures in clock ticks. */
export interface HostCpuTicks {
  busyTicks: number;
  totalTicks: number;
  forkCount: number | undefined;
}

/** Pure parser of /proc/stat text (the aggregate "cpu" line and the "processes" line). */
export function parseHostStat(text: string): HostCpuTicks | undefined {
  const nl = text.indexOf("\n");
  const first = nl < 0 ? text : text.slice(0, nl);
  const parts = first.trim().split(/\s+/);
  if (parts[0] !== "cpu" || parts.length < 5) return undefined;
  // The kernel writes whole, non-negative tick counts; anything else counts as 0.
  const v = (i: number): number => {
    const x = Number(parts[i]);
    return Number.isSafeInteger(x) && x >= 0 ? x : 0;
  };
  // user nice system idle iowait irq softirq steal guest guest_nice (guest is already in user).
  const busyTicks = v(1) + v(2) + v(3) + v(6) + v(7) + v(8);
  const totalTicks = busyTicks + v(4) + v(5);
  const m = /\nprocesses (\d+)/.exec(text);
  const forks = m ? Number(m[1]) : undefined;
  return { busyTicks, totalTicks, forkCount: forks !== undefined && Number.isSafeInteger(forks) ? forks : undefined };
}

/**
 * Host CPU from `<root>/proc/stat`: busy = user+nice+system+irq+softirq+steal, total = busy +
 * idle + iowait, in seconds (clock ticks ÷ ticksPerSecond). undefined when unreadable.
 */
export function readHostCpu(root = "/", ticksPerSecond = DEFAULT_TICKS_PER_SECOND): HostCpu | undefined {
  const text = new ProcReader(root).readText("stat");
  const t = text === undefined ? undefined : parseHostStat(text);
  if (!t) return undefined;
  return {
    busyCpuSeconds: clockTicksToSeconds(t.busyTicks, ticksPerSecond),
    totalCpuSeconds: clockTicksToSeconds(t.totalTicks, ticksPerSecond),
    forkCount: t.forkCount,
  };
}

/**
 * The host's cumulative busy and total CPU seconds from `/proc/stat`, read through `reader` each
 * call; an unreadable or malformed read keeps the last good figures (the counters never go back),
 * 0 before the first. Shared by the job sources that take CPU from cgroups (run's job cgroup, the
 * agent's node mode).
 */
export class HostCpuCounter {
  private busyTicks = 0;
  private totalTicks = 0;

  constructor(
    private readonly reader: ProcReader,
    private readonly ticksPerSecond = DEFAULT_TICKS_PER_SECOND,
  ) {}

  read(): { hostBusyCpuSeconds: number; hostTotalCpuSeconds: number } {
    const text = this.reader.readText("stat");
    const t = text === undefined ? undefined : parseHostStat(text);
    if (t) {
      this.busyTicks = t.busyTicks;
      this.totalTicks = t.totalTicks;
    }
    return {
      hostBusyCpuSeconds: clockTicksToSeconds(this.busyTicks, this.ticksPerSecond),
      hostTotalCpuSeconds: clockTicksToSeconds(this.totalTicks, this.ticksPerSecond),
    };
  }
}

/**
 * The last PID allocated in the reader's PID namespace: fifth field of /proc/loadavg
 * ("0.85 0.50 0.23 1/86 6444"). undefined when absent or malformed.
 */
export function parseLastPid(loadavgText: string): number | undefined {
  const parts = loadavgText.trim().split(/\s+/);
  if (parts.length < 5) return undefined;
  const n = Number(parts[4]);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** PIDs listed in `<root>/proc` (processes only: thread IDs are not listed). [] when unreadable. */
export function listPids(root = "/"): number[] {
  let names: string[];
  try {
    names = readdirSync(join(root, "proc"));
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const name of names) {
    const c = name.charCodeAt(0);
    if (c < 0x30 || c > 0x39) continue;
    const pid = Number(name);
    if (Number.isInteger(pid)) pids.push(pid);
  }
  return pids;
}

/**
 * The most read of one process's command line or environment, bytes: 8 MiB, more than the kernel
 * lets exec pass (ARG_MAX is at most 6 MiB, a quarter of the stack limit capped at 3/4 of 8 MiB),
 * so in practice the whole; the bound only stops a non-procfs file (a fixture, a FIFO feeding
 * forever) from being read without end.
 */
export const MAX_PROCESS_TEXT_BYTES = 8 * 1024 * 1024;

/**
 * Up to `maxBytes` of a regular file, or undefined (gone, unreadable, or not a regular file: a
 * FIFO or device where a procfs/sysfs file is expected is refused, never waited on: opened
 * O_NONBLOCK and checked with fstat before any read).
 */
export function readRegularFile(path: string, maxBytes: number): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    if (!fstatSync(fd).isFile()) return undefined;
    const chunks: Buffer[] = [];
    let total = 0;
    while (total < maxBytes) {
      const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, maxBytes - total));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n <= 0) break;
      chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
      total += n;
    }
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * Selected variables from `<root>/proc/PID/environ` (NUL-separated, as at exec time: later
 * changes made by the process are not visible). {} when unreadable (gone, or not ours: EACCES).
 * Read through readRegularFile (bounded, never blocking on a FIFO).
 */
export function readEnviron(root: string, pid: number, names: readonly string[]): Record<string, string> {
  const bytes = readRegularFile(join(root, "proc", String(pid), "environ"), MAX_PROCESS_TEXT_BYTES);
  return bytes ? parseEnviron(bytes, names) : {};
}

/**
 * readEnviron with the read on the thread pool (src/guarded-read.ts): another process's environ
 * can block in the kernel on its mmap lock (a process in D state). Never bounded in time by itself.
 */
export async function readEnvironAsync(root: string, pid: number, names: readonly string[]): Promise<Record<string, string>> {
  const r = await readRegularBytes(join(root, "proc", String(pid), "environ"), MAX_PROCESS_TEXT_BYTES);
  return r.status === "ok" ? parseEnviron(r.bytes, names) : {};
}

/** Selected variables of an environ file's bytes (NUL-separated KEY=VALUE; the first of a repeated name wins). */
export function parseEnviron(bytes: Buffer, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const text = bytes.toString("utf8");
  const wanted = new Set(names);
  for (const entry of text.split("\0")) {
    const eq = entry.indexOf("=");
    if (eq <= 0) continue;
    const name = entry.slice(0, eq);
    if (wanted.has(name) && !(name in out)) out[name] = entry.slice(eq + 1);
  }
  return out;
}

/** Whether `<root>/proc/PID/task/PID/children` exists (kernel built with CONFIG_PROC_CHILDREN). */
export function hasChildrenFile(root: string, pid: number): boolean {
  return statSync(join(root, "proc", String(pid), "task", String(pid), "children"), { throwIfNoEntry: false }) !== undefined;
}

/** Parses a children file: space-separated PIDs. */
export function parsePidList(text: string): number[] {
  const out: number[] = [];
  for (const t of text.split(/\s+/)) {
    if (t === "") continue;
    const n = Number(t);
    if (Number.isSafeInteger(n) && n > 0) out.push(n);
  }
  return out;
}

/**
 * Direct children of a process from `<root>/proc/PID/task/TID/children` over all its threads (a
 * child forked by a non-main thread is listed under that thread only). undefined when the files are
 * absent: kernel without CONFIG_PROC_CHILDREN, or the process is gone. The kernel documents the
 * list as a snapshot that can miss children while the parent forks or re-parents concurrently.
 */
export function readChildren(root: string, pid: number): number[] | undefined {
  const reader = new ProcReader(root);
  return readChildrenWith(reader, pid, 2);
}

/**
 * readChildren with a shared reader. `numThreads` from the process's stat: 1 means only the main
 * thread's file needs reading (no directory listing).
 */
export function readChildrenWith(reader: ProcReader, pid: number, numThreads: number): number[] | undefined {
  const tids: (number | string)[] = [pid];
  if (numThreads > 1) {
    try {
      tids.length = 0;
      for (const t of readdirSync(reader.procDir + pid + "/task")) tids.push(t);
    } catch {
      return undefined;
    }
  }
  let out: number[] | undefined;
  for (const tid of tids) {
    const text = reader.readText(pid + "/task/" + tid + "/children");
    if (text === undefined) continue;
    out ??= [];
    for (const c of parsePidList(text)) out.push(c);
  }
  return out;
}

/** Host memory from /proc/meminfo, bytes. */
export interface HostMemory {
  /** MemTotal. */
  totalBytes: number;
  /** MemTotal − MemAvailable: what processes and the kernel hold and cannot give back at once. */
  usedBytes: number;
}

/**
 * Parses /proc/meminfo (values in kB = 1024 bytes). MemAvailable (Linux 3.14+) is preferred; on
 * older kernels MemFree + Buffers + Cached stands in. undefined without MemTotal.
 */
export function parseMeminfo(text: string): HostMemory | undefined {
  const kb = (name: string): number | undefined => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const total = kb("MemTotal");
  if (total === undefined) return undefined;
  const available = kb("MemAvailable") ?? (kb("MemFree") ?? 0) + (kb("Buffers") ?? 0) + (kb("Cached") ?? 0);
  return { totalBytes: total, usedBytes: Math.max(0, Math.min(total, total - available)) };
}

/** /proc/meminfo under `root`, or undefined when unreadable. */
export function readHostMemory(root = "/"): HostMemory | undefined {
  try {
    return parseMeminfo(readFileSync(join(root, "proc", "meminfo"), "utf8"));
  } catch {
    return undefined;
  }
}

/**
 * The page size, bytes, from /proc/self: VmRSS of status (kB) over the resident pages of statm,
 * rounded to a power of two (the two files are read a moment apart). 4096 when unreadable
 * (x86-64 and most arm64 kernels; 16 KiB and 64 KiB arm64 kernels are found by this probe).
 */
export function pageSizeBytes(root = "/"): number {
  try {
    const status = readFileSync(join(root, "proc", "self", "status"), "utf8");
    const statm = readFileSync(join(root, "proc", "self", "statm"), "utf8");
    const rssKb = Number(/^VmRSS:\s+(\d+)\s*kB/m.exec(status)?.[1]);
    const pages = Number(statm.trim().split(/\s+/)[1]);
    if (!(rssKb > 0 && pages > 0)) return 4096;
    return 2 ** Math.round(Math.log2((rssKb * 1024) / pages));
  } catch {
    return 4096;
  }
}

/**
 * Clock ticks since boot now, from `<procRoot>/proc/uptime` (the unit of a process's start time in
 * /proc/PID/stat); Infinity when unreadable (then no process counts as started after now).
 */
export function uptimeTicks(procRoot: string, ticksPerSecond: number): number {
  try {
    const seconds = Number(readFileSync(join(procRoot, "proc", "uptime"), "utf8").split(" ")[0]);
    return Number.isFinite(seconds) ? Math.floor(seconds * ticksPerSecond) : Infinity;
  } catch {
    return Infinity;
  }
}
