/**
 * Readers of one cgroup directory's accounting files. The directory is a path on this machine (a
 * hierarchy's mount point joined with the cgroup's path), so tests point it at a fixture tree or
 * at a cgroup they created. Files read:
 * - CPU: v2 `cpu.stat` `usage_usec` (present in every cgroup, cpu controller or not), v1
 *   `cpuacct.usage` (nanoseconds, cpuacct hierarchy only): the kernel's sum over every task that
 *   ever ran in the cgroup or its descendants, exited ones included;
 * - members: `cgroup.procs` (thread-group ids; in this PID namespace);
 * - memory: v2 `memory.current`, v1 `memory.usage_in_bytes` (only where the memory controller is);
 *   resident memory from `memory.stat` (rssBytes: v2 `anon` + `file_mapped`, v1 `total_rss` +
 *   `total_mapped_file`).
 * Every reader returns undefined, never throws, when the cgroup is gone or the file is absent.
 *
 * Reads go through one reused buffer. With `maxHeldFiles` > 0 the reader keeps each file it reads
 * open and re-reads it with pread at offset 0 (the kernel regenerates a cgroup file's content on
 * every read from 0): ~3-4 µs instead of ~11-15 µs for open/read/close on this machine. A held
 * file of a removed cgroup answers ENODEV: it is closed and opened once more (a cgroup recreated
 * under the same name), else reported gone. Holding a file never stops the cgroup's removal.
 * Call forget() for cgroups that went away and close() at the end. cgroup v1's cgroup.procs is
 * never held: v1 keeps the PID list it built for an open file for about a second (pidlist cache)
 * and serves it again from offset 0, so a held file would show members up to a second old.
 */
import { closeSync, openSync } from "node:fs";
import { ReadBuffer } from "../files.js";
import { microsToSeconds, nanosToSeconds } from "../units.js";
import type { CgroupVersion } from "./path.js";

/** A reused read buffer; one per source (not thread-safe). */
export class CgroupReader {
  private readonly rb = new ReadBuffer();
  private readonly held = new Map<string, number>();
  /**
   * PIDs read as 0: processes outside the reader's PID namespace (the kernel shows them as 0 in
   * cgroup.procs). Skipped; a DaemonSet needs hostPID to see them.
   */
  invisiblePids = 0;

  /** `maxHeldFiles`: how many files may stay open (0: open/read/close each time). */
  constructor(private readonly maxHeldFiles = 0) {}

  /** The shared buffer, valid until the next read. */
  get buffer(): Buffer {
    return this.rb.buf;
  }

  /** Reads a whole file into the buffer; its length, or -1 when unreadable. `hold` false: never held. */
  readFile(path: string, hold = true): number {
    const fd = hold ? this.held.get(path) : undefined;
    if (fd !== undefined) {
      const n = this.readAll(fd);
      if (n >= 0) return n;
      this.forget([path]); // gone (ENODEV) or replaced: open it afresh once
    }
    let opened: number;
    try {
      opened = openSync(path, "r");
    } catch {
      return -1;
    }
    const n = this.readAll(opened);
    if (hold && n >= 0 && this.held.size < this.maxHeldFiles) this.held.set(path, opened);
    else closeSync(opened);
    return n;
  }

  /** Closes the held files of these paths (cgroups that went away). */
  forget(paths: Iterable<string>): void {
    for (const p of paths) {
      const fd = this.held.get(p);
      if (fd === undefined) continue;
      this.held.delete(p);
      try {
        closeSync(fd);
      } catch {
        // already invalid
      }
    }
  }

  /** Number of files held open. */
  get heldFiles(): number {
    return this.held.size;
  }

  /** Closes every held file. */
  close(): void {
    this.forget([...this.held.keys()]);
  }

  private readAll(fd: number): number {
    // Positioned reads from 0: a held seq file starts over and shows the current content.
    return this.rb.readFd(fd, { positioned: true });
  }


