/**
 * Readers of one cgroup directory's accounting files. The directory is a path on this machine (a
 * hierarchy's mount point joined with the cgroup's path), so tests point it at a fixture tree or
 * at a cgroup they created. Files read:
 * - CPU: v2 `cpu.stat` `usage_usec` (present in every cgroup, cpu controller or not), v1
 *   `cpuacct.usage` (nanoseconds, cpuacct hierarchy only): the kernel's sum over every task that
 *   ever ran in the cgroup or its descendants, exited ones included;
 * - members: `cgroup.procs` (thread-group ids; in this PID namespace);
 * - memory: v2 `memory.current`, v1 `memory.usage_in_bytes` (only where the memory controller is).
 * Every reader returns undefined, never throws, when the cgroup is gone or the file is absent.
 * Reads go through one reused buffer (ProcReader): these files are read every tick.
 */
import { ProcReader } from "../procfs/reader.js";
import { microsToSeconds, nanosToSeconds } from "../units.js";
import type { CgroupVersion } from "./path.js";

/** A reused read buffer; one per source (not thread-safe, like ProcReader). */
export class CgroupReader {
  private readonly reader = new ProcReader("/");

  /** Cumulative CPU seconds of the cgroup and its descendants: v2 usage_usec, v1 cpuacct.usage. */
  cpuSeconds(dir: string, version: CgroupVersion): number | undefined {
    if (version === 2) {
      const n = this.reader.readInto(dir + "/cpu.stat");
      if (n <= 0) return undefined;
      const usec = parseUsageUsec(this.reader.buffer, n);
      return usec === undefined ? undefined : microsToSeconds(usec);
    }
    const n = this.reader.readInto(dir + "/cpuacct.usage", true);
    if (n <= 0) return undefined;
    const nsec = parseLeadingInteger(this.reader.buffer, 0, n);
    return nsec === undefined ? undefined : nanosToSeconds(nsec);
  }

  /** PIDs in `cgroup.procs` (the cgroup itself, not its descendants). undefined when gone. */
  procs(dir: string): number[] | undefined {
    const n = this.reader.readInto(dir + "/cgroup.procs");
    if (n < 0) return undefined;
    return parsePidLines(this.reader.buffer, n);
  }

  /** Calls `f` for each PID in `cgroup.procs` without allocating an array; returns the count, or -1 when gone. */
  forEachProc(dir: string, f: (pid: number) => void): number {
    const n = this.reader.readInto(dir + "/cgroup.procs");
    if (n < 0) return -1;
    const buf = this.reader.buffer;
    let count = 0;
    let v = 0;
    let digits = 0;
    for (let i = 0; i < n; i++) {
      const c = buf[i];
      if (c >= 0x30 && c <= 0x39) {
        v = v * 10 + (c - 0x30);
        digits++;
      } else {
        if (digits > 0) {
          f(v);
          count++;
        }
        v = 0;
        digits = 0;
      }
    }
    if (digits > 0) {
      f(v);
      count++;
    }
    return count;
  }

  /** Memory charged to the cgroup, bytes: v2 memory.current, v1 memory.usage_in_bytes (pass the memory hierarchy's dir). */
  memoryBytes(dir: string, version: CgroupVersion): number | undefined {
    const n = this.reader.readInto(dir + (version === 2 ? "/memory.current" : "/memory.usage_in_bytes"), true);
    if (n <= 0) return undefined;
    return parseLeadingInteger(this.reader.buffer, 0, n);
  }
}

/** Pure: `usage_usec N` from cpu.stat text held in `buf[0..length)`. */
export function parseUsageUsec(buf: Uint8Array, length: number): number | undefined {
  const key = "usage_usec ";
  outer: for (let i = 0; i + key.length <= length; ) {
    for (let k = 0; k < key.length; k++) {
      if (buf[i + k] !== key.charCodeAt(k)) {
        while (i < length && buf[i] !== 0x0a) i++;
        i++;
        continue outer;
      }
    }
    return parseLeadingInteger(buf, i + key.length, length);
  }
  return undefined;
}

/** Pure: cpu.stat text to its fields (usage_usec, user_usec, system_usec, ...). */
export function parseCpuStat(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

function parseLeadingInteger(buf: Uint8Array, start: number, end: number): number | undefined {
  let v = 0;
  let i = start;
  while (i < end && buf[i] >= 0x30 && buf[i] <= 0x39) v = v * 10 + (buf[i++] - 0x30);
  return i === start ? undefined : v;
}

/** Pure: newline-separated PIDs (cgroup.procs) in `buf[0..length)`. */
export function parsePidLines(buf: Uint8Array, length: number): number[] {
  const out: number[] = [];
  let v = 0;
  let digits = 0;
  for (let i = 0; i < length; i++) {
    const c = buf[i];
    if (c >= 0x30 && c <= 0x39) {
      v = v * 10 + (c - 0x30);
      digits++;
    } else {
      if (digits > 0) out.push(v);
      v = 0;
      digits = 0;
    }
  }
  if (digits > 0) out.push(v);
  return out;
}
