/**
 * Reads of kernel files that can block: a sysfs attribute whose driver is wedged, or a FIFO or
 * device planted where a regular file is expected (a fixture root, a hostile /sys mount). A read
 * like that must never stop the event loop (no ticks, no /healthz, SIGTERM not handled):
 *
 * - what is not a regular file is refused before it is read: opened O_NONBLOCK and checked with
 *   fstat, so a FIFO never blocks an open or a read;
 * - the read of a regular file runs on libuv's thread pool (fs.promises), so a read that never
 *   returns holds one pool thread, not the loop; the caller bounds it (the sampler's per-read
 *   deadline, withinMillis() at probe) and the source is marked hung;
 * - a read still stuck when the process exits would make Node wait for its thread forever (exit
 *   joins the pool): exitProcess() then ends the process with _exit(2), skipping that join, after
 *   saying so. The rest (the final checkpoint, the exporters' flush) is done by then.
 *
 * Other blocking work on the pool (NVML's calls over koffi's async calls, collectors/nvml.ts)
 * registers itself with trackBlocking() so that exitProcess() covers it the same way.
 */
import { close, constants, fstatSync, open, openSync, read, readSync, closeSync } from "node:fs";

/** A file's text, or why it was not read. */
export type GuardedRead =
  | { status: "ok"; text: string }
  /** Not a regular file (a FIFO, a device, a socket, a directory): never opened for reading. */
  | { status: "refused"; reason: string }
  | { status: "error"; code: string; message: string };

/** Blocking work in flight on the pool now (what it is → start, ms): what is left at exit is stuck in the kernel. */
const inFlight = new Map<number, { what: string; startedMillis: number }>();
let nextId = 0;

/**
 * Registers blocking work started on the thread pool (`what`: "a read of <path>", "the NVML call
 * nvmlDeviceGetPowerUsage"); the returned function ends it. While registered, exitProcess() does
 * not wait for it (see the module comment).
 */
export function trackBlocking(what: string): () => void {
  const id = nextId++;
  inFlight.set(id, { what, startedMillis: Date.now() });
  return () => void inFlight.delete(id);
}

const KIND = (st: { isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean; isDirectory(): boolean }): string =>
  st.isFIFO() ? "a FIFO" : st.isCharacterDevice() ? "a character device" : st.isBlockDevice() ? "a block device" : st.isSocket() ? "a socket" : st.isDirectory() ? "a directory" : "not a regular file";

const errorOf = (err: unknown): { status: "error"; code: string; message: string } => ({ status: "error", code: (err as NodeJS.ErrnoException).code ?? "EIO", message: (err as Error).message });

/**
 * `path` opened O_NONBLOCK (an open never waits on a FIFO) and checked with fstat: its descriptor
 * when it is a regular file; else closed, and the refusal or the error.
 */
function openRegular(path: string): number | Exclude<GuardedRead, { status: "ok" }> {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    return errorOf(err);
  }
  try {
    const st = fstatSync(fd);
    if (st.isFile()) return fd;
    closeSync(fd);
    return { status: "refused", reason: `${path} is ${KIND(st)}, not a regular file: refused` };
  } catch (err) {
    closeSync(fd);
    return errorOf(err);
  }
}

/**
 * The text of the regular file `path` (at most `maxBytes`), its read on the thread pool; a FIFO or
 * device refused without being read. Opened O_NONBLOCK (an open never waits on a FIFO) and checked
 * with fstat; the read runs on the pool (a sysfs attribute ignores O_NONBLOCK: a wedged driver
 * blocks there, on a pool thread). A regular file that would block (EAGAIN: trace_pipe-like) is
 * opened again without O_NONBLOCK and read on the pool. Never rejects; never bounded in time by
 * itself (see the module comment): race it against a deadline.
 */
export async function readRegularText(path: string, maxBytes = 64 * 1024): Promise<GuardedRead> {
  const fd = openRegular(path);
  if (typeof fd !== "number") return fd;
  const done = trackBlocking(`a read of ${path}`);
  try {
    const buf = Buffer.allocUnsafe(Math.min(maxBytes, 64 * 1024));
    let first = await readAt(fd, buf, 0);
    // Not seekable (a pipe-like kernel file): a plain read.
    if (first.status === "error" && first.code === "ESPIPE") first = await readAt(fd, buf, null);
    closeQuietly(fd);
    if (first.status === "error" && first.code === "EAGAIN") return await readOnPool(path, buf);
    return first;
  } finally {
    done();
  }
}

/** One read on the thread pool, from `position` (0: sysfs regenerates an attribute on a read from 0; null: the file's own position). */
function readAt(fd: number, buf: Buffer, position: number | null): Promise<GuardedRead> {
  return new Promise((resolve) => read(fd, buf, 0, buf.length, position, (err, n) => resolve(err ? errorOf(err) : { status: "ok", text: buf.toString("utf8", 0, n) })));
}