  /** Cumulative CPU seconds of the cgroup and its descendants: v2 usage_usec, v1 cpuacct.usage. */
  cpuSeconds(dir: string, version: CgroupVersion): number | undefined {
    if (version === 2) {
      const n = this.readFile(dir + "/cpu.stat");
      if (n <= 0) return undefined;
      const usec = parseUsageUsec(this.rb.buf, n);
      return usec === undefined ? undefined : microsToSeconds(usec);
    }
    const n = this.readFile(dir + "/cpuacct.usage");
    if (n <= 0) return undefined;
    const nsec = parseLeadingInteger(this.rb.buf, 0, n);
    return nsec === undefined ? undefined : nanosToSeconds(nsec);
  }

  /** PIDs in `cgroup.procs` (the cgroup itself, not its descendants). undefined when gone. */
  procs(dir: string, version: CgroupVersion = 2): number[] | undefined {
    const n = this.readFile(dir + "/cgroup.procs", version === 2);
    if (n < 0) return undefined;
    const pids = parsePidLines(this.rb.buf, n);
    const visible = pids.filter((p) => p !== 0);
    this.invisiblePids += pids.length - visible.length;
    return visible;
  }

  /**
   * Calls `f` for each PID in `cgroup.procs` without allocating an array; returns the count, or -1
   * when gone. PIDs shown as 0 (outside this PID namespace) are skipped and counted in invisiblePids.
   */
  forEachProc(dir: string, f: (pid: number) => void, version: CgroupVersion = 2): number {
    const n = this.readFile(dir + "/cgroup.procs", version === 2);
    if (n < 0) return -1;
    const buf = this.rb.buf;
    let count = 0;
    let v = 0;
    let digits = 0;
    for (let i = 0; i <= n; i++) {
      const c = i < n ? buf[i] : 0x0a;
      if (c >= 0x30 && c <= 0x39) {
        v = v * 10 + (c - 0x30);
        digits++;
        continue;
      }
      if (digits > 0) {
        if (v === 0) this.invisiblePids++;
        else {
          f(v);
          count++;
        }
      }
      v = 0;
      digits = 0;
    }
    return count;
  }

  /**
   * Resident memory of the cgroup's processes, bytes, from one memory.stat read (pass the memory
   * hierarchy's dir on v1): v2 `anon + file_mapped`, v1 `total_rss + total_mapped_file` (the
   * hierarchical figures: the job's own sub-cgroups included). The kernel's cgroup-v1 memory doc:
   * "'rss + mapped_file' will give you resident set size of cgroup"; v2's anon/file_mapped are the
   * same counters. Not `+ shmem`: mapped shmem/tmpfs pages are already in (file_)mapped, and unmapped
   * ones (a file in /dev/shm) are resident in no process. Caveats: a page is counted once however
   * many members map it (Σ /proc/PID RSS counts shared pages in each), and a file page is counted
   * only when this cgroup was charged for it (first touched from inside the job; libraries already
   * in the page cache are not). undefined when the file is absent or the cgroup gone.
   */
  rssBytes(dir: string, version: CgroupVersion): number | undefined {
    const n = this.readFile(dir + "/memory.stat");
    if (n <= 0) return undefined;
    const [anon, mapped] = version === 2 ? ["anon ", "file_mapped "] : ["total_rss ", "total_mapped_file "];
    const a = parseKeyedInteger(this.rb.buf, n, anon);
    const m = parseKeyedInteger(this.rb.buf, n, mapped);
    return a === undefined || m === undefined ? undefined : a + m;
  }

  /** Memory charged to the cgroup, bytes: v2 memory.current, v1 memory.usage_in_bytes (pass the memory hierarchy's dir). */
  memoryBytes(dir: string, version: CgroupVersion): number | undefined {
    const n = this.readFile(dir + (version === 2 ? "/memory.current" : "/memory.usage_in_bytes"));
    if (n <= 0) return undefined;
    return parseLeadingInteger(this.rb.buf, 0, n);
  }
}

/** Pure: `usage_usec N` from cpu.stat text held in `buf[0..length)`. */
export function parseUsageUsec(buf: Uint8Array, length: number): number | undefined {
  return parseKeyedInteger(buf, length, "usage_usec ");
}

/** Pure: N of the line `<key>N` (key with its trailing space) of a flat-keyed cgroup file in `buf[0..length)`. */
export function parseKeyedInteger(buf: Uint8Array, length: number, key: string): number | undefined {
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