/** open (blocking), one read, close: all on the thread pool. */
function readOnPool(path: string, buf: Buffer): Promise<GuardedRead> {
  return new Promise((resolve) => {
    open(path, "r", (err, fd) => {
      if (err) return resolve(errorOf(err));
      void readAt(fd, buf, null).then((r) => {
        close(fd, () => undefined);
        resolve(r);
      });
    });
  });
}

/** A file's bytes, or why they were not read. */
export type GuardedBytes = { status: "ok"; bytes: Buffer } | Exclude<GuardedRead, { status: "ok" }>;

/**
 * Up to `maxBytes` of the regular file `path`, read on the thread pool chunk by chunk until its end
 * (a process's /proc/PID/cmdline or environ: the kernel takes the target's mmap lock there, so a
 * process stuck in D state holding it blocks the read, on a pool thread). Opened O_NONBLOCK and
 * checked with fstat on the loop, as readRegularText. A short read ends it (procfs's cmdline and
 * environ fill the buffer up to their end: one pool read for most). Never rejects; never bounded
 * in time by itself: race it against a deadline.
 */
export async function readRegularBytes(path: string, maxBytes: number): Promise<GuardedBytes> {
  const opened = openRegular(path);
  if (typeof opened !== "number") return opened;
  let fd = opened;
  const done = trackBlocking(`a read of ${path}`);
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    while (total < maxBytes) {
      const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, maxBytes - total));
      let n: number;
      try {
        n = await readOnce(fd, chunk);
      } catch (err) {
        // A regular file that would block (trace_pipe-like): opened again blocking, on the pool.
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN" || total > 0) throw err;
        closeQuietly(fd);
        fd = -1;
        fd = await new Promise<number>((resolve, reject) => open(path, "r", (e, f) => (e ? reject(e) : resolve(f))));
        n = await readOnce(fd, chunk);
      }
      if (n <= 0) break;
      chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
      total += n;
      if (n < chunk.length) break;
    }
    return { status: "ok", bytes: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total) };
  } catch (err) {
    return errorOf(err);
  } finally {
    if (fd >= 0) closeQuietly(fd);
    done();
  }
}

/**
 * Closes a descriptor after its read, ignoring a failure: the read's outcome is what counts (a
 * FUSE file whose daemon died fails its close with ENOTCONN).
 */
function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // nothing left to do with it
  }
}

/** One read into `buf` from the file's position, on the thread pool. */
function readOnce(fd: number, buf: Buffer): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, buf.length, null, (err, n) => (err ? reject(err) : resolve(n))));
}

/**
 * The sync variant, for reads that must stay synchronous (run's counters just before its spawn):
 * opened O_NONBLOCK (a FIFO's open and read return at once) and refused unless fstat says regular.
 * A sysfs attribute whose driver hangs still blocks here: use readRegularText where that matters.
 */
export function readRegularTextSync(path: string, maxBytes = 64 * 1024): GuardedRead {
  const fd = openRegular(path);
  if (typeof fd !== "number") return fd;
  try {
    const buf = Buffer.allocUnsafe(maxBytes);
    let n = 0;
    for (let r; n < maxBytes && (r = readSync(fd, buf, n, maxBytes - n, null)) > 0; ) n += r;
    return { status: "ok", text: buf.toString("utf8", 0, n) };
  } catch (err) {
    return errorOf(err);
  } finally {
    closeSync(fd);
  }
}

/** `p`, or "timeout" once `millis` pass (the timer is cleared as soon as `p` settles; never holds the process). */
export async function withinMillis<T>(p: Promise<T>, millis: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), Math.max(0, millis));
    timer.unref();
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Blocking work that has not returned (oldest first): what it is, and how long it has been waited on, ms. */
export function pendingReads(nowMillis = Date.now()): { what: string; waitedMillis: number }[] {
  return [...inFlight.values()].map((r) => ({ what: r.what, waitedMillis: nowMillis - r.startedMillis }));
}

/**
 * Ends the process with `code`. Normally process.exit; with a read still stuck in the kernel,
 * Node's exit would wait for its thread forever, so the process ends with _exit(2) (through koffi,
 * loaded only then; if it cannot be, SIGKILL of itself: exit 137), after `say` tells why.
 */
export function exitProcess(code: number, say?: (message: string) => void): void {
  const stuck = pendingReads();
  if (stuck.length === 0) return void process.exit(code);
  say?.(`${stuck[0].what}${stuck.length > 1 ? ` (and ${stuck.length - 1} more)` : ""} has not returned for ${Math.round(stuck[0].waitedMillis / 1000)} s (stuck in the kernel): exiting without waiting for it`);
  process.exitCode = code;
  void import("koffi")
    .then(({ default: koffi }) => {
      const libc = koffi.load("libc.so.6");
      libc.func("void _exit(int)")(code);
    })
    .catch(() => process.kill(process.pid, "SIGKILL"));
}
